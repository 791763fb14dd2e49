//! The mock cloud's engine: container groups by creation order, ClientToken idempotency,
//! the create/delete quota, and the operations behind each API action. Lifecycle tasks
//! (`lifecycle`) change groups through [`Inner::with_group`], which ignores a task whose group
//! is gone or was restarted since.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use rand::Rng as _;
use tokio_util::sync::CancellationToken;

use super::MockCloudConfig;
use crate::api::ApiError;
use crate::create_extras::GroupExtras;
use crate::executor::{Executor, GroupSpec, RunningContainer};
use crate::faults::Faults;
use crate::group::{CState, ContainerRt, Group};
use crate::lifecycle;
use crate::metrics::GroupSnapshot;
use crate::placement::private_ip_free;
use crate::specs::group_size;
use crate::tokens::{Remembered, TokenTable};
use eci::wire::api::{errors, group_status};
use eci::wire::request::{CreateContainerGroup, VolumeDef};

pub(crate) struct Inner {
    pub config: MockCloudConfig,
    pub executor: Arc<dyn Executor>,
    pub faults: Arc<Faults>,
    pub quota: crate::flow_control::FlowControl,
    pub exec_sessions: crate::exec_session::ExecSessions,
    state: Mutex<State>,
}

pub(super) struct State {
    /// By creation sequence number, which orders pages.
    pub groups: BTreeMap<u64, Group>,
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

fn random_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("eci-{tail}")
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

    /// Group `id`, or the API's error for a group that does not exist.
    fn group(&self, id: &str) -> Result<&Group, ApiError> {
        self.by_id
            .get(id)
            .and_then(|s| self.groups.get(s))
            .ok_or_else(|| not_found(id))
    }

    /// Container `container` of group `id` (with the group), or the API's error for whichever
    /// does not exist.
    fn container(&self, id: &str, container: &str) -> Result<(&Group, &ContainerRt), ApiError> {
        let group = self.group(id)?;
        let c = group.find_container(container).ok_or_else(|| {
            ApiError::new(
                errors::CONTAINER_NOT_FOUND,
                format!("The container {container:?} does not exist in {id}."),
            )
        })?;
        Ok((group, c))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        errors::GROUP_NOT_FOUND,
        format!("The specified ContainerGroupId {id:?} does not exist."),
    )
}

fn incorrect_status(id: &str, status: &str) -> ApiError {
    ApiError::new(
        errors::INCORRECT_STATUS,
        format!(
            "The container group {id} is {status}; the operation is not allowed in this status."
        ),
    )
}

