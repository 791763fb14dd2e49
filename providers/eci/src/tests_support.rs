//! Helpers of the component tests: a mock cloud on 127.0.0.1:0 and the provider driving it
//! over HTTP.

use std::time::Duration;

use vk_core::provider::{
    ContainerSpec, EnvVar, InstanceStatus, PodRef, Provider, ResolvedPod, RestartPolicy,
};

use super::{EciConfig, EciProvider, RetryPolicy};
use crate::wire::request::DescribeContainerGroups;
use cloudsim::engine::executor::process::check_bwrap;
use cloudsim::engine::executor::simulate::{ENV_EXIT_CODE, ENV_RUN_MS};
use cloudsim::{ExecutorKind, MockCloud, MockCloudConfig};

pub const KEY_ID: &str = "testid";
pub const SECRET: &str = "testsecret";

/// A simulated cloud with short latencies, adjusted by `tune`.
pub async fn cloud(tune: impl FnOnce(&mut MockCloudConfig)) -> MockCloud {
    let mut config = MockCloudConfig::with_key(KEY_ID, SECRET);
    config.schedule_latency_ms = 10;
    config.provision_latency_ms = 10;
    config.latency_jitter_ms = 0;
    config.restart_backoff_ms = 50;
    config.simulate.log_interval_ms = 20;
    tune(&mut config);
    MockCloud::start(config, "127.0.0.1:0")
        .await
        .expect("the mock cloud starts")
}

pub fn config(cloud: &MockCloud, node: &str) -> EciConfig {
    EciConfig {
        endpoint: cloud.endpoint(),
        region_id: "cn-hangzhou".into(),
        access_key_id: KEY_ID.into(),
        access_key_secret: SECRET.into(),
        node_name: node.into(),
        status_interval_ms: 100,
        log_poll_interval_ms: 30,
        request_timeout_ms: 10_000,
        retry: RetryPolicy {
            max_attempts: 12,
            base_delay_ms: 10,
            max_delay_ms: 200,
        },
        ..Default::default()
    }
}

pub fn provider(cloud: &MockCloud, node: &str) -> EciProvider {
    EciProvider::new(config(cloud, node)).expect("valid config")
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
    provider: &EciProvider,
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

/// A mock cloud whose `process` executor runs containers in bubblewrap sandboxes below
/// `work`. Without `bwrap` it panics, saying how to install it.
pub async fn process_cloud(work: std::path::PathBuf) -> MockCloud {
    if let Err(e) = check_bwrap(std::path::Path::new("bwrap")).await {
        panic!("{e}");
    }
    cloud(move |c| {
        c.executor = ExecutorKind::Process;
        c.process.work_dir = Some(work);
    })
    .await
}

/// The id of the first container group the provider's cloud describes.
pub async fn group_id(provider: &EciProvider) -> String {
    provider
        .client()
        .send(&DescribeContainerGroups::default())
        .await
        .expect("describe")
        .container_groups[0]
        .container_group_id
        .clone()
}
