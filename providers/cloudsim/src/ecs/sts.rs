//! STS: AssumeRoleWithWebIdentity turns a web identity token (a JWT: a Kubernetes service
//! account token, say) into temporary keys the ECS and Logs faces then accept with their
//! session token; GetCallerIdentity tells a signed caller who it is.
//!
//! The token's claims are checked (`iss` and `aud` against the configured lists when they
//! are set, `sub` present, `exp` not past) but its signature is NOT: the simulator has no
//! OIDC discovery, so any well-formed token with acceptable claims passes. Keys are
//! `ASIA...` ids with a secret and a session token, living `DurationSeconds` (900 to the
//! role's MaxSessionDuration; `lifetime_secs` overrides it).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fargate::wire::sts::{
    AssumeRoleWithWebIdentityResult, CallerIdentity, Credentials, XmlError, codes,
};
use jiff::{SignedDuration, Timestamp};

use super::config::StsConfig;
use super::sigv4::Secret;

/// Keys STS handed out.
struct Issued {
    secret: String,
    token: String,
    expires: Timestamp,
    arn: String,
    role_id: String,
}

pub struct Sts {
    config: StsConfig,
    issued: Mutex<HashMap<String, Issued>>,
}

pub type StsError = (XmlError, u16);

fn err(code: codes::Code, message: impl Into<String>) -> StsError {
    (
        XmlError {
            sender: code.1 < 500,
            code: code.0.into(),
            message: message.into(),
        },
        code.1,
    )
}