impl Engine {
    pub fn new(config: MockCloudConfig, executor: Arc<dyn Executor>) -> Self {
        Self {
            inner: Arc::new(Inner {
                faults: Arc::new(Faults::new(config.faults.clone())),
                quota: crate::flow_control::FlowControl::new(
                    config.quota.burst,
                    config.quota.per_second,
                ),
                exec_sessions: Default::default(),
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

    pub fn config(&self) -> &MockCloudConfig {
        &self.inner.config
    }

    /// What runs the groups' containers (tests use it to act inside a running sandbox).
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.inner.faults
    }

    /// Interactive exec sessions waiting for their WebSocket.
    pub fn exec_sessions(&self) -> &crate::exec_session::ExecSessions {
        &self.inner.exec_sessions
    }

    /// Take one token of the create/delete quota.
    pub fn take_quota(&self) -> bool {
        self.inner.quota.admit()
    }

    /// How many groups exist (any status).
    pub fn len(&self) -> usize {
        self.inner.lock().groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn create(&self, req: CreateContainerGroup) -> Result<String, ApiError> {
        self.create_with(req, GroupExtras::default())
    }

    /// Everything a create checks, without creating: `DryRun=true`.
    pub fn check_create(
        &self,
        req: &CreateContainerGroup,
        extras: &GroupExtras,
    ) -> Result<(), ApiError> {
        group_size(req)?;
        private_ip_free(&self.inner.lock(), extras)
    }

    /// Create with the parameters only the simulator decodes.
    pub fn create_with(
        &self,
        req: CreateContainerGroup,
        extras: GroupExtras,
    ) -> Result<String, ApiError> {
        let (cpu, memory) = group_size(&req)?;
        let fingerprint = format!("{req:?}{extras:?}");
        let now = Timestamp::now();
        let mut state = self.inner.lock();
        if let Some(token) = &req.client_token
            && let Some(known) = state.tokens.get(token, now)
        {
            if known.fingerprint == fingerprint {
                return Ok(known.group_id.clone());
            }
            return Err(ApiError::new(
                errors::IDEMPOTENT_MISMATCH,
                "The request uses the same client token as a previous, but non-identical request.",
            ));
        }
        private_ip_free(&state, &extras)?;
        let seq = state.next_seq;
        state.next_seq += 1;
        let id = random_id();
        let max_lines = self.inner.config.max_log_lines;
        let ip = match extras.private_ip {
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
            name: req.container_group_name.clone(),
            volumes: req.volumes.clone(),
            ip: ip.clone(),
            names: req.names.clone(),
            share_process_namespace: req.share_process_namespace,
        });
        let cancel = CancellationToken::new();
        let init_reason = if req.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let mut group = Group {
            seq,
            spec,
            cpu,
            memory,
            ip,
            status: group_status::SCHEDULING,
            created: now,
            updated: now,
            finished: None,
            events: Vec::new(),
            init: req
                .init_containers
                .iter()
                .map(|c| ContainerRt::new(c.clone(), "ContainerCreating", max_lines))
                .collect(),
            apps: req
                .containers
                .iter()
                .map(|c| ContainerRt::new(c.clone(), init_reason, max_lines))
                .collect(),
            cancel: cancel.clone(),
            generation: 0,
            max_log_lines: max_lines,
            request: req,
            extras,
        };
        group.event(
            "Normal",
            "Created",
            format!("Created container group {id} with {cpu} vCPU / {memory} GiB"),
            now,
        );
        if let Some(token) = &group.request.client_token {
            let remembered = Remembered {
                fingerprint,
                group_id: id.clone(),
            };
            state.tokens.insert(token, remembered, now);
        }
        state.by_id.insert(id.clone(), seq);
        state.groups.insert(seq, group);
        drop(state);
        lifecycle::spawn(self.inner.clone(), id.clone(), 0, cancel, true);
        Ok(id)
    }

    pub fn exists(&self, id: &str) -> bool {
        self.inner.lock().group(id).is_ok()
    }

    /// A group with running containers goes through Terminating (`termination`).
    pub fn delete(&self, id: &str) -> Result<(), ApiError> {
        if crate::termination::delete(&self.inner, id) {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Restart every container of a pending or running group (init containers first, as on start).
    pub fn restart(&self, id: &str) -> Result<(), ApiError> {
        let mut state = self.inner.lock();
        let seq = *state.by_id.get(id).ok_or_else(|| not_found(id))?;
        let group = state.groups.get_mut(&seq).ok_or_else(|| not_found(id))?;
        // ECI restarts Pending and Running instances only.
        if !matches!(group.status, group_status::PENDING | group_status::RUNNING) {
            return Err(incorrect_status(id, group.status));
        }
        let now = Timestamp::now();
        group.cancel.cancel();
        group.cancel = CancellationToken::new();
        group.generation += 1;
        // Stopped runs end as if killed; the next start rotates them into PreviousState.
        for c in group.init.iter_mut().chain(group.apps.iter_mut()) {
            c.kill("Error", now);
        }
        group.set_status(group_status::RESTARTING, now);
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
    pub async fn update(&self, id: &str, volumes: Vec<VolumeDef>) -> Result<(), ApiError> {
        let spec = {
            let state = self.inner.lock();
            let group = state.group(id)?;
            if group.is_terminal() {
                return Err(incorrect_status(id, group.status));
            }
            let mut spec = (*group.spec).clone();
            for v in volumes {
                let VolumeDef::ConfigFile { .. } = v else {
                    return Err(ApiError::new(
                        errors::INVALID_PARAMETER,
                        format!(
                            "Volume {:?}: only ConfigFileVolume contents can be updated.",
                            v.name()
                        ),
                    ));
                };
                let Some(slot) = spec.volumes.iter_mut().find(|old| old.name() == v.name()) else {
                    return Err(ApiError::new(
                        errors::INVALID_PARAMETER,
                        format!(
                            "Volume {:?} is not a volume of the container group.",
                            v.name()
                        ),
                    ));
                };
                *slot = v;
            }
            spec
        };
        self.inner
            .executor
            .update_volumes(&spec)
            .await
            .map_err(|e| ApiError::new(errors::INTERNAL_ERROR, e))?;
        let mut state = self.inner.lock();
        if let Some(group) = state
            .by_id
            .get(id)
            .copied()
            .and_then(|s| state.groups.get_mut(&s))
        {
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
    ) -> Result<Option<Arc<crate::logstore::LogStore>>, ApiError> {
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
    ) -> Result<
        (
            Arc<GroupSpec>,
            eci::wire::request::ContainerDef,
            CancellationToken,
        ),
        ApiError,
    > {
        let state = self.inner.lock();
        let (group, c) = state.container(id, container)?;
        if !matches!(c.state, CState::Running { .. }) {
            return Err(ApiError::new(
                errors::INCORRECT_STATUS,
                format!("The container {container:?} is not running."),
            ));
        }
        Ok((group.spec.clone(), c.def.clone(), group.cancel.clone()))
    }

    /// Each group of `ids` that exists (unknown ids are left out): its size and its running
    /// containers.
    pub(super) fn snapshot_running(&self, ids: &[String]) -> Vec<GroupSnapshot> {
        let state = self.inner.lock();
        ids.iter()
            .filter_map(|id| state.group(id).ok())
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
            let Some(group) = state
                .by_id
                .get(id)
                .copied()
                .and_then(|s| state.groups.get_mut(&s))
            else {
                continue;
            };
            if group.is_terminal() {
                continue;
            }
            let now = Timestamp::now();
            group.cancel.cancel();
            group.generation += 1;
            group.finish(group_status::EXPIRED, "Expired", now);
            group.event(
                "Warning",
                "Expired",
                "The instance expired and was reclaimed.".into(),
                now,
            );
        }
    }
}
