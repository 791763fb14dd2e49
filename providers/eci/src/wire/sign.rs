//! Alibaba Cloud's RPC request signature, version 1.0 (HMAC-SHA1), as the client computes it
//! (`eci: signature: hmac-sha1`). The mock cloud checks it with code of its own
//! (`cloudsim::verify`), so a mistake here is caught there; the documented example pins it.
//!
//! StringToSign = Method + "&" + percentEncode("/") + "&" + percentEncode(canonicalized query),
//! where the canonicalized query is every parameter but `Signature`, sorted by name, each name
//! and value percent-encoded and joined with `=` and `&`. The key is `secret + "&"`.

use base64::Engine as _;
use ring::hmac;

/// The only method and version this module implements.
pub const SIGNATURE_METHOD: &str = "HMAC-SHA1";
pub const SIGNATURE_VERSION: &str = "1.0";

/// RFC 3986 percent-encoding as Alibaba specifies it: only `A-Z a-z 0-9 - _ . ~` stay as they
/// are; every other byte of the UTF-8 encoding becomes `%XY` (upper-case hex), so a space is
/// `%20` (never `+`) and `*` is `%2A`.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0x0f));
        }
    }
    out
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'A' + n - 10 })
}

/// The canonicalized query string: all parameters except `Signature`, sorted by their
/// encoded name (byte order), each `encode(name)=encode(value)`, joined with `&`.
pub fn canonicalized_query<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| *k != "Signature")
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The string the HMAC is computed over.
pub fn string_to_sign<'a>(
    method: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode("/"),
        percent_encode(&canonicalized_query(params))
    )
}

/// Base64(HMAC-SHA1(secret + "&", string_to_sign)).
pub fn sign_string(secret: &str, string_to_sign: &str) -> String {
    let key = hmac::Key::new(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        format!("{secret}&").as_bytes(),
    );
    let tag = hmac::sign(&key, string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// The `Signature` value for a request with these parameters.
pub fn sign<'a>(
    method: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    secret: &str,
) -> String {
    sign_string(secret, &string_to_sign(method, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Alibaba Cloud's "Request signature" documentation (RPC APIs):
    /// AccessKeyId `testid`, secret `testsecret`, DescribeRegions.
    fn documented_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Version", "2014-05-26"),
            ("SignatureVersion", "1.0"),
        ]
    }

    #[test]
    fn documented_example_string_to_sign() {
        assert_eq!(
            string_to_sign("GET", documented_params()),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z\
             %26Version%3D2014-05-26"
        );
    }

    #[test]
    fn documented_example_signature() {
        let signature = sign("GET", documented_params(), "testsecret");
        assert_eq!(signature, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        // The Signature parameter itself never takes part.
        let mut with_signature = documented_params();
        with_signature.push(("Signature", "whatever"));
        assert_eq!(
            sign("GET", with_signature, "testsecret"),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn other_secret_method_or_params_sign_differently() {
        let signature = sign("GET", documented_params(), "testsecret");
        assert_ne!(sign("GET", documented_params(), "other"), signature);
        assert_ne!(sign("POST", documented_params(), "testsecret"), signature);
        let mut changed = documented_params();
        changed[1] = ("Format", "JSON");
        assert_ne!(sign("GET", changed, "testsecret"), signature);
    }

    #[test]
    fn percent_encoding_follows_the_documented_rules() {
        assert_eq!(percent_encode("ABCabc012-_.~"), "ABCabc012-_.~");
        assert_eq!(percent_encode("a b*c"), "a%20b%2Ac");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("\""), "%22");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("[\"x\"]"), "%5B%22x%22%5D");
    }
}