fn random(alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| alphabet[rand::random_range(0..alphabet.len())] as char)
        .collect()
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The claims of a JWT (unverified).
fn claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Sts {
    pub fn new(config: StsConfig) -> Self {
        Self {
            config,
            issued: Mutex::new(HashMap::new()),
        }
    }

    fn issued(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The secret of temporary key `id`, for the signature check.
    pub fn secret(&self, id: &str) -> Option<Secret> {
        self.issued().get(id).map(|k| Secret {
            secret: k.secret.clone(),
            session_token: Some(k.token.clone()),
            expires: Some(k.expires),
        })
    }

    /// Who the caller of key `id` is (an assumed role), for GetCallerIdentity.
    pub fn identity(&self, id: &str, account: &str) -> Option<CallerIdentity> {
        self.issued().get(id).map(|k| CallerIdentity {
            user_id: k.role_id.clone(),
            account: account.into(),
            arn: k.arn.clone(),
        })
    }

    pub fn assume_role_with_web_identity(
        &self,
        params: &HashMap<String, String>,
        account: &str,
        now: Timestamp,
    ) -> Result<AssumeRoleWithWebIdentityResult, StsError> {
        let required = |name: &str| {
            params.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                err(
                    codes::MISSING_PARAMETER,
                    format!("The request must contain the parameter {name}."),
                )
            })
        };
        let role_arn = required("RoleArn")?;
        let session = required("RoleSessionName")?;
        let token = required("WebIdentityToken")?;
        let role = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split_once(":role/"))
            .filter(|(acct, name)| {
                acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
            })
            .map(|(_, name)| name.rsplit('/').next().unwrap_or(name))
            .ok_or_else(|| {
                err(
                    codes::VALIDATION_ERROR,
                    format!(
                        "RoleArn: {role_arn} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)."
                    ),
                )
            })?;
        if !(2..=64).contains(&session.len())
            || !session
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        {
            return Err(err(
                codes::VALIDATION_ERROR,
                "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and length 2 to 64",
            ));
        }
        let duration = match params.get("DurationSeconds") {
            None => 3600,
            Some(d) => d
                .parse::<u32>()
                .map_err(|_| err(codes::VALIDATION_ERROR, "DurationSeconds: not a number."))?,
        };
        if duration < 900 {
            return Err(err(
                codes::VALIDATION_ERROR,
                "DurationSeconds: at least 900.",
            ));
        }
        if duration > self.config.max_session_secs {
            return Err(err(
                codes::VALIDATION_ERROR,
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        let claims = claims(token).ok_or_else(|| {
            err(
                codes::INVALID_IDENTITY_TOKEN,
                "The web identity token is not a JWT.",
            )
        })?;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let issuer = text("iss").unwrap_or_default();
        if !self.config.issuers.is_empty() && !self.config.issuers.contains(&issuer) {
            return Err(err(
                codes::INVALID_IDENTITY_TOKEN,
                format!("No OpenIDConnect provider found in your account for {issuer}"),
            ));
        }
        let audiences: Vec<String> = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => vec![a.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !self.config.audiences.is_empty()
            && !audiences.iter().any(|a| self.config.audiences.contains(a))
        {
            return Err(err(
                codes::INVALID_IDENTITY_TOKEN,
                "Incorrect token audience",
            ));
        }
        let subject = text("sub").ok_or_else(|| {
            err(
                codes::INVALID_IDENTITY_TOKEN,
                "The token has no 'sub' claim.",
            )
        })?;
        let exp = claims.get("exp").and_then(|v| v.as_i64()).ok_or_else(|| {
            err(
                codes::INVALID_IDENTITY_TOKEN,
                "The token has no 'exp' claim.",
            )
        })?;
        if exp <= now.as_second() {
            return Err(err(
                codes::EXPIRED_TOKEN,
                "Token expired: current date/time must be before the expiration date/time.",
            ));
        }
        let (credentials, arn, role_id) = self.issue(role, session, account, now, duration);
        Ok(AssumeRoleWithWebIdentityResult {
            credentials,
            assumed_role_arn: arn,
            assumed_role_id: role_id,
            subject,
            audience: audiences.first().cloned().unwrap_or_default(),
            provider: issuer,
        })
    }

    /// Temporary keys for `role` (a role name) in a session named `session`, valid for
    /// `duration` seconds (or the configured lifetime): the credentials, the assumed-role
    /// ARN and its id. Later signatures with them are checked against [`Self::secret`].
    pub fn issue(
        &self,
        role: &str,
        session: &str,
        account: &str,
        now: Timestamp,
        duration: u32,
    ) -> (Credentials, String, String) {
        let lifetime = self.config.lifetime_secs.unwrap_or(u64::from(duration));
        let expires = now
            .checked_add(SignedDuration::from_secs(
                i64::try_from(lifetime).unwrap_or(3600),
            ))
            .unwrap_or(now);
        let id = format!("ASIA{}", random(UPPER, 16));
        let role_id = format!("AROA{}:{session}", random(UPPER, 17));
        let arn = format!("arn:aws:sts::{account}:assumed-role/{role}/{session}");
        let issued = Issued {
            secret: random(SECRET, 40),
            token: STANDARD.encode((0..96).map(|_| rand::random::<u8>()).collect::<Vec<u8>>()),
            expires,
            arn: arn.clone(),
            role_id: role_id.clone(),
        };
        let credentials = Credentials {
            access_key_id: id.clone(),
            secret_access_key: issued.secret.clone(),
            session_token: issued.token.clone(),
            expiration: expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        };
        self.issued().insert(id, issued);
        (credentials, arn, role_id)
    }

    /// Whether `token` is a JWT for `audience` that has not expired (claims only, as the
    /// simulator checks web identity tokens): the EKS Pod Identity agent's check.
    pub fn pod_identity_token_ok(
        &self,
        token: &str,
        audience: &str,
        now: Timestamp,
    ) -> Result<String, String> {
        let claims = claims(token).ok_or("the token is not a JWT")?;
        let aud_ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == audience,
            Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(format!("the token's audience is not {audience}"));
        }
        let exp = claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .ok_or("the token has no exp")?;
        if exp <= now.as_second() {
            return Err("the token expired".into());
        }
        Ok(claims
            .get("sub")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_string())
    }
}
