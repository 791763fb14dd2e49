//! The ECI face of the simulator: the OpenAPI 2018-08-08 RPC actions over HTTP (`server`,
//! `api`), request signatures (`auth`, checked by `verify` with code of its own apart from
//! the client's signer), the answers' shapes (`render`, `view`, `describe`, `events`,
//! `metrics`, `group_metric`), ECI's own checks and tables (`create_extras`, `specs`,
//! `placement`, `network`, `quota`, `regions`), temporary keys (`sts`, `metadata`) and the
//! interactive exec socket (`exec_session`; framing in `eci::wire::exec`). Engine errors
//! become ECI's codes and HTTP statuses here (`api::ApiError`).

pub mod api;
pub mod auth;
pub mod config;
mod create;
mod create_extras;
mod delete_batch;
mod describe;
mod events;
pub mod exec_session;
mod group_metric;
mod ids;
pub mod metadata;
mod metrics;
pub mod network;
mod placement;
pub mod quota;
mod regions;
mod render;
pub mod server;
mod specs;
pub mod sts;
#[cfg(test)]
mod tests;
pub mod verify;
mod view;

use std::sync::Arc;

use crate::engine::executor::Executor;
use crate::engine::faults::Faults;
use crate::engine::flow_control::FlowControl;
use crate::engine::{Engine, EngineError};
use config::MockCloudConfig;
use exec_session::ExecSessions;

/// The ECI face over one engine: its settings, the create/delete quota and the interactive
/// exec sessions waiting for their socket. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Face {
    engine: Engine,
    config: Arc<MockCloudConfig>,
    quota: Arc<FlowControl>,
    exec_sessions: Arc<ExecSessions>,
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
            exec_sessions: Default::default(),
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
        self.quota.admit()
    }

    /// Interactive exec sessions waiting for their WebSocket.
    pub fn exec_sessions(&self) -> &ExecSessions {
        &self.exec_sessions
    }
}

impl From<EngineError> for api::ApiError {
    /// ECI's code, status and words for what the engine refused.
    fn from(e: EngineError) -> Self {
        use eci::wire::api::errors;
        match e {
            EngineError::GroupNotFound { id } => Self::new(
                errors::GROUP_NOT_FOUND,
                format!("The specified ContainerGroupId {id:?} does not exist."),
            ),
            EngineError::ContainerNotFound { id, container } => Self::new(
                errors::CONTAINER_NOT_FOUND,
                format!("The container {container:?} does not exist in {id}."),
            ),
            EngineError::IdempotentMismatch => Self::new(
                errors::IDEMPOTENT_MISMATCH,
                "The request uses the same client token as a previous, but non-identical request.",
            ),
            EngineError::AddressInUse { ip } => Self::new(
                ("InvalidPrivateIpAddress.Duplicated", 400),
                format!("The private IP address {ip} is in use by another instance."),
            ),
            EngineError::InvalidState { id, phase } => Self::new(
                errors::INCORRECT_STATUS,
                format!(
                    "The container group {id} is {}; the operation is not allowed in this status.",
                    render::status_name(phase)
                ),
            ),
            EngineError::ContainerNotRunning { container } => Self::new(
                errors::INCORRECT_STATUS,
                format!("The container {container:?} is not running."),
            ),
            EngineError::VolumeNotUpdatable { volume } => Self::new(
                errors::INVALID_PARAMETER,
                format!("Volume {volume:?}: only ConfigFileVolume contents can be updated."),
            ),
            EngineError::UnknownVolume { volume } => Self::new(
                errors::INVALID_PARAMETER,
                format!("Volume {volume:?} is not a volume of the container group."),
            ),
            EngineError::Executor(e) => Self::new(errors::INTERNAL_ERROR, e.to_string()),
        }
    }
}
