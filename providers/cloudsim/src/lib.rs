//! A mock of Alibaba Cloud ECI that really runs containers: an HTTP server speaking the
//! OpenAPI 2018-08-08 RPC style (`POST /` or `GET /?Action=...`, signed with ACS3-HMAC-SHA256
//! headers or the RPC signature 1.0 among the parameters; JSON
//! answers, the service's error codes), an engine of container groups, containers and
//! events, and an executor that runs them (`simulate`: timers; `process`: real processes in
//! bubblewrap sandboxes). The `eci` provider drives it exactly as it would drive the service.
//! Interactive exec hands out a single-use WebSocket URI ([`exec_session`]; framing in
//! [`eci::wire::exec`]).
//!
//! Start one in-process with [`MockCloud::start`], or as the `vk-cloud` binary.
//!
//! Modelled on purpose: request signatures ([`auth`], checked by [`verify`], code of its own
//! apart from the client's signer: ACS3-HMAC-SHA256 and HMAC-SHA1, nonces, timestamps), ClientToken
//! idempotency (tokens forgotten after `client_token_ttl_secs`), the create/delete quota
//! (token bucket, `Throttling.User`), the sizing table (`specs`, its own copy), page sizes and log limits,
//! DescribeMultiContainerGroupMetric (at most 20 groups per call; `process` measures the
//! sandbox's processes in `/proc`), injectable faults ([`faults`]), and temporary keys from
//! STS AssumeRoleWithOIDC ([`sts`]) or the ECS metadata service ([`metadata`]).

pub mod api;
pub mod auth;
pub mod catalog;
mod create_extras;
mod delete_batch;
mod describe;
mod engine;
mod events;
pub mod exec_session;
pub mod executor;
pub mod executor_process;
mod executor_process_exec;
mod executor_process_runtime;
pub mod executor_sim;
pub mod faults;
mod flow_control;
mod group;
mod group_metric;
mod hooks;
mod ids;
mod lifecycle;
pub mod logstore;
pub mod metadata;
mod metrics;
pub mod network;
mod placement;
pub mod probe_net;
mod probes;
mod procstat;
pub mod pty;
pub mod quota;
mod regions;
mod render;
pub mod sandbox;
mod server;
mod specs;
pub mod sts;
mod termination;
pub mod test_support;
#[cfg(test)]
mod tests_face;
mod tokens;
pub mod verify;
mod view;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use engine::Engine;
pub use server::MockCloud;

/// Which executor runs the containers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    #[default]
    Simulate,
    Process,
}

/// The create/delete quota: a burst, then a rate ([`flow_control`]).
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
    pub simulate: executor_sim::SimulateConfig,
    pub process: executor_process::ProcessConfig,
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
    /// The STS and ECS metadata faces (temporary keys).
    pub sts: sts::StsConfig,
    /// Zones, vSwitches and security groups (`DescribeRegions`, `DescribeVSwitches`,
    /// `DescribeSecurityGroups`).
    pub network: network::NetworkConfig,
    /// Quota Center's ECI vCPU quota (`ListProductQuotas`).
    pub quota_center: quota::QuotaCenterConfig,
}

impl Default for MockCloudConfig {
    fn default() -> Self {
        Self {
            region_id: "cn-hangzhou".into(),
            access_keys: BTreeMap::new(),
            executor: ExecutorKind::Simulate,
            simulate: Default::default(),
            process: Default::default(),
            schedule_latency_ms: 200,
            provision_latency_ms: 300,
            latency_jitter_ms: 200,
            restart_backoff_ms: 1000,
            quota: QuotaConfig::default(),
            max_page_size: 20,
            log_default_tail: 500,
            log_max_tail: 2000,
            max_log_lines: 100_000,
            max_clock_skew_secs: 900,
            catalog: Default::default(),
            faults: Default::default(),
            ip_prefix: "172.16.".into(),
            exec_token_ttl_ms: 30_000,
            client_token_ttl_secs: 24 * 3600,
            sts: Default::default(),
            network: Default::default(),
            quota_center: Default::default(),
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
