//! The state of one container group as the engine keeps it, and the state changes the
//! lifecycle applies to it. Rendering into the API's shapes is in `render`.

use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::catalog::ImageEntry;
use crate::create_extras::GroupExtras;
use crate::executor::{Exit, GroupSpec, RunContext};
use crate::logstore::LogStore;
use eci::wire::api::{Event, group_status};
use eci::wire::request::{ContainerDef, CreateContainerGroup};

/// Keep this many events per group (the oldest go).
const MAX_EVENTS: usize = 50;

#[derive(Clone, Debug, PartialEq)]
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
    pub def: ContainerDef,
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
    pub fn new(def: ContainerDef, reason: &str, max_log_lines: usize) -> Self {
        Self {
            def,
            state: CState::waiting(reason),
            previous: None,
            restart_count: 0,
            started_once: false,
            started: false,
            ready: false,
            log: Arc::new(LogStore::new(max_log_lines)),
            previous_log: None,
        }
    }

    /// Before a new run: the finished one becomes the previous one, a new log starts.
    pub fn rotate(&mut self, max_log_lines: usize) {
        if self.started_once {
            if matches!(self.state, CState::Terminated { .. }) {
                self.previous = Some(self.state.clone());
            }
            self.previous_log = Some(std::mem::replace(
                &mut self.log,
                Arc::new(LogStore::new(max_log_lines)),
            ));
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
    pub request: CreateContainerGroup,
    /// What the shared decoder leaves out (`create_extras`).
    pub extras: GroupExtras,
    pub cpu: f64,
    pub memory: f64,
    pub ip: String,
    pub status: &'static str,
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
            .find(|c| c.def.name == name)
    }

    pub fn is_terminal(&self) -> bool {
        use group_status::*;
        matches!(self.status, SUCCEEDED | FAILED | EXPIRED | SCHEDULE_FAILED)
    }

    pub fn set_status(&mut self, status: &'static str, now: Timestamp) {
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
        let stamp = crate::render::time(now);
        if let Some(last) = self.events.last_mut()
            && last.reason == reason
            && last.message == message
        {
            last.count += 1;
            last.last_timestamp = stamp;
            return;
        }
        self.events.push(Event {
            count: 1,
            kind: kind.to_string(),
            name: format!("{}.{}", self.spec.name, self.events.len()),
            reason: reason.to_string(),
            message,
            first_timestamp: stamp.clone(),
            last_timestamp: stamp,
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
        (c.started, c.ready) = vk_core::probe::initial(&crate::probes::probe_spec(&c.def));
        let ctx = RunContext {
            group: spec,
            container: c.def.clone(),
            image,
            log: c.log.clone(),
            restart_count: c.restart_count,
        };
        let name = c.def.name.clone();
        self.event(
            "Normal",
            "Started",
            format!("Started container {name}"),
            now,
        );
        self.updated = now;
        if kind == Kind::App
            && self.apps.iter().all(|c| c.started_once)
            && matches!(
                self.status,
                group_status::PENDING | group_status::RESTARTING
            )
        {
            self.set_status(group_status::RUNNING, now);
        }
        Some(ctx)
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
        self.updated = now;
    }

    /// The group is over: whatever still runs is killed, whatever waits stays waiting.
    pub fn finish(&mut self, status: &'static str, reason: &str, now: Timestamp) {
        for c in self.init.iter_mut().chain(self.apps.iter_mut()) {
            c.kill(reason, now);
            if let CState::Waiting { .. } = c.state
                && status != group_status::SUCCEEDED
            {
                c.state = CState::waiting(reason);
            }
        }
        self.set_status(status, now);
    }
}

/// Does a container that exited with `code` run again?
pub fn restarts(policy: Option<&str>, kind: Kind, code: i32) -> bool {
    match (kind, policy.unwrap_or("Always")) {
        (Kind::Init, "Never") => false,
        (Kind::Init, _) => code != 0,
        (Kind::App, "Never") => false,
        (Kind::App, "OnFailure") => code != 0,
        (Kind::App, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert!(restarts(Some("Always"), Kind::App, 0));
        assert!(restarts(None, Kind::App, 0));
        assert!(!restarts(Some("OnFailure"), Kind::App, 0));
        assert!(restarts(Some("OnFailure"), Kind::App, 2));
        assert!(!restarts(Some("Never"), Kind::App, 2));
        assert!(!restarts(Some("Always"), Kind::Init, 0));
        assert!(restarts(Some("Always"), Kind::Init, 1));
        assert!(!restarts(Some("Never"), Kind::Init, 1));
    }
}
