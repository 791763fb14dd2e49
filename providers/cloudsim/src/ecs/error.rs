//! The JSON APIs' errors (ECS and CloudWatch Logs): a code, its HTTP status and a message,
//! answered as `{"__type": CODE, "message": TEXT}` with `x-amzn-RequestId`. Engine errors
//! and signature failures become their codes here.

use fargate::wire::error::JsonError;
use fargate::wire::error::codes::{self, Code};

use super::sigv4::AuthError;
use crate::engine::EngineError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code: code.0,
            status: code.1,
            message: message.into(),
        }
    }

    /// ECS's catch-all for a request it refuses (`ClientException`).
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(codes::CLIENT_EXCEPTION, message)
    }

    /// A bad parameter, named in the message (`InvalidParameterException`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMETER, message)
    }

    pub fn throttled() -> Self {
        Self::new(codes::THROTTLING, "Rate exceeded")
    }

    pub fn body(&self) -> String {
        serde_json::to_string(&JsonError::new(self.code, self.message.clone())).unwrap_or_default()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => Self::new(
                codes::MISSING_AUTHENTICATION_TOKEN,
                "Missing Authentication Token",
            ),
            AuthError::Incomplete(m) => Self::new(codes::INCOMPLETE_SIGNATURE, m),
            AuthError::UnknownKey | AuthError::BadToken => Self::new(
                codes::UNRECOGNIZED_CLIENT,
                "The security token included in the request is invalid.",
            ),
            AuthError::Expired => Self::new(
                codes::EXPIRED_TOKEN,
                "The security token included in the request is expired",
            ),
            AuthError::Signature(m) => Self::new(codes::INVALID_SIGNATURE, m),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::GroupNotFound { .. } => {
                Self::invalid("The referenced task was not found.")
            }
            EngineError::IdempotentMismatch => {
                Self::invalid("The client token was used before with different parameters.")
            }
            EngineError::Executor(e) => Self::new(codes::SERVER_EXCEPTION, e.to_string()),
            other => Self::client(other.to_string()),
        }
    }
}

/// A body that is not the action's JSON: which field, and why.
impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Self::new(
            codes::SERIALIZATION,
            format!("The request body is not valid for this action: {e}"),
        )
    }
}
