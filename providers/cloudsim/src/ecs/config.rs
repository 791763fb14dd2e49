//! The simulated ECS cloud's settings: the engine's (executor, latencies, images, faults,
//! logs) and the face's own (region, account, keys, clusters, the stop latency, the request
//! rates, STS), in one flat file as `vk-cloud serve --face ecs --config` reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;
use crate::engine::catalog;
use crate::engine::executor::{ExecutorKind, process, simulate};
use crate::engine::faults;

/// A token bucket: `burst` at once, then `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

/// The request rates answered `ThrottlingException` beyond.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rates {
    /// RunTask calls (Fargate's documented RunTask quota: 20 a second, burst and sustained).
    pub run_task: Rate,
    /// Tasks launched (Fargate's documented task launch bucket: 100, refilled at 20 a second).
    pub task_launch: Rate,
    /// Every other ECS call together (a figure of the simulator's own; ECS publishes its
    /// buckets per action).
    pub ecs_api: Rate,
    /// Every CloudWatch Logs call together (GetLogEvents' documented 25 a second).
    pub logs_api: Rate,
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            run_task: Rate {
                burst: 20,
                per_second: 20.0,
            },
            task_launch: Rate {
                burst: 100,
                per_second: 20.0,
            },
            ecs_api: Rate {
                burst: 100,
                per_second: 50.0,
            },
            logs_api: Rate {
                burst: 25,
                per_second: 25.0,
            },
        }
    }
}

/// STS: which web identity tokens AssumeRoleWithWebIdentity accepts, and key lifetimes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StsConfig {
    /// Accepted `iss` claims; empty: any.
    pub issuers: Vec<String>,
    /// Accepted `aud` claims; empty: any.
    pub audiences: Vec<String>,
    /// The roles' MaxSessionDuration (DurationSeconds above it is refused).
    pub max_session_secs: u32,
    /// Temporary keys live this long whatever the caller asks (tests of expiry).
    pub lifetime_secs: Option<u64>,
}

impl Default for StsConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            max_session_secs: 3600,
            lifetime_secs: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EcsConfig {
    pub region: String,
    /// The 12-digit account in every ARN.
    pub account_id: String,
    /// Access key id -> secret access key.
    pub access_keys: BTreeMap<String, String>,
    /// The clusters that exist (by name).
    pub clusters: Vec<String>,
    pub executor: ExecutorKind,
    pub simulate: simulate::SimulateConfig,
    pub process: process::ProcessConfig,
    /// PROVISIONING -> PENDING.
    pub schedule_latency_ms: u64,
    /// PENDING -> containers starting (image pull).
    pub provision_latency_ms: u64,
    pub latency_jitter_ms: u64,
    /// RUNNING shows as ACTIVATING this long after the containers started.
    pub activating_ms: u64,
    /// From the end of the containers to STOPPED, through DEACTIVATING, STOPPING and
    /// DEPROVISIONING (a third each).
    pub stop_latency_ms: u64,
    /// A stopped task is still described this long, then forgotten (ECS keeps them at least
    /// an hour); its CloudWatch Logs streams stay.
    pub stopped_retention_secs: u64,
    pub max_log_lines: usize,
    /// Signed requests further than this from the server's clock are refused.
    pub max_clock_skew_secs: u64,
    pub catalog: catalog::ImageCatalog,
    pub faults: faults::FaultConfig,
    /// Task addresses are `<prefix>x.y`.
    pub ip_prefix: String,
    /// A clientToken stands for its first RunTask this long (as long as stopped tasks are
    /// kept, by default: a token never answers a task already forgotten).
    pub client_token_ttl_secs: u64,
    /// `instant` (the latencies above, the default) or `realistic` (placement, network
    /// attach and image pulls by size; `engine::latency`).
    pub latency_model: crate::engine::latency::LatencyModel,
    /// The realistic model's figures.
    pub realistic: crate::engine::latency::RealisticLatency,
    pub rates: Rates,
    pub sts: StsConfig,
    /// The role IMDSv2 hands out as the instance profile
    /// (`/latest/meta-data/iam/security-credentials/<role>`).
    pub instance_role: String,
    /// The role EKS Pod Identity's agent hands out (`GET /v1/credentials`).
    pub pod_identity_role: String,
}

impl Default for EcsConfig {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            access_keys: BTreeMap::new(),
            clusters: vec!["default".into()],
            executor: ExecutorKind::Simulate,
            simulate: Default::default(),
            process: Default::default(),
            schedule_latency_ms: engine.schedule_latency_ms,
            provision_latency_ms: engine.provision_latency_ms,
            latency_jitter_ms: engine.latency_jitter_ms,
            activating_ms: 300,
            stop_latency_ms: 3000,
            stopped_retention_secs: 3600,
            max_log_lines: engine.max_log_lines,
            max_clock_skew_secs: 900,
            catalog: engine.catalog,
            faults: engine.faults,
            ip_prefix: "10.0.".into(),
            client_token_ttl_secs: 3600,
            latency_model: Default::default(),
            realistic: Default::default(),
            rates: Rates::default(),
            sts: Default::default(),
            instance_role: "vk-node".into(),
            pod_identity_role: "vk-serverless".into(),
        }
    }
}

impl EcsConfig {
    /// A config with one access key, for tests and quick starts.
    pub fn with_key(access_key_id: &str, secret: &str) -> Self {
        let mut config = Self::default();
        config
            .access_keys
            .insert(access_key_id.to_string(), secret.to_string());
        config
    }

    /// The engine's part.
    pub fn engine(&self) -> EngineConfig {
        let defaults = EngineConfig::default();
        EngineConfig {
            schedule_latency_ms: self.schedule_latency_ms,
            provision_latency_ms: self.provision_latency_ms,
            latency_jitter_ms: self.latency_jitter_ms,
            restart_backoff_ms: defaults.restart_backoff_ms,
            max_restart_backoff_ms: defaults.max_restart_backoff_ms,
            max_log_lines: self.max_log_lines,
            catalog: self.catalog.clone(),
            faults: self.faults.clone(),
            ip_prefix: self.ip_prefix.clone(),
            client_token_ttl_secs: self.client_token_ttl_secs,
            latency_model: self.latency_model,
            realistic: self.realistic.clone(),
        }
    }

    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account_id
        )
    }

    /// A cluster's name from its name or ARN; `None`: the default cluster.
    pub fn cluster_name<'a>(&self, cluster: Option<&'a str>) -> &'a str {
        match cluster {
            None | Some("") => "default",
            Some(c) => c.rsplit_once(":cluster/").map_or(c, |(_, name)| name),
        }
    }
}
