//! What the controller remembers about each pod, one record per pod UID in one map: dropping
//! a pod's record forgets everything about it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodStatus;

use super::instance_events::SeenEvents;
use super::lock::lock;
use crate::provider::{InstanceStatus, PodRef, StatusEvent};

#[derive(Debug, Default)]
pub(super) struct PodRecord {
    /// The provider's latest report of the pod's instance.
    pub instance: Option<InstanceStatus>,
    /// The pod's deletion was handled once (the provider delete is sent once).
    pub delete_sent: bool,
    /// The last generation handed to the provider.
    pub generation_sent: Option<i64>,
    /// Consecutive failed reconciles, for backoff.
    pub failures: u32,
    /// When the pod's service-account tokens are due to be re-issued.
    pub tokens_due: Option<Timestamp>,
    /// A mounted secret or configMap changed since the pod's files were last sent.
    pub mounted_changed: bool,
    /// What our last status write returned: until the watch brings that write, the store's
    /// copy is older than what the API holds.
    pub written: Option<Written>,
    /// When this process created the instance (until the provider reports it gone).
    pub created: Option<Instant>,
    /// When the watch first brought the pod, not started yet (for start-up timing).
    pub first_seen: Option<Instant>,
    /// The provider's container events already recorded on the pod.
    pub seen_events: SeenEvents,
    /// The pod's cost was recorded (it ended, or was deleted while running).
    pub cost_recorded: bool,
    /// This process has reconciled the pod (counted once in `vk_pods_reconciled_total`).
    pub reconciled: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Written {
    /// The pod's resourceVersion after the write.
    pub version: String,
    /// Its status then (what we sent when the answer has none).
    pub status: PodStatus,
}

/// Every pod's record, behind one lock (held only for plain reads and writes). Boxed: the
/// map's table, a quarter to a half empty at any size, holds a pointer per slot rather than a
/// whole record (about 1.5 KB with its instance and written status inline).
#[derive(Default)]
pub(super) struct Records(Mutex<HashMap<String, Box<PodRecord>>>);

impl Records {
    /// Read the pod's record (None: nothing is known about it).
    pub fn read<R>(&self, uid: &str, f: impl FnOnce(Option<&PodRecord>) -> R) -> R {
        f(lock(&self.0).get(uid).map(|r| &**r))
    }

    /// Change the pod's record, starting an empty one if there is none.
    pub fn update<R>(&self, uid: &str, f: impl FnOnce(&mut PodRecord) -> R) -> R {
        f(lock(&self.0).entry(uid.to_string()).or_default())
    }

    /// Change the pod's record if there is one.
    pub fn update_existing<R>(&self, uid: &str, f: impl FnOnce(&mut PodRecord) -> R) -> Option<R> {
        lock(&self.0).get_mut(uid).map(|r| f(r))
    }

    pub fn forget(&self, uid: &str) {
        lock(&self.0).remove(uid);
    }

    /// The provider's latest report of the pod's instance.
    pub fn instance(&self, uid: &str) -> Option<InstanceStatus> {
        self.read(uid, |r| r.and_then(|r| r.instance.clone()))
    }

    /// Record a provider report; returns the pod it concerns. `in_api`: whether the pod is
    /// still an API object; a vanished pod's record goes with its instance.
    pub fn apply(&self, event: StatusEvent, in_api: impl FnOnce(&PodRef) -> bool) -> PodRef {
        match event {
            StatusEvent::Changed(status) => {
                let pod = status.pod.clone();
                self.update(&pod.uid, |r| r.instance = Some(status));
                pod
            }
            StatusEvent::Gone(pod) => {
                if in_api(&pod) {
                    self.update_existing(&pod.uid, |r| {
                        r.instance = None;
                        // Gone before it ever ran: the next reconcile creates it again at once.
                        r.created = None;
                    });
                } else {
                    self.forget(&pod.uid);
                }
                pod
            }
        }
    }

    /// How many pods have a record (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::InstancePhase;

    fn report(uid: &str) -> StatusEvent {
        StatusEvent::Changed(InstanceStatus {
            billing: None,
            pod: PodRef {
                namespace: "ci".into(),
                name: "build".into(),
                uid: uid.into(),
            },
            phase: InstancePhase::Running,
            reason: None,
            message: None,
            pod_ip: None,
            created_at: None,
            init_containers: vec![],
            containers: vec![],
            events: vec![],
        })
    }

    fn gone(uid: &str) -> StatusEvent {
        StatusEvent::Gone(PodRef {
            namespace: "ci".into(),
            name: "build".into(),
            uid: uid.into(),
        })
    }

    #[test]
    fn forgetting_a_pod_drops_everything_about_it() {
        let records = Records::default();
        records.apply(report("u"), |_| true);
        records.update("u", |r| {
            r.delete_sent = true;
            r.generation_sent = Some(3);
            r.mounted_changed = true;
        });
        records.forget("u");
        assert!(records.read("u", |r| r.is_none()));
        assert_eq!(records.len(), 0);
    }

    #[test]
    fn a_gone_instance_of_a_live_pod_keeps_the_rest_of_its_record() {
        let records = Records::default();
        records.apply(report("u"), |_| true);
        records.update("u", |r| {
            r.created = Some(Instant::now());
            r.generation_sent = Some(1);
        });
        records.apply(gone("u"), |_| true);
        records.read("u", |r| {
            let r = r.unwrap();
            assert!(r.instance.is_none());
            assert!(r.created.is_none(), "created again at once");
            assert_eq!(r.generation_sent, Some(1));
        });
    }

    #[test]
    fn a_gone_instance_of_a_vanished_pod_leaves_no_record() {
        let records = Records::default();
        records.apply(report("u"), |_| false);
        records.apply(gone("u"), |_| false);
        assert_eq!(records.len(), 0);
        // A report of a pod never seen does not start a record.
        records.apply(gone("v"), |_| true);
        assert_eq!(records.len(), 0);
    }
}
