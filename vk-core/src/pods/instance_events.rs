//! The Events a pod gets from its instance's reports: the provider's own container events
//! (probe failures, kills for them), each occurrence once, and `Started` for each container
//! that starts. A provider reports each event with a running count; what was recorded is
//! remembered in the pod's record. Events from before this process started are taken as
//! recorded already (a restarted vk does not repeat them).

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodStatus};

use crate::provider::InstanceEvent;

/// Container, reason, message, first occurrence.
type Key = (Option<String>, String, String, Timestamp);

/// One pod's provider events already recorded: the count of each event entry.
#[derive(Debug, Default)]
pub(super) struct SeenEvents(HashMap<Key, u32>);

impl SeenEvents {
    /// The events of the pod's report that were not recorded yet, marking them recorded.
    /// `since`: when this process started.
    pub(super) fn fresh<'a>(
        &mut self,
        since: Timestamp,
        events: &'a [InstanceEvent],
    ) -> Vec<&'a InstanceEvent> {
        // Clouds date events in whole seconds: one from the second this process started is
        // new, not recorded already.
        let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
        let mut fresh = Vec::new();
        let mut now_seen = HashMap::new();
        for e in events {
            let key = (
                e.container.clone(),
                e.reason.clone(),
                e.message.clone(),
                e.first_seen,
            );
            let new = match self.0.get(&key) {
                Some(count) => e.count > *count,
                None => e.last_seen >= since,
            };
            if new {
                fresh.push(e);
            }
            now_seen.insert(key, e.count);
        }
        // Only what the provider still reports: one it dropped and reports anew counts again.
        self.0 = now_seen;
        fresh
    }
}

/// The field path of a container of `pod`, which keeps the events of different containers
/// apart: `spec.containers{name}` or `spec.initContainers{name}`.
pub(super) fn container_field_path(pod: &Pod, name: &str) -> String {
    let init = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .any(|c| c.name == name);
    let list = if init { "initContainers" } else { "containers" };
    format!("spec.{list}{{{name}}}")
}

/// The containers that run in `desired` and did not in the API's last status (each gets a
/// `Started` event).
pub(super) fn newly_started(pod: &Pod, desired: &PodStatus) -> Vec<String> {
    let was_running = |name: &str| {
        pod.status.as_ref().is_some_and(|s| {
            s.container_statuses
                .iter()
                .chain(s.init_container_statuses.iter())
                .flatten()
                .any(|c| {
                    c.name == name
                        && c.state.as_ref().is_some_and(|st| st.running.is_some())
                        && c.restart_count >= 0
                })
        })
    };
    desired
        .container_statuses
        .iter()
        .chain(desired.init_container_statuses.iter())
        .flatten()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()) && !was_running(&c.name))
        .map(|c| c.name.clone())
        .collect()
}

/// Warning events the kubelet records for containers that cannot start or keep failing, for
/// each container of `desired` that newly shows such a state: (container, reason, message).
/// An image that cannot be pulled is `Failed` then `BackOff`, a crash loop `BackOff`, an init
/// container that exits non-zero `Failed`.
pub(super) fn newly_failing(pod: &Pod, desired: &PodStatus) -> Vec<(String, &'static str, String)> {
    let before = |name: &str| {
        pod.status.as_ref().and_then(|s| {
            s.container_statuses
                .iter()
                .chain(s.init_container_statuses.iter())
                .flatten()
                .find(|c| c.name == name)
                .and_then(|c| c.state.clone())
        })
    };
    let mut out = Vec::new();
    let init = desired
        .init_container_statuses
        .iter()
        .flatten()
        .map(|c| (c, true));
    let apps = desired
        .container_statuses
        .iter()
        .flatten()
        .map(|c| (c, false));
    for (c, is_init) in apps.chain(init) {
        let Some(state) = c.state.as_ref() else {
            continue;
        };
        let was = before(&c.name);
        if let Some(w) = state.waiting.as_ref() {
            let reason = w.reason.as_deref().unwrap_or_default();
            let same = was
                .as_ref()
                .and_then(|s| s.waiting.as_ref()?.reason.clone())
                .is_some_and(|r| r == reason);
            let message = w.message.clone().unwrap_or_default();
            let event = match reason {
                "ErrImagePull" => Some((
                    "Failed",
                    format!("Failed to pull image {:?}: {message}", c.image),
                )),
                "ImagePullBackOff" => {
                    Some(("BackOff", format!("Back-off pulling image {:?}", c.image)))
                }
                "CrashLoopBackOff" => Some((
                    "BackOff",
                    format!("Back-off restarting failed container {}", c.name),
                )),
                "CreateContainerError" | "RunContainerError" | "StartError" => {
                    Some(("Failed", format!("Error: {message}")))
                }
                _ => None,
            };
            if let Some((r, m)) = event.filter(|_| !same) {
                out.push((c.name.clone(), r, m));
            }
        }
        if let Some(t) = state
            .terminated
            .as_ref()
            .filter(|t| is_init && t.exit_code != 0)
        {
            let same = was
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|p| p.exit_code == t.exit_code && p.finished_at == t.finished_at);
            if !same {
                out.push((
                    c.name.clone(),
                    "Failed",
                    format!("Init container {} exited with code {}", c.name, t.exit_code),
                ));
            }
        }
    }
    out
}

