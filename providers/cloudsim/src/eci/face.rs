//! The ECI face's state over one engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::config::MockCloudConfig;
use super::exec_session::ExecSessions;
use crate::engine::Engine;
use crate::engine::executor::Executor;
use crate::engine::faults::Faults;
use crate::engine::flow_control::FlowControl;

/// The ECI face over one engine: its settings, the create/delete quota and the interactive
/// exec sessions waiting for their socket. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Face {
    engine: Engine,
    config: Arc<MockCloudConfig>,
    quota: Arc<FlowControl>,
    /// Creates and deletes refused with `Throttling.User` by the quota.
    quota_refused: Arc<AtomicU64>,
    exec_sessions: Arc<ExecSessions>,
    ledger: Arc<super::persist::Ledger>,
    image_caches: Arc<super::cache_table::ImageCaches>,
}

impl Face {
    /// A new engine with `executor`, behind the ECI face.
    pub fn new(config: MockCloudConfig, executor: Arc<dyn Executor>) -> Self {
        Self {
            engine: Engine::new(config.engine(), executor),
            quota: Arc::new(FlowControl::new(
                config.quota.burst,
                config.quota.per_second,
            )),
            quota_refused: Default::default(),
            exec_sessions: Default::default(),
            ledger: super::persist::Ledger::new(config.state_file.clone()),
            image_caches: Default::default(),
            config: Arc::new(config),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &MockCloudConfig {
        &self.config
    }

    pub fn faults(&self) -> &Arc<Faults> {
        self.engine.faults()
    }

    /// Take one token of the create/delete quota.
    pub fn take_quota(&self) -> bool {
        let admitted = self.quota.admit();
        if !admitted {
            self.quota_refused.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// How many creates and deletes the quota refused so far.
    pub fn quota_refused(&self) -> u64 {
        self.quota_refused.load(Ordering::Relaxed)
    }

    /// The state file and the count of groups made (`persist`).
    pub(super) fn ledger(&self) -> &super::persist::Ledger {
        &self.ledger
    }

    /// The account's image caches (`image_cache`).
    pub(super) fn image_caches(&self) -> &super::cache_table::ImageCaches {
        &self.image_caches
    }

    /// Interactive exec sessions waiting for their WebSocket.
    pub fn exec_sessions(&self) -> &ExecSessions {
        &self.exec_sessions
    }
}
