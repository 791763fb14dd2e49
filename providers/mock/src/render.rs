//! A group of the simulator's engine as the kubelet reports a pod: phase, address, container
//! states with their ids, restarts, readiness, and the probe events vk-core records on the
//! pod. The mock's own record of the pod ([`Record`]) rides in the group.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::{Mutex, MutexGuard};

use cloudsim::engine::Phase;
use cloudsim::engine::group::{CState, ContainerRt, Group};
use jiff::Timestamp;
use vk_core::provider::{
    ContainerState, ContainerStatus, InstanceEvent, InstancePhase, InstanceStatus, PodRef,
    ResolvedPod,
};

/// Exit code of a container stopped by `delete`: the mock's processes die of the SIGTERM at
/// once (128 + 15), reported with reason `Error`. (A sidecar still running when its pod
/// ends is killed by the engine: 137.)
pub const STOP_EXIT_CODE: i32 = 143;

/// The mock's record of a pod, kept in its group.
pub(crate) struct Record {
    /// What is kept of the pod as last created or updated.
    pod: Mutex<Kept>,
    /// The status last pushed, so only changes are pushed.
    last: Mutex<Option<InstanceStatus>>,
}

/// What the mock reads of a pod once its group runs: who it is, its annotations (port
/// forwarding's address), its containers' images and how many there are. Not the whole
/// resolved pod: the engine's group holds the containers' specs already, and a node holding
/// thousands of pods should not hold them twice.
struct Kept {
    pod: PodRef,
    annotations: BTreeMap<String, String>,
    /// Each container's name and image, init containers first.
    images: Vec<(String, String)>,
    /// How many init and app containers the pod has.
    shape: (usize, usize),
}

