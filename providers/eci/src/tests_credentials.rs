//! Component tests of the credential chain against the mock cloud over HTTP: RRSA through the
//! mock STS (refresh during a burst, the token file re-read, a failing refresh), the ECS RAM
//! role through the metadata face, static and STS keys from the environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vk_core::provider::{Provider, ProviderError};

use super::EciProvider;
use crate::client::{EciClient, EciError};
use crate::credentials::{CredentialProvider, Credentials, RETRY_FETCH_AFTER, StaticKeys};
use crate::credentials_chain::*;
use crate::tests_support::{cloud, config};
use cloudsim::MockCloud;

fn env_of(vars: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<&str, String> = vars.into_iter().collect();
    move |k| map.get(k).cloned()
}

fn token_file(name: &str, content: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vk-oidc-{name}-{}", std::process::id()));
    std::fs::write(&path, content).unwrap();
    path
}

/// The provider with no static key: RRSA against the cloud's STS.
fn rrsa_provider(cloud: &MockCloud, node: &str, token: &Path) -> EciProvider {
    let mut config = config(cloud, node);
    config.access_key_id.clear();
    config.access_key_secret.clear();
    config.sts_endpoint = Some(cloud.endpoint());
    let env = env_of(vec![
        (ENV_ROLE_ARN, "acs:ram::1234:role/vk-eci".into()),
        (
            ENV_OIDC_PROVIDER_ARN,
            "acs:ram::1234:oidc-provider/ack-rrsa".into(),
        ),
        (ENV_OIDC_TOKEN_FILE, token.display().to_string()),
    ]);
    EciProvider::with_env(config, &env).unwrap()
}

