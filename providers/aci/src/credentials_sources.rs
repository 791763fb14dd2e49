//! The token sources, over the documented endpoints (no Azure SDK: its identity crate brings
//! its own HTTP stack and TLS settings, where the provider needs its one client with its extra
//! CA, and three OAuth2 exchanges are small):
//!
//! - [`WorkloadIdentity`]: the client-credentials grant with a federated assertion, the
//!   projected service-account token read from `AZURE_FEDERATED_TOKEN_FILE` at every refresh
//!   (the kubelet rotates it): `POST {authority}/{tenant}/oauth2/v2.0/token`, form
//!   `grant_type=client_credentials, client_id, scope, client_assertion,
//!   client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
//! - [`ClientSecret`]: the same grant with `client_secret`.
//! - [`ManagedIdentity`]: the instance metadata service, `GET
//!   /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...[&client_id=...]`
//!   with `Metadata: true`.
//!
//! Errors carry the identity provider's error code and description, never the request.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use hyper::Method;

use crate::credentials::{AccessToken, CredentialError, Secret};
use crate::http::Http;
use crate::wire;
use vk_core::provider::credential_cache::CredentialSource;

/// Public Azure's authority host.
pub const DEFAULT_AUTHORITY_HOST: &str = wire::AUTHORITY_HOST;
/// The IMDS token endpoint.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// What ARM tokens are for: the v2 scope and the v1 resource.
pub const ARM_SCOPE: &str = wire::ARM_SCOPE;
pub const ARM_RESOURCE: &str = wire::ARM_RESOURCE;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A token answer (AAD v2 or IMDS: [`wire::ImdsToken`] reads both, its numbers from JSON
/// numbers or strings), or why it is not one ([`wire::AadError`]).
pub fn parse_token(status: u16, body: &[u8]) -> Result<AccessToken, String> {
    if !(200..300).contains(&status) {
        return Err(match serde_json::from_slice::<wire::AadError>(body) {
            Ok(e) if !e.error.is_empty() => format!(
                "HTTP {status}: {}: {}",
                e.error,
                e.error_description.lines().next().unwrap_or("")
            ),
            _ => format!("HTTP {status}"),
        });
    }
    let token: wire::ImdsToken =
        serde_json::from_slice(body).map_err(|e| format!("not a token answer: {e}"))?;
    if token.access_token.is_empty() {
        return Err("the answer has no access_token".into());
    }
    let valid_for = if token.expires_in > 0 {
        token.expires_in
    } else if token.expires_on > 0 {
        let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
        token.expires_on.saturating_sub(now)
    } else {
        return Err("the answer has neither expires_in nor expires_on".into());
    };
    Ok(AccessToken {
        value: Secret::new(token.access_token),
        valid_for: Duration::from_secs(valid_for),
    })
}

/// The AAD v2 token endpoint of a tenant.
fn token_url(authority: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

async fn client_credentials(
    http: &Http,
    from: &'static str,
    url: &str,
    form: String,
) -> Result<AccessToken, CredentialError> {
    let fail = |message: String| CredentialError::Fetch { from, message };
    let answer = http
        .send(
            Method::POST,
            url,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "application/json"),
            ],
            Some(Bytes::from(form)),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
    parse_token(answer.status, &answer.body).map_err(|e| fail(format!("{url}: {e}")))
}

/// Workload identity: a Kubernetes service-account token federated with an Entra app.
pub struct WorkloadIdentity {
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub token_file: PathBuf,
    pub http: Http,
}

impl CredentialSource<Secret, CredentialError> for WorkloadIdentity {
    fn name(&self) -> &'static str {
        "workload_identity"
    }

    fn describe(&self) -> String {
        format!(
            "workload identity: client {} of tenant {} with the token file {} at {}",
            self.client_id,
            self.tenant_id,
            self.token_file.display(),
            self.authority
        )
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            let from = self.name();
            // Read at every refresh: the kubelet rotates the projected token.
            let assertion = tokio::fs::read_to_string(&self.token_file)
                .await
                .map_err(|e| CredentialError::Fetch {
                    from,
                    message: format!(
                        "reading the federated token file {}: {e}",
                        self.token_file.display()
                    ),
                })?;
            let assertion = assertion.trim();
            if assertion.is_empty() {
                return Err(CredentialError::Fetch {
                    from,
                    message: format!(
                        "the federated token file {} is empty",
                        self.token_file.display()
                    ),
                });
            }
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &self.client_id)
                .append_pair("scope", ARM_SCOPE)
                .append_pair("client_assertion_type", ASSERTION_TYPE)
                .append_pair("client_assertion", assertion)
                .finish();
            let url = token_url(&self.authority, &self.tenant_id);
            client_credentials(&self.http, from, &url, form).await
        })
    }
}

