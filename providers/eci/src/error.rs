//! Errors of ECI calls, and what they mean for a pod: the service's error codes decide
//! whether vk-core retries (throttling, 5xx, network), fails the pod (invalid parameters) or
//! treats the instance as gone (NotFound).

use vk_core::metrics::CallOutcome;
use vk_core::provider::ProviderError;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum EciError {
    #[error("{action}: {code} (HTTP {status}): {message} [RequestId {request_id}]")]
    Api {
        action: String,
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    #[error("{action}: {message}")]
    Transport { action: String, message: String },
    #[error("{action}: unexpected answer: {message}")]
    Decode { action: String, message: String },
    #[error("ECI client configuration: {0}")]
    Config(String),
    /// No valid keys to sign with (a refresh failed and the previous keys expired).
    #[error("{0}")]
    Credentials(#[from] crate::credentials::CredentialError),
}

impl EciError {
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Throttling, a server-side failure or the network: worth another try.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, code, .. } => {
                *status >= 500
                    || self.is_throttling()
                    || code == "ServiceUnavailable"
                    || code == "InternalError"
            }
            Self::Transport { .. } => true,
            Self::Decode { .. } | Self::Config(_) | Self::Credentials(_) => false,
        }
    }

    /// How a call that failed so ended, for the calls metric.
    pub fn outcome(&self) -> CallOutcome {
        match self {
            _ if self.is_throttling() => CallOutcome::Throttled,
            Self::Api { status, code, .. }
                if *status >= 500 || code == "ServiceUnavailable" || code == "InternalError" =>
            {
                CallOutcome::ServerError
            }
            Self::Api { .. } => CallOutcome::ClientError,
            // An answer that could not be read is the service's fault.
            Self::Decode { .. } => CallOutcome::ServerError,
            Self::Transport { .. } | Self::Config(_) | Self::Credentials(_) => CallOutcome::Network,
        }
    }

    /// The service refused an STS token as expired.
    pub fn is_expired_token(&self) -> bool {
        self.code() == Some(crate::wire::api::errors::SECURITY_TOKEN_EXPIRED.0)
    }

    /// The service's flow control refused the call (it was authenticated first).
    pub fn is_throttling(&self) -> bool {
        self.code().is_some_and(|c| c.starts_with("Throttling"))
    }

    /// The resource named in the call does not exist (not the action or the access key).
    pub fn is_not_found(&self) -> bool {
        self.code().is_some_and(|c| {
            c.ends_with(".NotFound")
                && !c.starts_with("InvalidAccessKeyId")
                && !c.starts_with("InvalidAction")
        })
    }
}

impl From<EciError> for ProviderError {
    fn from(e: EciError) -> Self {
        if e.is_not_found() {
            return ProviderError::NotFound(e.to_string()).caused_by(e);
        }
        match e.code() {
            Some(code)
                if code.starts_with("InvalidParameter")
                    || code.starts_with("MissingParameter")
                    || code == "IdempotentParameterMismatch" =>
            {
                let message = match &e {
                    EciError::Api { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                let code = code.to_string();
                ProviderError::invalid(&code, message).caused_by(e)
            }
            // Throttling, 5xx, the network, and also auth or status conflicts: nothing about
            // the pod is wrong, so the pod controller retries with backoff.
            _ => ProviderError::transient_from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vk_core::provider::ErrorClass;

    fn api(status: u16, code: &str) -> EciError {
        EciError::Api {
            action: "A".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn errors_map_to_provider_classes() {
        let class = |e: EciError| match ProviderError::from(e).class() {
            ErrorClass::Transient => "transient",
            ErrorClass::InvalidSpec => "invalid",
            ErrorClass::NotFound => "notfound",
            ErrorClass::Unsupported => "unsupported",
        };
        assert_eq!(class(api(400, "Throttling.User")), "transient");
        assert_eq!(class(api(503, "ServiceUnavailable")), "transient");
        assert_eq!(class(api(500, "InternalError")), "transient");
        assert_eq!(class(api(400, "InvalidParameter")), "invalid");
        assert_eq!(class(api(400, "MissingParameter")), "invalid");
        assert_eq!(
            class(api(404, "InvalidContainerGroup.NotFound")),
            "notfound"
        );
        assert_eq!(class(api(404, "InvalidAccessKeyId.NotFound")), "transient");
        assert_eq!(class(api(400, "SignatureDoesNotMatch")), "transient");
        assert_eq!(
            class(EciError::Transport {
                action: "A".into(),
                message: "refused".into()
            }),
            "transient"
        );
        assert!(api(400, "Throttling.User").is_retryable());
        assert!(api(400, "Throttling.User").is_throttling());
        assert!(!api(503, "ServiceUnavailable").is_throttling());
        assert!(api(502, "HTTP502").is_retryable());
        assert!(!api(400, "InvalidParameter").is_retryable());
        assert!(!api(400, "SignatureDoesNotMatch").is_retryable());
    }

    #[test]
    fn failed_calls_have_an_outcome() {
        assert_eq!(
            api(400, "Throttling.User").outcome(),
            CallOutcome::Throttled
        );
        assert_eq!(api(503, "HTTP503").outcome(), CallOutcome::ServerError);
        assert_eq!(
            api(400, "ServiceUnavailable").outcome(),
            CallOutcome::ServerError
        );
        assert_eq!(
            api(400, "InvalidParameter").outcome(),
            CallOutcome::ClientError
        );
        assert_eq!(
            api(404, "InvalidContainerGroup.NotFound").outcome(),
            CallOutcome::ClientError
        );
        let transport = EciError::Transport {
            action: "A".into(),
            message: "refused".into(),
        };
        assert_eq!(transport.outcome(), CallOutcome::Network);
    }
}
