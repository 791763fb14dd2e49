//! vk on eci with each kind of credentials, against the mock cloud's STS and metadata faces:
//! (a) RRSA: the STS call carries the projected token, the ECI calls carry the STS token, and
//! keys are refreshed before expiry while pods run; (b) the ECS RAM role from the metadata
//! service; (c) static keys. vk runs at trace level, and no secret (the OIDC token canary,
//! the issued secrets and tokens, the static secret) appears in its log.

use std::time::Duration;

use e2e::cloud::ACCESS_KEY_SECRET;
use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_phase};
use e2e::{unique, wait_for};
use kube::api::PostParams;

const TRACE: (&str, &str) = ("RUST_LOG", "trace");

/// Start `count` pods and wait until they run.
async fn run_pods(s: &TestBed, count: usize) {
    for i in 0..count {
        let pod = pod_for_node(&format!("creds-{i}"), &s.vk.node, &["main"], &[]);
        s.pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    for i in 0..count {
        wait_phase(
            &s.pods,
            &format!("creds-{i}"),
            "Running",
            Duration::from_secs(60),
        )
        .await;
    }
}

/// No secret in vk's log, and the log names the source used.
fn assert_log_clean(s: &TestBed, source: &str, secrets: &[String]) {
    let log = s.vk.logs();
    assert!(log.contains("TRACE"), "vk did not log at trace level");
    assert!(
        log.contains("eci credentials") && log.contains(&format!("source=\"{source}\"")),
        "vk does not say it uses {source}"
    );
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !log.contains(secret.as_str()),
            "a secret of {} characters appears in vk's log",
            secret.len()
        );
    }
}

#[tokio::test]
async fn rrsa_keys_are_refreshed_while_pods_run_and_never_logged() {
    let canary = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
        unique("canary-oidc")
    );
    let token_file = std::env::temp_dir().join(unique("vk-rrsa-token"));
    std::fs::write(&token_file, &canary).unwrap();
    let token_path = token_file.display().to_string();
    let s = Options::eci("vk-rrsa", "simulate", &["--sts-lifetime-secs", "4"])
        .without_static_keys()
        .vk_env(&[
            TRACE,
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1234567:role/vk-eci"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1234567:oidc-provider/ack-rrsa-c1",
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", &token_path),
            ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "vk-e2e"),
        ])
        .start()
        .await;
    run_pods(&s, 4).await;
    // Keys of 4 s are refreshed at 2 s: within a few seconds of vk's status polling and the
    // running pods, STS sees more calls, and no ECI call is refused as expired.
    wait_for("STS to see a refresh", Duration::from_secs(30), || async {
        s.cloud().sts_report().await.calls.len() >= 3
    })
    .await;
    for i in 0..4 {
        wait_phase(
            &s.pods,
            &format!("creds-{i}"),
            "Running",
            Duration::from_secs(5),
        )
        .await;
    }
    let report = s.cloud().sts_report().await;
    for call in &report.calls {
        assert_eq!(call.oidc_token, canary);
        assert_eq!(call.role_arn, "acs:ram::1234567:role/vk-eci");
        assert_eq!(call.role_session_name, "vk-e2e");
    }
    assert!(report.signed_with_token > 0);
    let mut secrets = vec![canary.clone()];
    for key in &report.issued {
        secrets.push(key.access_key_secret.clone());
        secrets.push(key.security_token.clone());
    }
    assert_log_clean(&s, "rrsa", &secrets);
    std::fs::remove_file(&token_file).unwrap();
}

#[tokio::test]
async fn the_ecs_ram_role_from_the_metadata_service() {
    let s = Options::eci(
        "vk-ecs-role",
        "simulate",
        &[
            "--metadata-role",
            "vk-node-role",
            "--sts-lifetime-secs",
            "4",
        ],
    )
    .without_static_keys()
    .vk_env(&[TRACE])
    .start()
    .await;
    run_pods(&s, 2).await;
    wait_for(
        "a second metadata read",
        Duration::from_secs(30),
        || async { s.cloud().sts_report().await.metadata_credentials >= 2 },
    )
    .await;
    let report = s.cloud().sts_report().await;
    assert!(report.metadata_tokens >= 2);
    assert!(report.signed_with_token > 0);
    assert!(report.calls.is_empty());
    let secrets: Vec<String> = report
        .issued
        .iter()
        .flat_map(|k| [k.access_key_secret.clone(), k.security_token.clone()])
        .collect();
    assert_log_clean(&s, "ecs_ram_role", &secrets);
}

#[tokio::test]
async fn static_keys_are_never_logged() {
    let s = Options::eci("vk-static-keys", "simulate", &[])
        .vk_env(&[TRACE])
        .start()
        .await;
    run_pods(&s, 1).await;
    let report = s.cloud().sts_report().await;
    assert_eq!(report.signed_with_token, 0);
    assert_log_clean(&s, "config", &[ACCESS_KEY_SECRET.to_string()]);
}

