//! An in-process provider that simulates instances with timers instead of calling a cloud.
//! It exists so vk-core's controllers, the kubelet-like API and the e2e suite can run without
//! an account: behaviour comes from [`MockConfig`] and per-pod `mock.vk.io/*` annotations (see
//! [`annotations`]), and every state change is pushed on the status channel.
//!
//! Semantics worth knowing:
//! - `create` is idempotent by pod UID (by namespace/name when the UID is empty).
//! - `delete` ignores the grace period: running containers end at once with exit code
//!   [`STOP_EXIT_CODE`] (143, reason `Error`), a final `Changed` then `Gone` are pushed.
//! - Logs of a container that has not started yet are empty (a follower waits for its start).
//! - Restarts wait `restart_backoff_ms` (fixed) in `CrashLoopBackOff`.
//! - `port_forward` connects pod port `P` to `127.0.0.1:P`, or to the `host:port` in the
//!   pod's `mock.vk.io/port-forward.P` annotation.
//! - A container with annotation `mock.vk.io/process.<name>` runs that shell command as a real
//!   main process ([`process`]): its output is the log, its exit code the container's, and
//!   `attach` joins it ([`attach`]). `exec` runs real commands inside the container's
//!   bubblewrap sandbox ([`sandbox`], [`exec`]); `-t` gets a pseudo-terminal ([`pty`]).

mod attach;
mod config;
mod driver;
mod exec;
mod instance;
mod logs;
mod persist;
mod port_forward;
mod probes;
mod process;
mod sandbox;
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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use std::{hash::Hasher as _, sync::Arc};

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use vk_core::provider::{
    ContainerState, ContainerStats, ExecIo, ExecOutcome, InstanceStatus, LogOptions, LogStream,
    NodeCapacity, PodRef, PodStats, PortForwardStream, Provider, ProviderError, ResolvedPod,
    StatusEvent, StatusSource,
};

pub use config::{CapacityConfig, MockConfig, annotations};
pub use instance::STOP_EXIT_CODE;

use config::{CreateError, PodPlan};
use driver::Driver;
use instance::{Clock, Instance};

/// Capacity of the status channel; events past it are dropped with a warning.
const EVENT_BUFFER: usize = 4096;

/// The mock provider: `MockProvider::new(config)`, then share it (`Arc<dyn Provider>`).
/// `create` must run inside a tokio runtime, which drives the instances' timers; dropping the
/// provider stops them.
pub struct MockProvider {
    config: MockConfig,
    /// Whether the instances in `state_file` were resumed (done on first use, in a runtime).
    restored: std::sync::atomic::AtomicBool,
    shared: Arc<Shared>,
    events: Mutex<Option<mpsc::Receiver<StatusEvent>>>,
}

/// State shared with the driver tasks.
pub(crate) struct Shared {
    state: Mutex<State>,
    events: mpsc::Sender<StatusEvent>,
    pub clock: Clock,
    /// Containers' real main processes, for attach.
    processes: process::Registry,
    /// Containers' sandboxes, for exec.
    sandboxes: sandbox::Sandboxes,
}

