//! The ACI face's state over one engine: its settings, the token key, the asynchronous
//! operations, the stopped groups (ACI keeps a stopped group, with nothing running, until it
//! is started or deleted), the request limits and the exec sessions waiting for their socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::auth::Tokens;
use super::config::AciConfig;
use super::exec::ExecSessions;
use super::lro::Operations;
use super::record::Record;
use super::throttle::Throttle;
use crate::engine::Engine;
use crate::engine::executor::Executor;

/// A stopped group: its record and when it stopped.
#[derive(Clone)]
pub struct Stopped {
    pub record: Arc<Record>,
    pub at: jiff::Timestamp,
}

/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct AciFace {
    engine: Engine,
    config: Arc<AciConfig>,
    pub(super) tokens: Arc<Tokens>,
    pub(super) ops: Arc<Operations>,
    pub(super) stopped: Arc<Mutex<HashMap<String, Stopped>>>,
    pub(super) throttle: Arc<Throttle>,
    pub(super) exec: Arc<ExecSessions>,
    /// Serializes creates so the quota check and the create are one step.
    pub(super) create_lock: Arc<tokio::sync::Mutex<()>>,
}

impl AciFace {
    /// A new engine with `executor`, behind the ACI face.
    pub fn new(config: AciConfig, executor: Arc<dyn Executor>) -> Self {
        Self {
            engine: Engine::new(config.engine(), executor),
            config: Arc::new(config),
            tokens: Default::default(),
            ops: Default::default(),
            stopped: Default::default(),
            throttle: Default::default(),
            exec: Default::default(),
            create_lock: Default::default(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &AciConfig {
        &self.config
    }

    /// A fresh access token for `app` (tests skip the token endpoint with it).
    pub fn token_for(&self, app: &str) -> String {
        self.tokens.issue(&self.config, app).0
    }

    pub(super) fn stopped_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stopped>> {
        self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Exec sessions handed out and not connected yet.
    pub fn pending_exec_sessions(&self) -> usize {
        self.exec.pending()
    }
}
