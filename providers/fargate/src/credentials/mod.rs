//! The AWS credentials every call signs with, as operators provide them, kept fresh.
//!
//! | source | how it is chosen (`fargate: credentials: source: auto`, in this order) |
//! |---|---|
//! | `env` | `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) |
//! | `irsa` | `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE` (EKS IAM roles for service accounts): STS `AssumeRoleWithWebIdentity`, the token file re-read at every refresh |
//! | `pod_identity` | `AWS_CONTAINER_CREDENTIALS_FULL_URI` (+ `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`): EKS Pod Identity's agent, or the ECS task role endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) |
//! | `imds` | the instance profile through IMDSv2 (a session token first, then the role's keys); always possible, answers only on EC2 |
//!
//! A setting in the configuration wins over the variable; a source asked for by name that
//! lacks a setting is a configuration error naming it. Temporary credentials are refreshed
//! before they expire ([`vk_core::provider::credential_cache`]); a refused signature drops
//! them ([`Credentials::invalidate`]). No key, token or secret is ever logged or put in an
//! error message: [`Secret`] prints as `***`.

mod sources;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use vk_core::provider::credential_cache::{self, CredentialCache, CredentialSource, Issued};
use vk_core::provider::http::Http;

pub use sources::{ContainerEndpoint, Imds, WebIdentity};
pub use vk_core::provider::Secret;

/// Keys to sign with.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Temporary credentials only.
    pub session_token: Option<Secret>,
}

/// Why no usable credentials could be had. Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No source is configured (or the one asked for lacks a setting).
    #[error("AWS credentials ({from}): {message}")]
    Config { from: &'static str, message: String },
    /// Asking for credentials failed (and no still-valid ones were left).
    #[error("getting AWS credentials ({from}) failed: {message}")]
    Fetch { from: &'static str, message: String },
}

/// The credentials shared by every call of the provider.
pub type Credentials = CredentialCache<AwsCredentials, CredentialError>;

/// What [`Credentials::health`] found (for the Node's `CloudCredentials` condition).
pub type CredentialHealth = credential_cache::CredentialHealth<CredentialError>;

/// The cache over `source`.
pub fn cache(
    source: Box<dyn CredentialSource<AwsCredentials, CredentialError>>,
) -> Arc<Credentials> {
    Credentials::new("AWS credentials", source)
}

/// Fixed keys (tests, the simulator's keys).
pub fn fixed(access_key_id: &str, secret_access_key: &str) -> Arc<Credentials> {
    cache(Box::new(Fixed {
        name: "static",
        keys: AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret_access_key),
            session_token: None,
        },
    }))
}

/// Keys that do not change (from the environment or the configuration).
pub struct Fixed {
    pub name: &'static str,
    pub keys: AwsCredentials,
}

impl CredentialSource<AwsCredentials, CredentialError> for Fixed {
    fn name(&self) -> &'static str {
        self.name
    }

    fn describe(&self) -> String {
        format!("fixed keys (access key {})", self.keys.access_key_id)
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Issued<AwsCredentials>, CredentialError>> {
        Box::pin(async move {
            Ok(Issued {
                value: self.keys.clone(),
                valid_for: Duration::from_secs(100 * 365 * 24 * 3600),
            })
        })
    }
}

/// Which source to use (`fargate: credentials: source:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    #[default]
    Auto,
    Env,
    Irsa,
    PodIdentity,
    Imds,
}

/// `fargate: credentials:`. Secrets never come from here: keys come from the environment,
/// tokens from their files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct CredentialsConfig {
    pub source: SourceKind,
    /// IRSA: the role to assume (default `AWS_ROLE_ARN`).
    pub role_arn: Option<String>,
    /// IRSA: the projected service-account token (default `AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub web_identity_token_file: Option<PathBuf>,
    /// IRSA: the session name (default `AWS_ROLE_SESSION_NAME`, else `vk-serverless-<time>`).
    pub role_session_name: Option<String>,
    /// STS (default `AWS_ENDPOINT_URL_STS`, else `https://sts.<region>.amazonaws.com`).
    pub sts_endpoint: Option<String>,
    /// Pod Identity / ECS task role: the full URI (default `AWS_CONTAINER_CREDENTIALS_FULL_URI`,
    /// else `http://169.254.170.2` + `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
    pub container_credentials_uri: Option<String>,
    /// Pod Identity: the file holding the agent's authorization token (default
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), re-read at every refresh.
    pub container_authorization_token_file: Option<PathBuf>,
    /// IMDS (default `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254`).
    pub imds_endpoint: Option<String>,
}

