//! The state of one container group as the engine keeps it, and the state changes the
//! lifecycle applies to it. Each face renders it into its API's shapes.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::catalog::ImageEntry;
use super::clock::Clock;
use super::executor::{Exit, GroupSpec, RunContext};
use super::logstore::LogStore;
use super::spec::ContainerSpec;

/// Where a group is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    Scheduling,
    Pending,
    Running,
    Restarting,
    Terminating,
    Succeeded,
    Failed,
    /// The placement failed: the group never ran.
    ScheduleFailed,
    /// The instance was reclaimed (fault injection).
    Expired,
}

impl Phase {
    /// Over for good: nothing runs and nothing will.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Expired | Self::ScheduleFailed
        )
    }
}

/// When a container that exited runs again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// Something that happened to a group, as the kubelet reports events.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub kind: String,
    /// `<group name>.<n>`.
    pub name: String,
    pub reason: String,
    pub message: String,
    /// How many times it happened in a row.
    pub count: u32,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The container it is about, when the engine knows (probes).
    pub container: Option<String>,
}

/// Keep this many events per group (the oldest go).
const MAX_EVENTS: usize = 50;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started: Timestamp,
    },
    Terminated {
        exit: Exit,
        started: Option<Timestamp>,
        finished: Timestamp,
    },
}

impl CState {
    pub fn waiting(reason: &str) -> Self {
        Self::Waiting {
            reason: reason.to_string(),
            message: None,
        }
    }
}

pub struct ContainerRt {
    /// Shared with each run and hook of the container (a run's future holds a pointer, not a
    /// copy).
    pub spec: Arc<ContainerSpec>,
    pub state: CState,
    pub previous: Option<CState>,
    pub restart_count: i32,
    pub started_once: bool,
    /// The current run passed its startup and readiness probes (see `probes`).
    pub started: bool,
    pub ready: bool,
    pub log: Arc<LogStore>,
    pub previous_log: Option<Arc<LogStore>>,
}

impl ContainerRt {
    pub fn new(spec: ContainerSpec, reason: &str, max_log_lines: usize, clock: Clock) -> Self {
        Self {
            spec: Arc::new(spec),
            state: CState::waiting(reason),
            previous: None,
            restart_count: 0,
            started_once: false,
            started: false,
            ready: false,
            log: Arc::new(LogStore::with_clock(max_log_lines, clock)),
            previous_log: None,
        }
    }

    /// Before a new run: the finished one becomes the previous one, a new log starts.
    pub fn rotate(&mut self, max_log_lines: usize) {
        if self.started_once {
            if matches!(self.state, CState::Terminated { .. }) {
                self.previous = Some(self.state.clone());
            }
            let fresh = Arc::new(LogStore::with_clock(max_log_lines, self.log.clock()));
            self.previous_log = Some(std::mem::replace(&mut self.log, fresh));
            self.restart_count += 1;
        }
    }

    /// Waiting to run again; the run that ended stays visible as the previous state.
    pub fn back_off(&mut self, reason: &str, message: String) {
        if matches!(self.state, CState::Terminated { .. }) {
            self.previous = Some(self.state.clone());
        }
        self.state = CState::Waiting {
            reason: reason.to_string(),
            message: Some(message),
        };
    }

