//! What an ARM call fails with, and how that reads for vk-core ([`ProviderError`]): ARM's code
//! and message are kept whole, so a pod's status says what Azure said.

use vk_core::provider::ProviderError;

use crate::credentials::CredentialError;
use crate::wire::codes;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AciError {
    /// ARM answered with an error body (or a status without one: code `HTTP<status>`).
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
    #[error("ACI configuration: {0}")]
    Config(String),
}

impl AciError {
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

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
            || matches!(
                self.code(),
                Some(
                    codes::RESOURCE_NOT_FOUND
                        | codes::CONTAINER_GROUP_NOT_FOUND
                        | codes::CONTAINER_NOT_FOUND
                )
            )
    }

    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
            || matches!(
                self.code(),
                Some(codes::TOO_MANY_REQUESTS | codes::SUBSCRIPTION_REQUESTS_THROTTLED)
            )
    }

    /// The token was refused as expired or invalid: fetch a new one and try again once.
    pub fn is_stale_token(&self) -> bool {
        self.status() == Some(401)
            && matches!(
                self.code(),
                Some(codes::EXPIRED_AUTHENTICATION_TOKEN | codes::INVALID_AUTHENTICATION_TOKEN)
            )
    }

    /// Worth another attempt with backoff: throttling, 5xx, no answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    /// Quotas of the subscription: they pass, so the pod waits and is retried.
    fn is_quota(&self) -> bool {
        matches!(
            self.code(),
            Some(
                codes::CONTAINER_GROUP_QUOTA_REACHED
                    | codes::STANDARD_CORES_QUOTA_REACHED
                    | codes::SERVICE_UNAVAILABLE
                    | codes::CONTAINER_GROUP_TRANSITIONING
            )
        )
    }
}

impl From<AciError> for ProviderError {
    fn from(e: AciError) -> Self {
        let text = e.to_string();
        let class = if e.is_not_found() {
            ProviderError::NotFound(text)
        } else if e.is_retryable() || e.is_quota() {
            ProviderError::Transient(text)
        } else {
            match &e {
                // 401/403 can be fixed by an operator (a role assignment) without touching the pod.
                AciError::Api {
                    status: 401 | 403, ..
                }
                | AciError::Credentials(_) => ProviderError::Transient(text),
                AciError::Api {
                    status: 400 | 409 | 422,
                    code,
                    message,
                    ..
                } => ProviderError::invalid(
                    code,
                    format!("ACI refused the container group: {message}"),
                ),
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

    fn api(status: u16, code: &str) -> AciError {
        AciError::Api {
            op: "PUT g".into(),
            status,
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn arm_errors_map_to_classes_with_their_code() {
        let p: ProviderError = api(404, codes::RESOURCE_NOT_FOUND).into();
        assert_eq!(p.class(), ErrorClass::NotFound);
        let p: ProviderError = api(429, codes::TOO_MANY_REQUESTS).into();
        assert!(p.is_transient());
        let p: ProviderError = api(409, codes::CONTAINER_GROUP_QUOTA_REACHED).into();
        assert!(p.is_transient());
        let p: ProviderError = api(400, codes::INVALID_IMAGE).into();
        assert_eq!(p.reason(), Some(codes::INVALID_IMAGE));
        assert!(p.message().contains("ACI refused"), "{p}");
        let p: ProviderError = api(403, codes::AUTHORIZATION_FAILED).into();
        assert!(p.is_transient());
        assert!(api(401, codes::EXPIRED_AUTHENTICATION_TOKEN).is_stale_token());
        assert!(api(503, "x").is_retryable() && !api(400, "x").is_retryable());
    }
}
