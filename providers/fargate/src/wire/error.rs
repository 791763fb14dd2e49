//! The error body of the JSON 1.1 APIs (ECS, CloudWatch Logs): `{"__type": CODE, "message":
//! TEXT}` with a 4xx or 5xx status. `__type` may carry a namespace
//! (`com.amazonaws.ecs#ClientException`); [`JsonError::code`] gives the bare code. Some
//! services spell the message `Message`; both are read.

use serde::{Deserialize, Serialize};

/// The codes the simulator answers and the provider tells apart, with their statuses.
pub mod codes {
    /// (code, HTTP status)
    pub type Code = (&'static str, u16);

    // ECS
    pub const CLIENT_EXCEPTION: Code = ("ClientException", 400);
    pub const INVALID_PARAMETER: Code = ("InvalidParameterException", 400);
    pub const CLUSTER_NOT_FOUND: Code = ("ClusterNotFoundException", 400);
    pub const SERVER_EXCEPTION: Code = ("ServerException", 500);
    pub const TARGET_NOT_CONNECTED: Code = ("TargetNotConnectedException", 400);
    // CloudWatch Logs
    pub const RESOURCE_NOT_FOUND: Code = ("ResourceNotFoundException", 400);
    pub const RESOURCE_ALREADY_EXISTS: Code = ("ResourceAlreadyExistsException", 400);
    pub const SERVICE_UNAVAILABLE: Code = ("ServiceUnavailableException", 500);
    // Both, from the front door
    pub const THROTTLING: Code = ("ThrottlingException", 400);
    pub const UNRECOGNIZED_CLIENT: Code = ("UnrecognizedClientException", 400);
    pub const INVALID_SIGNATURE: Code = ("InvalidSignatureException", 400);
    pub const EXPIRED_TOKEN: Code = ("ExpiredTokenException", 400);
    pub const MISSING_AUTHENTICATION_TOKEN: Code = ("MissingAuthenticationTokenException", 400);
    pub const INCOMPLETE_SIGNATURE: Code = ("IncompleteSignatureException", 400);
    pub const UNKNOWN_OPERATION: Code = ("UnknownOperationException", 400);
    pub const SERIALIZATION: Code = ("SerializationException", 400);
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonError {
    #[serde(rename = "__type", default)]
    pub kind: String,
    #[serde(default, alias = "Message", skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl JsonError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            kind: code.to_string(),
            message: Some(message.into()),
        }
    }

    /// The code without a namespace.
    pub fn code(&self) -> &str {
        self.kind.rsplit('#').next().unwrap_or(&self.kind)
    }

    /// Is it worth calling again later (throttling, a server error)?
    pub fn is_retryable(&self, status: u16) -> bool {
        status >= 500 || self.code() == codes::THROTTLING.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_lose_their_namespace() {
        let e: JsonError = serde_json::from_str(
            r#"{"__type": "com.amazonaws.ecs#ClientException", "Message": "bad"}"#,
        )
        .unwrap();
        assert_eq!(e.code(), "ClientException");
        assert_eq!(e.message.as_deref(), Some("bad"));
        assert!(!e.is_retryable(400));
        assert!(JsonError::new("ThrottlingException", "Rate exceeded").is_retryable(400));
        let body = serde_json::to_string(&JsonError::new("X", "y")).unwrap();
        assert_eq!(body, r#"{"__type":"X","message":"y"}"#);
    }
}
