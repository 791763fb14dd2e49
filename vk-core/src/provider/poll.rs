//! Turns a provider without push into a stream of [`StatusEvent`]s: one listing per interval
//! for the whole node (`Provider::list_each`), diffed against the previous one as it is read.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{InstanceStatus, PodRef, Provider, StatusEvent};

/// The diff's memory of one instance: a fingerprint of the status it reported last (not the
/// status itself: at 10,000 pods whole statuses held about 15 MB) and its pod, to say which
/// pod is gone when it is no longer listed.
struct Seen {
    fingerprint: u64,
    pod: PodRef,
    /// The listing that last had it.
    round: u64,
}

pub struct StatusPoller {
    /// By pod UID.
    last: HashMap<String, Seen>,
    round: u64,
}

impl Default for StatusPoller {
    fn default() -> Self {
        Self::new()
    }
}

fn fingerprint(status: &InstanceStatus) -> u64 {
    let mut h = DefaultHasher::new();
    status.hash(&mut h);
    h.finish()
}

impl StatusPoller {
    pub fn new() -> Self {
        Self {
            last: HashMap::new(),
            round: 0,
        }
    }

    /// The events that turn the previous answer into `current` (one whole listing).
    #[cfg(test)]
    pub fn diff(&mut self, current: Vec<InstanceStatus>) -> Vec<StatusEvent> {
        self.begin();
        let mut events: Vec<StatusEvent> = current
            .into_iter()
            .filter_map(|s| self.observe(s))
            .collect();
        events.extend(self.finish());
        events
    }

    /// Start a listing.
    pub fn begin(&mut self) {
        self.round += 1;
    }

    /// One instance of the listing under way: Changed when its status differs from the last
    /// one listed (compared by a 64-bit hash of the whole status) or it is new.
    pub fn observe(&mut self, status: InstanceStatus) -> Option<StatusEvent> {
        let fingerprint = fingerprint(&status);
        let round = self.round;
        match self.last.get_mut(&status.pod.uid) {
            Some(seen) => {
                seen.round = round;
                if seen.fingerprint == fingerprint {
                    return None;
                }
                seen.fingerprint = fingerprint;
                seen.pod.clone_from(&status.pod);
            }
            None => {
                let seen = Seen {
                    fingerprint,
                    pod: status.pod.clone(),
                    round,
                };
                self.last.insert(status.pod.uid.clone(), seen);
            }
        }
        Some(StatusEvent::Changed(status))
    }

    /// The listing was whole: every instance it did not have is Gone. (After a listing that
    /// failed half way, do not call it: the next whole one tells what is gone.)
    pub fn finish(&mut self) -> Vec<StatusEvent> {
        let round = self.round;
        let mut gone = Vec::new();
        self.last.retain(|_, seen| {
            let listed = seen.round == round;
            if !listed {
                gone.push(StatusEvent::Gone(seen.pod.clone()));
            }
            listed
        });
        gone
    }

    /// Poll until cancelled, sending the changes on a channel. Each listing is taken in as
    /// the provider reads it ([`Provider::list_each`]): only the changed statuses are kept.
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
                poller.begin();
                let mut events = Vec::new();
                let listed = provider
                    .list_each(&mut |status| events.extend(poller.observe(status)))
                    .await;
                match listed {
                    Ok(()) => events.extend(poller.finish()),
                    // What was read is still news; nothing is taken for gone.
                    Err(e) => {
                        tracing::warn!(error = %e, "listing instances failed; keeping the last known statuses")
                    }
                }
                for event in events {
                    if tx.send(event).await.is_err() {
                        return;
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
    use crate::provider::{ContainerState, ContainerStatus, InstancePhase, PodRef};

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

    #[test]
    fn diff_sees_a_change_deep_in_a_status_and_a_pod_that_comes_back() {
        let mut p = StatusPoller::new();
        let mut a = status("a", InstancePhase::Running);
        a.containers.push(ContainerStatus {
            name: "build".into(),
            state: ContainerState::Running {
                started_at: jiff::Timestamp::UNIX_EPOCH,
            },
            last_state: None,
            restart_count: 0,
            ready: false,
            started: None,
            container_id: None,
            image: "golang".into(),
            image_id: None,
        });
        assert_eq!(p.diff(vec![a.clone()]).len(), 1);
        assert!(p.diff(vec![a.clone()]).is_empty());

        // Only the readiness of one container moves.
        a.containers[0].ready = true;
        assert_eq!(
            p.diff(vec![a.clone()]),
            vec![StatusEvent::Changed(a.clone())]
        );

        // Gone once, not again while it stays away, and new again when it is back.
        assert_eq!(p.diff(vec![]), vec![StatusEvent::Gone(a.pod.clone())]);
        assert!(p.diff(vec![]).is_empty());
        assert_eq!(p.diff(vec![a.clone()]), vec![StatusEvent::Changed(a)]);
    }

    #[test]
    fn a_listing_that_failed_half_way_takes_nothing_for_gone() {
        let mut p = StatusPoller::new();
        let a = status("a", InstancePhase::Running);
        let b = status("b", InstancePhase::Running);
        p.diff(vec![a.clone(), b.clone()]);

        // The provider handed out `a`, changed, then failed: the change is news, `b` is
        // not gone.
        let a2 = status("a", InstancePhase::Succeeded);
        p.begin();
        assert_eq!(
            p.observe(a2.clone()),
            Some(StatusEvent::Changed(a2.clone()))
        );

        // The next whole listing has `a` only: now `b` is gone.
        assert_eq!(p.diff(vec![a2]), vec![StatusEvent::Gone(b.pod)]);
    }
}
