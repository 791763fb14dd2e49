//! Who is calling: the two signatures the service takes (ACS3-HMAC-SHA256 in the
//! `Authorization` header, or the RPC signature 1.0 in the parameters), the key and its STS
//! token, the clock skew and the nonce, as the service checks them before any action.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hyper::HeaderMap;
use jiff::Timestamp;

use super::error::ApiError;
use super::face::Face;
use super::sts::Sts;
use super::verify::{self, AuthorizationError};
use eci::wire::api::errors;
use eci::wire::params::Params;

/// One API request as the server read it.
pub struct Call<'a> {
    pub method: &'a str,
    /// The query's and the form body's parameters together.
    pub params: &'a Params,
    /// The query's alone: ACS3 signs them, the body goes by its hash.
    pub query: &'a Params,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Call<'_> {
    /// A header's values, trimmed, sorted and joined with `,` (as canonical headers want).
    fn header(&self, name: &str) -> Option<String> {
        let mut values: Vec<&str> = self
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        Some(values.join(","))
    }
}

/// Nonces seen within the allowed clock skew: a replayed request is refused.
#[derive(Default)]
pub struct Nonces {
    seen: Mutex<HashMap<String, Timestamp>>,
}

impl Nonces {
    fn first_use(&self, nonce: &str, now: Timestamp, window: Duration) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() > 10_000 {
            let cutoff = now
                .checked_sub(jiff::SignedDuration::try_from(window).unwrap_or_default())
                .unwrap_or(now);
            seen.retain(|_, at| *at >= cutoff);
        }
        seen.insert(nonce.to_string(), now).is_none()
    }
}

/// What a verified request asks for.
pub struct Caller {
    pub action: String,
}

/// The fields both signatures carry, wherever they sit in the request.
struct Claimed<'a> {
    action: &'a str,
    version: &'a str,
    access_key_id: &'a str,
    security_token: Option<&'a str>,
    date: &'a str,
    nonce: &'a str,
}

/// Check the signature and the common fields, as the service does for every call.
pub fn authenticate(
    face: &Face,
    nonces: &Nonces,
    sts: &Sts,
    call: &Call<'_>,
) -> Result<Caller, ApiError> {
    let caller = match call.headers.get(hyper::header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| incomplete("not ASCII"))?;
            acs3(face, nonces, sts, call, value)?
        }
        None => rpc(face, nonces, sts, call)?,
    };
    let region = call.params.get("RegionId").unwrap_or_default();
    if !region.is_empty() && region != face.config().region_id {
        return Err(ApiError::new(
            errors::INVALID_PARAMETER,
            format!(
                "The specified RegionId {region:?} is not served here ({}).",
                face.config().region_id
            ),
        ));
    }
    Ok(caller)
}

/// A common parameter left out: the gateway names it in the code (`MissingTimestamp`,
/// "Timestamp is mandatory for this action."), as it does for `MissingSecurityToken`.
fn missing(name: &'static str) -> ApiError {
    let code = match name {
        "Action" => "MissingAction",
        "Version" => "MissingVersion",
        "AccessKeyId" => "MissingAccessKeyId",
        "Signature" => "MissingSignature",
        "SignatureMethod" => "MissingSignatureMethod",
        "SignatureVersion" => "MissingSignatureVersion",
        "SignatureNonce" => "MissingSignatureNonce",
        "Timestamp" => "MissingTimestamp",
        _ => errors::MISSING_PARAMETER.0,
    };
    ApiError {
        code,
        status: 400,
        message: format!("{name} is mandatory for this action."),
    }
}

fn incomplete(why: &str) -> ApiError {
    ApiError::new(
        errors::INCOMPLETE_SIGNATURE,
        format!("The request signature does not conform to Aliyun standards ({why})."),
    )
}

