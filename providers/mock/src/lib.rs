//! An in-process provider: a thin face over the cloud simulator's engine ([`cloudsim::engine`])
//! with no HTTP in between. It exists so vk-core's controllers, the kubelet-like API and the
//! e2e suite can run without an account: behaviour comes from [`MockConfig`] and per-pod
//! `mock.vk.io/*` annotations (see [`annotations`]), and every change of a pod's group is
//! pushed on the status channel as the engine makes it.
//!
//! The engine runs the lifecycle (start latency, init containers in order, native sidecars,
//! app containers, restarts with the configured back-off, probes) and, with its `process`
//! executor, the containers: a container runs a timer unless annotation
//! `mock.vk.io/process.<name>` gives it a real main process (its output is the log, its exit
//! code the container's, `attach` joins it). `exec` runs real commands inside the container's
//! bubblewrap sandbox (a timer container gets one on its first exec); `-t` gets a
//! pseudo-terminal. See [`streams`].
//!
//! Semantics worth knowing:
//! - `create` is idempotent by pod UID (by namespace/name when the UID is empty).
//! - `delete` ignores the grace period: running containers end at once with exit code
//!   [`STOP_EXIT_CODE`] (143, reason `Error`), a final `Changed` then `Gone` are pushed.
//! - Logs of a container that has not started yet are empty.
//! - `port_forward` connects pod port `P` to `127.0.0.1:P`, or to the `host:port` in the
//!   pod's `mock.vk.io/port-forward.P` annotation.
//! - With `state_file`, the pods outlive a vk restart: a new process resumes them at their
//!   addresses, without counting a create; running ones go on as they were (same start times)
//!   and ended ones stay ended (same exit codes).

mod config;
mod persist;
pub use persist::Persisted;
mod port_forward;
mod render;
mod streams;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_attach;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
mod tests_logs;
#[cfg(test)]
mod tests_port_forward;
#[cfg(test)]
mod tests_probes;
#[cfg(test)]
mod tests_sandbox;
mod to_engine;

use std::collections::HashMap;
use std::hash::Hasher as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use cloudsim::engine::catalog::ImageCatalog;
use cloudsim::engine::executor::process::{ProcessConfig, ProcessExecutor};
use cloudsim::engine::executor::{ExecutorError, GroupSpec};
use cloudsim::engine::group::{CState, ContainerRt, Group};
use cloudsim::engine::persist::{Saved, SavedGroup, saved_group};
use cloudsim::engine::spec::ContainerSpec as EngineContainer;
use cloudsim::engine::{Change, Engine, EngineConfig};
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use vk_core::provider::{
    ContainerStats, ExecIo, ExecOutcome, InstanceStatus, LogOptions, LogStream, NodeCapacity,
    PodRef, PodStats, PortForwardStream, Provider, ProviderError, ResolvedPod, StatusEvent,
    StatusSource,
};

pub use config::{CapacityConfig, MockConfig, annotations};
pub use render::STOP_EXIT_CODE;

use config::{CreateError, PodPlan};
use render::Record;

/// Capacity of the status channel; events past it are dropped with a warning.
const EVENT_BUFFER: usize = 4096;
/// Lines kept per container run.
const MAX_LOG_LINES: usize = 50_000;

/// The mock provider: `MockProvider::new(config)`, then share it (`Arc<dyn Provider>`).
/// `create` must run inside a tokio runtime, which drives the engine's tasks; dropping the
/// provider stops them.
pub struct MockProvider {
    config: MockConfig,
    engine: Engine,
    /// Whether the pods in `state_file` were resumed (done on first use, in a runtime).
    restored: AtomicBool,
    state: Arc<Mutex<State>>,
    events: Mutex<Option<mpsc::Receiver<StatusEvent>>>,
    /// Running and ended groups as they change (only with `state_file`), for the journal.
    runs: Mutex<Option<mpsc::UnboundedReceiver<(String, SavedGroup)>>>,
}