/// Reads one environment variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment; an empty value counts as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn config_error(from: &'static str, message: impl Into<String>) -> CredentialError {
    CredentialError::Config {
        from,
        message: message.into(),
    }
}

/// The credentials the configuration and `env` pick, in `region`.
pub fn resolve(
    config: &CredentialsConfig,
    region: &str,
    env: Env<'_>,
    http: &Http,
) -> Result<Arc<Credentials>, CredentialError> {
    let source = source(config, region, env, http)?;
    tracing::info!(
        source = source.name(),
        "AWS credentials: {}",
        source.describe()
    );
    Ok(cache(source))
}

type Source = Box<dyn CredentialSource<AwsCredentials, CredentialError>>;

fn source(
    config: &CredentialsConfig,
    region: &str,
    env: Env<'_>,
    http: &Http,
) -> Result<Source, CredentialError> {
    let env_keys = || -> Option<Result<Source, CredentialError>> {
        let id = env("AWS_ACCESS_KEY_ID")?;
        let Some(secret) = env("AWS_SECRET_ACCESS_KEY") else {
            return Some(Err(config_error(
                "env",
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
            )));
        };
        Some(Ok(Box::new(Fixed {
            name: "env",
            keys: AwsCredentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: env("AWS_SESSION_TOKEN").map(Secret::new),
            },
        })))
    };
    let irsa = || -> Option<Source> {
        let role_arn = config.role_arn.clone().or_else(|| env("AWS_ROLE_ARN"))?;
        let token_file = config
            .web_identity_token_file
            .clone()
            .or_else(|| env("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from))?;
        let sts = config
            .sts_endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_STS"))
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        let session_name = config
            .role_session_name
            .clone()
            .or_else(|| env("AWS_ROLE_SESSION_NAME"));
        Some(Box::new(WebIdentity {
            role_arn,
            token_file,
            session_name,
            sts_endpoint: sts,
            http: http.clone(),
        }))
    };
    let container = || -> Option<Source> {
        let uri = config
            .container_credentials_uri
            .clone()
            .or_else(|| env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
            .or_else(|| {
                env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                    .map(|rel| format!("http://169.254.170.2{rel}"))
            })?;
        let token_file = config
            .container_authorization_token_file
            .clone()
            .or_else(|| env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from));
        Some(Box::new(ContainerEndpoint {
            uri,
            token_file,
            http: http.clone(),
        }))
    };
    let imds = || -> Source {
        let endpoint = config
            .imds_endpoint
            .clone()
            .or_else(|| env("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
            .unwrap_or_else(|| sources::DEFAULT_IMDS_ENDPOINT.to_string());
        Box::new(Imds {
            endpoint,
            http: http.clone(),
        })
    };
    match config.source {
        SourceKind::Auto => {
            if let Some(keys) = env_keys() {
                return keys;
            }
            Ok(irsa().or_else(container).unwrap_or_else(imds))
        }
        SourceKind::Env => env_keys().unwrap_or_else(|| {
            Err(config_error(
                "env",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
            ))
        }),
        SourceKind::Irsa => irsa().ok_or_else(|| {
            config_error(
                "irsa",
                "needs role_arn (or AWS_ROLE_ARN) and web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN_FILE)",
            )
        }),
        SourceKind::PodIdentity => container().ok_or_else(|| {
            config_error(
                "pod_identity",
                "needs container_credentials_uri (or AWS_CONTAINER_CREDENTIALS_FULL_URI / AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)",
            )
        }),
        SourceKind::Imds => Ok(imds()),
    }
}

#[cfg(test)]
mod tests;
