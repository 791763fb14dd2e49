//! Which token source the provider uses, from its configuration and the environment the
//! Azure tools read:
//!
//! | variable | meaning |
//! |---|---|
//! | `AZURE_TENANT_ID` | the Entra tenant |
//! | `AZURE_CLIENT_ID` | the app (workload identity, client secret) or the user-assigned managed identity |
//! | `AZURE_FEDERATED_TOKEN_FILE` | workload identity's projected token |
//! | `AZURE_CLIENT_SECRET` | a service principal's secret |
//! | `AZURE_AUTHORITY_HOST` | the login host (default `https://login.microsoftonline.com`) |
//!
//! A setting in the configuration wins over the variable. With `source: auto` (the default)
//! the first that is complete is used, in this order: workload identity (tenant, client id,
//! token file), client secret (tenant, client id, secret), managed identity (always possible;
//! its endpoint answers only on Azure). A source asked for by name that lacks a setting is a
//! configuration error naming the missing one.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::credentials::{CredentialError, Secret, StaticToken, TokenCache, token_cache};
use crate::credentials_sources::{
    ClientSecret, DEFAULT_AUTHORITY_HOST, DEFAULT_IMDS_ENDPOINT, ManagedIdentity, WorkloadIdentity,
};
use crate::http::Http;
use vk_core::provider::credential_cache::CredentialSource;

/// Reads one environment variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment; an empty value counts as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Which source to use (`aci: credentials: source:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    #[default]
    Auto,
    WorkloadIdentity,
    ClientSecret,
    ManagedIdentity,
    /// A fixed bearer token from `AZURE_ACCESS_TOKEN` (a quick try, the simulator).
    StaticToken,
}

/// `aci: credentials:`. Secrets never come from here: the client secret is read from
/// `client_secret_file` or `AZURE_CLIENT_SECRET`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct CredentialsConfig {
    pub source: SourceKind,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub federated_token_file: Option<PathBuf>,
    pub client_secret_file: Option<PathBuf>,
    /// `https://login.microsoftonline.com`, or the simulator's AAD face.
    pub authority_host: Option<String>,
    /// The managed identity token endpoint (default IMDS).
    pub managed_identity_endpoint: Option<String>,
    /// A user-assigned managed identity's client id (default `client_id`, else the system one).
    pub managed_identity_client_id: Option<String>,
}

fn config_error(from: &'static str, message: impl Into<String>) -> CredentialError {
    CredentialError::Config {
        from,
        message: message.into(),
    }
}

/// The token cache over the source the configuration and `env` pick.
pub fn resolve(
    config: &CredentialsConfig,
    env: Env<'_>,
    http: &Http,
) -> Result<Arc<TokenCache>, CredentialError> {
    let source = source(config, env, http)?;
    tracing::info!(
        source = source.name(),
        "Azure credentials: {}",
        source.describe()
    );
    Ok(token_cache(source))
}