#[derive(Default)]
struct State {
    /// By pod key (the UID).
    instances: BTreeMap<String, Instance>,
    /// Failed create calls so far, for `create-error: transient:N`.
    create_attempts: HashMap<String, u32>,
    next_id: u64,
    next_ip: u32,
    /// What `state_file` persists: the spec of every instance, and creates per pod key.
    persisted: persist::Persisted,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn pod_key(pod: &PodRef) -> String {
    if pod.uid.is_empty() {
        format!("{}/{}", pod.namespace, pod.name)
    } else {
        pod.uid.clone()
    }
}

impl Shared {
    /// Never blocks: the caller may hold the state lock, which keeps events in state order.
    fn push(&self, event: StatusEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                tracing::warn!(?event, "mock status channel full, event dropped");
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Apply a step to one instance (if it still exists as instance `id`) and push its status
    /// when the step changed it.
    pub fn update<R>(
        &self,
        key: &str,
        id: u64,
        f: impl FnOnce(&mut Instance, Timestamp) -> R,
    ) -> Option<R> {
        let mut state = lock(&self.state);
        let instance = state.instances.get_mut(key).filter(|i| i.id == id)?;
        let before = instance.status.clone();
        let result = f(instance, self.clock.now());
        if instance.status != before {
            self.push(StatusEvent::Changed(instance.status.clone()));
        }
        Some(result)
    }
}

impl MockProvider {
    pub fn new(config: MockConfig) -> Self {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        Self {
            config,
            restored: std::sync::atomic::AtomicBool::new(false),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                events: tx,
                clock: Clock::new(),
                processes: process::Registry::default(),
                sandboxes: sandbox::Sandboxes::default(),
            }),
            events: Mutex::new(Some(rx)),
        }
    }

    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// Start an instance for `pod`; `counted` is false when resuming a persisted one.
    fn start(&self, pod: &ResolvedPod, counted: bool) -> Result<(), ProviderError> {
        let plan = PodPlan::new(pod, &self.config);
        let key = pod_key(&pod.pod);
        let mut state = lock(&self.shared.state);
        if state.instances.contains_key(&key) {
            return Ok(());
        }
        let plan = plan?;
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

        let id = state.next_id;
        state.next_id += 1;
        let ip = match state.persisted.ips.get(&key) {
            Some(ip) => ip.clone(),
            None => loop {
                let n = state.next_ip;
                state.next_ip = state.next_ip.wrapping_add(1);
                let candidate = format!(
                    "{}{}.{}",
                    self.config.pod_ip_prefix,
                    (n / 254) % 256,
                    n % 254 + 1
                );
                // Resumed instances keep their addresses; never hand one out twice.
                if !state.persisted.ips.values().any(|ip| *ip == candidate) {
                    break candidate;
                }
            },
        };
        let instance = Instance::new(id, pod, ip.clone(), self.shared.clock.now());
        if counted {
            *state.persisted.creates.entry(key.clone()).or_insert(0) += 1;
        }
        state.persisted.instances.insert(key.clone(), pod.clone());
        state.persisted.ips.insert(key.clone(), ip.clone());
        self.save(&state);
        let cancel = instance.cancel.clone();
        self.shared
            .push(StatusEvent::Changed(instance.status.clone()));
        state.instances.insert(key.clone(), instance);
        drop(state);

        Driver {
            shared: self.shared.clone(),
            key,
            id,
            plan,
            log_interval: Duration::from_millis(self.config.log_interval_ms),
            backoff: Duration::from_millis(self.config.restart_backoff_ms),
            cancel,
        }
        .spawn();
        Ok(())
    }