/// Ephemeral containers the desired status shows and the API's does not yet: each gets one
/// Warning event.
pub(super) fn newly_refused_ephemeral(pod: &Pod, desired: &PodStatus) -> Vec<String> {
    let shown = |name: &str| {
        pod.status
            .as_ref()
            .and_then(|s| s.ephemeral_container_statuses.as_ref())
            .is_some_and(|l| l.iter().any(|c| c.name == name))
    };
    desired
        .ephemeral_container_statuses
        .iter()
        .flatten()
        .filter(|c| !shown(&c.name))
        .map(|c| c.name.clone())
        .collect()
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

    fn since() -> Timestamp {
        Timestamp::from_second(100).unwrap()
    }

    #[test]
    fn each_occurrence_is_recorded_once() {
        let mut seen = SeenEvents::default();
        let first = [event("Liveness probe failed: no", 1, 110)];
        assert_eq!(seen.fresh(since(), &first).len(), 1);
        assert!(seen.fresh(since(), &first).is_empty());
        let again = [
            event("Liveness probe failed: no", 2, 120),
            event("Readiness probe failed: no", 1, 120),
        ];
        assert_eq!(seen.fresh(since(), &again).len(), 2);
        assert!(seen.fresh(since(), &again).is_empty());
        // Another pod has its own counts.
        assert_eq!(SeenEvents::default().fresh(since(), &first).len(), 1);
        // A forgotten pod starts over.
        let mut seen = SeenEvents::default();
        assert_eq!(seen.fresh(since(), &again).len(), 2);
    }

    #[test]
    fn events_from_before_the_start_are_not_repeated() {
        let mut seen = SeenEvents::default();
        let old = [event("Liveness probe failed: no", 5, 90)];
        assert!(seen.fresh(since(), &old).is_empty());
        // ... but their next occurrence is new, and so is a later entry of the same event.
        let mut newer = [event("Liveness probe failed: no", 6, 95)];
        newer[0].first_seen = old[0].first_seen;
        assert_eq!(seen.fresh(since(), &newer).len(), 1);
        let mut later = event("Liveness probe failed: no", 1, 130);
        later.first_seen = later.last_seen;
        let both = [newer[0].clone(), later];
        let fresh = seen.fresh(since(), &both);
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].count, 1);
    }

    #[test]
    fn an_event_of_the_second_this_process_started_is_new() {
        // vk started at 100.6 s; the cloud dates an event of 100.9 s as 100 s.
        let started = Timestamp::from_millisecond(100_600).unwrap();
        let mut seen = SeenEvents::default();
        assert_eq!(seen.fresh(started, &[event("x", 1, 100)]).len(), 1);
        assert!(seen.fresh(started, &[event("y", 1, 99)]).is_empty());
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "setup"}],
                "containers": [{"name": "build"}, {"name": "jnlp"}],
            },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn field_paths_name_the_container_list() {
        let p = pod(serde_json::json!({}));
        assert_eq!(container_field_path(&p, "build"), "spec.containers{build}");
        assert_eq!(
            container_field_path(&p, "setup"),
            "spec.initContainers{setup}"
        );
    }

    #[test]
    fn only_containers_that_did_not_run_before_are_started() {
        let running = serde_json::json!({"running": {}});
        let waiting = serde_json::json!({"waiting": {"reason": "ContainerCreating"}});
        let status = |build: &serde_json::Value, jnlp: &serde_json::Value| {
            serde_json::json!({"containerStatuses": [
                {"name": "build", "image": "", "imageID": "", "ready": false, "restartCount": 0, "state": build},
                {"name": "jnlp", "image": "", "imageID": "", "ready": false, "restartCount": 0, "state": jnlp},
            ]})
        };
        let before = pod(status(&running, &waiting));
        let desired: PodStatus = serde_json::from_value(status(&running, &running)).unwrap();
        assert_eq!(newly_started(&before, &desired), ["jnlp"]);
        let nothing_yet = pod(serde_json::json!({}));
        assert_eq!(newly_started(&nothing_yet, &desired), ["build", "jnlp"]);
    }
}
