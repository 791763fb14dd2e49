//! The provider's own container events (probe failures, kills for them) become Events on the
//! pod, each occurrence once: a provider reports each event with a running count, and what
//! was recorded is remembered per pod. Events from before this process started are taken as
//! recorded already (a restarted vk does not repeat them).

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;

use super::state::lock;
use crate::provider::InstanceEvent;

/// Container, reason, message, first occurrence.
type Key = (Option<String>, String, String, Timestamp);

pub(crate) struct SeenEvents {
    /// Per pod UID: the count of each event entry already recorded.
    by_pod: Mutex<HashMap<String, HashMap<Key, u32>>>,
    since: Timestamp,
}

impl SeenEvents {
    pub(crate) fn new(since: Timestamp) -> Self {
        Self {
            by_pod: Mutex::new(HashMap::new()),
            since,
        }
    }

    /// The events of a pod's report that were not recorded yet, marking them recorded.
    pub(crate) fn fresh<'a>(
        &self,
        uid: &str,
        events: &'a [InstanceEvent],
    ) -> Vec<&'a InstanceEvent> {
        let mut by_pod = lock(&self.by_pod);
        let seen = by_pod.entry(uid.to_string()).or_default();
        let mut fresh = Vec::new();
        let mut now_seen = HashMap::new();
        for e in events {
            let key = (
                e.container.clone(),
                e.reason.clone(),
                e.message.clone(),
                e.first_seen,
            );
            let new = match seen.get(&key) {
                Some(count) => e.count > *count,
                None => e.last_seen >= self.since,
            };
            if new {
                fresh.push(e);
            }
            now_seen.insert(key, e.count);
        }
        // Only what the provider still reports: one it dropped and reports anew counts again.
        *seen = now_seen;
        fresh
    }

    pub(crate) fn forget(&self, uid: &str) {
        lock(&self.by_pod).remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str, count: u32, at: i64) -> InstanceEvent {
        InstanceEvent {
            container: Some("app".into()),
            warning: true,
            reason: "Unhealthy".into(),
            message: message.into(),
            count,
            first_seen: Timestamp::from_second(at.min(110)).unwrap(),
            last_seen: Timestamp::from_second(at).unwrap(),
        }
    }

    #[test]
    fn each_occurrence_is_recorded_once() {
        let seen = SeenEvents::new(Timestamp::from_second(100).unwrap());
        let first = [event("Liveness probe failed: no", 1, 110)];
        assert_eq!(seen.fresh("u", &first).len(), 1);
        assert!(seen.fresh("u", &first).is_empty());
        let again = [
            event("Liveness probe failed: no", 2, 120),
            event("Readiness probe failed: no", 1, 120),
        ];
        assert_eq!(seen.fresh("u", &again).len(), 2);
        assert!(seen.fresh("u", &again).is_empty());
        // Another pod has its own counts.
        assert_eq!(seen.fresh("v", &first).len(), 1);
        seen.forget("u");
        assert_eq!(seen.fresh("u", &again).len(), 2);
    }

    #[test]
    fn events_from_before_the_start_are_not_repeated() {
        let seen = SeenEvents::new(Timestamp::from_second(100).unwrap());
        let old = [event("Liveness probe failed: no", 5, 90)];
        assert!(seen.fresh("u", &old).is_empty());
        // ... but their next occurrence is new, and so is a later entry of the same event.
        let mut newer = [event("Liveness probe failed: no", 6, 95)];
        newer[0].first_seen = old[0].first_seen;
        assert_eq!(seen.fresh("u", &newer).len(), 1);
        let mut later = event("Liveness probe failed: no", 1, 130);
        later.first_seen = later.last_seen;
        let both = [newer[0].clone(), later];
        let fresh = seen.fresh("u", &both);
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].count, 1);
    }
}
