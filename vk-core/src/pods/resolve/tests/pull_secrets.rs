//! `imagePullSecrets`: both secret types, `auth` over username/password, one credential per
//! registry, and warnings instead of errors for missing or unusable secrets.

use super::*;
use crate::provider::RegistryCredential;

const JSON: &str = "kubernetes.io/dockerconfigjson";

fn cred(server: &str, username: &str, password: &str) -> RegistryCredential {
    RegistryCredential {
        server: server.into(),
        username: username.into(),
        password: password.into(),
    }
}

fn with_pull_secrets(names: &[&str]) -> Pod {
    let refs: Vec<_> = names.iter().map(|n| json!({"name": n})).collect();
    pod(
        json!({"containers": [{"name": "app", "image": "registry.example.com/app:1"}], "imagePullSecrets": refs}),
    )
}

#[tokio::test]
async fn docker_config_json_and_legacy_dockercfg_become_credentials() {
    let src = FakeSource::new()
        .typed_secret(
            "ns1",
            "registry",
            JSON,
            ".dockerconfigjson",
            // "ZGVtbzpzM2NyM3Q=" is demo:s3cr3t; auth wins over the other fields.
            r#"{"auths": {
                "https://registry.example.com/v1/": {"auth": "ZGVtbzpzM2NyM3Q=", "username": "ignored"},
                "quay.io": {"username": "robot", "password": "pw", "email": "a@b"}
            }}"#,
        )
        .typed_secret(
            "ns1",
            "legacy",
            "kubernetes.io/dockercfg",
            ".dockercfg",
            r#"{"index.docker.io": {"username": "hub", "password": "hubpw"},
                "quay.io": {"username": "other", "password": "not-used"}}"#,
        );
    let (r, warnings) = resolve_warn(&with_pull_secrets(&["registry", "legacy"]), &src)
        .await
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        r.image_pull_credentials,
        [
            cred("quay.io", "robot", "pw"),
            cred("registry.example.com", "demo", "s3cr3t"),
            // The first secret's quay.io credential wins over the second's.
            cred("index.docker.io", "hub", "hubpw"),
        ]
    );
    assert!(!format!("{:?}", r.image_pull_credentials).contains("s3cr3t"));
}

#[tokio::test]
async fn missing_pull_secrets_are_one_warning_not_an_error() {
    let src = FakeSource::new().typed_secret(
        "ns1",
        "present",
        JSON,
        ".dockerconfigjson",
        r#"{"auths": {"ghcr.io": {"username": "u", "password": "p"}}}"#,
    );
    let p = with_pull_secrets(&["gone", "", "present", "also-gone"]);
    let (r, warnings) = resolve_warn(&p, &src).await.unwrap();
    assert_eq!(r.image_pull_credentials, [cred("ghcr.io", "u", "p")]);
    assert_eq!(
        warnings,
        [ResolveWarning {
            reason: "FailedToRetrieveImagePullSecret".into(),
            message: "Unable to retrieve some image pull secrets (gone, also-gone); attempting to pull the image may not succeed.".into(),
        }]
    );
    // The empty name was never looked up.
    assert!(
        !src.calls().iter().any(|c| c == "secret ns1/"),
        "{:?}",
        src.calls()
    );
}

#[tokio::test]
async fn unusable_pull_secrets_are_warned_about_and_skipped() {
    let src = FakeSource::new()
        .secret("ns1", "opaque", &[(".dockerconfigjson", b"{}")])
        .typed_secret("ns1", "broken", JSON, ".dockerconfigjson", "{not json")
        .typed_secret("ns1", "wrong-key", JSON, "config.json", "{}")
        .typed_secret(
            "ns1",
            "bad-auth",
            JSON,
            ".dockerconfigjson",
            r#"{"auths": {"r.io": {"auth": "bm9jb2xvbg=="}}}"#,
        )
        .typed_secret(
            "ns1",
            "token-only",
            JSON,
            ".dockerconfigjson",
            r#"{"auths": {"acr.io": {"identitytoken": "t"}}}"#,
        );
    let p = with_pull_secrets(&["opaque", "broken", "wrong-key", "bad-auth", "token-only"]);
    let (r, warnings) = resolve_warn(&p, &src).await.unwrap();
    assert!(r.image_pull_credentials.is_empty());
    let messages: Vec<&str> = warnings
        .iter()
        .inspect(|w| assert_eq!(w.reason, "InvalidImagePullSecret"))
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages[0].starts_with("Image pull secret ns1/opaque is not used: its type is"));
    assert!(messages[1].contains("ns1/broken") && messages[1].contains("not valid JSON"));
    assert!(messages[2].contains("no .dockerconfigjson key"));
    assert!(messages[3].contains("\"r.io\"") && messages[3].contains("user:password"));
}

#[tokio::test]
async fn an_api_failure_reading_a_pull_secret_is_an_error() {
    let err = resolve(&with_pull_secrets(&["x"]), &FakeSource::broken())
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Api(_)), "{err:?}");
}