#[derive(Default)]
struct State {
    /// Failed create calls so far, for `create-error: transient:N`.
    create_attempts: HashMap<String, u32>,
    /// What `state_file` persists: the spec of every pod, and creates per pod key.
    persisted: persist::Persisted,
    /// The state file's journal, once opened (on first use).
    journal: Option<persist::Journal>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The phases whose group the journal keeps: a running group goes on as it was after a
/// restart, and an ended one stays ended (its exit codes and times kept) instead of running
/// its containers again.
fn journaled(phase: cloudsim::engine::group::Phase) -> bool {
    phase == cloudsim::engine::group::Phase::Running || phase.is_terminal()
}

/// Keep the journal's record of each running or ended group current: a resumed instance then
/// goes on (or stays ended) as it was. A group no longer persisted (deleted meanwhile) is not
/// recorded.
async fn journal_runs(
    state: Arc<Mutex<State>>,
    mut rx: mpsc::UnboundedReceiver<(String, SavedGroup)>,
) {
    while let Some((key, group)) = rx.recv().await {
        let mut state = lock(&state);
        let State {
            persisted, journal, ..
        } = &mut *state;
        if !persisted.instances.contains_key(&key) {
            continue;
        }
        let same = persisted
            .runs
            .get(&key)
            .is_some_and(|old| serde_json::to_value(old).ok() == serde_json::to_value(&group).ok());
        if same {
            continue;
        }
        persisted.runs.insert(key.clone(), group);
        if let Some(journal) = journal {
            journal.record_run(persisted, &key);
        }
    }
}

/// Record `key` in the state file's journal, when there is one.
fn save(state: &mut State, key: &str) {
    let State {
        persisted, journal, ..
    } = state;
    if let Some(journal) = journal {
        journal.record(persisted, key);
    }
}

/// The pod's key, which is also its group's id in the engine.
fn pod_key(pod: &PodRef) -> String {
    if pod.uid.is_empty() {
        format!("{}/{}", pod.namespace, pod.name)
    } else {
        pod.uid.clone()
    }
}

/// Never blocks: it runs under the engine's lock, which keeps events in the order of changes.
fn push(events: &mpsc::Sender<StatusEvent>, event: StatusEvent) {
    match events.try_send(event) {
        Ok(()) => {}
        Err(TrySendError::Full(event)) => {
            tracing::warn!(?event, "mock status channel full, event dropped");
        }
        Err(TrySendError::Closed(_)) => {}
    }
}

/// Where the pods' sandboxes live: `<tmp>/vk-mock-exec/<pod key>` (see
/// [`cloudsim::engine::executor::process`] for the layout).
fn work_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("vk-mock-exec")
}

/// The directory of a pod's sandboxes.
#[cfg(test)]
fn pod_dir(pod: &PodRef) -> std::path::PathBuf {
    work_dir().join(cloudsim::sandbox::dir_name(&pod_key(pod)))
}

/// The writable root of a container of the pod.
#[cfg(test)]
fn root_dir(pod: &PodRef, container: &str) -> std::path::PathBuf {
    pod_dir(pod)
        .join("rootfs")
        .join(cloudsim::sandbox::sanitize(container))
}

/// The engine's settings for the mock's config.
fn engine_config(config: &MockConfig) -> EngineConfig {
    EngineConfig {
        schedule_latency_ms: 0,
        provision_latency_ms: config.start_latency_ms,
        latency_jitter_ms: 0,
        // A fixed back-off.
        restart_backoff_ms: config.restart_backoff_ms,
        max_restart_backoff_ms: config.restart_backoff_ms,
        max_log_lines: MAX_LOG_LINES,
        catalog: ImageCatalog {
            allow_unknown: true,
            ..Default::default()
        },
        ip_prefix: config.pod_ip_prefix.clone(),
        ..Default::default()
    }
}

