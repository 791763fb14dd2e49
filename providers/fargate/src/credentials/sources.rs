//! The sources that fetch temporary credentials: STS for IRSA, the container credentials
//! endpoint (EKS Pod Identity, ECS task roles) and IMDSv2. Each answer's `Expiration` sets how
//! long the keys are used.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use hyper::Method;
use serde::Deserialize;
use vk_core::provider::credential_cache::{CredentialSource, Issued};
use vk_core::provider::http::Http;

use super::{AwsCredentials, CredentialError, Secret};
use crate::wire::sts;

pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// How long an IMDSv2 session token is asked for.
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";

/// How long keys without an `Expiration` are used before they are fetched again.
const UNDATED_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// The time left until `expiration` (ISO 8601); keys already expired are an error.
fn valid_for(from: &'static str, expiration: &str) -> Result<Duration, CredentialError> {
    let fail = |message: String| CredentialError::Fetch { from, message };
    let at: jiff::Timestamp = expiration
        .trim()
        .parse()
        .map_err(|e| fail(format!("the credentials' Expiration {expiration:?}: {e}")))?;
    let left = at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    if left <= 0 {
        return Err(fail(format!(
            "the credentials handed out expired already ({expiration})"
        )));
    }
    Ok(Duration::from_millis(left.unsigned_abs()))
}

/// At most this much of an error answer goes into a message (never a success's body).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// IRSA: a projected service-account token exchanged at STS for a role's keys.
pub struct WebIdentity {
    pub role_arn: String,
    pub token_file: PathBuf,
    pub session_name: Option<String>,
    pub sts_endpoint: String,
    pub http: Http,
}

impl CredentialSource<AwsCredentials, CredentialError> for WebIdentity {
    fn name(&self) -> &'static str {
        "irsa"
    }

    fn describe(&self) -> String {
        format!(
            "role {} through STS AssumeRoleWithWebIdentity at {} with the token in {}",
            self.role_arn,
            self.sts_endpoint,
            self.token_file.display()
        )
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Issued<AwsCredentials>, CredentialError>> {
        Box::pin(async move {
            let fail = |message: String| CredentialError::Fetch {
                from: "irsa",
                message,
            };
            let token = tokio::fs::read_to_string(&self.token_file)
                .await
                .map_err(|e| {
                    fail(format!(
                        "reading the web identity token {}: {e}",
                        self.token_file.display()
                    ))
                })?;
            let call = sts::AssumeRoleWithWebIdentity {
                role_arn: self.role_arn.clone(),
                role_session_name: self.session_name.clone().unwrap_or_else(|| {
                    format!("vk-serverless-{}", jiff::Timestamp::now().as_second())
                }),
                web_identity_token: token.trim().to_string(),
                duration_seconds: None,
            };
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(call.to_form())
                .finish();
            let url = format!("{}/", self.sts_endpoint.trim_end_matches('/'));
            let answer = self
                .http
                .send(
                    Method::POST,
                    &url,
                    &[("content-type", "application/x-www-form-urlencoded")],
                    Some(Bytes::from(form)),
                )
                .await
                .map_err(|e| fail(e.to_string()))?;
            let text = String::from_utf8_lossy(&answer.body);
            if answer.status != 200 {
                let why = sts::XmlError::from_xml(&text)
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .unwrap_or_else(|| excerpt(&answer.body));
                return Err(fail(format!("STS answered {}: {why}", answer.status)));
            }
            let result = sts::AssumeRoleWithWebIdentityResult::from_xml(&text)
                .ok_or_else(|| fail("STS's answer holds no credentials".into()))?;
            let c = result.credentials;
            Ok(Issued {
                valid_for: valid_for("irsa", &c.expiration)?,
                value: AwsCredentials {
                    access_key_id: c.access_key_id,
                    secret_access_key: Secret::new(c.secret_access_key),
                    session_token: Some(Secret::new(c.session_token)),
                },
            })
        })
    }
}

/// The JSON the container endpoint and IMDS answer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeysDocument {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

