//! Who may call: access tokens the face signs itself (a JWT with HMAC-SHA256 under a key made
//! at start, audience ARM), handed out by its Azure AD token endpoint (client secret, or a
//! workload identity's federated token as client assertion) and its instance metadata
//! service; and the check of `Authorization: Bearer` on every ARM call, answering ARM's 401s
//! with a `WWW-Authenticate` challenge.
//!
//! A federated token's claims (issuer, subject, audience, expiry) are checked against the
//! configured trusts WITHOUT checking its signature: the face has no issuer keys to fetch.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::answer::Answer;
use super::config::AciConfig;
use super::error::AciError;
use aci::wire::aad::{ASSERTION_TYPE_JWT, GRANT_CLIENT_CREDENTIALS};
use aci::wire::{AadError, AadToken, ImdsToken, OpenIdConfiguration, TokenRequest, codes, headers};

/// The claims of the face's access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    tid: String,
    appid: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// The claims a federated token is checked on.
#[derive(Debug, Deserialize)]
struct Federated {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    aud: Audience,
    #[serde(default)]
    exp: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::None => false,
            Self::One(a) => a == wanted,
            Self::Many(all) => all.iter().any(|a| a == wanted),
        }
    }
}

/// The signing key of access tokens (new at every start: tokens die with the face).
pub struct Tokens {
    key: hmac::Key,
}

impl Default for Tokens {
    fn default() -> Self {
        let secret: [u8; 32] = rand::random();
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }
}

