//! The sources of temporary keys, over HTTP:
//!
//! - RRSA: STS `AssumeRoleWithOIDC` (RPC, version 2015-04-01, anonymous: the OIDC token is
//!   the proof), the token file read again at every refresh since the kubelet rotates it.
//! - The ECS RAM role: the instance metadata service, IMDSv2 style: `PUT /latest/api/token`
//!   (TTL in `X-aliyun-ecs-metadata-token-ttl-seconds`), then the role's keys from
//!   `/latest/meta-data/ram/security-credentials/<role>` with `X-aliyun-ecs-metadata-token`.
//!
//! The wire types are shared with the mock cloud, which answers both.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, Uri, header};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::credentials::{CredentialError, Credentials, Fetch, Issued};
use crate::wire::params::Params;
pub use crate::wire::sts::{
    ASSUME_ROLE_WITH_OIDC, AssumeRoleWithOidcResponse, AssumedRoleUser, DEFAULT_METADATA_ENDPOINT,
    METADATA_ROLES_PATH, METADATA_TOKEN_HEADER, METADATA_TOKEN_PATH, METADATA_TOKEN_TTL_HEADER,
    MetadataRoleCredentials, OidcTokenInfo, STS_VERSION, StsCredentials,
};

/// What the metadata token is asked for (the longest the service grants, 6 h).
const METADATA_TOKEN_TTL_SECS: u32 = 21_600;
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A small HTTP client for the credential endpoints.
struct Http {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    fn new(timeout: Duration) -> Self {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        // Without system roots only plain HTTP works (the metadata service, the mock cloud).
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ),
        };
        let connector = builder.https_or_http().enable_http1().build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// One exchange: status and body. Errors carry no request content (it may be secret).
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<(u16, Bytes), String> {
        let uri: Uri = url.parse().map_err(|e| format!("address {url:?}: {e}"))?;
        let mut request = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{url}: {e:#}"))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| format!("{url}: reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
    }
}

/// Seconds from now until an RFC 3339 `Expiration`; zero if already past.
fn valid_for(expiration: &str) -> Result<Duration, String> {
    let at: jiff::Timestamp = expiration
        .parse()
        .map_err(|_| format!("Expiration {expiration:?} is not RFC 3339"))?;
    Ok(at
        .duration_since(jiff::Timestamp::now())
        .try_into()
        .unwrap_or(Duration::ZERO))
}

/// The service's error answer, without echoing anything else.
fn error_summary(status: u16, body: &[u8]) -> String {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct E {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) if !e.code.is_empty() => format!("HTTP {status}: {}: {}", e.code, e.message),
        _ => format!("HTTP {status}"),
    }
}

/// RRSA: a projected service-account token exchanged for a role's temporary keys.
pub struct Rrsa {
    pub role_arn: String,
    pub oidc_provider_arn: String,
    pub token_file: PathBuf,
    pub role_session_name: String,
    pub duration_secs: u64,
    /// `https://sts.aliyuncs.com`, or the mock cloud.
    pub sts_endpoint: String,
    http: Http,
}

impl Rrsa {
    pub fn new(
        role_arn: String,
        oidc_provider_arn: String,
        token_file: PathBuf,
        role_session_name: String,
        duration_secs: u64,
        sts_endpoint: String,
        timeout: Duration,
    ) -> Self {
        Self {
            role_arn,
            oidc_provider_arn,
            token_file,
            role_session_name,
            duration_secs,
            sts_endpoint,
            http: Http::new(timeout),
        }
    }

