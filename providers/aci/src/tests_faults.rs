//! Component tests of throttling and credentials against the ACI face: ARM's 429 with
//! `Retry-After` honoured, the remaining-calls headers slowing calls down, a workload
//! identity whose token file is rotated (read again at each refresh), a bad secret.

use std::time::Duration;

use cloudsim::aci::config::{ArmBudget, DEFAULT_TENANT, FederatedTrust};
use vk_core::provider::{InstancePhase, Provider, RestartPolicy};

use crate::AciProvider;
use crate::credentials::CredentialHealth;
use crate::credentials_chain::{CredentialsConfig, SourceKind};
use crate::tests_support::*;
use crate::wire::aad::FEDERATED_TOKEN_AUDIENCE;

#[tokio::test]
async fn throttled_reads_wait_for_retry_after_and_succeed() {
    let cloud = cloud(|c| {
        c.arm_budget = ArmBudget {
            reads: 4,
            writes: 100,
            window_secs: 1,
        };
    })
    .await;
    let provider = provider(&cloud, "node-t");
    provider
        .create(&pod(
            "uid-t",
            RestartPolicy::Always,
            vec![sim_container("app", "forever", 0)],
        ))
        .await
        .expect("create");
    let start = tokio::time::Instant::now();
    // Far more reads than the budget allows in a second: every one succeeds, late.
    for _ in 0..12 {
        provider
            .list()
            .await
            .expect("a throttled list is retried, not failed");
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    wait_for(&provider, "uid-t", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
}

#[tokio::test]
async fn low_remaining_counts_slow_calls_down() {
    let cloud = cloud(|c| {
        c.arm_budget = ArmBudget {
            reads: 1000,
            writes: 1000,
            window_secs: 3600,
        };
    })
    .await;
    let mut config = config(&cloud, "node-r");
    // Everything under 2000 remaining is "low": each read waits up to 200 ms.
    config.low_water = 2000;
    config.pause_ms = 200;
    let provider = AciProvider::with_env(config, &env(&[])).unwrap();
    let start = tokio::time::Instant::now();
    for _ in 0..4 {
        provider.list().await.unwrap();
    }
    // 1000 left of 2000: 100 ms before each call after the first.
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
}

/// An unsigned JWT with these claims (the face checks claims, not the signature).
fn federated_token(subject: &str, exp: i64) -> String {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        b64(
            serde_json::json!({"iss": "https://oidc.test", "sub": subject, "aud": [FEDERATED_TOKEN_AUDIENCE], "exp": exp})
        )
    )
}

#[tokio::test]
async fn workload_identity_reads_the_rotated_token_file_at_each_refresh() {
    let cloud = cloud(|c| {
        // Whole seconds on the face's side: a token lives between 3 and 4 s; refreshed at 2 s.
        c.token_lifetime_secs = 4;
        c.federated = vec![FederatedTrust {
            client_id: CLIENT_ID.into(),
            issuer: "https://oidc.test".into(),
            subject: "system:serviceaccount:vk:vk".into(),
            audience: FEDERATED_TOKEN_AUDIENCE.into(),
        }];
    })
    .await;
    let file = temp_file("token");
    let far = jiff::Timestamp::now().as_second() + 3600;
    std::fs::write(&file, federated_token("system:serviceaccount:vk:vk", far)).unwrap();
    let mut config = config(&cloud, "node-w");
    config.credentials = CredentialsConfig {
        source: SourceKind::Auto,
        authority_host: Some(cloud.endpoint()),
        ..Default::default()
    };
    let file_s = file.display().to_string();
    let vars = [
        ("AZURE_TENANT_ID", DEFAULT_TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_FEDERATED_TOKEN_FILE", file_s.as_str()),
    ];
    let provider = AciProvider::with_env(config, &env(&vars)).unwrap();
    assert_eq!(
        provider.client().tokens().source_name(),
        "workload_identity"
    );
    provider.ping().await.expect("ping with a federated token");
    assert_eq!(provider.client().tokens().fetches(), 1);

    // The kubelet rotates the file to a token the trust does not accept: the next refresh
    // reads it (and fails), the still-valid access token keeps working meanwhile.
    std::fs::write(&file, federated_token("system:serviceaccount:other:x", far)).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    provider
        .ping()
        .await
        .expect("the current token is still valid");
    assert!(
        matches!(
            provider.client().tokens().health(),
            CredentialHealth::RefreshFailing { .. }
        ),
        "{:?}",
        provider.client().tokens().health()
    );
    let condition = &provider.node_conditions()[0];
    assert!(
        !condition.healthy && condition.message.contains("No matching federated identity"),
        "{condition:?}"
    );

    // Rotated again to a good token: the next refresh works.
    std::fs::write(&file, federated_token("system:serviceaccount:vk:vk", far)).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    provider.ping().await.expect("ping after the rotation");
    assert_eq!(provider.client().tokens().health(), CredentialHealth::Fine);
    assert!(provider.client().tokens().fetches() >= 3);
    assert!(provider.node_conditions()[0].healthy);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_wrong_secret_fails_with_the_identity_providers_code_and_no_secret() {
    let cloud = cloud(|_| {}).await;
    let provider = AciProvider::with_env(
        config(&cloud, "node-s"),
        &env(&[("AZURE_CLIENT_SECRET", "wrong-secret-value")]),
    )
    .unwrap();
    let err = provider.ping().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("wrong-secret-value"), "{text}");
    assert!(
        err.is_transient(),
        "an operator can fix credentials without touching pods"
    );
}

#[tokio::test]
async fn server_errors_before_and_after_the_action_never_make_a_second_group() {
    let cloud = cloud(|c| {
        // Half of these fail before the action runs, half after it ran (the answer is lost).
        c.faults.error_rate = 0.3;
        c.faults.throttle_calls = 3;
    })
    .await;
    let provider = provider(&cloud, "node-5xx");
    for i in 0..8 {
        let p = pod(
            &format!("uid-{i}"),
            RestartPolicy::Always,
            vec![sim_container("app", "forever", 0)],
        );
        provider
            .create(&p)
            .await
            .expect("creates are retried through 5xx answers");
    }
    for i in 0..8 {
        wait_for(&provider, &format!("uid-{i}"), "Running", |s| {
            s.phase == InstancePhase::Running
        })
        .await;
    }
    let groups = provider.all_groups().await.expect("list");
    assert_eq!(groups.len(), 8, "one group per pod, whatever was retried");
    for i in 0..8 {
        let p = pod(&format!("uid-{i}"), RestartPolicy::Always, vec![]);
        provider
            .delete(&p.pod, Duration::ZERO)
            .await
            .expect("deletes are retried too");
    }
}

/// ACI's published limits (100 creates per 5 minutes, 300 per hour, 100 groups and cores per
/// region): a burst of 100 pods fits them without one throttled create.
#[tokio::test]
async fn a_burst_of_100_pods_runs_within_acis_create_limits() {
    let cloud = cloud(|_| {}).await;
    let provider = std::sync::Arc::new(provider(&cloud, "node-burst"));
    let creates = (0..100).map(|i| {
        let provider = provider.clone();
        async move {
            let p = pod(
                &format!("b-{i}"),
                RestartPolicy::Always,
                vec![sim_container("app", "forever", 0)],
            );
            provider.create(&p).await
        }
    });
    for result in futures::future::join_all(creates).await {
        result.expect("no create fails or is throttled");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = provider.list().await.unwrap();
        let running = list
            .iter()
            .filter(|s| s.phase == InstancePhase::Running)
            .count();
        if running == 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{running} of 100 running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(provider.all_groups().await.unwrap().len(), 100);
}