impl MockProvider {
    pub fn new(config: MockConfig) -> Self {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let executor = ProcessExecutor::new(ProcessConfig {
            work_dir: Some(work_dir()),
            missing_program_is_error: true,
            ..Default::default()
        });
        let engine = Engine::new(engine_config(&config), Arc::new(executor));
        let clock = engine.clock();
        let (runs_tx, runs_rx) = mpsc::unbounded_channel();
        let journal_runs = config.state_file.is_some();
        engine.observe(Arc::new(move |change: Change<'_>| match change {
            Change::Changed(g) => {
                if journal_runs && journaled(g.status) {
                    let _ =
                        runs_tx.send((g.id().to_string(), saved_group(g, serde_json::Value::Null)));
                }
                if let Some(record) = g.face::<Record>() {
                    let status = render::status(g, record);
                    if record.changed(&status) {
                        push(&tx, StatusEvent::Changed(status));
                    }
                }
            }
            Change::Removed(g) => {
                if let Some(record) = g.face::<Record>() {
                    let status = render::stopped(g, record, clock.now());
                    let pod = status.pod.clone();
                    if record.changed(&status) {
                        push(&tx, StatusEvent::Changed(status));
                    }
                    push(&tx, StatusEvent::Gone(pod));
                }
            }
        }));
        Self {
            config,
            engine,
            restored: AtomicBool::new(false),
            state: Arc::new(Mutex::new(State::default())),
            events: Mutex::new(Some(rx)),
            runs: Mutex::new(Some(runs_rx)),
        }
    }

    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// Start a group for `pod`; `counted` is false when resuming a persisted one.
    fn start(&self, pod: &ResolvedPod, counted: bool) -> Result<(), ProviderError> {
        let key = pod_key(&pod.pod);
        // Held from the check to the create: two creates of one pod make one group.
        let mut state = lock(&self.state);
        if self.engine.exists(&key) {
            return Ok(());
        }
        let plan = PodPlan::new(pod, &self.config)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ProviderError::Unsupported(
                "the mock provider runs its timers on tokio: call create inside a runtime".into(),
            ));
        }
        match plan.create_error {
            Some(CreateError::Invalid) => {
                return Err(ProviderError::invalid(
                    "MockInvalidSpec",
                    format!(
                        "pod {} is marked invalid by annotation {}",
                        pod.pod,
                        annotations::CREATE_ERROR
                    ),
                ));
            }
            Some(CreateError::Transient(n)) => {
                let attempts = state.create_attempts.entry(key.clone()).or_insert(0);
                if *attempts < n {
                    *attempts += 1;
                    return Err(ProviderError::Transient(format!(
                        "injected create failure {attempts}/{n} for pod {}",
                        pod.pod
                    )));
                }
            }
            None => {}
        }
        state.create_attempts.remove(&key);
        if counted {
            // A new pod never sees the files of an old one of the same key.
            let dir = work_dir().join(cloudsim::sandbox::dir_name(&key));
            if let Err(err) = std::fs::remove_dir_all(&dir)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), %err, "removing a stale mock pod directory");
            }
        }
        // A resumed pod keeps its address.
        let ip = state.persisted.ips.get(&key).and_then(|ip| ip.parse().ok());
        let interval = Duration::from_millis(self.config.log_interval_ms);
        let new = to_engine::group(&key, pod, &plan, interval, ip);
        if let Err(err) = self.engine.create(new) {
            return Err(ProviderError::invalid("MockCreateFailed", err.to_string()));
        }
        let ip = self.engine.state().get(&key).map(|g| g.ip.clone());
        if counted {
            *state.persisted.creates.entry(key.clone()).or_insert(0) += 1;
        }
        // The spec is kept a second time only to be written to the state file.
        if self.config.state_file.is_some() {
            state.persisted.instances.insert(key.clone(), pod.clone());
        }
        if let Some(ip) = ip {
            state.persisted.ips.insert(key.clone(), ip);
        }
        save(&mut state, &key);
        Ok(())
    }

    /// Resume the pods persisted by an earlier process (once).
    fn restore(&self) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        if self.restored.swap(true, Ordering::SeqCst) {
            return;
        }
        let persisted = persist::Persisted::load(path);
        let specs: Vec<ResolvedPod> = persisted.instances.values().cloned().collect();
        let mut resumable = Vec::new();
        {
            let mut state = lock(&self.state);
            for (seq, run) in persisted.runs.values().enumerate() {
                if journaled(run.status) {
                    let mut run = run.clone();
                    run.seq = seq as u64 + 1;
                    resumable.push(run);
                }
            }
            state.persisted = persisted;
            state.journal = Some(persist::Journal::open(path, &state.persisted));
        }
        if let Some(rx) = lock(&self.runs).take() {
            tokio::spawn(journal_runs(self.state.clone(), rx));
        }
        // Groups that were running go on as they were (their containers' start times kept),
        // ended ones stay ended; the rest start again.
        let by_key: HashMap<String, &ResolvedPod> =
            specs.iter().map(|p| (pod_key(&p.pod), p)).collect();
        let interval = Duration::from_millis(self.config.log_interval_ms);
        let skipped = self.engine.restore(
            Saved {
                next_seq: 0,
                groups: resumable,
                tokens: Vec::new(),
            },
            |g| {
                let pod = by_key
                    .get(&g.id)
                    .ok_or_else(|| "no persisted spec".to_string())?;
                let plan = PodPlan::new(pod, &self.config).map_err(|e| e.to_string())?;
                Ok(to_engine::group(
                    &g.id,
                    pod,
                    &plan,
                    interval,
                    g.ip.parse().ok(),
                ))
            },
        );
        for why in skipped {
            tracing::warn!(%why, "a persisted mock instance starts again instead of resuming");
        }
        for pod in &specs {
            if self.engine.exists(&pod_key(&pod.pod)) {
                continue;
            }
            if let Err(e) = self.start(pod, false) {
                tracing::warn!(pod = %pod.pod, error = %e, "could not resume a persisted mock instance");
            }
        }
        tracing::info!(instances = self.engine.len(), path = %path.display(), "resumed the mock cloud's instances");
    }

    fn not_found(pod: &PodRef) -> ProviderError {
        ProviderError::NotFound(format!("pod \"{pod}\" (uid {}) not found", pod.uid))
    }

    /// A running container of `pod`, as the executor takes it (for exec and attach); the
    /// kubelet's errors for a pod or container that is not there or not running.
    fn running(
        &self,
        pod: &PodRef,
        container: &str,
    ) -> Result<(Arc<GroupSpec>, EngineContainer), ProviderError> {
        let state = self.engine.state();
        let (group, c) = find(&state, pod, container, || {
            format!("container {container} is not valid for pod {}", pod.name)
        })?;
        match c.state {
            CState::Running { .. } => Ok((group.spec.clone(), (*c.spec).clone())),
            CState::Terminated { .. } => Err(ProviderError::invalid(
                "ContainerNotRunning",
                format!("cannot exec in a stopped container: container {container} is terminated"),
            )),
            CState::Waiting { .. } => Err(ProviderError::invalid(
                "ContainerNotRunning",
                format!("container not found ({container:?})"),
            )),
        }
    }

    /// The pod's status now, rendered from its group.
    fn status_of(group: &Group) -> Option<InstanceStatus> {
        group.face::<Record>().map(|r| render::status(group, r))
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        let ids: Vec<String> = self
            .engine
            .state()
            .groups()
            .map(|g| g.id().to_string())
            .collect();
        for id in ids {
            self.engine.remove(&id);
        }
    }
}

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &str {
        "mock"
    }

    async fn create(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        self.restore();
        self.start(pod, true)
    }

    async fn update(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        self.restore();
        let key = pod_key(&pod.pod);
        {
            let state = self.engine.state();
            let record = state
                .get(&key)
                .and_then(|g| g.face::<Record>())
                .ok_or_else(|| Self::not_found(&pod.pod))?;
            // The container lists of a pod are immutable; keep ours if the new spec disagrees.
            if record.shape() == (pod.init_containers.len(), pod.containers.len()) {
                record.set_pod(pod);
            }
        }
        {
            let mut state = lock(&self.state);
            if self.config.state_file.is_some() {
                state.persisted.instances.insert(key.clone(), pod.clone());
            }
            save(&mut state, &key);
        }
        // Files of volumes follow the pod (configMap updates); a new image shows at once.
        let files = to_engine::file_volumes(pod);
        if let Err(err) = self.engine.update(&key, files).await {
            tracing::warn!(pod = %pod.pod, %err, "updating the mock pod's volume files");
        }
        Ok(())
    }

    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<(), ProviderError> {
        self.restore();
        let key = pod_key(pod);
        let mut state = lock(&self.state);
        state.create_attempts.remove(&key);
        if !self.engine.remove(&key) {
            return Ok(());
        }
        state.persisted.instances.remove(&key);
        state.persisted.runs.remove(&key);
        state.persisted.ips.remove(&key);
        save(&mut state, &key);
        tracing::debug!(%pod, ?grace, "mock instance deleted");
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        self.restore();
        let state = self.engine.state();
        Ok(state.groups().filter_map(Self::status_of).collect())
    }

    fn status_source(&self) -> StatusSource {
        let taken = lock(&self.events).take();
        match taken {
            Some(rx) => StatusSource::Push(rx),
            None => {
                // Only one consumer gets the events; a second gets a closed channel.
                let (_, rx) = mpsc::channel(1);
                StatusSource::Push(rx)
            }
        }
    }

    async fn logs(
        &self,
        pod: &PodRef,
        container: &str,
        opts: &LogOptions,
    ) -> Result<LogStream, ProviderError> {
        let state = self.engine.state();
        let (_, c) = find(&state, pod, container, || {
            format!(
                "container \"{container}\" in pod \"{}\" not found",
                pod.name
            )
        })?;
        if !opts.previous {
            return Ok(c.log.stream(opts));
        }
        match (&c.previous_log, c.restart_count) {
            (Some(previous), 1..) => Ok(previous.stream(opts)),
            _ => Err(ProviderError::NotFound(format!(
                "previous terminated container \"{container}\" in pod \"{}\" not found",
                pod.name
            ))),
        }
    }

    fn capacity(&self) -> NodeCapacity {
        NodeCapacity::from(&self.config.capacity)
    }

    async fn ping(&self) -> Result<(), ProviderError> {
        if let Some(path) = &self.config.ping_fail_file
            && tokio::fs::try_exists(path).await.unwrap_or(false)
        {
            return Err(ProviderError::Transient(format!(
                "injected ping failure ({} exists)",
                path.display()
            )));
        }
        Ok(())
    }

    /// Runs the command inside the container's sandbox; see [`streams`].
    async fn exec(
        &self,
        pod: &PodRef,
        container: &str,
        command: Vec<String>,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        self.restore();
        let (group, spec) = self.running(pod, container)?;
        if command.is_empty() {
            return Err(ProviderError::invalid(
                "EmptyCommand",
                "you must specify at least one command for the container",
            ));
        }
        tracing::debug!(%pod, container, tty = io.tty, "mock exec");
        let executor = self.engine.executor().clone();
        let result = streams::bridge(io, |streams| async move {
            executor
                .exec_interactive(&group, &spec, &command, streams)
                .await
        })
        .await;
        Ok(streams::outcome(result))
    }

    /// Connects to a local address; see [`port_forward`](self::port_forward) for the mapping.
    async fn port_forward(
        &self,
        pod: &PodRef,
        port: u16,
        stream: PortForwardStream,
    ) -> Result<(), ProviderError> {
        self.restore();
        self.run_port_forward(pod, port, stream).await
    }

    /// Joins the container's real main process (annotation `mock.vk.io/process.<name>`).
    /// The attach ends when the client goes away or the process exits, never stopping it.
    async fn attach(
        &self,
        pod: &PodRef,
        container: &str,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        self.restore();
        let (group, spec) = self.running(pod, container)?;
        let executor = self.engine.executor().clone();
        let result = streams::bridge(io, |streams| async move {
            executor.attach(&group, &spec, streams).await.map(|()| 0)
        })
        .await;
        match result {
            Err(ExecutorError::NoMainProcess(_)) => Err(ProviderError::invalid(
                "NoMainProcess",
                format!(
                    "container {container} of pod {} has no process to attach to: the mock \
                     runs one only for annotation {}.{container}",
                    pod.name,
                    annotations::PROCESS
                ),
            )),
            Err(err) => {
                tracing::debug!(%pod, container, %err, "mock attach ended");
                // The kubelet reports success for an attach that ended, whatever happened.
                Ok(ExecOutcome::Exited(0))
            }
            Ok(_) => Ok(ExecOutcome::Exited(0)),
        }
    }

    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        let now = self.engine.now();
        let state = self.engine.state();
        Ok(state
            .groups()
            .filter_map(|g| {
                let pod = g.face::<Record>()?.pod_ref();
                let containers = g
                    .init
                    .iter()
                    .chain(&g.apps)
                    .filter_map(|c| match c.state {
                        CState::Running { started } => {
                            Some(container_stats(&c.spec.name, started, now))
                        }
                        _ => None,
                    })
                    .collect();
                Some(PodStats {
                    pod: Some(pod),
                    containers,
                })
            })
            .collect())
    }
}

