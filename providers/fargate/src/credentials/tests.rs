//! The credential sources against the simulator's STS, IMDSv2 and Pod Identity endpoints,
//! and the choice of source from configuration and environment.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloudsim::ecs::config::EcsConfig;
use cloudsim::ecs::server::EcsCloud;
use vk_core::provider::http::{Http, Tls};

use super::*;

fn http() -> Http {
    Http::new(&Tls::new(None).unwrap(), Duration::from_secs(5))
}

fn jwt(claims: serde_json::Value) -> String {
    let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        enc(&serde_json::json!({"alg": "RS256", "kid": "k"})),
        enc(&claims)
    )
}

fn token_for(aud: &str) -> String {
    jwt(serde_json::json!({
        "iss": "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE",
        "sub": "system:serviceaccount:vk-system:vk",
        "aud": aud,
        "exp": jiff::Timestamp::now().as_second() + 3600,
    }))
}

async fn cloud() -> EcsCloud {
    EcsCloud::start(EcsConfig::with_key("AKIDVK", "secretvk"), "127.0.0.1:0")
        .await
        .unwrap()
}

fn env_of(vars: &[(&str, String)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn resolve_with(
    config: &CredentialsConfig,
    vars: &HashMap<String, String>,
) -> Result<Arc<Credentials>, CredentialError> {
    resolve(config, "eu-west-1", &|k| vars.get(k).cloned(), &http())
}

#[tokio::test]
async fn irsa_exchanges_the_token_file_at_sts_and_rereads_it() {
    let cloud = cloud().await;
    let dir = std::env::temp_dir().join(format!("vk-irsa-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, token_for("sts.amazonaws.com")).unwrap();
    let vars = env_of(&[
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/vk".into()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", file.display().to_string()),
        ("AWS_ENDPOINT_URL_STS", cloud.endpoint()),
    ]);
    let creds = resolve_with(&CredentialsConfig::default(), &vars).unwrap();
    assert_eq!(creds.source_name(), "irsa");
    let keys = creds.get().await.unwrap();
    assert!(keys.access_key_id.starts_with("ASIA"), "{keys:?}");
    assert!(keys.session_token.is_some());
    assert!(!format!("{keys:?}").contains(keys.secret_access_key.expose()));
    // A rotated token that STS refuses: the next fetch reads the file again and fails.
    std::fs::write(&file, "not-a-jwt").unwrap();
    creds.invalidate(&keys);
    let err = creds.get().await.unwrap_err().to_string();
    assert!(err.contains("InvalidIdentityToken"), "{err}");
    assert!(!err.contains("not-a-jwt"), "the token never shows: {err}");
}

#[tokio::test]
async fn pod_identity_sends_the_token_file_as_authorization() {
    let cloud = cloud().await;
    let dir = std::env::temp_dir().join(format!("vk-podid-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("eks-pod-identity-token");
    std::fs::write(&file, token_for("pods.eks.amazonaws.com")).unwrap();
    let vars = env_of(&[
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v1/credentials", cloud.endpoint()),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            file.display().to_string(),
        ),
    ]);
    let creds = resolve_with(&CredentialsConfig::default(), &vars).unwrap();
    assert_eq!(creds.source_name(), "pod_identity");
    let keys = creds.get().await.unwrap();
    assert!(keys.access_key_id.starts_with("ASIA"));
    // A token for another audience is refused with the agent's reason.
    std::fs::write(&file, token_for("sts.amazonaws.com")).unwrap();
    creds.invalidate(&keys);
    let err = creds.get().await.unwrap_err().to_string();
    assert!(err.contains("401") && err.contains("audience"), "{err}");
}

#[tokio::test]
async fn imds_takes_a_session_token_then_the_instance_profile() {
    let cloud = cloud().await;
    let config = CredentialsConfig {
        source: SourceKind::Imds,
        imds_endpoint: Some(cloud.endpoint()),
        ..Default::default()
    };
    let creds = resolve_with(&config, &HashMap::new()).unwrap();
    let keys = creds.get().await.unwrap();
    assert!(keys.access_key_id.starts_with("ASIA"));
    assert!(keys.session_token.is_some());
}

#[tokio::test]
async fn env_keys_come_first_and_half_keys_are_a_clear_error() {
    let vars = env_of(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV".into()),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t".into()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/vk".into()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent".into()),
    ]);
    let creds = resolve_with(&CredentialsConfig::default(), &vars).unwrap();
    assert_eq!(creds.source_name(), "env");
    assert_eq!(creds.get().await.unwrap().access_key_id, "AKIDENV");
    assert!(!creds.describe().contains("s3cr3t"));

    let half = env_of(&[("AWS_ACCESS_KEY_ID", "AKIDENV".into())]);
    let err = resolve_with(&CredentialsConfig::default(), &half).unwrap_err();
    assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");

    let named = CredentialsConfig {
        source: SourceKind::Irsa,
        ..Default::default()
    };
    let err = resolve_with(&named, &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("AWS_ROLE_ARN"), "{err}");
    // Nothing set: auto falls back to the instance profile, which answers only on EC2.
    let creds = resolve_with(&CredentialsConfig::default(), &HashMap::new()).unwrap();
    assert_eq!(creds.source_name(), "imds");
}

#[test]
fn unknown_settings_are_refused() {
    let err = serde_json::from_str::<CredentialsConfig>(r#"{"source":"irsa","rol_arn":"x"}"#)
        .unwrap_err();
    assert!(err.to_string().contains("rol_arn"), "{err}");
}