fn source(
    config: &CredentialsConfig,
    env: Env<'_>,
    http: &Http,
) -> Result<Box<dyn CredentialSource<Secret, CredentialError>>, CredentialError> {
    let tenant = config.tenant_id.clone().or_else(|| env("AZURE_TENANT_ID"));
    let client = config.client_id.clone().or_else(|| env("AZURE_CLIENT_ID"));
    let token_file = config
        .federated_token_file
        .clone()
        .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from));
    let authority = config
        .authority_host
        .clone()
        .or_else(|| env("AZURE_AUTHORITY_HOST"))
        .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.into());
    let secret = || -> Result<Option<Secret>, CredentialError> {
        if let Some(path) = &config.client_secret_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                config_error(
                    "client_secret",
                    format!("reading client_secret_file {}: {e}", path.display()),
                )
            })?;
            return Ok(Some(Secret::new(text.trim())).filter(|s| !s.is_empty()));
        }
        Ok(env("AZURE_CLIENT_SECRET").map(Secret::new))
    };
    let workload = |tenant: String,
                    client: String,
                    file: PathBuf|
     -> Box<dyn CredentialSource<Secret, CredentialError>> {
        Box::new(WorkloadIdentity {
            authority: authority.clone(),
            tenant_id: tenant,
            client_id: client,
            token_file: file,
            http: http.clone(),
        })
    };
    let with_secret = |tenant: String,
                       client: String,
                       secret: Secret|
     -> Box<dyn CredentialSource<Secret, CredentialError>> {
        Box::new(ClientSecret {
            authority: authority.clone(),
            tenant_id: tenant,
            client_id: client,
            secret,
            http: http.clone(),
        })
    };
    let managed = || -> Box<dyn CredentialSource<Secret, CredentialError>> {
        Box::new(ManagedIdentity {
            endpoint: config
                .managed_identity_endpoint
                .clone()
                .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.into()),
            client_id: config
                .managed_identity_client_id
                .clone()
                .or_else(|| client.clone()),
            http: http.clone(),
        })
    };
    let need = |from: &'static str, what: &str, v: Option<String>| {
        v.ok_or_else(|| config_error(from, format!("{what} is not set")))
    };
    match config.source {
        SourceKind::Auto => {
            if let (Some(t), Some(c), Some(f)) = (&tenant, &client, &token_file) {
                return Ok(workload(t.clone(), c.clone(), f.clone()));
            }
            if let (Some(t), Some(c), Some(s)) = (&tenant, &client, secret()?) {
                return Ok(with_secret(t.clone(), c.clone(), s));
            }
            Ok(managed())
        }
        SourceKind::WorkloadIdentity => {
            let from = "workload_identity";
            let t = need(from, "the tenant (tenant_id or AZURE_TENANT_ID)", tenant)?;
            let c = need(from, "the client id (client_id or AZURE_CLIENT_ID)", client)?;
            let f = token_file.ok_or_else(|| {
                config_error(
                    from,
                    "the token file (federated_token_file or AZURE_FEDERATED_TOKEN_FILE) is not set",
                )
            })?;
            Ok(workload(t, c, f))
        }
        SourceKind::ClientSecret => {
            let from = "client_secret";
            let t = need(from, "the tenant (tenant_id or AZURE_TENANT_ID)", tenant)?;
            let c = need(
                from,
                "the client id (client_id or AZURE_CLIENT_ID)",
                client.clone(),
            )?;
            let s = secret()?.ok_or_else(|| {
                config_error(
                    from,
                    "the secret (client_secret_file or AZURE_CLIENT_SECRET) is not set",
                )
            })?;
            Ok(with_secret(t, c, s))
        }
        SourceKind::ManagedIdentity => Ok(managed()),
        SourceKind::StaticToken => {
            let token = env("AZURE_ACCESS_TOKEN")
                .ok_or_else(|| config_error("static", "AZURE_ACCESS_TOKEN is not set"))?;
            Ok(Box::new(StaticToken(Secret::new(token))))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::http::Tls;

    fn pick(config: &CredentialsConfig, vars: &[(&str, &str)]) -> Result<String, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| vars.get(k).cloned();
        let http = Http::new(&Tls::new(None).unwrap(), std::time::Duration::from_secs(1));
        source(config, &env, &http)
            .map(|s| format!("{}: {}", s.name(), s.describe()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn auto_prefers_workload_identity_then_secret_then_managed_identity() {
        let auto = CredentialsConfig::default();
        let wi = [
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_CLIENT_SECRET", "s3cr3t"),
        ];
        let got = pick(&auto, &wi).unwrap();
        assert!(got.starts_with("workload_identity"), "{got}");
        assert!(got.contains("/var/run/token") && got.contains(DEFAULT_AUTHORITY_HOST));
        let got = pick(
            &auto,
            &wi[..2].iter().chain(&wi[3..]).cloned().collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(got.starts_with("client_secret"), "{got}");
        assert!(!got.contains("s3cr3t"), "{got}");
        let got = pick(&auto, &[("AZURE_CLIENT_ID", "mi")]).unwrap();
        assert!(
            got.starts_with("managed_identity") && got.contains("mi"),
            "{got}"
        );
        let got = pick(&auto, &[]).unwrap();
        assert!(got.contains(DEFAULT_IMDS_ENDPOINT), "{got}");
    }

    #[test]
    fn config_wins_and_named_sources_say_what_is_missing() {
        let config = CredentialsConfig {
            source: SourceKind::WorkloadIdentity,
            tenant_id: Some("cfg-tenant".into()),
            authority_host: Some("https://127.0.0.1:9/".into()),
            ..Default::default()
        };
        let err = pick(&config, &[("AZURE_TENANT_ID", "t")]).unwrap_err();
        assert!(err.contains("client id"), "{err}");
        let got = pick(
            &config,
            &[
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
            ],
        )
        .unwrap();
        assert!(
            got.contains("cfg-tenant") && got.contains("127.0.0.1:9"),
            "{got}"
        );
        let secret = CredentialsConfig {
            source: SourceKind::ClientSecret,
            ..Default::default()
        };
        let err = pick(
            &secret,
            &[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")],
        )
        .unwrap_err();
        assert!(err.contains("AZURE_CLIENT_SECRET"), "{err}");
        let missing_file = CredentialsConfig {
            client_secret_file: Some("/nonexistent/secret".into()),
            ..secret
        };
        let err = pick(
            &missing_file,
            &[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")],
        )
        .unwrap_err();
        assert!(err.contains("/nonexistent/secret"), "{err}");
        let yaml =
            "source: managed_identity\nmanaged_identity_endpoint: http://127.0.0.1:1/token\n";
        let config: CredentialsConfig = serde_yaml::from_str(yaml).unwrap();
        assert!(pick(&config, &[]).unwrap().contains("127.0.0.1:1"));
        assert!(serde_yaml::from_str::<CredentialsConfig>("source: kerberos\n").is_err());
    }
}
