//! SigV4 for every AWS call the provider makes (ECS, CloudWatch Logs, STS's signed calls),
//! with AWS's own signer (the `aws-sigv4` crate): this module only turns a request as
//! [`vk_core::provider::http::Http::send`] takes it into the headers to add.
//!
//! The signer traces the request it signs at trace level, body included; `vk` caps the
//! `aws_sigv4` target at debug (see `vk_core::cli`), so a pod's env never reaches the log.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use crate::credentials::AwsCredentials;

/// What a request is signed for.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The region (`eu-west-1`).
    pub region: &'a str,
    /// The signing name of the service: `ecs`, `logs`, `sts`.
    pub service: &'a str,
}

/// The headers to add to the request `method url` with `headers` and `body` so that AWS
/// accepts it: `authorization`, `x-amz-date` and, with temporary credentials,
/// `x-amz-security-token`. `headers` must hold every header that will be sent and that
/// should be signed (`host` is taken from the URL when absent). Errors name no secret.
pub fn signed_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &AwsCredentials,
    scope: Scope<'_>,
    at: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let host = host_of(url).ok_or_else(|| format!("signing: {url:?} has no host"))?;
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !all.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        all.push(("host", host));
    }
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        None,
        "vk-serverless",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing: {e}"))?
        .into();
    let request = SignableRequest::new(method, url, all.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| format!("signing {method} {url}: {e}"))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| format!("signing {method} {url}: {e}"))?
        .into_parts();
    let mut out: Vec<(String, String)> = instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        // hyper sets Host itself from the URL; it is signed, not added twice.
        out.retain(|(k, _)| !k.eq_ignore_ascii_case("host"));
    }
    Ok(out)
}

/// `host[:port]` of an absolute URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::credentials::Secret;

    fn keys(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
        }
    }

    /// 2015-08-30T12:36:00Z, the date of AWS's published SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn get(headers: &[(String, String)], name: &str) -> Option<String> {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn the_published_get_vanilla_case_signs_as_aws_says() {
        // AWS's SigV4 test suite, case get-vanilla: GET / on example.amazonaws.com,
        // us-east-1, service "service", with only host and x-amz-date signed.
        let headers = signed_headers(
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            &keys(None),
            Scope {
                region: "us-east-1",
                service: "service",
            },
            suite_time(),
        )
        .unwrap();
        assert_eq!(
            get(&headers, "x-amz-date").as_deref(),
            Some("20150830T123600Z")
        );
        assert_eq!(
            get(&headers, "authorization").as_deref(),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert_eq!(get(&headers, "host"), None, "hyper adds Host itself");
        assert_eq!(get(&headers, "x-amz-security-token"), None);
    }

    #[test]
    fn temporary_credentials_carry_their_token_and_sign_the_given_headers() {
        let headers = signed_headers(
            "POST",
            "http://127.0.0.1:9000/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                (
                    "x-amz-target",
                    "AmazonEC2ContainerServiceV20141113.ListTasks",
                ),
            ],
            b"{}",
            &keys(Some("FQoGZXIvYXdzEXAMPLE")),
            Scope {
                region: "eu-west-1",
                service: "ecs",
            },
            suite_time(),
        )
        .unwrap();
        assert_eq!(
            get(&headers, "x-amz-security-token").as_deref(),
            Some("FQoGZXIvYXdzEXAMPLE")
        );
        let auth = get(&headers, "authorization").unwrap();
        assert!(
            auth.contains("/20150830/eu-west-1/ecs/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains(
                "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
            ),
            "{auth}"
        );
        assert!(
            !auth.contains("wJalrXUtnFEMI"),
            "the secret key never leaves"
        );
    }

    #[test]
    fn a_url_without_host_is_an_error_not_a_panic() {
        let err = signed_headers(
            "GET",
            "not a url",
            &[],
            b"",
            &keys(None),
            Scope {
                region: "us-east-1",
                service: "ecs",
            },
            suite_time(),
        )
        .unwrap_err();
        assert!(err.contains("no host"), "{err}");
    }
}
