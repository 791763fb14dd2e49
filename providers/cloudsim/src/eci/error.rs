//! ECI's errors: the code, HTTP status and message of an error answer, its JSON body, and
//! the mapping of the engine's refusals and the parameter decoder's to them.

use super::render::status_name;
use crate::engine::EngineError;
use eci::wire::api::{ErrorResponse, errors};
use eci::wire::params::ParamError;

/// An error answer: the service's code, its HTTP status, and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: errors::Code, message: impl Into<String>) -> Self {
        Self {
            code: code.0,
            status: code.1,
            message: message.into(),
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(_) => Self::new(errors::MISSING_PARAMETER, e.to_string()),
            ParamError::Invalid { .. } => Self::new(errors::INVALID_PARAMETER, e.to_string()),
        }
    }
}

/// An answer: HTTP status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl From<EngineError> for ApiError {
    /// ECI's code, status and words for what the engine refused.
    fn from(e: EngineError) -> Self {
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
                    status_name(phase)
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

pub fn error_body(e: &ApiError, request_id: &str, host: &str) -> String {
    serde_json::to_string(&ErrorResponse {
        request_id: request_id.to_string(),
        host_id: host.to_string(),
        code: e.code.to_string(),
        message: e.message.clone(),
        recommend: format!("https://api.aliyun.com/troubleshoot?q={}", e.code),
    })
    .unwrap_or_default()
}
