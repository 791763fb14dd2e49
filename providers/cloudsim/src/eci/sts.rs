//! The STS face: `AssumeRoleWithOIDC` (RPC, version 2015-04-01; anonymous like the real one:
//! the OIDC token is the proof) issues temporary keys, which the ECI face then accepts when a
//! request is signed with the temporary secret and carries the key's unexpired
//! `SecurityToken`. The metadata face ([`super::metadata`]) issues keys the same way.
//!
//! Lifetimes are configurable (`sts.lifetime_secs`, seconds for tests); `GET /admin/sts`
//! reports the calls seen and the keys issued, so a test can look for them in logs, and
//! `POST /admin/sts {"failing": true}` makes AssumeRoleWithOIDC fail until turned off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};

use super::error::{Answer, ApiError, error_body};
use super::ids::request_id;
use eci::wire::api::errors;
use eci::wire::params::Params;
use eci::wire::sts::{
    ASSUME_ROLE_WITH_OIDC, AssumeRoleWithOidcResponse, AssumedRoleUser, OidcTokenInfo, STS_VERSION,
    StsCredentials,
};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StsConfig {
    /// Every temporary key lives this long, whatever `DurationSeconds` asks (short, for
    /// tests); unset: `DurationSeconds` (900 s at least, as STS requires).
    pub lifetime_secs: Option<u64>,
    /// The RAM role the metadata face hands keys out for; unset: the instance has none.
    pub metadata_role: Option<String>,
}

/// An AssumeRoleWithOIDC call as received.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StsCall {
    pub role_arn: String,
    pub oidc_provider_arn: String,
    pub oidc_token: String,
    pub role_session_name: String,
    pub duration_seconds: Option<u64>,
}

