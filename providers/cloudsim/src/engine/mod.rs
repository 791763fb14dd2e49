//! The simulator's engine, the same under every cloud face: container groups by creation
//! order, idempotency tokens, and the operations the faces call (create, delete, restart,
//! update, logs, exec targets, usage snapshots, fault injection). Lifecycle tasks
//! (`lifecycle`) change groups through [`Inner::with_group`], which ignores a task whose group
//! is gone or was restarted since.
//!
//! A face turns its API's request into a [`NewGroup`] (sizes already decided, its own record
//! of the request kept opaque in [`NewGroup::face`]) and maps [`EngineError`] to its API's
//! errors. Container and volume definitions are still ECI's wire types
//! (`eci::wire::request::{ContainerDef, VolumeDef, GroupNames}`).

pub mod catalog;
mod error;
pub mod executor;
pub mod faults;
pub mod flow_control;
pub mod group;
mod hooks;
mod lifecycle;
pub mod logstore;
mod probes;
mod termination;
mod tokens;

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

pub use error::EngineError;
pub use group::{Phase, RestartPolicy};

use eci::wire::request::{ContainerDef, GroupNames, VolumeDef};
use executor::{Executor, GroupSpec, RunningContainer};
use faults::Faults;
use group::{CState, ContainerRt, Group};
use tokens::{Remembered, TokenTable};

/// The engine's settings (the faces' own settings are theirs).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Scheduling -> Pending.
    pub schedule_latency_ms: u64,
    /// Pending -> containers starting (sandbox, image pull).
    pub provision_latency_ms: u64,
    /// Random extra latency, up to this, on both steps.
    pub latency_jitter_ms: u64,
    /// First restart back-off; doubles per restart up to five minutes.
    pub restart_backoff_ms: u64,
    /// Lines kept per container run.
    pub max_log_lines: usize,
    pub catalog: catalog::ImageCatalog,
    pub faults: faults::FaultConfig,
    /// Addresses given out are `<prefix>x.y`.
    pub ip_prefix: String,
    /// An idempotency token stands for its first request this long.
    pub client_token_ttl_secs: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            schedule_latency_ms: 200,
            provision_latency_ms: 300,
            latency_jitter_ms: 200,
            restart_backoff_ms: 1000,
            max_log_lines: 100_000,
            catalog: Default::default(),
            faults: Default::default(),
            ip_prefix: "172.16.".into(),
            client_token_ttl_secs: 24 * 3600,
        }
    }
}

/// A group to create, as a face decoded and checked it.
pub struct NewGroup {
    /// The id the face chose for it (unused when an idempotency token answers an older group).
    pub id: String,
    pub name: String,
    /// The size it is billed and measured against.
    pub cpu: f64,
    pub memory_gib: f64,
    pub containers: Vec<ContainerDef>,
    pub init_containers: Vec<ContainerDef>,
    pub volumes: Vec<VolumeDef>,
    pub names: GroupNames,
    pub share_process_namespace: bool,
    pub restart_policy: RestartPolicy,
    /// The group fails when it runs longer.
    pub active_deadline: Option<Duration>,
    /// How long a stopping container gets before the kill; `None`: 30 s.
    pub termination_grace: Option<Duration>,
    /// The group's address instead of one from `ip_prefix`; it must be free.
    pub private_ip: Option<Ipv4Addr>,
    /// An idempotency token and what identifies the request it came with.
    pub idempotency: Option<(String, String)>,
    /// The face's own record of the request (what it echoes and filters on).
    pub face: Arc<dyn Any + Send + Sync>,
}

pub(crate) struct Inner {
    pub config: EngineConfig,
    pub executor: Arc<dyn Executor>,
    pub faults: Arc<Faults>,
    state: Mutex<State>,
}

/// The groups, read by the faces through [`Engine::state`].
pub struct State {
    /// By creation sequence number, which orders pages.
    groups: BTreeMap<u64, Group>,
    by_id: HashMap<String, u64>,
    /// ClientToken -> the request it came with and the group it made, for a while.
    tokens: TokenTable,
    next_seq: u64,
}

/// Cheap to clone; all clones share the groups.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Apply `f` to the group if it still exists in this generation.
    pub fn with_group<R>(
        &self,
        id: &str,
        generation: u64,
        f: impl FnOnce(&mut Group, Timestamp) -> R,
    ) -> Option<R> {
        let mut state = self.lock();
        let seq = *state.by_id.get(id)?;
        let group = state.groups.get_mut(&seq)?;
        (group.generation == generation).then(|| f(group, Timestamp::now()))
    }

    /// Drop a group and clean up its sandbox once its runs have stopped.
    pub(super) fn remove(self: &Arc<Self>, id: &str) -> bool {
        let removed = {
            let mut state = self.lock();
            let Some(seq) = state.by_id.remove(id) else {
                return false;
            };
            state.groups.remove(&seq)
        };
        if let Some(group) = removed {
            group.cancel.cancel();
            let inner = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                // The lifecycle task drops its runs when it sees the cancel; give it a moment.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                inner.executor.remove(&id).await;
            });
        }
        true
    }
}

impl State {
    /// Group `id`, to change.
    pub(super) fn group_mut(&mut self, id: &str) -> Option<&mut Group> {
        let seq = *self.by_id.get(id)?;
        self.groups.get_mut(&seq)
    }

    /// Group `id`.
    pub fn get(&self, id: &str) -> Option<&Group> {
        self.by_id.get(id).and_then(|s| self.groups.get(s))
    }

    /// The group created `seq`-th.
    pub fn by_seq(&self, seq: u64) -> Option<&Group> {
        self.groups.get(&seq)
    }