    async fn assume(&self) -> Result<Issued, String> {
        // Read at every refresh: the kubelet rotates the projected token.
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| {
                format!(
                    "reading the OIDC token file {}: {e}",
                    self.token_file.display()
                )
            })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(format!(
                "the OIDC token file {} is empty",
                self.token_file.display()
            ));
        }
        let mut p = Params::new();
        p.push("Action", ASSUME_ROLE_WITH_OIDC)
            .push("Version", STS_VERSION)
            .push("Format", "JSON")
            .push(
                "Timestamp",
                jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
            )
            .push("RoleArn", &self.role_arn)
            .push("OIDCProviderArn", &self.oidc_provider_arn)
            .push("OIDCToken", token)
            .push("RoleSessionName", &self.role_session_name)
            .push("DurationSeconds", self.duration_secs.to_string());
        let url = format!("{}/", self.sts_endpoint.trim_end_matches('/'));
        let (status, body) = self
            .http
            .send(
                Method::POST,
                &url,
                &[
                    (
                        header::CONTENT_TYPE.as_str(),
                        "application/x-www-form-urlencoded",
                    ),
                    (header::ACCEPT.as_str(), "application/json"),
                ],
                p.to_form(),
            )
            .await?;
        if status != 200 {
            return Err(format!(
                "{ASSUME_ROLE_WITH_OIDC} for {}: {}",
                self.role_arn,
                error_summary(status, &body)
            ));
        }
        let answer: AssumeRoleWithOidcResponse = serde_json::from_slice(&body)
            .map_err(|e| format!("{ASSUME_ROLE_WITH_OIDC}: unexpected answer: {e}"))?;
        let c = answer.credentials;
        temporary(
            &c.access_key_id,
            &c.access_key_secret,
            &c.security_token,
            &c.expiration,
        )
    }
}

impl Fetch for Rrsa {
    fn name(&self) -> &'static str {
        "rrsa"
    }

    fn describe(&self) -> String {
        format!(
            "RRSA: AssumeRoleWithOIDC for {} at {} with the token in {}",
            self.role_arn,
            self.sts_endpoint,
            self.token_file.display()
        )
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Issued, CredentialError>> {
        Box::pin(async move { self.assume().await.map_err(fetch_error("rrsa")) })
    }
}

/// The RAM role attached to the ECS instance, from its metadata service.
pub struct EcsRamRole {
    /// `None`: the first role the service lists.
    pub role_name: Option<String>,
    pub endpoint: String,
    http: Http,
}

