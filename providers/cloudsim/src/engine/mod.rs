//! The simulator's engine, the same under every cloud face: container groups by creation
//! order, idempotency tokens, and the operations the faces call (create, delete, restart,
//! update, logs, exec targets, usage snapshots, fault injection). Lifecycle tasks
//! (`lifecycle`) change groups through `Inner::with_group`, which ignores a task whose group
//! is gone or was restarted since.
//!
//! A face turns its API's request into a [`NewGroup`] (sizes already decided, its own record
//! of the request kept opaque in [`NewGroup::face`]) and maps [`EngineError`] to its API's
//! errors. Containers, volumes and names are the engine's own definitions ([`spec`]).

pub mod catalog;
pub mod clock;
mod config;
mod error;
pub mod executor;
pub mod faults;
pub mod flow_control;
pub mod group;
mod hooks;
mod inner;
pub mod latency;
mod lifecycle;
pub mod logstore;
pub mod persist;
mod probes;
pub mod spec;
mod termination;
mod tokens;

use std::any::Any;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use config::EngineConfig;
pub use error::EngineError;
pub use group::{Phase, RestartPolicy};
pub use inner::{Change, Observer, State, StateRef};
pub use latency::CacheUse;

use executor::{Executor, GroupSpec, RunningContainer};
use faults::Faults;
use group::{CState, ContainerRt, Group};
use inner::{Inner, invalid_state, not_found};
use spec::{ContainerSpec, Names, VolumeSpec};
use tokens::Remembered;

/// How many addresses a prefix gives out (`x.y`: 256 × 254).
const ADDRESSES: u64 = 256 * 254;

/// A group to create, as a face decoded and checked it.
pub struct NewGroup {
    /// The id the face chose for it (unused when an idempotency token answers an older group).
    pub id: String,
    pub name: String,
    /// The size it is billed and measured against.
    pub cpu: f64,
    pub memory_gib: f64,
    pub containers: Vec<ContainerSpec>,
    pub init_containers: Vec<ContainerSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub names: Names,
    pub share_process_namespace: bool,
    pub restart_policy: RestartPolicy,
    /// The group fails when it runs longer.
    pub active_deadline: Option<Duration>,
    /// How long a stopping container gets before the kill; `None`: 30 s.
    pub termination_grace: Option<Duration>,
    /// From create until the containers start, instead of the configured scheduling and
    /// provisioning latencies.
    pub start_latency: Option<Duration>,
    /// The group's address instead of one from `ip_prefix`; it must be free.
    pub private_ip: Option<Ipv4Addr>,
    /// The image cache the face chose for it (or why none).
    pub image_cache: CacheUse,
    /// An idempotency token and what identifies the request it came with.
    pub idempotency: Option<(String, String)>,
    /// The face's own record of the request (what it echoes and filters on).
    pub face: Arc<dyn Any + Send + Sync>,
}

/// Cheap to clone; all clones share the groups.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A group's size and what runs in it now, for usage figures.
pub struct GroupSnapshot {
    pub id: String,
    pub cpu: f64,
    pub memory_gib: f64,
    pub running: Vec<RunningContainer>,
}

