//! Turns a provider without push into a stream of [`StatusEvent`]s: one `list` call per
//! interval for the whole node, diffed against the previous answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{InstanceStatus, Provider, StatusEvent};

pub struct StatusPoller {
    last: HashMap<String, InstanceStatus>,
}

impl Default for StatusPoller {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusPoller {
    pub fn new() -> Self {
        Self {
            last: HashMap::new(),
        }
    }

    /// The events that turn the previous answer into `current`.
    pub fn diff(&mut self, current: Vec<InstanceStatus>) -> Vec<StatusEvent> {
        let mut events = Vec::new();
        let mut next = HashMap::with_capacity(current.len());
        for status in current {
            if self.last.get(&status.pod.uid) != Some(&status) {
                events.push(StatusEvent::Changed(status.clone()));
            }
            next.insert(status.pod.uid.clone(), status);
        }
        for (uid, old) in &self.last {
            if !next.contains_key(uid) {
                events.push(StatusEvent::Gone(old.pod.clone()));
            }
        }
        self.last = next;
        events
    }

    /// Poll until cancelled, sending the changes on a channel.
    pub fn spawn(
        provider: Arc<dyn Provider>,
        interval: Duration,
        cancel: CancellationToken,
    ) -> mpsc::Receiver<StatusEvent> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut poller = StatusPoller::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match provider.list().await {
                    Ok(list) => {
                        for event in poller.diff(list) {
                            if tx.send(event).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "listing instances failed; keeping the last known statuses")
                    }
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{InstancePhase, PodRef};

    fn status(uid: &str, phase: InstancePhase) -> InstanceStatus {
        InstanceStatus {
            billing: None,
            pod: PodRef {
                namespace: "ns".into(),
                name: uid.into(),
                uid: uid.into(),
            },
            phase,
            reason: None,
            message: None,
            pod_ip: None,
            created_at: None,
            init_containers: vec![],
            containers: vec![],
            events: vec![],
        }
    }

    #[test]
    fn diff_reports_new_changed_and_gone_instances_only() {
        let mut p = StatusPoller::new();
        let first = p.diff(vec![
            status("a", InstancePhase::Pending),
            status("b", InstancePhase::Running),
        ]);
        assert_eq!(first.len(), 2);

        let unchanged = p.diff(vec![
            status("a", InstancePhase::Pending),
            status("b", InstancePhase::Running),
        ]);
        assert!(unchanged.is_empty());

        let next = p.diff(vec![status("a", InstancePhase::Running)]);
        assert_eq!(
            next,
            vec![
                StatusEvent::Changed(status("a", InstancePhase::Running)),
                StatusEvent::Gone(status("b", InstancePhase::Running).pod),
            ]
        );
    }
}