impl EcsRamRole {
    pub fn new(role_name: Option<String>, endpoint: String, timeout: Duration) -> Self {
        Self {
            role_name,
            endpoint,
            http: Http::new(timeout),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Result<Bytes, String> {
        let url = format!("{}{path}", self.endpoint.trim_end_matches('/'));
        let (status, body) = self
            .http
            .send(
                Method::GET,
                &url,
                &[(METADATA_TOKEN_HEADER, token)],
                String::new(),
            )
            .await?;
        if status != 200 {
            return Err(format!("GET {path}: HTTP {status}"));
        }
        Ok(body)
    }

    async fn role_keys(&self) -> Result<Issued, String> {
        let url = format!(
            "{}{METADATA_TOKEN_PATH}",
            self.endpoint.trim_end_matches('/')
        );
        let ttl = METADATA_TOKEN_TTL_SECS.to_string();
        let (status, token) = self
            .http
            .send(
                Method::PUT,
                &url,
                &[(METADATA_TOKEN_TTL_HEADER, &ttl)],
                String::new(),
            )
            .await?;
        if status != 200 {
            return Err(format!("PUT {METADATA_TOKEN_PATH}: HTTP {status}"));
        }
        let token = String::from_utf8_lossy(&token).trim().to_string();
        let role = match &self.role_name {
            Some(role) => role.clone(),
            None => {
                let listed = self.get(METADATA_ROLES_PATH, &token).await?;
                String::from_utf8_lossy(&listed)
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .ok_or("the instance has no RAM role attached")?
                    .to_string()
            }
        };
        let body = self
            .get(&format!("{METADATA_ROLES_PATH}{role}"), &token)
            .await?;
        let c: MetadataRoleCredentials = serde_json::from_slice(&body)
            .map_err(|e| format!("the role {role}'s credentials: unexpected answer: {e}"))?;
        if c.code != "Success" {
            return Err(format!("the role {role}'s credentials: Code {:?}", c.code));
        }
        temporary(
            &c.access_key_id,
            &c.access_key_secret,
            &c.security_token,
            &c.expiration,
        )
    }
}

impl Fetch for EcsRamRole {
    fn name(&self) -> &'static str {
        "ecs_ram_role"
    }

    fn describe(&self) -> String {
        format!(
            "the ECS RAM role {} from the metadata service at {}",
            self.role_name.as_deref().unwrap_or("(the instance's)"),
            self.endpoint
        )
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Issued, CredentialError>> {
        Box::pin(async move { self.role_keys().await.map_err(fetch_error("ecs_ram_role")) })
    }
}

/// Temporary keys (STS's or the metadata service's answer), valid until `expiration`.
fn temporary(
    access_key_id: &str,
    access_key_secret: &str,
    security_token: &str,
    expiration: &str,
) -> Result<Issued, String> {
    Ok(Issued {
        valid_for: Some(valid_for(expiration)?),
        credentials: Credentials::new(access_key_id, access_key_secret, Some(security_token)),
    })
}

/// A source's failure, named by the source.
fn fetch_error(from: &'static str) -> impl Fn(String) -> CredentialError {
    move |message| CredentialError::Fetch { from, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_parses() {
        let body = r#"{"RequestId":"3D57EAD2","OIDCTokenInfo":{"Subject":"KryrkIdjylZb7agUgCEf****","Issuer":"https://dev-xxxxxx.okta.com","ClientIds":"496271242565057****","ExpirationTime":"2021-10-20T04:27:09Z","IssuanceTime":"2021-10-20T03:27:09Z"},"AssumedRoleUser":{"AssumedRoleId":"33157794895460****","Arn":"acs:ram::113511544585****:role/testoidc/TestOidcAssumedRoleSession"},"Credentials":{"SecurityToken":"CAIShwJ1q6Ft5B2yfSjIr5bSEsj4g7BihPWGWHz****","Expiration":"2021-10-20T04:27:09Z","AccessKeySecret":"CVwjCkNzTMupZ8NbTCxCBRq3K16jtcWFTJAyBEv2****","AccessKeyId":"STS.NUgYrLnoC37mZZCNnAbez****"}}"#;
        let a: AssumeRoleWithOidcResponse = serde_json::from_str(body).unwrap();
        assert_eq!(a.credentials.access_key_id, "STS.NUgYrLnoC37mZZCNnAbez****");
        assert_eq!(a.oidc_token_info.issuer, "https://dev-xxxxxx.okta.com");
        assert_eq!(valid_for(&a.credentials.expiration), Ok(Duration::ZERO));
        assert!(valid_for("tomorrow").is_err());
        // Printed (a log line, a panic message), the answer shows neither secret nor token.
        let printed = format!("{a:?}");
        assert!(printed.contains("STS.NUgYrLnoC37mZZCNnAbez"), "{printed}");
        assert!(!printed.contains("CVwjCkNzTMupZ8Nb") && !printed.contains("CAIShwJ1q6Ft5B2y"));
        let m: MetadataRoleCredentials = serde_json::from_str(
            r#"{"Code":"Success","AccessKeyId":"STS.id","AccessKeySecret":"s3cr3t","SecurityToken":"t0k3n","Expiration":"2021-10-20T04:27:09Z"}"#,
        )
        .unwrap();
        let printed = format!("{m:?}");
        assert!(
            !printed.contains("s3cr3t") && !printed.contains("t0k3n"),
            "{printed}"
        );
    }

    #[test]
    fn errors_show_the_code_not_the_body() {
        let body = br#"{"Code":"InvalidParameter.OIDCToken","Message":"bad","Token":"x"}"#;
        assert_eq!(
            error_summary(400, body),
            "HTTP 400: InvalidParameter.OIDCToken: bad"
        );
        assert_eq!(error_summary(502, b"<html>"), "HTTP 502");
    }
}
