//! One simulated instance: its reported [`InstanceStatus`], the log runs of its containers, and
//! the state transitions the driver applies. Transitions are plain synchronous methods that
//! check the current state first, so a timer that fires late (after a stop or a terminal
//! phase) can never move the instance backwards.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use vk_core::provider::{
    ContainerSpec, ContainerState, ContainerStatus, InstancePhase, InstanceStatus, ResolvedPod,
    RestartPolicy,
};

use crate::logs::LogRun;

/// Exit code of a container stopped by `delete` (or a sidecar stopped when its pod ends): the
/// mock's processes die of the SIGTERM at once (128 + 15), reported with reason `Error`.
pub const STOP_EXIT_CODE: i32 = 143;

/// Wall-clock time that follows tokio's clock, so timestamps advance with paused test time.
pub(crate) struct Clock {
    wall: Timestamp,
    mono: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            wall: Timestamp::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.wall
            .checked_add(self.mono.elapsed())
            .unwrap_or_else(|_| Timestamp::now())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Init,
    App,
}

/// The current run's log and, after a restart, the previous one's.
pub(crate) struct ContainerLogs {
    pub current: Arc<LogRun>,
    pub previous: Option<Arc<LogRun>>,
    started: bool,
}

impl ContainerLogs {
    fn new() -> Self {
        Self {
            current: Arc::new(LogRun::new()),
            previous: None,
            started: false,
        }
    }
}

pub(crate) struct Instance {
    /// Distinguishes this instance from a later one of the same pod key.
    pub id: u64,
    pub spec: ResolvedPod,
    pub status: InstanceStatus,
    ip: String,
    init_logs: Vec<ContainerLogs>,
    app_logs: Vec<ContainerLogs>,
    /// Cancels the driver task and every sidecar task of the instance.
    pub cancel: CancellationToken,
}

impl Instance {
    pub fn new(id: u64, spec: &ResolvedPod, ip: String, now: Timestamp) -> Self {
        let app_waiting = if spec.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let waiting = |c: &ContainerSpec, reason: &str| ContainerStatus {
            name: c.name.clone(),
            state: ContainerState::waiting(reason),
            last_state: None,
            restart_count: 0,
            ready: false,
            started: None,
            container_id: None,
            image: c.image.clone(),
            image_id: None,
        };
        Self {
            id,
            spec: spec.clone(),
            status: InstanceStatus {
                pod: spec.pod.clone(),
                phase: InstancePhase::Pending,
                reason: None,
                message: None,
                pod_ip: None,
                created_at: Some(now),
                init_containers: spec
                    .init_containers
                    .iter()
                    .map(|c| waiting(c, "ContainerCreating"))
                    .collect(),
                containers: spec
                    .containers
                    .iter()
                    .map(|c| waiting(c, app_waiting))
                    .collect(),
                events: Vec::new(),
            },
            ip,
            init_logs: spec
                .init_containers
                .iter()
                .map(|_| ContainerLogs::new())
                .collect(),
            app_logs: spec
                .containers
                .iter()
                .map(|_| ContainerLogs::new())
                .collect(),
            cancel: CancellationToken::new(),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status.phase,
            InstancePhase::Succeeded | InstancePhase::Failed
        )
    }

    /// The cloud finished provisioning: the instance has its address.
    pub fn provision(&mut self) {
        self.status.pod_ip = Some(self.ip.clone());
    }

    fn parts_mut(
        &mut self,
        kind: Kind,
        idx: usize,
    ) -> Option<(&ContainerSpec, &mut ContainerStatus, &mut ContainerLogs)> {
        let (specs, statuses, logs) = match kind {
            Kind::Init => (
                &self.spec.init_containers,
                &mut self.status.init_containers,
                &mut self.init_logs,
            ),
            Kind::App => (
                &self.spec.containers,
                &mut self.status.containers,
                &mut self.app_logs,
            ),
        };
        Some((specs.get(idx)?, statuses.get_mut(idx)?, logs.get_mut(idx)?))
    }

    /// Start (or restart) a container; returns the log run it writes to.
    pub fn start(&mut self, kind: Kind, idx: usize, now: Timestamp) -> Option<Arc<LogRun>> {
        if self.is_terminal() {
            return None;
        }
        let (spec, status, logs) = self.parts_mut(kind, idx)?;
        if logs.started {
            status.restart_count = status.restart_count.saturating_add(1);
            if matches!(status.state, ContainerState::Terminated { .. }) {
                status.last_state = Some(status.state.clone());
            }
            let fresh = Arc::new(LogRun::new());
            logs.previous = Some(std::mem::replace(&mut logs.current, fresh));
        }
        logs.started = true;
        let sidecar = spec.restart_policy == Some(RestartPolicy::Always);
        status.state = ContainerState::Running { started_at: now };
        // Probes run for app containers and sidecars; until they pass, not started or ready.
        let (started, ready) = if kind == Kind::App || sidecar {
            vk_core::probe::initial(spec)
        } else {
            (true, true)
        };
        status.started = Some(started);
        status.ready = (kind == Kind::App || sidecar) && ready;
        status.container_id = Some(container_id());
        status.image = spec.image.clone();
        status.image_id = Some(image_id(&spec.image));
        let command: Vec<&str> = spec
            .command
            .iter()
            .chain(&spec.args)
            .map(String::as_str)
            .collect();
        let command = if command.is_empty() {
            "<image default>".to_string()
        } else {
            command.join(" ")
        };
        logs.current.push(
            now,
            format!(
                "{} started (image {}, command {command})",
                spec.name, spec.image
            ),
        );
        Some(logs.current.clone())
    }

