//! The simulated ACI cloud's settings: the engine's (executor, latencies, images, faults,
//! logs) and the face's own (subscriptions, resource groups, location, Azure AD clients and
//! federated trusts, quotas, ARM's request budgets, ACI's create/delete limits, paging), in
//! one flat file as `vk-cloud serve --face aci --config` reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;
use crate::engine::catalog;
use crate::engine::executor::{ExecutorKind, process, simulate};
use crate::engine::faults;

/// A workload identity's federated credential: a token from `issuer` about `subject`, with
/// `audience` among its audiences, is exchanged for an access token of the app `client_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FederatedTrust {
    pub client_id: String,
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

impl Default for FederatedTrust {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            issuer: String::new(),
            subject: String::new(),
            audience: aci::wire::aad::FEDERATED_TOKEN_AUDIENCE.into(),
        }
    }
}

/// Per-subscription quotas of one region (Azure's documented defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AciQuotas {
    /// Standard container groups per subscription and region.
    pub container_groups: u32,
    /// Standard vCPUs of all groups per subscription and region.
    pub standard_cores: u32,
    /// The largest Linux group: vCPUs and GB (most regions: 4 and 16).
    pub max_group_cpu: f64,
    pub max_group_memory_gb: f64,
    pub max_containers: usize,
    pub max_volumes: usize,
    /// ACI's create (and, separately, delete) limits: per 5 minutes and per hour.
    pub creates_per_5_min: u32,
    pub creates_per_hour: u32,
}

impl Default for AciQuotas {
    fn default() -> Self {
        Self {
            container_groups: 100,
            standard_cores: 100,
            max_group_cpu: 4.0,
            max_group_memory_gb: 16.0,
            max_containers: 60,
            max_volumes: 20,
            creates_per_5_min: 100,
            creates_per_hour: 300,
        }
    }
}

/// What ACI keeps of a terminated container's log (Azure's documented 1 000 lines and 16 KB;
/// 0 keeps everything).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TerminatedLog {
    pub lines: usize,
    pub bytes: usize,
}

impl Default for TerminatedLog {
    fn default() -> Self {
        Self {
            lines: 1000,
            bytes: 16 * 1024,
        }
    }
}

/// ARM's request budget per subscription: reads (GET) and writes (PUT, PATCH, DELETE, POST)
/// per window; over it, 429 with `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArmBudget {
    pub reads: u32,
    pub writes: u32,
    pub window_secs: u64,
}

impl Default for ArmBudget {
    /// ARM's classic per-subscription limits: 12 000 reads and 1 200 writes an hour.
    fn default() -> Self {
        Self {
            reads: 12_000,
            writes: 1_200,
            window_secs: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AciConfig {
    /// Subscriptions that exist; others answer SubscriptionNotFound.
    pub subscriptions: Vec<String>,
    /// Resource groups that exist (in every subscription); empty: any name exists.
    pub resource_groups: Vec<String>,
    /// The region served; a group elsewhere is refused.
    pub location: String,
    /// The Azure AD tenant whose token endpoint the face serves.
    pub tenant_id: String,
    /// Client id -> client secret (the client-credentials flow).
    pub clients: BTreeMap<String, String>,
    /// Workload identities: federated tokens (checked without a signature) for apps.
    pub federated: Vec<FederatedTrust>,
    /// The client id the instance metadata service answers for.
    pub managed_identity_client_id: String,
    /// Access tokens live this long.
    pub token_lifetime_secs: u64,
    pub quotas: AciQuotas,
    pub arm_budget: ArmBudget,
    /// Lists answer at most this many groups per page (`nextLink` for the rest).
    pub page_size: usize,
    /// Lists carry the instance views (group state, container states and events). ACI's lists
    /// do not (only a GET has them), so neither does the face unless this is set.
    pub list_instance_views: bool,
    /// The log a terminated container keeps.
    pub terminated_log: TerminatedLog,
    /// An exec/attach URI must be connected within this long, once.
    pub exec_ttl_ms: u64,
    pub executor: ExecutorKind,
    pub simulate: simulate::SimulateConfig,
    pub process: process::ProcessConfig,
    pub schedule_latency_ms: u64,
    pub provision_latency_ms: u64,
    pub latency_jitter_ms: u64,
    pub restart_backoff_ms: u64,
    pub max_log_lines: usize,
    pub catalog: catalog::ImageCatalog,
    pub faults: faults::FaultConfig,
    pub ip_prefix: String,
    /// `instant` (the latencies above, the default) or `realistic` (placement, network
    /// attach and image pulls by size; `engine::latency`).
    pub latency_model: crate::engine::latency::LatencyModel,
    /// The realistic model's figures.
    pub realistic: crate::engine::latency::RealisticLatency,
}

impl Default for AciConfig {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            subscriptions: vec![DEFAULT_SUBSCRIPTION.into()],
            resource_groups: Vec::new(),
            location: "westeurope".into(),
            tenant_id: DEFAULT_TENANT.into(),
            clients: BTreeMap::new(),
            federated: Vec::new(),
            managed_identity_client_id: "00000000-0000-0000-0000-0000000000aa".into(),
            token_lifetime_secs: 3600,
            quotas: AciQuotas::default(),
            arm_budget: ArmBudget::default(),
            page_size: 100,
            list_instance_views: false,
            terminated_log: TerminatedLog::default(),
            exec_ttl_ms: 30_000,
            executor: ExecutorKind::Simulate,
            simulate: Default::default(),
            process: Default::default(),
            schedule_latency_ms: engine.schedule_latency_ms,
            provision_latency_ms: engine.provision_latency_ms,
            latency_jitter_ms: engine.latency_jitter_ms,
            restart_backoff_ms: engine.restart_backoff_ms,
            max_log_lines: engine.max_log_lines,
            catalog: engine.catalog,
            faults: engine.faults,
            ip_prefix: "10.240.".into(),
            latency_model: Default::default(),
            realistic: Default::default(),
        }
    }
}

/// The subscription a default config knows.
pub const DEFAULT_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
/// The tenant a default config serves.
pub const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-0000000000t1";

impl AciConfig {
    /// A config with one client secret, for tests and quick starts.
    pub fn with_client(client_id: &str, secret: &str) -> Self {
        let mut config = Self::default();
        config.clients.insert(client_id.into(), secret.into());
        config
    }

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
            client_token_ttl_secs: 0,
            latency_model: self.latency_model,
            realistic: self.realistic.clone(),
        }
    }

    pub fn has_subscription(&self, id: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.eq_ignore_ascii_case(id))
    }

    pub fn has_resource_group(&self, name: &str) -> bool {
        self.resource_groups.is_empty()
            || self
                .resource_groups
                .iter()
                .any(|g| g.eq_ignore_ascii_case(name))
    }
}