#[tokio::test]
async fn rrsa_keys_are_refreshed_during_a_burst_and_the_token_file_reread() {
    let cloud = cloud(|c| c.sts.lifetime_secs = Some(3)).await;
    let token = token_file("burst", "eyJhbGciOi.first-token.sig");
    let provider = rrsa_provider(&cloud, "creds-burst", &token);
    assert_eq!(provider.client().credentials().source_name(), "rrsa");
    for i in 0..20 {
        if i == 10 {
            std::fs::write(&token, "eyJhbGciOi.second-token.sig\n").unwrap();
        }
        provider
            .list()
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let report = cloud.sts().report();
    assert!(report.calls.len() >= 2, "{:?}", report.calls.len());
    let first = &report.calls[0];
    assert_eq!(first.oidc_token, "eyJhbGciOi.first-token.sig");
    assert_eq!(first.role_arn, "acs:ram::1234:role/vk-eci");
    assert_eq!(
        first.oidc_provider_arn,
        "acs:ram::1234:oidc-provider/ack-rrsa"
    );
    assert_eq!(first.role_session_name, "vk-creds-burst");
    assert_eq!(first.duration_seconds, Some(3600));
    // The file changed: a later refresh read it again (trimmed).
    let last = report.calls.last().unwrap();
    assert_eq!(last.oidc_token, "eyJhbGciOi.second-token.sig");
    // Every ECI request carried a temporary key's token.
    assert!(
        report.signed_with_token >= 20,
        "{}",
        report.signed_with_token
    );
    std::fs::remove_file(&token).unwrap();
}

#[tokio::test]
async fn a_failing_refresh_is_a_typed_error_and_recovers() {
    let cloud = cloud(|c| c.sts.lifetime_secs = Some(2)).await;
    let token = token_file("failing", "eyJhbGciOi.token.sig");
    let provider = rrsa_provider(&cloud, "creds-failing", &token);
    provider.list().await.unwrap();
    let condition = |p: &EciProvider| {
        let c = p.node_conditions();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].type_, "CloudCredentials");
        (c[0].healthy, c[0].reason.clone(), c[0].message.clone())
    };
    assert_eq!(condition(&provider).1, "CredentialsValid");
    cloud.sts().set_failing(true);
    // Past the keys' expiry, with STS down: the call fails, typed, without a panic.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = provider.list().await.unwrap_err();
    match e.plain() {
        ProviderError::Transient(m) => {
            assert!(
                m.contains("rrsa") && m.contains("ServiceUnavailable"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    let e = provider
        .client()
        .send(&crate::wire::query::DescribeContainerGroups::default())
        .await
        .unwrap_err();
    assert!(matches!(e, EciError::Credentials(_)), "{e:?}");
    // The node shows it, with the cause and no key left.
    let (healthy, reason, message) = condition(&provider);
    assert!(!healthy);
    assert_eq!(reason, "CredentialRefreshFailed");
    assert!(
        message.contains("ServiceUnavailable") && message.contains("no valid keys are left"),
        "{message}"
    );
    for key in cloud.sts().report().issued {
        assert!(!message.contains(&key.access_key_secret));
        assert!(!message.contains(&key.security_token));
    }
    cloud.sts().set_failing(false);
    // A failure stands for a moment, so callers do not each ask STS again.
    tokio::time::sleep(RETRY_FETCH_AFTER).await;
    provider.list().await.unwrap();
    assert!(condition(&provider).0, "a refresh that works clears it");
    // An unreadable token file is a failure of the same kind.
    std::fs::remove_file(&token).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = provider.list().await.unwrap_err();
    assert!(e.to_string().contains("OIDC token file"), "{e}");
}

#[tokio::test]
async fn the_ecs_ram_role_comes_from_the_metadata_service() {
    let cloud = cloud(|c| {
        c.sts.metadata_role = Some("vk-node-role".into());
        c.sts.lifetime_secs = Some(60);
    })
    .await;
    let mut config = config(&cloud, "creds-ecs");
    config.access_key_id.clear();
    config.access_key_secret.clear();
    config.metadata_endpoint = Some(cloud.endpoint());
    let env = env_of(vec![]);
    let provider = EciProvider::with_env(config.clone(), &env).unwrap();
    assert_eq!(
        provider.client().credentials().source_name(),
        "ecs_ram_role"
    );
    provider.list().await.unwrap();
    provider.list().await.unwrap();
    let report = cloud.sts().report();
    assert_eq!(report.metadata_credentials, 1);
    assert!(report.metadata_tokens >= 1);
    assert_eq!(report.signed_with_token, 2);
    // A role the instance does not have: a typed error naming the role's path.
    let env = env_of(vec![(ENV_ECS_ROLE, "other-role".into())]);
    let provider = EciProvider::with_env(config, &env).unwrap();
    let e = provider.list().await.unwrap_err();
    assert!(
        e.to_string().contains("other-role") && e.to_string().contains("404"),
        "{e}"
    );
}

#[tokio::test]
async fn static_and_sts_keys_from_config_and_environment() {
    let cloud = cloud(|c| c.sts.lifetime_secs = Some(3)).await;
    // Static keys of the config: no token.
    let provider = EciProvider::with_env(config(&cloud, "creds-static"), &env_of(vec![])).unwrap();
    assert_eq!(provider.client().credentials().source_name(), "config");
    provider.list().await.unwrap();
    assert_eq!(cloud.sts().report().signed_with_token, 0);
    // STS keys in the environment: the token rides along.
    let keys = cloud.sts().issue(3600);
    let mut keyless = config(&cloud, "creds-env");
    keyless.access_key_id.clear();
    keyless.access_key_secret.clear();
    let env = env_of(vec![
        (ENV_ACCESS_KEY_ID, keys.access_key_id.clone()),
        (ENV_ACCESS_KEY_SECRET, keys.access_key_secret.clone()),
        (ENV_SECURITY_TOKEN, keys.security_token.clone()),
    ]);
    let provider = EciProvider::with_env(keyless.clone(), &env).unwrap();
    assert_eq!(provider.client().credentials().source_name(), "environment");
    provider.list().await.unwrap();
    assert_eq!(cloud.sts().report().signed_with_token, 1);
    // A wrong secret: the service echoes its string to sign; with HMAC-SHA1 it holds the
    // token, which is blanked out (ACS3's is a hash).
    let env = env_of(vec![
        (ENV_ACCESS_KEY_ID, keys.access_key_id.clone()),
        (ENV_ACCESS_KEY_SECRET, "wrong".into()),
        (ENV_SECURITY_TOKEN, keys.security_token.clone()),
    ]);
    for method in [
        super::SignatureMethod::HmacSha1,
        super::SignatureMethod::Acs3,
    ] {
        let mut signed = keyless.clone();
        signed.signature = method;
        let e = EciProvider::with_env(signed, &env)
            .unwrap()
            .list()
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("SignatureDoesNotMatch"), "{e}");
        if method == super::SignatureMethod::HmacSha1 {
            assert!(e.contains("SecurityToken%3D***"), "{e}");
        }
        assert!(!e.contains(&keys.security_token), "{e}");
    }
    // Without the token, the service refuses the temporary key.
    let env = env_of(vec![
        (ENV_ACCESS_KEY_ID, keys.access_key_id.clone()),
        (ENV_ACCESS_KEY_SECRET, keys.access_key_secret.clone()),
    ]);
    let e = EciProvider::with_env(keyless, &env)
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("MissingSecurityToken"), "{e}");
    // Expired: the service's own code, after one attempt with keys fetched anew.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut client = super::ClientConfig::new(&cloud.endpoint(), "cn-hangzhou", "", "");
    client.credentials = Some(CredentialProvider::new(Box::new(StaticKeys {
        name: "environment",
        description: "test".into(),
        credentials: Credentials::new(
            &keys.access_key_id,
            &keys.access_key_secret,
            Some(&keys.security_token),
        ),
    })));
    let client = Arc::new(EciClient::new(client).unwrap());
    let e = client
        .send(&crate::wire::query::DescribeContainerGroups::default())
        .await
        .unwrap_err();
    assert!(e.is_expired_token(), "{e}");
    assert_eq!(cloud.sts().report().expired_refused, 2);
}
