//! `activeDeadlineSeconds`, enforced as the kubelet's active-deadline handler does: counted
//! from `status.startTime` (set when the pod was first seen on the node), for pods that are not
//! terminal yet. An exceeded pod is stopped and becomes Failed with this reason and message.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;

use crate::provider::{InstancePhase, InstanceStatus};

pub const REASON: &str = "DeadlineExceeded";
pub const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// Time left before the pod's active deadline: `None` without a deadline or a start time,
/// zero once it is exceeded.
pub fn remaining(pod: &Pod, now: Timestamp) -> Option<Duration> {
    let seconds = pod.spec.as_ref()?.active_deadline_seconds?;
    let started = pod.status.as_ref()?.start_time.as_ref()?.0;
    // A deadline past the end of time is no deadline.
    let deadline = started
        .checked_add(SignedDuration::from_secs(seconds.max(0)))
        .ok()?;
    let left = deadline.duration_since(now);
    Some(if left.is_positive() {
        left.unsigned_abs()
    } else {
        Duration::ZERO
    })
}

/// The pod must be stopped for its deadline now: exceeded, and its instance (if any) has not
/// finished on its own already (its own end is reported, not overwritten).
pub fn must_stop(pod: &Pod, instance: Option<&InstanceStatus>, now: Timestamp) -> bool {
    let finished = instance
        .is_some_and(|i| matches!(i.phase, InstancePhase::Succeeded | InstancePhase::Failed));
    !finished && remaining(pod, now).is_some_and(|left| left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::PodRef;
    use serde_json::json;

    fn pod(deadline: Option<i64>, start: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}], "activeDeadlineSeconds": deadline},
            "status": {"startTime": start},
        }))
        .unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn counts_from_the_start_time() {
        let p = pod(Some(60), Some("2025-01-01T00:00:00Z"));
        assert_eq!(
            remaining(&p, at("2025-01-01T00:00:20Z")),
            Some(Duration::from_secs(40))
        );
        assert_eq!(
            remaining(&p, at("2025-01-01T00:00:20.250Z")),
            Some(Duration::from_millis(39_750))
        );
        assert_eq!(
            remaining(&p, at("2025-01-01T00:01:00Z")),
            Some(Duration::ZERO)
        );
        assert_eq!(
            remaining(&p, at("2025-01-01T02:00:00Z")),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn no_deadline_or_no_start_time_means_no_limit() {
        let now = at("2030-01-01T00:00:00Z");
        assert_eq!(
            remaining(&pod(None, Some("2025-01-01T00:00:00Z")), now),
            None
        );
        assert_eq!(remaining(&pod(Some(1), None), now), None);
        let no_status: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}], "activeDeadlineSeconds": 1},
        }))
        .unwrap();
        assert_eq!(remaining(&no_status, now), None);
    }

    #[test]
    fn an_instance_that_finished_on_its_own_is_not_stopped() {
        let p = pod(Some(60), Some("2025-01-01T00:00:00Z"));
        let late = at("2025-01-01T00:05:00Z");
        let instance = |phase| InstanceStatus {
            billing: None,
            pod: PodRef::default(),
            phase,
            reason: None,
            message: None,
            pod_ip: None,
            created_at: None,
            init_containers: vec![],
            containers: vec![],
            events: vec![],
        };
        assert!(must_stop(&p, None, late));
        assert!(must_stop(&p, Some(&instance(InstancePhase::Running)), late));
        assert!(must_stop(&p, Some(&instance(InstancePhase::Pending)), late));
        assert!(!must_stop(
            &p,
            Some(&instance(InstancePhase::Succeeded)),
            late
        ));
        assert!(!must_stop(&p, Some(&instance(InstancePhase::Failed)), late));
        assert!(!must_stop(
            &p,
            Some(&instance(InstancePhase::Running)),
            at("2025-01-01T00:00:30Z")
        ));
    }
}