impl Engine {
    pub fn new(config: EngineConfig, executor: Arc<dyn Executor>) -> Self {
        Self {
            inner: Arc::new(Inner::new(config, executor)),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// What runs the groups' containers (tests use it to act inside a running sandbox).
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.inner.faults
    }

    /// The engine's time (see [`clock`]).
    pub fn now(&self) -> jiff::Timestamp {
        self.inner.clock.now()
    }

    pub fn clock(&self) -> clock::Clock {
        self.inner.clock
    }

    /// Hear of every change to a group, under the engine's lock (see [`Change`]); one
    /// observer per engine: `false` when there is one already.
    pub fn observe(&self, observer: Observer) -> bool {
        self.inner.observe(observer)
    }

    /// How many groups exist (any phase).
    pub fn len(&self) -> usize {
        self.inner.lock().groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The groups, to look at (the engine's lock is held until the guard drops: keep it short).
    pub fn state(&self) -> StateRef<'_> {
        StateRef(self.inner.lock())
    }

    /// Everything a create checks that depends on the other groups, without creating.
    pub fn check_create(&self, private_ip: Option<Ipv4Addr>) -> Result<(), EngineError> {
        self.inner.lock().address_free(private_ip)
    }

    /// Create a group and start its lifecycle; its id (an older group's, when its
    /// idempotency token answers for it).
    pub fn create(&self, mut new: NewGroup) -> Result<String, EngineError> {
        let now = self.inner.clock.now();
        let mut state = self.inner.lock();
        if let Some((token, fingerprint)) = &new.idempotency
            && let Some(known) = state.tokens.get(token, now)
        {
            if known.fingerprint == *fingerprint {
                return Ok(known.group_id.clone());
            }
            return Err(EngineError::IdempotentMismatch);
        }
        state.address_free(new.private_ip)?;
        let seq = state.next_seq;
        state.next_seq += 1;
        let id = new.id.clone();
        let ip = match new.private_ip {
            Some(ip) => ip.to_string(),
            // The next free address after the sequence number's own (a group asked for
            // an address of its own may hold that one).
            None => (seq..seq + ADDRESSES)
                .map(|n| {
                    format!(
                        "{}{}.{}",
                        self.inner.config.ip_prefix,
                        (n / 254) % 256,
                        n % 254 + 1
                    )
                })
                .find(|ip| !state.ips.contains(ip))
                .unwrap_or_default(),
        };
        state.ips.insert(ip.clone());

        let idempotency = new.idempotency.take();
        let (mut group, cancel) = self.assemble(new, seq, ip, now);
        let (cpu, memory) = (group.cpu, group.memory);
        group.event(
            "Normal",
            "Created",
            format!("Created container group {id} with {cpu} vCPU / {memory} GiB"),
            now,
        );
        if let Some((token, fingerprint)) = idempotency {
            let remembered = Remembered {
                fingerprint,
                group_id: id.clone(),
            };
            state.tokens.insert(&token, remembered, now);
        }
        state.by_id.insert(id.clone(), seq);
        self.inner.notify(inner::Change::Changed(&group));
        state.groups.insert(seq, group);
        drop(state);
        lifecycle::spawn(self.inner.clone(), id.clone(), 0, cancel, true);
        Ok(id)
    }

    /// The engine's record of a new group `new` (not yet inserted, no task running), and what
    /// cancels its lifecycle.
    fn assemble(
        &self,
        new: NewGroup,
        seq: u64,
        ip: String,
        now: jiff::Timestamp,
    ) -> (Group, CancellationToken) {
        let id = new.id;
        let max_lines = self.inner.config.max_log_lines;
        let spec = Arc::new(GroupSpec {
            id: id.clone(),
            name: new.name,
            volumes: new.volumes,
            ip: ip.clone(),
            names: new.names,
            share_process_namespace: new.share_process_namespace,
        });
        let cancel = CancellationToken::new();
        let init_reason = if new.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let (cpu, memory) = (new.cpu, new.memory_gib);
        let group = Group {
            seq,
            spec,
            cpu,
            memory,
            ip,
            status: Phase::Scheduling,
            created: now,
            updated: now,
            finished: None,
            events: Vec::new(),
            init: new
                .init_containers
                .into_iter()
                .map(|c| ContainerRt::new(c, "ContainerCreating", max_lines, self.inner.clock))
                .collect(),
            apps: new
                .containers
                .into_iter()
                .map(|c| ContainerRt::new(c, init_reason, max_lines, self.inner.clock))
                .collect(),
            cancel: cancel.clone(),
            generation: 0,
            max_log_lines: max_lines,
            restart_policy: new.restart_policy,
            active_deadline: new.active_deadline,
            termination_grace: new.termination_grace,
            start_latency: new.start_latency,
            image_cache: new.image_cache,
            face: new.face,
        };
        (group, cancel)
    }

    pub fn exists(&self, id: &str) -> bool {
        self.inner.lock().get(id).is_some()
    }

    /// Stop everything of group `id` at once, without hooks or grace, and forget it (a face
    /// whose API deletes that way); `false` when there is no such group.
    pub fn remove(&self, id: &str) -> bool {
        self.inner.remove(id)
    }

    /// A group with running containers goes through Terminating (`termination`).
    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        if termination::delete(&self.inner, id) {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Stop every container of the group (preStop, SIGTERM, the kill after the grace period)
    /// and keep it, ended, with its logs (see `termination`).
    pub fn stop(&self, id: &str) -> Result<(), EngineError> {
        if termination::stop(&self.inner, id) {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Clean up an ended group's sandbox (its files, its holder) and keep the group.
    pub fn release(&self, id: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let id = id.to_string();
        runtime.spawn(async move { inner.executor.remove(&id).await });
    }

    /// Restart every container of a pending or running group (init containers first, as on start).
    pub fn restart(&self, id: &str) -> Result<(), EngineError> {
        let mut state = self.inner.lock();
        let group = state.group_mut(id).ok_or_else(|| not_found(id))?;
        // Pending and Running groups restart only.
        if !matches!(group.status, Phase::Pending | Phase::Running) {
            return Err(invalid_state(id, group.status));
        }
        let now = self.inner.clock.now();
        group.cancel.cancel();
        group.cancel = CancellationToken::new();
        group.generation += 1;
        // Stopped runs end as if killed; the next start rotates them into PreviousState.
        for c in group.init.iter_mut().chain(group.apps.iter_mut()) {
            c.kill("Error", now);
        }
        group.set_status(Phase::Restarting, now);
        group.event(
            "Normal",
            "Restarting",
            "Restarting the container group".into(),
            now,
        );
        let (generation, cancel) = (group.generation, group.cancel.clone());
        self.inner.notify(inner::Change::Changed(group));
        drop(state);
        lifecycle::spawn(
            self.inner.clone(),
            id.to_string(),
            generation,
            cancel,
            false,
        );
        Ok(())
    }

    /// Replace the files of file volumes of a live group.
    pub async fn update(&self, id: &str, volumes: Vec<VolumeSpec>) -> Result<(), EngineError> {
        let spec = {
            let state = self.inner.lock();
            let group = state.group(id)?;
            if group.is_terminal() {
                return Err(invalid_state(id, group.status));
            }
            let mut spec = (*group.spec).clone();
            for v in volumes {
                let VolumeSpec::Files { .. } = v else {
                    return Err(EngineError::VolumeNotUpdatable {
                        volume: v.name().to_string(),
                    });
                };
                let Some(slot) = spec.volumes.iter_mut().find(|old| old.name() == v.name()) else {
                    return Err(EngineError::UnknownVolume {
                        volume: v.name().to_string(),
                    });
                };
                *slot = v;
            }
            spec
        };
        self.inner.executor.update_volumes(&spec).await?;
        let mut state = self.inner.lock();
        self.inner.change(&mut state, id, |group| {
            group.spec = Arc::new(spec);
            group.event(
                "Normal",
                "Updated",
                "Updated the config file volumes".into(),
                self.inner.clock.now(),
            );
        });
        Ok(())
    }

    /// Read a container's log run (the previous one with `previous`).
    pub fn log(
        &self,
        id: &str,
        container: &str,
        previous: bool,
    ) -> Result<Option<Arc<logstore::LogStore>>, EngineError> {
        let state = self.inner.lock();
        let (_, c) = state.container(id, container)?;
        Ok(if previous {
            c.previous_log.clone()
        } else {
            Some(c.log.clone())
        })
    }

    /// The group's sandbox, a running container's definition, and what is cancelled when the
    /// group is deleted or restarted, for exec.
    pub fn exec_target(
        &self,
        id: &str,
        container: &str,
    ) -> Result<(Arc<GroupSpec>, ContainerSpec, CancellationToken), EngineError> {
        let state = self.inner.lock();
        let (group, c) = state.container(id, container)?;
        if !matches!(c.state, CState::Running { .. }) {
            return Err(EngineError::ContainerNotRunning {
                container: container.to_string(),
            });
        }
        Ok((group.spec.clone(), (*c.spec).clone(), group.cancel.clone()))
    }

    /// Each group of `ids` that exists (unknown ids are left out): its size and its running
    /// containers.
    pub fn snapshot_running(&self, ids: &[String]) -> Vec<GroupSnapshot> {
        let state = self.inner.lock();
        ids.iter()
            .filter_map(|id| state.get(id))
            .map(|g| GroupSnapshot {
                id: g.id().to_string(),
                cpu: g.cpu,
                memory_gib: g.memory,
                running: g
                    .init
                    .iter()
                    .chain(&g.apps)
                    .filter_map(|c| match c.state {
                        CState::Running { started } => Some(RunningContainer {
                            group_id: g.id().to_string(),
                            spec: (*c.spec).clone(),
                            started,
                        }),
                        _ => None,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Fault injection: groups that disappear without a trace.
    pub fn vanish(&self, ids: &[String]) {
        for id in ids {
            self.inner.remove(id);
        }
    }

    /// Fault injection: groups that end Expired.
    pub fn expire(&self, ids: &[String]) {
        let mut state = self.inner.lock();
        for id in ids {
            let Some(group) = state.group_mut(id) else {
                continue;
            };
            if group.is_terminal() {
                continue;
            }
            let now = self.inner.clock.now();
            group.cancel.cancel();
            group.generation += 1;
            group.finish(Phase::Expired, "Expired", now);
            group.event(
                "Warning",
                "Expired",
                "The instance expired and was reclaimed.".into(),
                now,
            );
            self.inner.notify(inner::Change::Changed(group));
        }
    }
}

#[cfg(test)]
mod tests_latency;
#[cfg(test)]
mod tests_stop;

#[cfg(test)]
mod tests {
    use super::*;
    use group::Group;

    /// A group named `name` with idempotency token `pod-uid`; its name is the fingerprint.
    pub(super) fn create(name: &str) -> NewGroup {
        NewGroup {
            id: format!("g-{name}-{}", rand::random::<u32>()),
            name: name.into(),
            cpu: 2.0,
            memory_gib: 4.0,
            containers: vec![spec::ContainerSpec {
                name: "app".into(),
                image: "busybox".into(),
                ..Default::default()
            }],
            init_containers: Vec::new(),
            volumes: Vec::new(),
            names: Default::default(),
            share_process_namespace: false,
            restart_policy: Default::default(),
            active_deadline: None,
            termination_grace: None,
            start_latency: None,
            private_ip: None,
            image_cache: Default::default(),
            idempotency: Some(("pod-uid".into(), name.into())),
            face: std::sync::Arc::new(()),
        }
    }

    fn engine_with_ttl(ttl_secs: u64) -> Engine {
        let config = EngineConfig {
            client_token_ttl_secs: ttl_secs,
            ..Default::default()
        };
        let executor = super::executor::simulate::SimulateExecutor::new(Default::default());
        Engine::new(config, std::sync::Arc::new(executor))
    }

    #[tokio::test]
    async fn the_engine_honours_a_token_only_within_its_lifetime() {
        let engine = engine_with_ttl(24 * 3600);
        let first = engine.create(create("a")).unwrap();
        assert_eq!(engine.create(create("a")).unwrap(), first);
        let err = engine.create(create("b")).unwrap_err();
        assert!(matches!(err, EngineError::IdempotentMismatch), "{err}");
        assert_eq!(engine.len(), 1);

        // A lifetime of zero: the token is forgotten at once, so a reuse creates anew.
        let engine = engine_with_ttl(0);
        let first = engine.create(create("a")).unwrap();
        let second = engine.create(create("b")).unwrap();
        assert_ne!(first, second);
        assert_eq!(engine.len(), 2);
    }

    pub(super) fn timer(name: &str, run_ms: Option<u64>, exit_code: i32) -> spec::ContainerSpec {
        spec::ContainerSpec {
            name: name.into(),
            image: "busybox".into(),
            main: spec::Main::Simulated(spec::SimulatedMain {
                run: run_ms.map(Duration::from_millis),
                exit_code,
                log_interval: Some(Duration::ZERO),
            }),
            ..Default::default()
        }
    }

    pub(super) fn fast_engine() -> Engine {
        let config = EngineConfig {
            schedule_latency_ms: 0,
            provision_latency_ms: 0,
            latency_jitter_ms: 0,
            restart_backoff_ms: 10,
            max_restart_backoff_ms: 10,
            ..Default::default()
        };
        let executor = super::executor::simulate::SimulateExecutor::new(Default::default());
        Engine::new(config, std::sync::Arc::new(executor))
    }

    pub(super) async fn wait_for(engine: &Engine, id: &str, what: impl Fn(&Group) -> bool) {
        for _ in 0..500 {
            if engine.state().get(id).is_some_and(&what) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("group {id} never got there");
    }

    #[tokio::test]
    async fn a_sidecar_runs_beside_the_apps_restarts_and_stops_with_the_group() {
        let engine = fast_engine();
        let changes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = changes.clone();
        assert!(
            engine.observe(std::sync::Arc::new(move |change: Change<'_>| {
                let (removed, g) = match change {
                    Change::Changed(g) => (false, g),
                    Change::Removed(g) => (true, g),
                };
                seen.lock()
                    .unwrap()
                    .push((g.id().to_string(), g.status, removed));
            }))
        );
        assert!(!engine.observe(std::sync::Arc::new(|_: Change<'_>| {})));
        let mut new = create("sidecar");
        new.idempotency = None;
        let mut sidecar = timer("proxy", Some(30), 1);
        sidecar.sidecar = true;
        new.init_containers = vec![sidecar, timer("setup", Some(0), 0)];
        new.containers = vec![timer("app", Some(200), 0)];
        new.restart_policy = RestartPolicy::Never;
        new.start_latency = Some(Duration::from_millis(20));
        let id = engine.create(new).unwrap();

        // The app starts although the sidecar never completes; the sidecar restarts
        // (despite Never) while the app runs.
        wait_for(&engine, &id, |g| {
            matches!(g.apps[0].state, group::CState::Running { .. }) && g.init[0].restart_count >= 1
        })
        .await;
        wait_for(&engine, &id, |g| g.status == Phase::Succeeded).await;
        {
            let state = engine.state();
            let g = state.get(&id).unwrap();
            assert!(matches!(g.init[1].state, group::CState::Terminated { .. }));
            let restarts = g.init[0].restart_count;
            drop(state);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let state = engine.state();
            let g = state.get(&id).unwrap();
            assert_eq!(
                g.init[0].restart_count, restarts,
                "the sidecar stopped with the group"
            );
            assert!(!matches!(g.init[0].state, group::CState::Running { .. }));
        }
        engine.delete(&id).unwrap();
        let changes = changes.lock().unwrap();
        assert!(changes.iter().all(|(g, _, _)| *g == id));
        assert!(changes.iter().any(|(_, phase, _)| *phase == Phase::Running));
        assert_eq!(
            changes.last().map(|c| c.2),
            Some(true),
            "the last change is the removal"
        );
    }
}