impl Kept {
    fn of(pod: &ResolvedPod) -> Self {
        Self {
            pod: pod.pod.clone(),
            annotations: pod.annotations.clone(),
            images: pod
                .init_containers
                .iter()
                .chain(&pod.containers)
                .map(|c| (c.name.clone(), c.image.clone()))
                .collect(),
            shape: (pod.init_containers.len(), pod.containers.len()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Record {
    pub fn new(pod: &ResolvedPod) -> Self {
        Self {
            pod: Mutex::new(Kept::of(pod)),
            last: Mutex::new(None),
        }
    }

    /// Which pod this is.
    pub fn pod_ref(&self) -> PodRef {
        lock(&self.pod).pod.clone()
    }

    /// The pod's annotations.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        lock(&self.pod).annotations.clone()
    }

    /// How many init and app containers the pod has.
    pub fn shape(&self) -> (usize, usize) {
        lock(&self.pod).shape
    }

    pub fn set_pod(&self, pod: &ResolvedPod) {
        *lock(&self.pod) = Kept::of(pod);
    }

    /// Remember `status`; `true` when it differs from the last one.
    pub fn changed(&self, status: &InstanceStatus) -> bool {
        let mut last = lock(&self.last);
        if last.as_ref() == Some(status) {
            return false;
        }
        *last = Some(status.clone());
        true
    }
}

/// The pod's status now.
pub(crate) fn status(g: &Group, record: &Record) -> InstanceStatus {
    let pod = lock(&record.pod);
    let image = |c: &ContainerRt| {
        pod.images
            .iter()
            .find(|(name, _)| *name == c.spec.name)
            .map_or_else(|| c.spec.image.clone(), |(_, image)| image.clone())
    };
    let containers = |list: &[ContainerRt], init: bool| -> Vec<ContainerStatus> {
        list.iter()
            .map(|c| {
                let mut status = container(g.id(), c, image(c), init);
                // An app container waits for the init containers until it first starts,
                // whatever became of the pod (as the kubelet reports it).
                if !init && !c.started_once && !g.init.is_empty() {
                    status.state = ContainerState::waiting("PodInitializing");
                }
                status
            })
            .collect()
    };
    let (phase, reason) = match g.status {
        Phase::Scheduling | Phase::Pending | Phase::Restarting => (InstancePhase::Pending, None),
        Phase::Running | Phase::Terminating => (InstancePhase::Running, None),
        Phase::Succeeded => (InstancePhase::Succeeded, None),
        Phase::Failed => (InstancePhase::Failed, None),
        Phase::Expired => (InstancePhase::Failed, Some("Expired".to_string())),
        Phase::ScheduleFailed => (InstancePhase::Failed, Some("ScheduleFailed".to_string())),
    };
    let provisioned = g.init.iter().chain(&g.apps).any(|c| c.started_once);
    InstanceStatus {
        billing: None,
        pod: pod.pod.clone(),
        phase,
        reason,
        message: None,
        pod_ip: provisioned.then(|| g.ip.clone()),
        created_at: Some(g.created),
        init_containers: containers(&g.init, true),
        containers: containers(&g.apps, false),
        events: g
            .events
            .iter()
            .filter(|e| {
                e.container.is_some() && matches!(e.reason.as_str(), "Unhealthy" | "Killing")
            })
            .map(|e| InstanceEvent {
                container: e.container.clone(),
                warning: e.kind == "Warning",
                reason: e.reason.clone(),
                message: e.message.clone(),
                count: e.count,
                first_seen: e.first,
                last_seen: e.last,
            })
            .collect(),
    }
}

/// The pod's last status when its group was removed by a delete: what still ran was
/// stopped ([`STOP_EXIT_CODE`]); a pod that had not ended is Succeeded only when every app
/// container had completed with 0.
pub(crate) fn stopped(g: &Group, record: &Record, now: Timestamp) -> InstanceStatus {
    let status = status(g, record);
    let ended = matches!(
        status.phase,
        InstancePhase::Succeeded | InstancePhase::Failed
    );
    let mut status = stop_running(status, now);
    if !ended {
        let succeeded = status
            .containers
            .iter()
            .all(|c| matches!(c.state, ContainerState::Terminated { exit_code: 0, .. }));
        status.phase = if succeeded {
            InstancePhase::Succeeded
        } else {
            InstancePhase::Failed
        };
    }
    status
}

fn stop_running(mut status: InstanceStatus, now: Timestamp) -> InstanceStatus {
    for c in status
        .init_containers
        .iter_mut()
        .chain(status.containers.iter_mut())
    {
        if let ContainerState::Running { started_at } = c.state {
            c.state = ContainerState::Terminated {
                exit_code: STOP_EXIT_CODE,
                signal: None,
                reason: "Error".into(),
                message: None,
                started_at: Some(started_at),
                finished_at: now,
            };
            c.ready = false;
        }
    }
    status
}

fn state(s: &CState) -> ContainerState {
    match s {
        CState::Waiting { reason, message } => ContainerState::Waiting {
            reason: reason.clone(),
            message: message.clone(),
        },
        CState::Running { started } => ContainerState::Running {
            started_at: *started,
        },
        CState::Terminated {
            exit,
            started,
            finished,
        } => ContainerState::Terminated {
            exit_code: exit.code,
            signal: exit.signal,
            reason: exit.reason.clone(),
            message: exit.message.clone(),
            started_at: *started,
            finished_at: *finished,
        },
    }
}

fn container(group: &str, c: &ContainerRt, image: String, init: bool) -> ContainerStatus {
    let running = matches!(c.state, CState::Running { .. });
    // Probes run for app containers and sidecars; a completed init container counts as
    // ready, as the kubelet reports it.
    let probed = !init || c.spec.sidecar;
    let ready = if probed {
        running && c.ready
    } else {
        matches!(&c.state, CState::Terminated { exit, .. } if exit.code == 0)
    };
    let started = c.started_once.then_some(if probed {
        running && c.started
    } else {
        running
    });
    ContainerStatus {
        name: c.spec.name.clone(),
        state: state(&c.state),
        last_state: c.previous.as_ref().map(state),
        restart_count: c.restart_count,
        ready,
        started,
        container_id: c
            .started_once
            .then(|| container_id(group, &c.spec.name, c.restart_count)),
        image_id: c.started_once.then(|| image_id(&image)),
        image,
    }
}

/// A 64-hex-digit id like containerd's, one per run of a container.
fn container_id(group: &str, container: &str, run: i32) -> String {
    (0u8..4)
        .map(|salt| {
            let mut h = DefaultHasher::new();
            (salt, group, container, run).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// A stable fake digest reference for an image: `repo@sha256:<64 hex>`.
pub(crate) fn image_id(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let repo = match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    };
    let digest: String = (0u8..4)
        .map(|salt| {
            let mut h = DefaultHasher::new();
            salt.hash(&mut h);
            image.hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect();
    format!("{repo}@sha256:{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids() {
        let id = image_id("nginx:1.27");
        assert!(id.starts_with("nginx@sha256:"), "{id}");
        assert_eq!(id.len(), "nginx@sha256:".len() + 64);
        assert_eq!(id, image_id("nginx:1.27"));
        assert!(image_id("localhost:5000/app").starts_with("localhost:5000/app@sha256:"));
        assert_eq!(image_id("a@sha256:00"), "a@sha256:00");
    }

    #[test]
    fn container_ids_are_per_run() {
        let first = container_id("g", "app", 0);
        assert_eq!(first.len(), 64);
        assert_eq!(first, container_id("g", "app", 0));
        assert_ne!(first, container_id("g", "app", 1));
        assert_ne!(first, container_id("g", "other", 0));
    }
}
