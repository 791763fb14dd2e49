//! The ECS face's state over one engine: the task definitions, what a task has besides its
//! engine group (why it stopped, its tags), the CloudWatch Logs groups, the request rates,
//! STS's keys. A task is one engine group whose face record is a [`TaskRecord`].
//!
//! The engine tells the face of every change (its observer); the face watches for an
//! essential container that exited (the task then stops: ECS's rule), for an image that
//! cannot be pulled (the task stops with TaskFailedToStart: ECS does not retry a pull) and for tasks that
//! ended (their sandboxes are released; the task stays described, its logs readable), and
//! shows a container's log stream once the container started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use fargate::wire::Tag;
use fargate::wire::ecs_task::{TaskOverride, stop_code};
use fargate::wire::ecs_taskdef::TaskDefinition;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::EcsConfig;
use super::log_groups::Logs;
use super::sts::Sts;
use super::taskdefs::TaskDefs;
use crate::engine::executor::Executor;
use crate::engine::flow_control::FlowControl;
use crate::engine::group::{CState, Phase};
use crate::engine::{Change, Engine};

/// What RunTask asked for one task, kept with its engine group.
pub struct TaskRecord {
    pub arn: String,
    pub cluster_arn: String,
    pub def: Arc<TaskDefinition>,
    pub overrides: Option<TaskOverride>,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub enable_execute_command: bool,
    /// The essential containers' names.
    pub essential: Vec<String>,
    /// Per container definition, in order: the id in its container ARN.
    pub container_ids: Vec<String>,
    pub attachment_id: String,
    pub eni_id: String,
    pub mac: String,
    pub subnet: String,
    pub cpu: u32,
    pub memory: u32,
}

/// Why a task stopped, when something stopped it (the user, an essential container, a
/// start that failed).
#[derive(Clone, Debug)]
pub struct StopInfo {
    pub code: &'static str,
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, Default)]
pub struct TaskMeta {
    pub stop: Option<StopInfo>,
    pub tags: Vec<Tag>,
}

pub struct Rates {
    pub run_task: FlowControl,
    pub task_launch: FlowControl,
    pub ecs_api: FlowControl,
    pub logs_api: FlowControl,
}