    /// Resume the instances persisted by an earlier process (once).
    fn restore(&self) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        if self
            .restored
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let persisted = persist::Persisted::load(path);
        let specs: Vec<ResolvedPod> = persisted.instances.values().cloned().collect();
        {
            let mut state = lock(&self.shared.state);
            state.persisted.creates = persisted.creates;
            state.persisted.ips = persisted.ips;
        }
        for pod in specs {
            if let Err(e) = self.start(&pod, false) {
                tracing::warn!(pod = %pod.pod, error = %e, "could not resume a persisted mock instance");
            }
        }
        tracing::info!(instances = lock(&self.shared.state).instances.len(), path = %path.display(), "resumed the mock cloud's instances");
    }

    fn save(&self, state: &State) {
        if let Some(path) = &self.config.state_file {
            state.persisted.save(path);
        }
    }

    /// Stops and forgets the pod's instance; `false` when there was none.
    fn remove_instance(&self, pod: &PodRef, grace: Duration) -> bool {
        let key = pod_key(pod);
        let mut state = lock(&self.shared.state);
        state.create_attempts.remove(&key);
        let Some(mut instance) = state.instances.remove(&key) else {
            return false;
        };
        state.persisted.instances.remove(&key);
        state.persisted.ips.remove(&key);
        self.save(&state);
        tracing::debug!(%pod, ?grace, "mock instance deleted");
        instance.cancel.cancel();
        self.shared.sandboxes.stop_pod(&key);
        let before = instance.status.clone();
        instance.stop(self.shared.clock.now());
        if instance.status != before {
            self.shared
                .push(StatusEvent::Changed(instance.status.clone()));
        }
        self.shared
            .push(StatusEvent::Gone(instance.status.pod.clone()));
        true
    }

    fn not_found(pod: &PodRef) -> ProviderError {
        ProviderError::NotFound(format!("pod \"{pod}\" (uid {}) not found", pod.uid))
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        for (key, instance) in &lock(&self.shared.state).instances {
            instance.cancel.cancel();
            self.shared.sandboxes.stop_pod(key);
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
        let id = lock(&self.shared.state)
            .instances
            .get(&key)
            .map(|i| i.id)
            .ok_or_else(|| Self::not_found(&pod.pod))?;
        self.shared
            .update(&key, id, |i, _| i.update(pod))
            .ok_or_else(|| Self::not_found(&pod.pod))?;
        {
            let mut state = lock(&self.shared.state);
            state.persisted.instances.insert(key, pod.clone());
            self.save(&state);
        }
        // Files of volumes that containers already see follow the pod (configMap updates).
        if tokio::fs::try_exists(sandbox::pod_dir(&pod.pod).join("volumes"))
            .await
            .unwrap_or(false)
            && let Err(err) = sandbox::write_volumes(&pod.pod, &pod.volumes).await
        {
            tracing::warn!(pod = %pod.pod, %err, "updating the mock pod's volume files");
        }
        Ok(())
    }

    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<(), ProviderError> {
        self.restore();
        if !self.remove_instance(pod, grace) {
            return Ok(());
        }
        // The pod's files (its volumes, what exec and kubectl cp wrote) go with it.
        let dir = sandbox::pod_dir(pod);
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
        if let Ok(Err(err)) = removed
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%pod, %err, "removing the mock pod's directory");
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        self.restore();
        let state = lock(&self.shared.state);
        Ok(state.instances.values().map(|i| i.status.clone()).collect())
    }

    fn status_source(&self) -> StatusSource {
        let taken = self
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
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
        let state = lock(&self.shared.state);
        let instance = state
            .instances
            .get(&pod_key(pod))
            .ok_or_else(|| Self::not_found(pod))?;
        let (status, logs) = instance.container(container).ok_or_else(|| {
            ProviderError::NotFound(format!(
                "container \"{container}\" in pod \"{}\" not found",
                pod.name
            ))
        })?;
        if !opts.previous {
            return Ok(logs.current.stream(opts));
        }
        match (&logs.previous, status.restart_count) {
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

    /// Runs the command as a local process; see [`exec`](self::exec) for the details.
    async fn exec(
        &self,
        pod: &PodRef,
        container: &str,
        command: Vec<String>,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        self.restore();
        self.run_exec(pod, container, command, io).await
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

    /// Joins the container's real main process; see [`attach`](self::attach).
    async fn attach(
        &self,
        pod: &PodRef,
        container: &str,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        self.restore();
        self.run_attach(pod, container, io).await
    }

    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        let now = self.shared.clock.now();
        let state = lock(&self.shared.state);
        Ok(state
            .instances
            .values()
            .map(|i| PodStats {
                pod: Some(i.status.pod.clone()),
                containers: i
                    .status
                    .init_containers
                    .iter()
                    .chain(&i.status.containers)
                    .filter_map(|c| match c.state {
                        ContainerState::Running { started_at } => {
                            Some(container_stats(&c.name, started_at, now))
                        }
                        _ => None,
                    })
                    .collect(),
            })
            .collect())
    }
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
