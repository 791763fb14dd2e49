//! The ACI face's errors: an HTTP status and ARM's `{"error": {"code", "message"}}`, with
//! the engine's errors mapped to the container instance service's codes.

use aci::wire::{ArmError, codes};

use crate::engine::EngineError;

/// An error answer of the face.
#[derive(Debug, Clone, PartialEq)]
pub struct AciError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl AciError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn invalid_content(message: impl Into<String>) -> Self {
        Self::bad_request(codes::INVALID_REQUEST_CONTENT, message)
    }

    pub fn group_not_found(resource_group: &str, name: &str) -> Self {
        Self::new(
            404,
            codes::RESOURCE_NOT_FOUND,
            format!(
                "The Resource 'Microsoft.ContainerInstance/containerGroups/{name}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    pub fn throttled(retry_after: u64, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(429, codes::TOO_MANY_REQUESTS, message)
        }
    }

    /// The body ARM answers with.
    pub fn body(&self) -> String {
        serde_json::to_string(&ArmError::new(&self.code, &self.message)).unwrap_or_default()
    }

    /// An engine error on group `name`.
    pub fn engine(e: EngineError, resource_group: &str, name: &str) -> Self {
        match e {
            EngineError::GroupNotFound { .. } => Self::group_not_found(resource_group, name),
            EngineError::ContainerNotFound { container, .. } => Self::new(
                404,
                codes::CONTAINER_NOT_FOUND,
                format!("The container '{container}' is not found in container group '{name}'."),
            ),
            EngineError::ContainerNotRunning { container } => Self::new(
                409,
                codes::CONTAINER_NOT_RUNNING,
                format!("The container '{container}' in container group '{name}' is not running."),
            ),
            EngineError::InvalidState { phase, .. } => Self::new(
                409,
                codes::CONTAINER_GROUP_TRANSITIONING,
                format!(
                    "The container group '{name}' is {phase:?}; the operation is not allowed now. Please retry later."
                ),
            ),
            EngineError::AddressInUse { ip } => Self::bad_request(
                codes::INVALID_REQUEST_CONTENT,
                format!("The IP address '{ip}' is already in use."),
            ),
            other => Self::new(500, codes::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl std::fmt::Display for AciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}