    /// All app containers start together: the pod is Running.
    pub fn start_apps(&mut self, now: Timestamp) -> Vec<Arc<LogRun>> {
        if self.is_terminal() {
            return Vec::new();
        }
        self.status.phase = InstancePhase::Running;
        (0..self.spec.containers.len())
            .filter_map(|idx| self.start(Kind::App, idx, now))
            .collect()
    }

    /// A running container exits with `exit_code`.
    pub fn terminate(&mut self, kind: Kind, idx: usize, exit_code: i32, now: Timestamp) {
        let Some((spec, status, logs)) = self.parts_mut(kind, idx) else {
            return;
        };
        let ContainerState::Running { started_at } = status.state else {
            return;
        };
        let sidecar = spec.restart_policy == Some(RestartPolicy::Always);
        status.state = ContainerState::Terminated {
            exit_code,
            signal: None,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.to_string(),
            message: None,
            started_at: Some(started_at),
            finished_at: now,
        };
        // A completed init container counts as ready, like the kubelet reports it.
        status.ready = kind == Kind::Init && !sidecar && exit_code == 0;
        logs.current.close();
    }

    /// An exited container waits before its restart.
    pub fn back_off(&mut self, kind: Kind, idx: usize, delay: std::time::Duration) {
        if self.is_terminal() {
            return;
        }
        let pod = format!(
            "{}_{}({})",
            self.spec.pod.name, self.spec.pod.namespace, self.spec.pod.uid
        );
        let Some((spec, status, _)) = self.parts_mut(kind, idx) else {
            return;
        };
        if !matches!(status.state, ContainerState::Terminated { .. }) {
            return;
        }
        status.last_state = Some(status.state.clone());
        status.state = ContainerState::Waiting {
            reason: "CrashLoopBackOff".to_string(),
            message: Some(format!(
                "back-off {delay:?} restarting failed container={} pod={pod}",
                spec.name
            )),
        };
    }

    /// The pod reached a terminal phase: stop what still runs (sidecars) and close every log.
    pub fn finish(&mut self, phase: InstancePhase, now: Timestamp) {
        self.stop_running(now);
        self.status.phase = phase;
        for logs in self.init_logs.iter().chain(&self.app_logs) {
            logs.current.close();
        }
    }

    /// The instance is being deleted: stop everything; a non-terminal pod ends Succeeded only
    /// when every app container had completed with 0.
    pub fn stop(&mut self, now: Timestamp) {
        if self.is_terminal() {
            self.finish(self.status.phase, now);
            return;
        }
        self.stop_running(now);
        let succeeded = self
            .status
            .containers
            .iter()
            .all(|c| matches!(c.state, ContainerState::Terminated { exit_code: 0, .. }));
        let phase = if succeeded {
            InstancePhase::Succeeded
        } else {
            InstancePhase::Failed
        };
        self.finish(phase, now);
    }

    fn stop_running(&mut self, now: Timestamp) {
        for idx in 0..self.status.init_containers.len() {
            self.terminate(Kind::Init, idx, STOP_EXIT_CODE, now);
        }
        for idx in 0..self.status.containers.len() {
            self.terminate(Kind::App, idx, STOP_EXIT_CODE, now);
        }
    }

    /// A container's status and logs by name, init containers first.
    pub fn container(&self, name: &str) -> Option<(&ContainerStatus, &ContainerLogs)> {
        self.status
            .init_containers
            .iter()
            .zip(&self.init_logs)
            .chain(self.status.containers.iter().zip(&self.app_logs))
            .find(|(status, _)| status.name == name)
    }

    /// Take new images and mutable fields; a running container keeps running (the mock
    /// swaps the image in place rather than restarting it).
    pub fn update(&mut self, spec: &ResolvedPod) {
        let statuses = self
            .status
            .init_containers
            .iter_mut()
            .chain(self.status.containers.iter_mut());
        let specs = spec.init_containers.iter().chain(&spec.containers);
        for (status, new) in statuses.zip(specs) {
            if status.name == new.name && status.image != new.image {
                status.image = new.image.clone();
                if status.image_id.is_some() {
                    status.image_id = Some(image_id(&new.image));
                }
            }
        }
        // The container lists of a pod are immutable; keep ours if the new spec disagrees.
        let same_shape = spec.init_containers.len() == self.spec.init_containers.len()
            && spec.containers.len() == self.spec.containers.len();
        if same_shape {
            self.spec = spec.clone();
        }
    }
}

/// A random 64-hex-digit id, like containerd's.
fn container_id() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

/// A stable fake digest reference for an image: `repo@sha256:<64 hex>`.
fn image_id(image: &str) -> String {
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
}
