//! What an AWS call fails with, and how that reads for vk-core ([`ProviderError`]): the
//! service's `__type` code and message are kept whole, so a pod's status says what AWS said.

use vk_core::provider::ProviderError;

use crate::credentials::CredentialError;
use crate::wire::error::codes;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FargateError {
    /// The service answered with an error body (or a status without one: code `HTTP<status>`).
    #[error("{op}: HTTP {status} {code}: {message}")]
    Api {
        op: String,
        status: u16,
        code: String,
        message: String,
    },
    /// No answer (refused, reset, timed out).
    #[error("{op}: {message}")]
    Transport { op: String, message: String },
    /// An answer that is not the expected JSON.
    #[error("{op}: unreadable answer: {message}")]
    Decode { op: String, message: String },
    #[error("{0}")]
    Credentials(#[from] CredentialError),
    #[error("Fargate configuration: {0}")]
    Config(String),
}

impl FargateError {
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Api { message, .. } => message,
            _ => "",
        }
    }

    pub fn is_throttled(&self) -> bool {
        self.code() == Some(codes::THROTTLING.0) || self.status() == Some(429)
    }

    /// The keys were refused as expired or unknown, or the signature as wrong: get new keys
    /// and try once more.
    pub fn is_stale_credentials(&self) -> bool {
        matches!(
            self.code(),
            Some(c) if c == codes::EXPIRED_TOKEN.0
                || c == codes::INVALID_SIGNATURE.0
                || c == codes::UNRECOGNIZED_CLIENT.0
                || c == "InvalidClientTokenId"
                || c == "ExpiredToken"
                || c == "SignatureDoesNotMatch"
        )
    }

    /// Worth another attempt with backoff: throttling, 5xx, no answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500 || self.is_throttled(),
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    /// A task or resource that does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            Some(c) if c == codes::RESOURCE_NOT_FOUND.0
        ) || (self.code() == Some(codes::INVALID_PARAMETER.0)
            && self.message().contains("not found"))
    }
}

impl From<FargateError> for ProviderError {
    fn from(e: FargateError) -> Self {
        let text = e.to_string();
        let class = if e.is_not_found() {
            ProviderError::NotFound(text)
        } else if e.is_retryable() {
            ProviderError::Transient(text)
        } else {
            match &e {
                FargateError::Api { code, message, .. }
                    if code == codes::CLIENT_EXCEPTION.0 || code == codes::INVALID_PARAMETER.0 =>
                {
                    // An operator can fix a missing role or a quota; the pod cannot be run
                    // as written only when ECS says so of the request itself.
                    if message.contains("role") || message.contains("limit") {
                        ProviderError::Transient(text)
                    } else {
                        ProviderError::invalid(code, format!("ECS refused the task: {message}"))
                    }
                }
                _ => ProviderError::Transient(text),
            }
        };
        class.caused_by(e)
    }
}

#[cfg(test)]
mod tests {
    use vk_core::provider::ErrorClass;

    use super::*;

    fn api(status: u16, code: &str, message: &str) -> FargateError {
        FargateError::Api {
            op: "RunTask".into(),
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn aws_errors_map_to_classes_with_their_code() {
        let p: ProviderError = api(400, "ThrottlingException", "Rate exceeded").into();
        assert!(p.is_transient());
        let p: ProviderError = api(500, "ServerException", "x").into();
        assert!(p.is_transient());
        let p: ProviderError =
            api(400, "ClientException", "Container.image should not be null").into();
        assert_eq!(p.class(), ErrorClass::InvalidSpec);
        assert_eq!(p.reason(), Some("ClientException"));
        let p: ProviderError = api(400, "ResourceNotFoundException", "no stream").into();
        assert_eq!(p.class(), ErrorClass::NotFound);
        assert!(api(400, "ExpiredTokenException", "x").is_stale_credentials());
        assert!(!api(400, "ClientException", "x").is_stale_credentials());
    }
}
