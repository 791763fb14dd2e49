//! Helpers of the component tests: the simulator's ACI face on 127.0.0.1:0 (HTTPS with its
//! throwaway CA, its Azure AD answering a client secret) and the provider driving it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudsim::aci::config::{DEFAULT_SUBSCRIPTION, DEFAULT_TENANT};
use cloudsim::aci::{AciCloud, TlsMode};
use cloudsim::engine::executor::simulate::{ENV_EXIT_CODE, ENV_RUN_MS};
use vk_core::provider::{
    ContainerSpec, EnvVar, InstanceStatus, PodRef, Provider, ResolvedPod, RestartPolicy,
};

use crate::credentials_chain::{CredentialsConfig, SourceKind};
use crate::pacing::RetryPolicy;
use crate::{AciConfig, AciProvider};

pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const SECRET: &str = "test-secret";
pub const RESOURCE_GROUP: &str = "vk-rg";

/// A file under the temp dir that is this test's own.
pub fn temp_file(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("vk-aci-{}-{n}-{name}", std::process::id()))
}

/// The face with short latencies, adjusted by `tune`.
pub async fn cloud(tune: impl FnOnce(&mut cloudsim::aci::AciConfig)) -> AciCloud {
    let mut config = cloudsim::aci::AciConfig::with_client(CLIENT_ID, SECRET);
    config.schedule_latency_ms = 10;
    config.provision_latency_ms = 10;
    config.latency_jitter_ms = 0;
    config.restart_backoff_ms = 50;
    config.simulate.log_interval_ms = 20;
    tune(&mut config);
    AciCloud::start(config, "127.0.0.1:0", TlsMode::SelfSigned { ca_out: None })
        .await
        .expect("the ACI face starts")
}

/// The provider's config for `cloud`: its CA trusted, its Azure AD as the authority.
pub fn config(cloud: &AciCloud, node: &str) -> AciConfig {
    let ca = temp_file("ca.pem");
    std::fs::write(&ca, cloud.ca_pem().expect("a self-signed face has a CA")).unwrap();
    AciConfig {
        subscription_id: DEFAULT_SUBSCRIPTION.into(),
        resource_group: RESOURCE_GROUP.into(),
        location: "westeurope".into(),
        endpoint: cloud.endpoint(),
        extra_ca_file: Some(ca),
        credentials: CredentialsConfig {
            source: SourceKind::ClientSecret,
            tenant_id: Some(DEFAULT_TENANT.into()),
            client_id: Some(CLIENT_ID.into()),
            authority_host: Some(cloud.endpoint()),
            ..Default::default()
        },
        node_name: node.into(),
        status_interval_ms: 100,
        log_poll_interval_ms: 30,
        request_timeout_ms: 10_000,
        retry: RetryPolicy {
            max_attempts: 12,
            base_delay_ms: 10,
            max_delay_ms: 200,
            max_retry_after_ms: 3000,
        },
        low_water: 0,
        ..Default::default()
    }
}

/// The environment the provider's credential chain sees: the client secret.
pub fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let mut map: HashMap<String, String> =
        HashMap::from([("AZURE_CLIENT_SECRET".into(), SECRET.into())]);
    map.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    move |k: &str| map.get(k).cloned()
}

pub fn provider(cloud: &AciCloud, node: &str) -> AciProvider {
    AciProvider::with_env(config(cloud, node), &env(&[])).expect("valid config")
}

/// A container that runs `run_ms` (or `forever`) and exits with `exit`.
pub fn sim_container(name: &str, run_ms: &str, exit: i32) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "busybox:1.36".into(),
        env: vec![
            EnvVar {
                name: ENV_RUN_MS.into(),
                value: run_ms.into(),
            },
            EnvVar {
                name: ENV_EXIT_CODE.into(),
                value: exit.to_string(),
            },
        ],
        ..Default::default()
    }
}

pub fn pod(uid: &str, policy: RestartPolicy, containers: Vec<ContainerSpec>) -> ResolvedPod {
    ResolvedPod {
        pod: PodRef {
            namespace: "default".into(),
            name: format!("pod-{uid}"),
            uid: uid.into(),
        },
        node_name: "vk-node".into(),
        restart_policy: policy,
        containers,
        ..Default::default()
    }
}

/// Poll `list()` until the pod's status satisfies `cond` (30 s at most).
pub async fn wait_for(
    provider: &AciProvider,
    uid: &str,
    what: &str,
    cond: impl Fn(&InstanceStatus) -> bool,
) -> InstanceStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last = None;
    loop {
        let list = provider.list().await.expect("list");
        if let Some(status) = list.into_iter().find(|s| s.pod.uid == uid) {
            if cond(&status) {
                return status;
            }
            last = Some(status);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod {uid} never became {what}; last status: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}
