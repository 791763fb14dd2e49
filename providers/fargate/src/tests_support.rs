//! Helpers of the component tests: the simulator's ECS face on 127.0.0.1:0 and the provider
//! driving it with fixed keys (or IRSA through the face's STS).

use std::collections::HashMap;
use std::time::Duration;

use cloudsim::ecs::EcsCloud;
use cloudsim::ecs::config::EcsConfig;
use cloudsim::engine::executor::simulate::{ENV_EXIT_CODE, ENV_RUN_MS};
use vk_core::provider::pacing::RetryPolicy;
use vk_core::provider::{
    ContainerSpec, EnvVar, InstancePhase, InstanceStatus, PodRef, Provider, ResolvedPod,
    RestartPolicy,
};

use crate::credentials::{CredentialsConfig, SourceKind};
use crate::{FargateConfig, FargateProvider};

pub const KEY: &str = "AKIDVKTEST";
pub const SECRET: &str = "vk-test-secret";

/// The face with short latencies, adjusted by `tune`.
pub async fn cloud(tune: impl FnOnce(&mut EcsConfig)) -> EcsCloud {
    let mut config = EcsConfig::with_key(KEY, SECRET);
    config.schedule_latency_ms = 10;
    config.provision_latency_ms = 10;
    config.latency_jitter_ms = 0;
    config.activating_ms = 20;
    config.stop_latency_ms = 60;
    config.simulate.log_interval_ms = 20;
    tune(&mut config);
    EcsCloud::start(config, "127.0.0.1:0")
        .await
        .expect("the ECS face starts")
}

/// The provider's config for `cloud`.
pub fn config(cloud: &EcsCloud, node: &str) -> FargateConfig {
    FargateConfig {
        region: "us-east-1".into(),
        cluster: "default".into(),
        subnets: vec!["subnet-0a".into()],
        security_groups: vec!["sg-1".into()],
        ecs_endpoint: Some(cloud.endpoint()),
        logs_endpoint: Some(cloud.endpoint()),
        credentials: CredentialsConfig {
            source: SourceKind::Env,
            ..Default::default()
        },
        execution_role_arn: Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole".into()),
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
        ..Default::default()
    }
}

/// The environment with the face's keys.
pub fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let mut map: HashMap<String, String> = HashMap::from([
        ("AWS_ACCESS_KEY_ID".into(), KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()),
    ]);
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    move |k| map.get(k).cloned()
}

pub fn provider(cloud: &EcsCloud, node: &str) -> FargateProvider {
    FargateProvider::with_env(config(cloud, node), &env(&[])).expect("a provider")
}

pub fn pod_ref(name: &str) -> PodRef {
    PodRef {
        namespace: "ci".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

/// A pod of one container that runs `run_ms` (None: until stopped) and exits with `code`.
pub fn pod(name: &str, run_ms: Option<u64>, code: i32) -> ResolvedPod {
    let mut env = vec![EnvVar {
        name: ENV_RUN_MS.into(),
        value: run_ms.map_or("forever".into(), |ms| ms.to_string()),
    }];
    if code != 0 {
        env.push(EnvVar {
            name: ENV_EXIT_CODE.into(),
            value: code.to_string(),
        });
    }
    ResolvedPod {
        pod: pod_ref(name),
        node_name: "vk-fargate".into(),
        restart_policy: RestartPolicy::Never,
        containers: vec![ContainerSpec {
            name: "app".into(),
            image: "busybox:1.36".into(),
            env,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The statuses of the node's pods by name.
pub async fn statuses(p: &FargateProvider) -> HashMap<String, InstanceStatus> {
    p.list()
        .await
        .expect("a listing")
        .into_iter()
        .map(|s| (s.pod.name.clone(), s))
        .collect()
}

/// List until `done` holds for pod `name` (10 s at most).
pub async fn wait_for(
    p: &FargateProvider,
    name: &str,
    done: impl Fn(&InstanceStatus) -> bool,
) -> InstanceStatus {
    for _ in 0..200 {
        if let Some(s) = statuses(p).await.remove(name)
            && done(&s)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "pod {name} never got there: {:?}",
        statuses(p).await.get(name)
    );
}

pub fn running(s: &InstanceStatus) -> bool {
    s.phase == InstancePhase::Running
}

/// How many tasks the face ever started (and still keeps): one engine group each.
pub fn task_count(cloud: &EcsCloud) -> usize {
    cloud.engine().state().groups().count()
}