#[tokio::test]
async fn a_failing_refresh_loses_no_pod() {
    let token_file = std::env::temp_dir().join(unique("vk-rrsa-token"));
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").unwrap();
    let token_path = token_file.display().to_string();
    let s = Options::eci("vk-rrsa-down", "simulate", &["--sts-lifetime-secs", "3"])
        .without_static_keys()
        .vk_env(&[
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1234567:role/vk-eci"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1234567:oidc-provider/ack-rrsa-c1",
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", &token_path),
        ])
        .start()
        .await;
    run_pods(&s, 2).await;
    // STS down past the keys' expiry: vk's calls fail with a credentials error.
    s.cloud().set_sts_failing(true).await;
    wait_for(
        "vk to report failing credentials",
        Duration::from_secs(30),
        || async { s.vk.logs().contains("fetching credentials (rrsa) failed") },
    )
    .await;
    let failed_calls = s.cloud().sts_report().await.calls.len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        s.cloud().sts_report().await.calls.len() > failed_calls,
        "vk stopped retrying"
    );
    for i in 0..2 {
        wait_phase(
            &s.pods,
            &format!("creds-{i}"),
            "Running",
            Duration::from_secs(5),
        )
        .await;
    }
    // STS back: the pods are still there and a new one runs.
    s.cloud().set_sts_failing(false).await;
    let pod = pod_for_node("creds-after", &s.vk.node, &["main"], &[]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_phase(&s.pods, "creds-after", "Running", Duration::from_secs(60)).await;
    for i in 0..2 {
        wait_phase(
            &s.pods,
            &format!("creds-{i}"),
            "Running",
            Duration::from_secs(5),
        )
        .await;
    }
    assert_eq!(s.cloud().groups(&s.vk.node).await.unwrap().len(), 3);
    std::fs::remove_file(&token_file).unwrap();
}

/// The Node's `CloudCredentials` condition, (status, reason, message).
async fn credentials_condition(s: &TestBed) -> Option<(String, String, String)> {
    let node = s.nodes.get(&s.vk.node).await.ok()?;
    node.status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "CloudCredentials")
        .map(|c| {
            (
                c.status,
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default(),
            )
        })
}

#[tokio::test]
async fn a_failing_refresh_shows_on_the_node_until_a_refresh_works() {
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", unique("canary-cond"));
    let token_file = std::env::temp_dir().join(unique("vk-rrsa-token"));
    std::fs::write(&token_file, &token).unwrap();
    let token_path = token_file.display().to_string();
    // Keys of 40 s are refreshed from 20 s on: the failure shows while they still work.
    let s = Options::eci("vk-rrsa-cond", "simulate", &["--sts-lifetime-secs", "40"])
        .without_static_keys()
        .vk_env(&[
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1234567:role/vk-eci"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1234567:oidc-provider/ack-rrsa-c1",
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", &token_path),
        ])
        .start()
        .await;
    run_pods(&s, 2).await;
    let (status, reason, _) = credentials_condition(&s).await.expect("the condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "CredentialsValid")
    );

    s.cloud().set_sts_failing(true).await;
    wait_for(
        "CloudCredentials=False on the node",
        Duration::from_secs(40),
        || async {
            credentials_condition(&s)
                .await
                .is_some_and(|(status, _, _)| status == "False")
        },
    )
    .await;
    let (_, reason, message) = credentials_condition(&s).await.unwrap();
    assert_eq!(reason, "CredentialRefreshFailed");
    assert!(
        message.contains("refreshing the cloud credentials failed")
            && message.contains("rrsa")
            && message.contains("stay valid"),
        "{message}"
    );
    // The node stays Ready and the pods run on the keys still valid.
    let node = s.nodes.get(&s.vk.node).await.unwrap();
    assert_eq!(
        e2e::pods::node_condition(&node, "Ready").map(|(s, _)| s),
        Some("True".into())
    );
    for i in 0..2 {
        wait_phase(
            &s.pods,
            &format!("creds-{i}"),
            "Running",
            Duration::from_secs(5),
        )
        .await;
    }

    s.cloud().set_sts_failing(false).await;
    wait_for(
        "CloudCredentials=True again",
        Duration::from_secs(30),
        || async {
            credentials_condition(&s)
                .await
                .is_some_and(|(status, reason, _)| status == "True" && reason == "CredentialsValid")
        },
    )
    .await;
    for i in 0..2 {
        wait_phase(
            &s.pods,
            &format!("creds-{i}"),
            "Running",
            Duration::from_secs(5),
        )
        .await;
    }
    assert_eq!(s.cloud().groups(&s.vk.node).await.unwrap().len(), 2);
    // No secret in what the node shows.
    let shown = serde_json::to_string(&s.nodes.get(&s.vk.node).await.unwrap()).unwrap();
    let report = s.cloud().sts_report().await;
    assert!(!shown.contains(&token));
    for key in &report.issued {
        assert!(!shown.contains(&key.access_key_secret));
        assert!(!shown.contains(&key.security_token));
    }
    std::fs::remove_file(&token_file).unwrap();
}