/// The group of `pod` and its container `container`; `NotFound` for a pod that has none,
/// and in the words `missing` gives for a container the pod does not have.
fn find<'a>(
    state: &'a cloudsim::engine::State,
    pod: &PodRef,
    container: &str,
    missing: impl FnOnce() -> String,
) -> Result<(&'a Group, &'a ContainerRt), ProviderError> {
    let group = state
        .get(&pod_key(pod))
        .ok_or_else(|| MockProvider::not_found(pod))?;
    let c = group
        .find_container(container)
        .ok_or_else(|| ProviderError::NotFound(missing()))?;
    Ok((group, c))
}

/// Small plausible figures: a per-name constant rate, totals growing with uptime.
fn container_stats(name: &str, started_at: Timestamp, now: Timestamp) -> ContainerStats {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(name.as_bytes());
    let seed = hasher.finish();
    let uptime_nanos = u64::try_from(now.duration_since(started_at).as_nanos()).unwrap_or(0);
    let uptime_secs = uptime_nanos / 1_000_000_000;
    // 2 to 9 millicores.
    let nano_cores = 2_000_000 + (seed % 8) * 1_000_000;
    let core_nanos = u128::from(nano_cores) * u128::from(uptime_nanos) / 1_000_000_000;
    const MIB: u64 = 1024 * 1024;
    ContainerStats {
        name: name.to_string(),
        cpu_usage_nano_cores: nano_cores,
        cpu_usage_core_nano_seconds: u64::try_from(core_nanos).unwrap_or(u64::MAX),
        memory_working_set_bytes: 16 * MIB + (seed >> 8) % 16 * MIB + uptime_secs.min(3600) * 4096,
    }
}