fn keys_from(
    from: &'static str,
    status: u16,
    body: &[u8],
) -> Result<Issued<AwsCredentials>, CredentialError> {
    let fail = |message: String| CredentialError::Fetch { from, message };
    if status != 200 {
        return Err(fail(format!("answered {status}: {}", excerpt(body))));
    }
    let doc: KeysDocument = serde_json::from_slice(body)
        .map_err(|e| fail(format!("the answer is not a credentials document: {e}")))?;
    if let Some(code) = doc.code.as_deref().filter(|c| *c != "Success") {
        return Err(fail(format!(
            "answered {code}: {}",
            doc.message.as_deref().unwrap_or("")
        )));
    }
    let (Some(id), Some(secret)) = (doc.access_key_id, doc.secret_access_key) else {
        return Err(fail(
            "the answer lacks AccessKeyId or SecretAccessKey".into(),
        ));
    };
    let valid_for = match doc.expiration.as_deref() {
        Some(at) => valid_for(from, at)?,
        None => UNDATED_VALIDITY,
    };
    Ok(Issued {
        valid_for,
        value: AwsCredentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: doc.token.filter(|t| !t.is_empty()).map(Secret::new),
        },
    })
}

/// EKS Pod Identity's agent (`http://169.254.170.23/v1/credentials`, with the token file
/// the webhook mounts) or an ECS task role endpoint.
pub struct ContainerEndpoint {
    pub uri: String,
    pub token_file: Option<PathBuf>,
    pub http: Http,
}

impl CredentialSource<AwsCredentials, CredentialError> for ContainerEndpoint {
    fn name(&self) -> &'static str {
        "pod_identity"
    }

    fn describe(&self) -> String {
        match &self.token_file {
            Some(file) => format!(
                "the container credentials endpoint {} with the token in {}",
                self.uri,
                file.display()
            ),
            None => format!("the container credentials endpoint {}", self.uri),
        }
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Issued<AwsCredentials>, CredentialError>> {
        Box::pin(async move {
            let fail = |message: String| CredentialError::Fetch {
                from: "pod_identity",
                message,
            };
            let token = match &self.token_file {
                Some(file) => Some(
                    tokio::fs::read_to_string(file)
                        .await
                        .map_err(|e| {
                            fail(format!(
                                "reading the authorization token {}: {e}",
                                file.display()
                            ))
                        })?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let mut headers = vec![("accept", "application/json")];
            if let Some(token) = token.as_deref() {
                headers.push(("authorization", token));
            }
            let answer = self
                .http
                .send(Method::GET, &self.uri, &headers, None)
                .await
                .map_err(|e| fail(e.to_string()))?;
            keys_from("pod_identity", answer.status, &answer.body)
        })
    }
}

/// The instance profile through IMDSv2.
pub struct Imds {
    pub endpoint: String,
    pub http: Http,
}

impl CredentialSource<AwsCredentials, CredentialError> for Imds {
    fn name(&self) -> &'static str {
        "imds"
    }

    fn describe(&self) -> String {
        format!("the instance profile through IMDSv2 at {}", self.endpoint)
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Issued<AwsCredentials>, CredentialError>> {
        Box::pin(async move {
            let fail = |message: String| CredentialError::Fetch {
                from: "imds",
                message,
            };
            let base = self.endpoint.trim_end_matches('/');
            let answer = self
                .http
                .send(
                    Method::PUT,
                    &format!("{base}/latest/api/token"),
                    &[(
                        "x-aws-ec2-metadata-token-ttl-seconds",
                        IMDS_TOKEN_TTL_SECONDS,
                    )],
                    None,
                )
                .await
                .map_err(|e| fail(format!("the IMDSv2 session token: {e}")))?;
            if answer.status != 200 {
                return Err(fail(format!(
                    "the IMDSv2 session token: answered {}",
                    answer.status
                )));
            }
            let session = String::from_utf8_lossy(&answer.body).trim().to_string();
            let with = [("x-aws-ec2-metadata-token", session.as_str())];
            let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
            let answer = self
                .http
                .send(Method::GET, &roles_url, &with, None)
                .await
                .map_err(|e| fail(e.to_string()))?;
            if answer.status != 200 {
                return Err(fail(format!(
                    "no instance profile: {roles_url} answered {}",
                    answer.status
                )));
            }
            let role = String::from_utf8_lossy(&answer.body)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if role.is_empty() || role.contains('/') {
                return Err(fail(format!("{roles_url} names no role")));
            }
            let answer = self
                .http
                .send(Method::GET, &format!("{roles_url}{role}"), &with, None)
                .await
                .map_err(|e| fail(e.to_string()))?;
            keys_from("imds", answer.status, &answer.body)
        })
    }
}