/// Keys issued (by STS or the metadata face), revealed for tests through the admin answer;
/// `Debug` (what a log line would print) hides the secret and the token.
#[derive(Clone, Serialize, Deserialize)]
pub struct IssuedKey {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    pub expiration: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<hidden>")
            .field("security_token", &"<hidden>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// What `GET /admin/sts` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StsReport {
    pub calls: Vec<StsCall>,
    pub issued: Vec<IssuedKey>,
    /// ECI requests accepted with a temporary key and its token.
    pub signed_with_token: u64,
    /// ECI requests refused because the token had expired.
    pub expired_refused: u64,
    /// Metadata: session tokens handed out, and role credential reads.
    pub metadata_tokens: u64,
    pub metadata_credentials: u64,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, (IssuedKey, Timestamp)>,
    report: StsReport,
}

/// The mock's STS: issued keys and what was asked.
pub struct Sts {
    config: StsConfig,
    state: Mutex<State>,
    /// Every AssumeRoleWithOIDC answers ServiceUnavailable (tests of a failing refresh).
    failing: AtomicBool,
}

/// Does this request go to STS rather than ECI?
pub fn is_sts(params: &Params) -> bool {
    params.get("Action") == Some(ASSUME_ROLE_WITH_OIDC)
}

fn random_string(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

impl Sts {
    pub fn new(config: StsConfig) -> Self {
        Self {
            config,
            state: Mutex::default(),
            failing: AtomicBool::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn config(&self) -> &StsConfig {
        &self.config
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn report(&self) -> StsReport {
        self.state().report.clone()
    }

    /// `/admin/sts`: GET the report; POST `{"failing": bool}`. Status and JSON body.
    pub fn admin(&self, method: &str, body: &[u8]) -> (u16, String) {
        #[derive(Deserialize)]
        struct Switch {
            failing: bool,
        }
        match method {
            "GET" => (
                200,
                serde_json::to_string(&self.report()).unwrap_or_default(),
            ),
            "POST" => match serde_json::from_slice::<Switch>(body) {
                Ok(s) => {
                    self.set_failing(s.failing);
                    (200, format!(r#"{{"failing":{}}}"#, s.failing))
                }
                Err(e) => (400, format!(r#"{{"error":{:?}}}"#, e.to_string())),
            },
            _ => (405, r#"{"error":"GET or POST"}"#.into()),
        }
    }

    /// New temporary keys, valid `lifetime_secs` (or `asked` seconds) from now. The
    /// Expiration has whole seconds, as the service writes it; that is what counts.
    pub fn issue(&self, asked: u64) -> StsCredentials {
        let lifetime = self.config.lifetime_secs.unwrap_or(asked);
        let expires = Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(
                i64::try_from(lifetime).unwrap_or(i64::MAX),
            ))
            .unwrap_or(Timestamp::MAX);
        let expiration = expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let expires = expiration.parse().unwrap_or(expires);
        let key = IssuedKey {
            access_key_id: format!("STS.{}", random_string(24)),
            access_key_secret: random_string(40),
            security_token: format!("CAIS{}", random_string(120)),
            expiration: expiration.clone(),
        };
        let mut state = self.state();
        state.report.issued.push(key.clone());
        state
            .keys
            .insert(key.access_key_id.clone(), (key.clone(), expires));
        StsCredentials {
            access_key_id: key.access_key_id,
            access_key_secret: key.access_key_secret,
            security_token: key.security_token,
            expiration,
        }
    }

    /// The secret of an issued key, if `token` is its token and it has not expired.
    /// `None`: not a key this STS issued.
    pub fn secret_for(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Option<Result<String, ApiError>> {
        let mut state = self.state();
        let (key, expires) = state.keys.get(access_key_id)?.clone();
        let Some(token) = token else {
            return Some(Err(ApiError::new(
                errors::MISSING_SECURITY_TOKEN,
                "SecurityToken is mandatory for this action.",
            )));
        };
        if token != key.security_token {
            return Some(Err(ApiError::new(
                errors::SECURITY_TOKEN_MISMATCH,
                "Specified SecurityToken mismatch with the AccessKey.",
            )));
        }
        if Timestamp::now() >= expires {
            state.report.expired_refused += 1;
            return Some(Err(ApiError::new(
                errors::SECURITY_TOKEN_EXPIRED,
                "Specified SecurityToken is expired.",
            )));
        }
        state.report.signed_with_token += 1;
        Some(Ok(key.access_key_secret))
    }

    /// Record a metadata session token or a metadata credential read.
    pub fn count_metadata(&self, token: bool) {
        let mut state = self.state();
        if token {
            state.report.metadata_tokens += 1;
        } else {
            state.report.metadata_credentials += 1;
        }
    }

    /// Answer an STS call.
    pub fn handle(&self, params: &Params, host: &str) -> Answer {
        let request_id = request_id();
        match self.assume_role_with_oidc(params) {
            Ok(mut answer) => {
                answer.request_id = request_id;
                Answer {
                    status: 200,
                    body: serde_json::to_string(&answer).unwrap_or_default(),
                }
            }
            Err(e) => Answer {
                status: e.status,
                body: error_body(&e, &request_id, host),
            },
        }
    }

    fn assume_role_with_oidc(&self, p: &Params) -> Result<AssumeRoleWithOidcResponse, ApiError> {
        if p.get("Version") != Some(STS_VERSION) {
            return Err(ApiError::new(
                errors::INVALID_VERSION,
                format!("Specified parameter Version is not valid; STS speaks {STS_VERSION}."),
            ));
        }
        let call = StsCall {
            role_arn: p.required("RoleArn")?.to_string(),
            oidc_provider_arn: p.required("OIDCProviderArn")?.to_string(),
            oidc_token: p.required("OIDCToken")?.to_string(),
            role_session_name: p.required("RoleSessionName")?.to_string(),
            duration_seconds: p.parse("DurationSeconds")?,
        };
        self.state().report.calls.push(call.clone());
        if self.failing.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                errors::SERVICE_UNAVAILABLE,
                "The request has failed due to a temporary failure of the server.",
            ));
        }
        if !(4..=20_000).contains(&call.oidc_token.len()) {
            return Err(ApiError::new(
                errors::INVALID_PARAMETER,
                "The OIDCToken must be 4 to 20000 characters long.",
            ));
        }
        for (name, arn, kind) in [
            ("RoleArn", &call.role_arn, ":role/"),
            (
                "OIDCProviderArn",
                &call.oidc_provider_arn,
                ":oidc-provider/",
            ),
        ] {
            if !arn.starts_with("acs:ram::") || !arn.contains(kind) {
                return Err(ApiError::new(
                    errors::INVALID_PARAMETER,
                    format!("The specified {name} {arn:?} is not valid."),
                ));
            }
        }
        let asked = call.duration_seconds.unwrap_or(3600);
        if self.config.lifetime_secs.is_none() && !(900..=43_200).contains(&asked) {
            return Err(ApiError::new(
                errors::INVALID_PARAMETER,
                "DurationSeconds must be from 900 to the role's MaxSessionDuration.",
            ));
        }
        let credentials = self.issue(asked);
        let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        Ok(AssumeRoleWithOidcResponse {
            request_id: String::new(),
            assumed_role_user: AssumedRoleUser {
                arn: format!("{}/{}", call.role_arn, call.role_session_name),
                assumed_role_id: format!("3{}:{}", random_string(15), call.role_session_name),
            },
            oidc_token_info: OidcTokenInfo {
                subject: "system:serviceaccount:kube-system:virtual-kubelet".into(),
                issuer: "https://oidc-ack.mock.aliyuncs.com".into(),
                client_ids: "sts.aliyuncs.com".into(),
                expiration_time: credentials.expiration.clone(),
                issuance_time: now,
            },
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_print_without_their_secret_and_token() {
        let key = IssuedKey {
            access_key_id: "STS.id".into(),
            access_key_secret: "s3cr3t".into(),
            security_token: "t0k3n".into(),
            expiration: "2026-12-03T00:00:00Z".into(),
        };
        let printed = format!("{key:?}");
        assert!(printed.contains("STS.id"), "{printed}");
        assert!(
            !printed.contains("s3cr3t") && !printed.contains("t0k3n"),
            "{printed}"
        );
    }
}
