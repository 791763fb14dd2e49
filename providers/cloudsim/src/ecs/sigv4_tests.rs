//! The signature check against signatures botocore computed, and malformed headers.

use super::*;
use hyper::header::HeaderValue;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

/// Signatures botocore 1.44 computed for these requests (its SigV4Auth).
#[test]
fn signatures_match_botocore() {
    let now = parse_amz_date("20261203T195754Z").unwrap();
    let h = headers(&[
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-date", "20261203T195754Z"),
        (
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.ListTasks",
        ),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=2c260a8c1a3d9ea9cbf3cf33b3ac43edf5fa728aca5c9127155c0ab699ddef30",
        ),
    ]);
    let req = Signed {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
        body: br#"{"cluster":"default"}"#,
    };
    let secret = |s: &str, token: Option<&str>| Secret {
        secret: s.into(),
        session_token: token.map(str::to_string),
        expires: None,
    };
    let key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    assert_eq!(
        verify(&req, "us-east-1", "ecs", 900, now, |_| Some(secret(
            key, None
        ))),
        Ok("AKIDEXAMPLE".into())
    );
    assert_eq!(
        verify(&req, "us-east-1", "ecs", 900, now, |_| Some(secret(
            "other", None
        ))),
        Err(AuthError::Signature(BAD_SIGNATURE.into()))
    );
    assert!(matches!(
        verify(&req, "eu-west-1", "ecs", 900, now, |_| Some(secret(key, None))),
        Err(AuthError::Signature(m)) if m.contains("region")
    ));
    assert!(matches!(
        verify(&req, "us-east-1", "logs", 900, now, |_| Some(secret(key, None))),
        Err(AuthError::Signature(m)) if m.contains("service")
    ));
    let later = parse_amz_date("20261203T210000Z").unwrap();
    assert!(matches!(
        verify(&req, "us-east-1", "ecs", 900, later, |_| Some(secret(key, None))),
        Err(AuthError::Signature(m)) if m.contains("Signature expired")
    ));
    assert_eq!(
        verify(&req, "us-east-1", "ecs", 900, now, |_| None),
        Err(AuthError::UnknownKey)
    );

    // A query string, an empty body and a session token.
    let h = headers(&[
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-date", "20261203T195754Z"),
        ("x-amz-security-token", "TOKEN/+="),
        ("x-amz-target", "Logs_20140328.GetLogEvents"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIATEMP/20261203/us-east-1/logs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=b627d5e17b7b8471521451efcce9bc87e52b7bb03ed9789031fc5db846288a2e",
        ),
    ]);
    let req = Signed {
        method: "POST",
        path: "/",
        query: "b=2&a=x%20y",
        headers: &h,
        body: b"",
    };
    assert_eq!(
        verify(&req, "us-east-1", "logs", 900, now, |_| Some(secret(
            "s3cr3t",
            Some("TOKEN/+=")
        ))),
        Ok("ASIATEMP".into())
    );
    assert_eq!(
        verify(&req, "us-east-1", "logs", 900, now, |_| Some(secret(
            "s3cr3t",
            Some("other")
        ))),
        Err(AuthError::BadToken)
    );
    let expired = Secret {
        expires: Some(now),
        ..secret("s3cr3t", Some("TOKEN/+="))
    };
    assert_eq!(
        verify(&req, "us-east-1", "logs", 900, now, |_| Some(expired)),
        Err(AuthError::Expired)
    );
}

#[test]
fn incomplete_authorization_headers_are_named() {
    assert!(matches!(
        parse_authorization("Basic abc"),
        Err(AuthError::Incomplete(_))
    ));
    assert!(matches!(
        parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=ff"),
        Err(AuthError::Incomplete(m)) if m.contains("SignedHeaders")
    ));
    assert!(matches!(
        parse_authorization("AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=ff"),
        Err(AuthError::Incomplete(_))
    ));
    assert_eq!(percent_decode("a%2Fb+c%zz%"), "a/b c%zz%");
}
