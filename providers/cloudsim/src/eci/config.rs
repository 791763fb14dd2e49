//! The simulated ECI cloud's settings: the engine's (executor, latencies, images, faults, logs)
//! and the face's own (region, keys, page and log limits, the create/delete quota, STS,
//! network, Quota Center), in one flat file as `vk-cloud --config` reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{network, quota, sts};
use crate::engine::EngineConfig;
use crate::engine::catalog;
use crate::engine::executor::{ExecutorKind, process, simulate};
use crate::engine::faults;

/// Image caches an account may hold in a region by default: no published quota was found
/// in ECI's documentation; the simulator's choice (see `image_cache`).
pub const DEFAULT_QUOTA: u32 = 50;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageCacheConfig {
    /// Image caches the account may hold in the region (any status).
    pub quota: u32,
    /// `instant` model: how long a cache is Preparing, then Creating (or Updating).
    pub instant_preparing_ms: u64,
    pub instant_creating_ms: u64,
    /// Images take this many times their compressed size on the cache's disk (checked
    /// against `ImageCacheSize`). The simulator's choice: Docker Hub's images unpack to
    /// about 2.5 to 3 times what they download (golang 1.22: about 290 MB compressed, about
    /// 800 MB on disk).
    pub unpacked_ratio: f64,
}

impl Default for ImageCacheConfig {
    fn default() -> Self {
        Self {
            quota: DEFAULT_QUOTA,
            instant_preparing_ms: 100,
            instant_creating_ms: 200,
            unpacked_ratio: 2.5,
        }
    }
}

/// The create/delete quota: a burst, then a rate ([`crate::engine::flow_control`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaConfig {
    pub burst: u32,
    pub per_second: f64,
}

impl Default for QuotaConfig {
    /// ECI's documented limit for CreateContainerGroup and DeleteContainerGroup.
    fn default() -> Self {
        Self {
            burst: 100,
            per_second: 20.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MockCloudConfig {
    pub region_id: String,
    /// AccessKeyId -> AccessKeySecret.
    pub access_keys: BTreeMap<String, String>,
    pub executor: ExecutorKind,
    pub simulate: simulate::SimulateConfig,
    pub process: process::ProcessConfig,
    /// Scheduling -> Pending.
    pub schedule_latency_ms: u64,
    /// Pending -> containers starting (sandbox, image pull).
    pub provision_latency_ms: u64,
    /// Random extra latency, up to this, on both steps.
    pub latency_jitter_ms: u64,
    /// First restart back-off; doubles per restart up to five minutes.
    pub restart_backoff_ms: u64,
    pub quota: QuotaConfig,
    /// DescribeContainerGroups answers at most this many groups per page.
    pub max_page_size: u32,
    /// DescribeContainerLog: lines without Tail, and the most with it.
    pub log_default_tail: u32,
    pub log_max_tail: u32,
    /// Lines kept per container run.
    pub max_log_lines: usize,
    /// Requests whose Timestamp is further than this from the server's clock are refused.
    pub max_clock_skew_secs: u64,
    pub catalog: catalog::ImageCatalog,
    pub faults: faults::FaultConfig,
    /// Pod IPs are `<prefix>x.y`.
    pub ip_prefix: String,
    /// An interactive exec's WebSocketUri must be used within this long (and only once).
    pub exec_token_ttl_ms: u64,
    /// A ClientToken stands for its first request this long; a reuse after that creates anew.
    pub client_token_ttl_secs: u64,
    /// `instant` (the latencies above, the default) or `realistic` (placement, network
    /// attach and image pulls by size; `engine::latency`).
    pub latency_model: crate::engine::latency::LatencyModel,
    /// The realistic model's figures.
    pub realistic: crate::engine::latency::RealisticLatency,
    /// Image caches: the account's quota, the instant model's step times.
    pub image_cache: ImageCacheConfig,
    /// The STS and ECS metadata faces (temporary keys).
    pub sts: sts::StsConfig,
    /// Zones, vSwitches and security groups (`DescribeRegions`, `DescribeVSwitches`,
    /// `DescribeSecurityGroups`).
    pub network: network::NetworkConfig,
    /// Quota Center's ECI vCPU quota (`ListProductQuotas`).
    pub quota_center: quota::QuotaCenterConfig,
    /// Keep the groups, tokens and create counts in this file and read them back at start
    /// (`persist`): a restarted simulator answers the same groups.
    pub state_file: Option<std::path::PathBuf>,
}

impl Default for MockCloudConfig {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            region_id: "cn-hangzhou".into(),
            access_keys: BTreeMap::new(),
            executor: ExecutorKind::Simulate,
            simulate: Default::default(),
            process: Default::default(),
            schedule_latency_ms: engine.schedule_latency_ms,
            provision_latency_ms: engine.provision_latency_ms,
            latency_jitter_ms: engine.latency_jitter_ms,
            restart_backoff_ms: engine.restart_backoff_ms,
            quota: QuotaConfig::default(),
            max_page_size: 20,
            log_default_tail: 500,
            log_max_tail: 2000,
            max_log_lines: engine.max_log_lines,
            max_clock_skew_secs: 900,
            catalog: engine.catalog,
            faults: engine.faults,
            ip_prefix: engine.ip_prefix,
            exec_token_ttl_ms: 30_000,
            client_token_ttl_secs: engine.client_token_ttl_secs,
            latency_model: engine.latency_model,
            realistic: engine.realistic,
            image_cache: Default::default(),
            sts: Default::default(),
            network: Default::default(),
            quota_center: Default::default(),
            state_file: None,
        }
    }
}

impl MockCloudConfig {
    /// A config with one access key, for tests and quick starts.
    pub fn with_key(access_key_id: &str, secret: &str) -> Self {
        let mut config = Self::default();
        config
            .access_keys
            .insert(access_key_id.to_string(), secret.to_string());
        config
    }
}

impl MockCloudConfig {
    /// The engine's part.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            schedule_latency_ms: self.schedule_latency_ms,
            provision_latency_ms: self.provision_latency_ms,
            latency_jitter_ms: self.latency_jitter_ms,
            restart_backoff_ms: self.restart_backoff_ms,
            max_restart_backoff_ms: EngineConfig::default().max_restart_backoff_ms,
            max_log_lines: self.max_log_lines,
            catalog: self.catalog.clone(),
            faults: self.faults.clone(),
            ip_prefix: self.ip_prefix.clone(),
            client_token_ttl_secs: self.client_token_ttl_secs,
            latency_model: self.latency_model,
            realistic: self.realistic.clone(),
        }
    }
}