    /// Every group, in creation order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Group `id`, or the error for a group that does not exist.
    fn group(&self, id: &str) -> Result<&Group, EngineError> {
        self.get(id).ok_or_else(|| not_found(id))
    }

    /// Container `container` of group `id` (with the group), or the error for whichever
    /// does not exist.
    fn container(&self, id: &str, container: &str) -> Result<(&Group, &ContainerRt), EngineError> {
        let group = self.group(id)?;
        let c = group
            .find_container(container)
            .ok_or_else(|| EngineError::ContainerNotFound {
                id: id.to_string(),
                container: container.to_string(),
            })?;
        Ok((group, c))
    }

    /// No other group has address `ip`.
    fn address_free(&self, ip: Option<Ipv4Addr>) -> Result<(), EngineError> {
        match ip {
            Some(ip) if self.groups.values().any(|g| g.ip == ip.to_string()) => {
                Err(EngineError::AddressInUse { ip })
            }
            _ => Ok(()),
        }
    }
}

fn not_found(id: &str) -> EngineError {
    EngineError::GroupNotFound { id: id.to_string() }
}

fn invalid_state(id: &str, phase: Phase) -> EngineError {
    EngineError::InvalidState {
        id: id.to_string(),
        phase,
    }
}

/// The groups, read-only, under the engine's lock.
pub struct StateRef<'a>(MutexGuard<'a, State>);

impl std::ops::Deref for StateRef<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
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
            inner: Arc::new(Inner {
                faults: Arc::new(Faults::new(config.faults.clone())),
                executor,
                state: Mutex::new(State {
                    groups: BTreeMap::new(),
                    by_id: HashMap::new(),
                    tokens: TokenTable::new(Duration::from_secs(config.client_token_ttl_secs)),
                    next_seq: 0,
                }),
                config,
            }),
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
    pub fn create(&self, new: NewGroup) -> Result<String, EngineError> {
        let now = Timestamp::now();
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
        let id = new.id;
        let max_lines = self.inner.config.max_log_lines;
        let ip = match new.private_ip {
            Some(ip) => ip.to_string(),
            None => format!(
                "{}{}.{}",
                self.inner.config.ip_prefix,
                (seq / 254) % 256,
                seq % 254 + 1
            ),
        };

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
        let mut group = Group {
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
                .map(|c| ContainerRt::new(c, "ContainerCreating", max_lines))
                .collect(),
            apps: new
                .containers
                .into_iter()
                .map(|c| ContainerRt::new(c, init_reason, max_lines))
                .collect(),
            cancel: cancel.clone(),
            generation: 0,
            max_log_lines: max_lines,
            restart_policy: new.restart_policy,
            active_deadline: new.active_deadline,
            termination_grace: new.termination_grace,
            face: new.face,
        };
        group.event(
            "Normal",
            "Created",
            format!("Created container group {id} with {cpu} vCPU / {memory} GiB"),
            now,
        );
        if let Some((token, fingerprint)) = new.idempotency {
            let remembered = Remembered {
                fingerprint,
                group_id: id.clone(),
            };
            state.tokens.insert(&token, remembered, now);
        }
        state.by_id.insert(id.clone(), seq);
        state.groups.insert(seq, group);
        drop(state);
        lifecycle::spawn(self.inner.clone(), id.clone(), 0, cancel, true);
        Ok(id)
    }

    pub fn exists(&self, id: &str) -> bool {
        self.inner.lock().get(id).is_some()
    }

    /// A group with running containers goes through Terminating (`termination`).
    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        if termination::delete(&self.inner, id) {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Restart every container of a pending or running group (init containers first, as on start).
    pub fn restart(&self, id: &str) -> Result<(), EngineError> {
        let mut state = self.inner.lock();
        let group = state.group_mut(id).ok_or_else(|| not_found(id))?;
        // Pending and Running groups restart only.
        if !matches!(group.status, Phase::Pending | Phase::Running) {
            return Err(invalid_state(id, group.status));
        }
        let now = Timestamp::now();
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

    /// Replace the contents of config-file volumes of a live group.
    pub async fn update(&self, id: &str, volumes: Vec<VolumeDef>) -> Result<(), EngineError> {
        let spec = {
            let state = self.inner.lock();
            let group = state.group(id)?;
            if group.is_terminal() {
                return Err(invalid_state(id, group.status));
            }
            let mut spec = (*group.spec).clone();
            for v in volumes {
                let VolumeDef::ConfigFile { .. } = v else {
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
        self.inner
            .executor
            .update_volumes(&spec)
            .await
            .map_err(EngineError::Executor)?;
        let mut state = self.inner.lock();
        if let Some(group) = state.group_mut(id) {
            group.spec = Arc::new(spec);
            group.event(
                "Normal",
                "Updated",
                "Updated the config file volumes".into(),
                Timestamp::now(),
            );
        }
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
    ) -> Result<(Arc<GroupSpec>, ContainerDef, CancellationToken), EngineError> {
        let state = self.inner.lock();
        let (group, c) = state.container(id, container)?;
        if !matches!(c.state, CState::Running { .. }) {
            return Err(EngineError::ContainerNotRunning {
                container: container.to_string(),
            });
        }
        Ok((group.spec.clone(), c.def.clone(), group.cancel.clone()))
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
                            def: c.def.clone(),
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
            let now = Timestamp::now();
            group.cancel.cancel();
            group.generation += 1;
            group.finish(Phase::Expired, "Expired", now);
            group.event(
                "Warning",
                "Expired",
                "The instance expired and was reclaimed.".into(),
                now,
            );
        }
    }
}