fn mismatch(string_to_sign: &str) -> ApiError {
    ApiError::new(
        errors::SIGNATURE_DOES_NOT_MATCH,
        format!(
            "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        ),
    )
}

/// ACS3-HMAC-SHA256: everything rides in headers; the query and the body's hash are signed.
fn acs3(
    face: &Face,
    nonces: &Nonces,
    sts: &Sts,
    call: &Call<'_>,
    authorization: &str,
) -> Result<Caller, ApiError> {
    let auth = verify::parse_authorization(authorization).map_err(|e| match e {
        AuthorizationError::Algorithm(a) => ApiError::new(
            errors::UNSUPPORTED_SIGNATURE_METHOD,
            format!("Specified signature method {a:?} is not supported; use ACS3-HMAC-SHA256."),
        ),
        AuthorizationError::Incomplete(part) => incomplete(&format!("no {part}")),
    })?;
    let header = |name: &'static str| call.headers.get(name).and_then(|v| v.to_str().ok());
    for name in ["x-acs-action", "x-acs-version"] {
        if header(name).is_none_or(str::is_empty) {
            return Err(ApiError::new(
                errors::MISSING_PARAMETER,
                format!(
                    "The input parameter {name:?} that is mandatory for processing this request is not supplied."
                ),
            ));
        }
    }
    for name in [
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if header(name).is_none_or(str::is_empty) {
            return Err(incomplete(&format!("no {name} header")));
        }
    }
    // Every common header present must be signed, so none can be swapped in transit.
    for name in call.headers.keys() {
        let name = name.as_str();
        if (name == "host" || name.starts_with("x-acs-"))
            && !auth.signed_headers.iter().any(|s| s == name)
        {
            return Err(incomplete(&format!("header {name} is not signed")));
        }
    }
    let claimed = Claimed {
        action: header("x-acs-action").unwrap_or_default(),
        version: header("x-acs-version").unwrap_or_default(),
        access_key_id: &auth.access_key_id,
        security_token: header("x-acs-security-token"),
        date: header("x-acs-date").unwrap_or_default(),
        nonce: header("x-acs-signature-nonce").unwrap_or_default(),
    };
    let secret = secret_for(face, sts, &claimed)?;
    let hashed_payload = header("x-acs-content-sha256").unwrap_or_default();
    let canonical = verify::acs3_canonical_request(
        call.method,
        call.query.iter(),
        |name| call.header(name),
        &auth.signed_headers,
        hashed_payload,
    );
    let string_to_sign = verify::acs3_string_to_sign(&canonical);
    if !verify::acs3_matches(&string_to_sign, &secret, &auth.signature) {
        return Err(mismatch(&string_to_sign));
    }
    // The signature covers the claimed hash; the body must have it.
    if verify::sha256_hex(call.body) != hashed_payload {
        return Err(ApiError::new(
            errors::SIGNATURE_DOES_NOT_MATCH,
            "Specified signature is not matched with our calculation: the body's SHA-256 is not x-acs-content-sha256.",
        ));
    }
    fresh(face, nonces, &claimed)
}

/// The RPC signature 1.0: common parameters in the query or form body, HMAC-SHA1.
fn rpc(face: &Face, nonces: &Nonces, sts: &Sts, call: &Call<'_>) -> Result<Caller, ApiError> {
    let params = call.params;
    for name in [
        "Action",
        "Version",
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
    ] {
        if params.get(name).is_none_or(str::is_empty) {
            return Err(missing(name));
        }
    }
    let method_name = params.get("SignatureMethod").unwrap_or_default();
    if method_name != "HMAC-SHA1" || params.get("SignatureVersion") != Some("1.0") {
        return Err(ApiError::new(
            errors::UNSUPPORTED_SIGNATURE_METHOD,
            format!(
                "Specified signature method {method_name:?} is not supported; use HMAC-SHA1 with SignatureVersion 1.0, or ACS3-HMAC-SHA256."
            ),
        ));
    }
    let claimed = Claimed {
        action: params.get("Action").unwrap_or_default(),
        version: params.get("Version").unwrap_or_default(),
        access_key_id: params.get("AccessKeyId").unwrap_or_default(),
        security_token: params.get("SecurityToken"),
        date: params.get("Timestamp").unwrap_or_default(),
        nonce: params.get("SignatureNonce").unwrap_or_default(),
    };
    let secret = secret_for(face, sts, &claimed)?;
    let string_to_sign = verify::rpc_string_to_sign(call.method, params.iter());
    let signature = params.get("Signature").unwrap_or_default();
    if !verify::rpc_matches(&string_to_sign, &secret, signature) {
        return Err(mismatch(&string_to_sign));
    }
    fresh(face, nonces, &claimed)
}

/// A long-lived key, else temporary keys from STS with their token.
fn secret_for(face: &Face, sts: &Sts, claimed: &Claimed<'_>) -> Result<String, ApiError> {
    if let Some(secret) = face.config().access_keys.get(claimed.access_key_id) {
        return Ok(secret.clone());
    }
    match sts.secret_for(claimed.access_key_id, claimed.security_token) {
        Some(secret) => secret,
        None => Err(ApiError::new(
            errors::INVALID_ACCESS_KEY_ID,
            "Specified access key is not found.",
        )),
    }
}

/// The time within the allowed skew, the nonce unused, the version this service speaks.
fn fresh(face: &Face, nonces: &Nonces, claimed: &Claimed<'_>) -> Result<Caller, ApiError> {
    let at: Timestamp = claimed.date.parse().map_err(|_| {
        ApiError::new(
            errors::INVALID_TIMESTAMP_FORMAT,
            "Specified time stamp or date value is not well formatted.",
        )
    })?;
    let now = Timestamp::now();
    let skew = Duration::from_secs(face.config().max_clock_skew_secs);
    if now.duration_since(at).unsigned_abs() > skew {
        return Err(ApiError::new(
            errors::INVALID_TIMESTAMP_EXPIRED,
            "Specified time stamp or date value is expired.",
        ));
    }
    if !nonces.first_use(claimed.nonce, now, skew) {
        return Err(ApiError::new(
            errors::SIGNATURE_NONCE_USED,
            "Specified signature nonce was used already.",
        ));
    }
    // ECI's actions, or another product's (VPC, ECS, Quota Center) in its own version.
    let version = super::network::api_version(claimed.action);
    if claimed.version != version {
        return Err(ApiError::new(
            errors::INVALID_VERSION,
            format!("Specified parameter Version is not valid; this service speaks {version}."),
        ));
    }
    Ok(Caller {
        action: claimed.action.to_string(),
    })
}
