//! AWS Signature Version 4, checked on the server side: the canonical request rebuilt from
//! what arrived (method, path, query, the headers the client says it signed, the body's
//! SHA-256), the string to sign over the credential scope, the derived key, and the HMAC
//! compared with the one sent. The secret comes from a lookup (the configured keys and the
//! ones STS issued), which also decides whether a security token must ride along.
//!
//! Written here (ring's HMAC and SHA-256) rather than with the `aws-sigv4` crate, which the
//! fargate provider signs with: that crate signs, it does not verify (it decides itself which
//! headers to sign), and the simulator must check what a client chose to sign. The unit
//! tests check it against signatures botocore computed, and the conformance test against
//! botocore itself.

use hyper::HeaderMap;
use jiff::Timestamp;
use ring::{digest, hmac};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What a signature check refuses; each API maps these to its own codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header at all.
    Missing,
    /// An Authorization header that is not a complete SigV4 one.
    Incomplete(String),
    /// The access key is not known.
    UnknownKey,
    /// Temporary keys past their expiry.
    Expired,
    /// The security token does not go with the access key.
    BadToken,
    /// The signature does not match, or the scope or time is wrong (the message says).
    Signature(String),
}

/// The secret of an access key, and the session token it needs (temporary keys).
pub struct Secret {
    pub secret: String,
    pub session_token: Option<String>,
    pub expires: Option<Timestamp>,
}

/// A request as the signature covers it.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

pub fn parse_authorization(value: &str) -> Result<Authorization, AuthError> {
    let rest = value.strip_prefix(ALGORITHM).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Authorization header requires the {ALGORITHM} algorithm."
        ))
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| {
        AuthError::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={value}"
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped to a valid region, service and request type: {credential}"
        )));
    };
    Ok(Authorization {
        access_key: key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

/// Check a request's signature: the caller's access key when it holds.
pub fn verify(
    req: &Signed<'_>,
    region: &str,
    service: &str,
    max_skew_secs: u64,
    now: Timestamp,
    lookup: impl FnOnce(&str) -> Option<Secret>,
) -> Result<String, AuthError> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let auth = parse_authorization(header("authorization").ok_or(AuthError::Missing)?)?;
    let amz_date = header("x-amz-date").ok_or_else(|| {
        AuthError::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let at = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ))
    })?;
    if !amz_date.starts_with(&auth.date) {
        return Err(AuthError::Signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            &amz_date[..amz_date.len().min(8)]
        )));
    }
    if auth.region != region {
        return Err(AuthError::Signature(format!(
            "Credential should be scoped to a valid region. (got '{}', this endpoint serves '{region}')",
            auth.region
        )));
    }
    if auth.service != service {
        return Err(AuthError::Signature(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    let skew = now.duration_since(at).as_secs().unsigned_abs();
    if skew > max_skew_secs {
        return Err(AuthError::Signature(format!(
            "Signature expired: {amz_date} is now earlier or later than {} (more than {max_skew_secs} s away).",
            amz_date_of(now)
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Signature(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let secret = lookup(&auth.access_key).ok_or(AuthError::UnknownKey)?;
    if let Some(token) = &secret.session_token
        && header("x-amz-security-token") != Some(token.as_str())
    {
        return Err(AuthError::BadToken);
    }
    if secret.expires.is_some_and(|e| e <= now) {
        return Err(AuthError::Expired);
    }
    let expected = signature(req, &auth, amz_date, &secret.secret);
    if !ring_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(AuthError::Signature(BAD_SIGNATURE.into()));
    }
    Ok(auth.access_key)
}

fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20261203T194500Z`
pub fn amz_date_of(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

pub fn parse_amz_date(s: &str) -> Option<Timestamp> {
    let civil = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", s).ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// RFC 3986 percent-encoding as SigV4 wants it (unreserved characters kept, the rest %XX).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_pairs(query)
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `a=1&b=x%20y` decoded (`+` is a space, as forms write it).
pub fn form_pairs(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let pair = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(pair, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_headers(headers: &HeaderMap, signed: &[String]) -> String {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// The signature of `req` under `auth`'s scope with `secret`, as the client should have made it.
pub fn signature(req: &Signed<'_>, auth: &Authorization, amz_date: &str, secret: &str) -> String {
    let payload = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| sha256_hex(req.body));
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        path,
        canonical_query(req.query),
        canonical_headers(req.headers, &auth.signed_headers),
        auth.signed_headers.join(";"),
        payload
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = [
        auth.date.as_str(),
        auth.region.as_str(),
        auth.service.as_str(),
        "aws4_request",
    ]
    .iter()
    .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
        hmac(&key, part.as_bytes())
    });
    hex(&hmac(&key, to_sign.as_bytes()))
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