/// A service principal's client secret.
pub struct ClientSecret {
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub secret: Secret,
    pub http: Http,
}

impl CredentialSource<Secret, CredentialError> for ClientSecret {
    fn name(&self) -> &'static str {
        "client_secret"
    }

    fn describe(&self) -> String {
        format!(
            "the client secret of client {} of tenant {} at {}",
            self.client_id, self.tenant_id, self.authority
        )
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &self.client_id)
                .append_pair("scope", ARM_SCOPE)
                .append_pair("client_secret", self.secret.expose())
                .finish();
            let url = token_url(&self.authority, &self.tenant_id);
            client_credentials(&self.http, self.name(), &url, form).await
        })
    }
}

/// The managed identity of the VM (or of a user-assigned identity by its client id).
pub struct ManagedIdentity {
    /// The token endpoint (default [`DEFAULT_IMDS_ENDPOINT`]).
    pub endpoint: String,
    pub client_id: Option<String>,
    pub http: Http,
}

impl CredentialSource<Secret, CredentialError> for ManagedIdentity {
    fn name(&self) -> &'static str {
        "managed_identity"
    }

    fn describe(&self) -> String {
        match &self.client_id {
            Some(id) => format!("the managed identity {id} at {}", self.endpoint),
            None => format!("the system-assigned managed identity at {}", self.endpoint),
        }
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            let from = self.name();
            let query = {
                let mut query = form_urlencoded::Serializer::new(String::new());
                query
                    .append_pair("api-version", "2018-02-01")
                    .append_pair("resource", ARM_RESOURCE);
                if let Some(id) = &self.client_id {
                    query.append_pair("client_id", id);
                }
                query.finish()
            };
            let url = format!("{}?{query}", self.endpoint);
            let answer = self
                .http
                .send(Method::GET, &url, &[("Metadata", "true")], None)
                .await
                .map_err(|e| CredentialError::Fetch {
                    from,
                    message: e.to_string(),
                })?;
            parse_token(answer.status, &answer.body).map_err(|e| CredentialError::Fetch {
                from,
                message: format!("{}: {e}", self.endpoint),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_of_both_endpoints_parse() {
        let v2 = br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"abc"}"#;
        let t = parse_token(200, v2).unwrap();
        assert_eq!(t.value.expose(), "abc");
        assert_eq!(t.valid_for, Duration::from_secs(3599));
        let imds = br#"{"access_token":"x","expires_in":"86399","expires_on":"1700000000","resource":"https://management.azure.com/","token_type":"Bearer"}"#;
        assert_eq!(parse_token(200, imds).unwrap().valid_for.as_secs(), 86399);
        let on = format!(
            r#"{{"access_token":"x","expires_on":"{}"}}"#,
            jiff::Timestamp::now().as_second() + 600
        );
        let left = parse_token(200, on.as_bytes()).unwrap().valid_for.as_secs();
        assert!((590..=600).contains(&left), "{left}");
    }

    #[test]
    fn token_errors_name_the_code_and_never_panic() {
        let err = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x","error_codes":[7000215]}"#;
        let e = parse_token(401, err).unwrap_err();
        assert!(e.contains("invalid_client: AADSTS7000215"), "{e}");
        assert!(!e.contains("Trace"), "{e}");
        assert_eq!(parse_token(500, b"<html>").unwrap_err(), "HTTP 500");
        assert!(parse_token(200, b"{}").is_err());
        assert!(parse_token(200, br#"{"access_token":"a"}"#).is_err());
        assert!(parse_token(200, b"not json").is_err());
    }
}
