use std::path::PathBuf;

/// Everything that can go wrong while obtaining, storing or serving the kubelet certificate.
///
/// Variants name the file, the object or the step, so a log line alone tells the operator what
/// to fix.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// PEM text that does not hold what it should (`what` names the file or the API field).
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    /// A certificate or key that parses as PEM but is unusable (`what` names its origin).
    #[error("{what}: {reason}")]
    InvalidCertificate { what: String, reason: String },
    #[error("{action}: {source}")]
    Generate {
        action: &'static str,
        source: rcgen::Error,
    },
    #[error("Kubernetes API: {action}: {source}")]
    Kube { action: String, source: kube::Error },
    #[error(
        "CertificateSigningRequest {name} was denied (reason: {reason}; message: {message}); \
         the node has no serving certificate"
    )]
    CsrDenied {
        name: String,
        reason: String,
        message: String,
    },
    #[error(
        "CertificateSigningRequest {name} failed to be signed (reason: {reason}; message: {message})"
    )]
    CsrFailed {
        name: String,
        reason: String,
        message: String,
    },
    #[error("CertificateSigningRequest {name} was deleted before a certificate was issued")]
    CsrDeleted { name: String },
    #[error(
        "CertificateSigningRequest {name} exists but is not ours (signer {signer}); delete it or \
         remove the pending key {key}"
    )]
    CsrConflict {
        name: String,
        signer: String,
        key: PathBuf,
    },
    #[error("the apiserver's client CA: {0}")]
    ClientCa(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("the serving certificate config is invalid: {0}")]
    Config(String),
    #[error("cancelled while obtaining the serving certificate")]
    Cancelled,
}

impl CertError {
    pub(crate) fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn pem(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Pem {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl ToString) -> Self {
        Self::InvalidCertificate {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