/// ARM's resource, under either of its names (`management.azure.com` and the older
/// `management.core.windows.net`, which ARM accepts alike).
fn is_arm(resource: &str) -> bool {
    let resource = resource.trim_end_matches('/');
    resource == aci::wire::ARM_ENDPOINT || resource == "https://management.core.windows.net"
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Tokens {
    /// A signed access token for `app`, and its lifetime in seconds.
    pub fn issue(&self, config: &AciConfig, app: &str) -> (String, u64) {
        let now = now();
        let lifetime = config.token_lifetime_secs.max(1);
        let claims = Claims {
            aud: aci::wire::ARM_RESOURCE.into(),
            iss: format!("https://sts.windows.net/{}/", config.tenant_id),
            tid: config.tenant_id.clone(),
            appid: app.to_string(),
            iat: now,
            nbf: now - 300,
            exp: now + lifetime as i64,
        };
        let head = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signed = format!("{head}.{body}");
        let tag = hmac::sign(&self.key, signed.as_bytes());
        (format!("{signed}.{}", B64.encode(tag.as_ref())), lifetime)
    }

    /// Check a request's `Authorization` header: the caller's app id, or ARM's 401.
    pub fn check(
        &self,
        config: &AciConfig,
        authorization: Option<&str>,
    ) -> Result<String, AciError> {
        let Some(value) = authorization else {
            return Err(unauthorized(
                config,
                codes::AUTHENTICATION_FAILED,
                "Authentication failed. The 'Authorization' header is missing.",
            ));
        };
        let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        else {
            return Err(unauthorized(
                config,
                codes::AUTHENTICATION_FAILED,
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            ));
        };
        let invalid = || {
            unauthorized(
                config,
                codes::INVALID_AUTHENTICATION_TOKEN,
                "The access token is invalid.",
            )
        };
        let token = token.trim();
        let (signed, tag) = token.rsplit_once('.').ok_or_else(invalid)?;
        let tag = B64.decode(tag).map_err(|_| invalid())?;
        hmac::verify(&self.key, signed.as_bytes(), &tag).map_err(|_| invalid())?;
        let body = signed.split('.').nth(1).ok_or_else(invalid)?;
        let claims: Claims = B64
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        if claims.exp <= now() {
            return Err(unauthorized(
                config,
                codes::EXPIRED_AUTHENTICATION_TOKEN,
                "The access token expiry UTC time is earlier than current UTC time.",
            ));
        }
        if !is_arm(&claims.aud) {
            return Err(unauthorized(
                config,
                codes::INVALID_AUTHENTICATION_TOKEN_AUDIENCE,
                "The access token has been obtained for wrong audience or resource.",
            ));
        }
        Ok(claims.appid)
    }
}

fn unauthorized(_config: &AciConfig, code: &str, message: &str) -> AciError {
    AciError::new(401, code, message)
}

/// The `WWW-Authenticate` challenge of a 401 (added by the server to every 401 of ARM calls).
pub fn challenge(config: &AciConfig, authority: &str) -> String {
    format!(
        r#"Bearer authorization_uri="{authority}/{}", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header.""#,
        config.tenant_id
    )
}

fn aad_error(status: u16, error: &str, code: u64, description: &str) -> Answer {
    Answer::json(
        status,
        &AadError {
            error: error.into(),
            error_description: format!("AADSTS{code}: {description}"),
            error_codes: vec![code],
            timestamp: Some(jiff::Timestamp::now().to_string()),
            trace_id: Some(uuid::Uuid::new_v4().to_string()),
            correlation_id: Some(uuid::Uuid::new_v4().to_string()),
            error_uri: None,
        },
    )
}

/// `POST /{tenant}/oauth2/v2.0/token` with a form body.
pub fn token_endpoint(tokens: &Tokens, config: &AciConfig, tenant: &str, form: &[u8]) -> Answer {
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let request = TokenRequest::from_pairs(form_urlencoded::parse(form).into_owned());
    if request.grant_type != GRANT_CLIENT_CREDENTIALS {
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type; this endpoint serves client_credentials.",
        );
    }
    if !request
        .scope
        .split(' ')
        .any(|s| is_arm(s.trim_end_matches("/.default")))
    {
        return aad_error(
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for scope '{}' is not valid; ask for {}.",
                request.scope,
                aci::wire::ARM_SCOPE
            ),
        );
    }
    let client = request.client_id.as_str();
    let allowed = if let Some(secret) = &request.client_secret {
        match config.clients.get(client) {
            None => {
                return aad_error(
                    400,
                    "unauthorized_client",
                    700016,
                    &format!(
                        "Application with identifier '{client}' was not found in the directory."
                    ),
                );
            }
            Some(known) if known == secret => true,
            Some(_) => {
                return aad_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided.",
                );
            }
        }
    } else if let Some(assertion) = &request.client_assertion {
        if request.client_assertion_type.as_deref() != Some(ASSERTION_TYPE_JWT) {
            return aad_error(
                400,
                "invalid_request",
                50027,
                "The client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        match federated_matches(config, client, assertion) {
            Ok(()) => true,
            Err(message) => return aad_error(400, "invalid_client", 70021, &message),
        }
    } else {
        return aad_error(
            400,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    debug_assert!(allowed);
    let (access_token, lifetime) = tokens.issue(config, client);
    Answer::json(
        200,
        &AadToken {
            token_type: "Bearer".into(),
            expires_in: lifetime,
            ext_expires_in: lifetime,
            access_token,
        },
    )
}

/// Does a trust of `client` accept the (unsigned-checked) federated token `assertion`?
fn federated_matches(config: &AciConfig, client: &str, assertion: &str) -> Result<(), String> {
    let claims: Federated = assertion
        .split('.')
        .nth(1)
        .and_then(|b| B64.decode(b.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("The client assertion is not a JWT with a JSON payload.")?;
    if claims.exp.is_some_and(|exp| exp <= now()) {
        return Err("The presented assertion is expired.".into());
    }
    let trusted = config.federated.iter().any(|t| {
        t.client_id == client
            && t.issuer == claims.iss
            && t.subject == claims.sub
            && claims.aud.contains(&t.audience)
    });
    if trusted {
        Ok(())
    } else {
        Err(format!(
            "No matching federated identity record found for presented assertion issuer '{}' and subject '{}' of application '{client}'.",
            claims.iss, claims.sub
        ))
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`, `base` the face's own URL.
pub fn openid_configuration(config: &AciConfig, tenant: &str, base: &str) -> Answer {
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return aad_error(
            400,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    Answer::json(
        200,
        &OpenIdConfiguration {
            token_endpoint: format!("{base}/{tenant}/oauth2/v2.0/token"),
            authorization_endpoint: format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            issuer: format!("{base}/{tenant}/v2.0"),
            device_authorization_endpoint: None,
            jwks_uri: None,
        },
    )
}

/// `GET /metadata/identity/oauth2/token?api-version=…&resource=…` (header `Metadata: true`).
pub fn imds(tokens: &Tokens, config: &AciConfig, query: &str, metadata: Option<&str>) -> Answer {
    let imds_error = |status: u16, description: &str| {
        Answer::json(
            status,
            &serde_json::json!({"error": "invalid_request", "error_description": description}),
        )
    };
    if metadata != Some("true") {
        return imds_error(400, "Required metadata header not specified");
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if get("api-version").is_none() {
        return imds_error(400, "Required query variable 'api-version' is missing");
    }
    let Some(resource) = get("resource") else {
        return imds_error(400, "Required query variable 'resource' is missing");
    };
    if !is_arm(resource) {
        return imds_error(400, "Identity not found for this resource");
    }
    if let Some(id) = get("client_id")
        && id != config.managed_identity_client_id
    {
        return imds_error(400, "Identity not found");
    }
    let (access_token, lifetime) = tokens.issue(config, &config.managed_identity_client_id);
    let now = now().max(0) as u64;
    Answer::json(
        200,
        &ImdsToken {
            access_token,
            client_id: Some(config.managed_identity_client_id.clone()),
            expires_in: lifetime,
            expires_on: now + lifetime,
            not_before: now,
            resource: resource.to_string(),
            token_type: "Bearer".into(),
        },
    )
}

/// The header a 401 carries.
pub const WWW_AUTHENTICATE: &str = headers::WWW_AUTHENTICATE;
