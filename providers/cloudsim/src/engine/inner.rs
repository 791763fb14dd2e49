//! The engine's shared core: its settings, executor and faults, and the groups under one
//! lock. The lifecycle tasks (`lifecycle`, `termination`, `probes`, `hooks`) and the
//! operations (`Engine`) all work through it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use jiff::Timestamp;

use super::clock::Clock;
use super::config::EngineConfig;
use super::error::EngineError;
use super::executor::Executor;
use super::faults::Faults;
use super::group::{ContainerRt, Group, Phase};
use super::tokens::TokenTable;

pub(super) struct Inner {
    pub config: EngineConfig,
    pub executor: Arc<dyn Executor>,
    pub faults: Arc<Faults>,
    state: Mutex<State>,
    observer: OnceLock<Observer>,
    pub clock: Clock,
}

/// What a face hears of its groups, under the engine's lock (so in the order it happened):
/// it must not call back into the engine.
pub enum Change<'a> {
    /// The group may have changed (a face compares what it renders with what it last saw).
    Changed(&'a Group),
    /// The group is gone; this is how it was last.
    Removed(&'a Group),
}

pub type Observer = Arc<dyn Fn(Change<'_>) + Send + Sync>;

/// The groups, read by the faces through [`Engine::state`](super::Engine::state).
pub struct State {
    /// By creation sequence number, which orders pages.
    pub(super) groups: BTreeMap<u64, Group>,
    pub(super) by_id: HashMap<String, u64>,
    /// The addresses the groups hold.
    pub(super) ips: HashSet<String>,
    /// ClientToken -> the request it came with and the group it made, for a while.
    pub(super) tokens: TokenTable,
    pub(super) next_seq: u64,
}

impl Inner {
    pub(super) fn new(config: EngineConfig, executor: Arc<dyn Executor>) -> Self {
        Self {
            faults: Arc::new(Faults::new(config.faults.clone())),
            executor,
            state: Mutex::new(State {
                groups: BTreeMap::new(),
                by_id: HashMap::new(),
                ips: HashSet::new(),
                tokens: TokenTable::new(Duration::from_secs(config.client_token_ttl_secs)),
                next_seq: 0,
            }),
            observer: OnceLock::new(),
            clock: Clock::new(),
            config,
        }
    }

    /// Set the observer (once; a second is refused).
    pub(super) fn observe(&self, observer: Observer) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Tell the observer, if there is one.
    pub(super) fn notify(&self, change: Change<'_>) {
        if let Some(observer) = self.observer.get() {
            observer(change);
        }
    }

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
        if group.generation != generation {
            return None;
        }
        let result = f(group, self.clock.now());
        self.notify(Change::Changed(group));
        Some(result)
    }

    /// Read the group if it still exists in this generation (the observer hears nothing).
    pub fn peek<R>(&self, id: &str, generation: u64, f: impl FnOnce(&Group) -> R) -> Option<R> {
        let state = self.lock();
        let group = state.get(id)?;
        (group.generation == generation).then(|| f(group))
    }

    /// Apply `f` to the group whatever its generation, and tell the observer.
    pub(super) fn change<R>(
        &self,
        state: &mut State,
        id: &str,
        f: impl FnOnce(&mut Group) -> R,
    ) -> Option<R> {
        let group = state.group_mut(id)?;
        let result = f(group);
        self.notify(Change::Changed(group));
        Some(result)
    }

    /// Drop a group and clean up its sandbox once its runs have stopped.
    pub(super) fn remove(self: &Arc<Self>, id: &str) -> bool {
        let removed = {
            let mut state = self.lock();
            let Some(seq) = state.by_id.remove(id) else {
                return false;
            };
            let removed = state.groups.remove(&seq);
            if let Some(group) = &removed {
                state.ips.remove(&group.ip);
                self.notify(Change::Removed(group));
            }
            removed
        };
        if let Some(group) = removed {
            group.cancel.cancel();
            // Outside a runtime (a face dropped after its runtime ended) nothing can clean the
            // sandbox up later: its files stay rather than the drop panicking.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return true;
            };
            let inner = self.clone();
            let id = id.to_string();
            runtime.spawn(async move {
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
    pub(super) fn group(&self, id: &str) -> Result<&Group, EngineError> {
        self.get(id).ok_or_else(|| not_found(id))
    }

    /// Container `container` of group `id` (with the group), or the error for whichever
    /// does not exist.
    pub(super) fn container(
        &self,
        id: &str,
        container: &str,
    ) -> Result<(&Group, &ContainerRt), EngineError> {
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
    pub(super) fn address_free(&self, ip: Option<Ipv4Addr>) -> Result<(), EngineError> {
        match ip {
            Some(ip) if self.ips.contains(&ip.to_string()) => Err(EngineError::AddressInUse { ip }),
            _ => Ok(()),
        }
    }
}

pub(super) fn not_found(id: &str) -> EngineError {
    EngineError::GroupNotFound { id: id.to_string() }
}

pub(super) fn invalid_state(id: &str, phase: Phase) -> EngineError {
    EngineError::InvalidState {
        id: id.to_string(),
        phase,
    }
}

/// The groups, read-only, under the engine's lock.
pub struct StateRef<'a>(pub(super) MutexGuard<'a, State>);

impl std::ops::Deref for StateRef<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}
