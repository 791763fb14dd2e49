//! What an engine operation refuses, in the engine's own terms; each face maps these to its
//! API's codes and statuses.

use super::group::Phase;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the container group {id:?} does not exist")]
    GroupNotFound { id: String },
    #[error("the container {container:?} does not exist in {id}")]
    ContainerNotFound { id: String, container: String },
    /// An idempotency token came back with a different request.
    #[error("the client token was used before with a different request")]
    IdempotentMismatch,
    /// The group's private address is taken by another group.
    #[error("the private IP address {ip} is in use by another group")]
    AddressInUse { ip: std::net::Ipv4Addr },
    /// The operation is not allowed while the group is in this phase.
    #[error("the container group {id} is {phase:?}; the operation is not allowed in this phase")]
    InvalidState { id: String, phase: Phase },
    #[error("the container {container:?} is not running")]
    ContainerNotRunning { container: String },
    /// Only config-file volumes can be rewritten in a live group.
    #[error("volume {volume:?}: only config file volumes can be updated")]
    VolumeNotUpdatable { volume: String },
    #[error("volume {volume:?} is not a volume of the container group")]
    UnknownVolume { volume: String },
    /// The executor failed the operation.
    #[error(transparent)]
    Executor(#[from] super::executor::ExecutorError),
}