/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Face {
    engine: Engine,
    config: Arc<EcsConfig>,
    pub taskdefs: Arc<Mutex<TaskDefs>>,
    /// By task id. Taken under the engine's lock by the observer: never hold it while asking
    /// the engine for anything.
    tasks: Arc<Mutex<HashMap<String, TaskMeta>>>,
    pub logs: Arc<Mutex<Logs>>,
    pub rates: Arc<Rates>,
    pub sts: Arc<Sts>,
    /// ExecuteCommand's sessions waiting for their client.
    pub ssm: Arc<super::ssm::sessions::Sessions>,
    /// IMDSv2 session tokens handed out, with their expiry (seconds since the epoch).
    pub imds_sessions: Arc<Mutex<HashMap<String, i64>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum Signal {
    /// These containers of the task have started (their log streams appear).
    Started(String, Vec<String>),
    EssentialExited(String),
    /// A container's image cannot be pulled: the task fails to start (ECS does not retry).
    PullFailed(String, String),
    Ended(String),
}

impl Face {
    /// A new engine with `executor` behind the ECS face; the face's watcher runs until `stop`.
    pub fn new(config: EcsConfig, executor: Arc<dyn Executor>, stop: CancellationToken) -> Self {
        let engine = Engine::new(config.engine(), executor);
        let bucket = |r: super::config::Rate| FlowControl::new(r.burst, r.per_second);
        let face = Self {
            rates: Arc::new(Rates {
                run_task: bucket(config.rates.run_task),
                task_launch: bucket(config.rates.task_launch),
                ecs_api: bucket(config.rates.ecs_api),
                logs_api: bucket(config.rates.logs_api),
            }),
            sts: Arc::new(Sts::new(config.sts.clone())),
            ssm: Default::default(),
            imds_sessions: Default::default(),
            engine,
            config: Arc::new(config),
            taskdefs: Default::default(),
            tasks: Default::default(),
            logs: Default::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        face.engine.observe(Arc::new(move |change: Change<'_>| {
            let Change::Changed(g) = change else {
                return;
            };
            let Some(record) = g.face::<TaskRecord>() else {
                return;
            };
            let id = g.id().to_string();
            let started: Vec<String> = g
                .apps
                .iter()
                .filter(|c| c.started_once)
                .map(|c| c.spec.name.clone())
                .collect();
            if !started.is_empty() {
                let _ = tx.send(Signal::Started(id.clone(), started));
            }
            let pull_failed = g.init.iter().chain(g.apps.iter()).find_map(|c| match &c.state {
                CState::Waiting { reason, message }
                    if reason.contains("ImagePull") || reason == "ErrImageNeverPull" =>
                {
                    Some(format!(
                        "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {}: not found{}",
                        c.spec.image,
                        message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
                    ))
                }
                _ => None,
            });
            if g.is_terminal() {
                let _ = tx.send(Signal::Ended(id));
            } else if let Some(why) = pull_failed.filter(|_| g.status != Phase::Terminating) {
                let _ = tx.send(Signal::PullFailed(id, why));
            } else if g.status != Phase::Terminating
                && g.apps.iter().any(|c| {
                    record.essential.contains(&c.spec.name)
                        && matches!(c.state, CState::Terminated { .. })
                })
            {
                let _ = tx.send(Signal::EssentialExited(id));
            }
        }));
        tokio::spawn(face.clone().watch(rx, stop));
        face
    }

    async fn watch(self, mut rx: mpsc::UnboundedReceiver<Signal>, stop: CancellationToken) {
        let mut released = std::collections::HashSet::new();
        let retention = std::time::Duration::from_secs(self.config.stopped_retention_secs);
        let mut sweep = tokio::time::interval((retention / 4).clamp(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(10),
        ));
        loop {
            let signal = tokio::select! {
                _ = stop.cancelled() => return,
                _ = sweep.tick() => {
                    for id in self.forget_stopped(retention) {
                        released.remove(&id);
                    }
                    continue;
                }
                s = rx.recv() => match s { Some(s) => s, None => return },
            };
            match signal {
                Signal::Started(id, containers) => {
                    let now = self.engine.now();
                    let mut logs = self.logs();
                    for c in containers {
                        logs.container_started(&id, &c, now);
                    }
                }
                Signal::EssentialExited(id) => {
                    self.set_stop(
                        &id,
                        stop_code::ESSENTIAL_CONTAINER_EXITED,
                        "Essential container in task exited",
                    );
                    let _ = self.engine.stop(&id);
                }
                Signal::PullFailed(id, why) => {
                    self.set_stop(&id, stop_code::TASK_FAILED_TO_START, &why);
                    let _ = self.engine.stop(&id);
                }
                Signal::Ended(id) => {
                    if released.insert(id.clone()) {
                        self.engine.release(&id);
                    }
                }
            }
        }
    }

    /// Forget the tasks stopped longer than `retention` ago; their ids.
    fn forget_stopped(&self, retention: std::time::Duration) -> Vec<String> {
        let now = self.engine.now();
        let old: Vec<String> = {
            let state = self.engine.state();
            state
                .groups()
                .filter(|g| g.face::<TaskRecord>().is_some())
                .filter(|g| {
                    g.finished.is_some_and(|f| {
                        now.duration_since(f).unsigned_abs() >= retention && f <= now
                    })
                })
                .map(|g| g.id().to_string())
                .collect()
        };
        for id in &old {
            self.engine.remove(id);
            lock(&self.tasks).remove(id);
        }
        old
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &EcsConfig {
        &self.config
    }

    /// Record why task `id` stops, unless something stopped it before.
    pub fn set_stop(&self, id: &str, code: &'static str, reason: &str) {
        let now = self.engine.now();
        let mut tasks = lock(&self.tasks);
        let meta = tasks.entry(id.to_string()).or_default();
        if meta.stop.is_none() {
            meta.stop = Some(StopInfo {
                code,
                reason: reason.to_string(),
                at: now,
            });
        }
    }

    pub fn meta(&self, id: &str) -> TaskMeta {
        lock(&self.tasks).get(id).cloned().unwrap_or_default()
    }

    pub fn with_meta<R>(&self, id: &str, f: impl FnOnce(&mut TaskMeta) -> R) -> R {
        f(lock(&self.tasks).entry(id.to_string()).or_default())
    }

    pub fn taskdefs(&self) -> MutexGuard<'_, TaskDefs> {
        lock(&self.taskdefs)
    }

    pub fn logs(&self) -> MutexGuard<'_, Logs> {
        lock(&self.logs)
    }

    /// Seconds since the epoch, as ECS writes times.
    pub fn epoch(t: Timestamp) -> f64 {
        t.as_millisecond() as f64 / 1000.0
    }
}