    /// A running container is killed (delete, restart, expiry, deadline).
    pub fn kill(&mut self, reason: &str, now: Timestamp) {
        if let CState::Running { started } = self.state {
            self.state = CState::Terminated {
                exit: Exit {
                    code: 137,
                    signal: Some(9),
                    reason: reason.to_string(),
                    message: None,
                },
                started: Some(started),
                finished: now,
            };
            self.log.close();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Init,
    App,
}

pub struct Group {
    pub seq: u64,
    pub spec: Arc<GroupSpec>,
    pub cpu: f64,
    pub memory: f64,
    pub ip: String,
    pub status: Phase,
    pub created: Timestamp,
    /// The last status change, for DescribeContainerGroupStatus' SinceSecond.
    pub updated: Timestamp,
    pub finished: Option<Timestamp>,
    pub events: Vec<Event>,
    pub init: Vec<ContainerRt>,
    pub apps: Vec<ContainerRt>,
    /// Stops the current lifecycle task (delete, restart, expire).
    pub cancel: CancellationToken,
    /// Bumped by a restart: a task of an older generation may no longer change anything.
    pub generation: u64,
    pub max_log_lines: usize,
    pub restart_policy: RestartPolicy,
    pub active_deadline: Option<Duration>,
    pub termination_grace: Option<Duration>,
    /// From create until the containers start, instead of the configured latencies.
    pub start_latency: Option<Duration>,
    /// The image cache the group starts from, if any (`latency`).
    pub image_cache: super::latency::CacheUse,
    /// The face's record of the request that created the group.
    pub face: Arc<dyn Any + Send + Sync>,
}

impl Group {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn container(&mut self, kind: Kind, idx: usize) -> Option<&mut ContainerRt> {
        match kind {
            Kind::Init => self.init.get_mut(idx),
            Kind::App => self.apps.get_mut(idx),
        }
    }

    pub fn find_container(&self, name: &str) -> Option<&ContainerRt> {
        self.init
            .iter()
            .chain(&self.apps)
            .find(|c| c.spec.name == name)
    }

    /// The face's record of the group, when it is a `T`.
    pub fn face<T: Any>(&self) -> Option<&T> {
        self.face.downcast_ref()
    }

    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }

    pub fn set_status(&mut self, status: Phase, now: Timestamp) {
        if self.status != status {
            self.status = status;
            self.updated = now;
        }
        if self.is_terminal() && self.finished.is_none() {
            self.finished = Some(now);
        }
    }

    /// Record an event; the same reason and message again counts up instead.
    pub fn event(&mut self, kind: &str, reason: &str, message: String, now: Timestamp) {
        self.container_event(None, kind, reason, message, now);
    }

    /// Record an event about one container (or none); the same again counts up instead.
    pub fn container_event(
        &mut self,
        container: Option<&str>,
        kind: &str,
        reason: &str,
        message: String,
        now: Timestamp,
    ) {
        if let Some(last) = self.events.last_mut()
            && last.reason == reason
            && last.message == message
            && last.container.as_deref() == container
        {
            last.count += 1;
            last.last = now;
            return;
        }
        self.events.push(Event {
            count: 1,
            kind: kind.to_string(),
            name: format!("{}.{}", self.spec.name, self.events.len()),
            reason: reason.to_string(),
            message,
            first: now,
            last: now,
            container: container.map(str::to_string),
        });
        if self.events.len() > MAX_EVENTS {
            self.events.remove(0);
        }
    }

    /// Start a run of a container; the context for the executor.
    pub fn start(
        &mut self,
        kind: Kind,
        idx: usize,
        image: ImageEntry,
        now: Timestamp,
    ) -> Option<RunContext> {
        let max = self.max_log_lines;
        let spec = self.spec.clone();
        let c = self.container(kind, idx)?;
        c.rotate(max);
        c.state = CState::Running { started: now };
        c.started_once = true;
        (c.started, c.ready) = vk_core::probe::initial(&probe_spec(&c.spec));
        let ctx = RunContext {
            group: spec,
            container: c.spec.clone(),
            image,
            log: c.log.clone(),
            restart_count: c.restart_count,
            elapsed: Duration::ZERO,
        };
        let name = c.spec.name.clone();
        self.event(
            "Normal",
            "Started",
            format!("Started container {name}"),
            now,
        );
        self.updated = now;
        if kind == Kind::App
            && self.apps.iter().all(|c| c.started_once)
            && matches!(self.status, Phase::Pending | Phase::Restarting)
        {
            self.set_status(Phase::Running, now);
        }
        Some(ctx)
    }

    /// The context of a run that was going when the engine's state was saved (`persist`):
    /// the container keeps its start time, and its timer runs only what is left of it.
    /// `None` unless the container is running.
    pub fn resume(
        &mut self,
        kind: Kind,
        idx: usize,
        image: ImageEntry,
        now: Timestamp,
    ) -> Option<RunContext> {
        let spec = self.spec.clone();
        let c = self.container(kind, idx)?;
        let CState::Running { started } = c.state else {
            return None;
        };
        let since = started.duration_until(now);
        let elapsed = if since.is_negative() {
            Duration::ZERO
        } else {
            since.unsigned_abs()
        };
        Some(RunContext {
            group: spec,
            container: c.spec.clone(),
            image,
            log: c.log.clone(),
            restart_count: c.restart_count,
            elapsed,
        })
    }

    pub fn terminate(&mut self, kind: Kind, idx: usize, exit: Exit, now: Timestamp) {
        let Some(c) = self.container(kind, idx) else {
            return;
        };
        let started = match c.state {
            CState::Running { started } => Some(started),
            _ => None,
        };
        c.state = CState::Terminated {
            exit,
            started,
            finished: now,
        };
        c.log.close();
        self.updated = now;
    }

    /// The group is over: whatever still runs is killed, whatever waits stays waiting.
    pub fn finish(&mut self, status: Phase, reason: &str, now: Timestamp) {
        for c in self.init.iter_mut().chain(self.apps.iter_mut()) {
            c.kill(reason, now);
            if let CState::Waiting { .. } = c.state
                && status != Phase::Succeeded
            {
                c.state = CState::waiting(reason);
            }
        }
        self.set_status(status, now);
    }
}

/// The probes of a container, in the terms vk-core's state machine takes.
pub fn probe_spec(c: &ContainerSpec) -> vk_core::provider::ContainerSpec {
    vk_core::provider::ContainerSpec {
        name: c.name.clone(),
        liveness_probe: c.liveness_probe.clone(),
        readiness_probe: c.readiness_probe.clone(),
        startup_probe: c.startup_probe.clone(),
        ..Default::default()
    }
}

/// Does a container that exited with `code` run again?
pub fn restarts(policy: RestartPolicy, kind: Kind, code: i32) -> bool {
    match (kind, policy) {
        (_, RestartPolicy::Never) => false,
        (Kind::Init, _) => code != 0,
        (Kind::App, RestartPolicy::OnFailure) => code != 0,
        (Kind::App, RestartPolicy::Always) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        use RestartPolicy::*;
        assert!(restarts(Always, Kind::App, 0));
        assert!(!restarts(OnFailure, Kind::App, 0));
        assert!(restarts(OnFailure, Kind::App, 2));
        assert!(!restarts(Never, Kind::App, 2));
        assert!(!restarts(Always, Kind::Init, 0));
        assert!(restarts(Always, Kind::Init, 1));
        assert!(!restarts(Never, Kind::Init, 1));
    }
}
