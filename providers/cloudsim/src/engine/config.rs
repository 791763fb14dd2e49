//! The engine's settings (each face has its own besides).

use super::{catalog, faults, latency};

/// The engine's settings (the faces' own settings are theirs).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Scheduling -> Pending.
    pub schedule_latency_ms: u64,
    /// Pending -> containers starting (sandbox, image pull).
    pub provision_latency_ms: u64,
    /// Random extra latency, up to this, on both steps.
    pub latency_jitter_ms: u64,
    /// First restart back-off; doubles per restart up to `max_restart_backoff_ms`.
    pub restart_backoff_ms: u64,
    /// The longest back-off (the kubelet's: five minutes).
    pub max_restart_backoff_ms: u64,
    /// Lines kept per container run.
    pub max_log_lines: usize,
    pub catalog: catalog::ImageCatalog,
    pub faults: faults::FaultConfig,
    /// Addresses given out are `<prefix>x.y`.
    pub ip_prefix: String,
    /// An idempotency token stands for its first request this long.
    pub client_token_ttl_secs: u64,
    /// `instant` (the latencies above) or `realistic` (placement, attach, image pulls by
    /// size: `realistic`).
    pub latency_model: latency::LatencyModel,
    pub realistic: latency::RealisticLatency,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            schedule_latency_ms: 200,
            provision_latency_ms: 300,
            latency_jitter_ms: 200,
            restart_backoff_ms: 1000,
            max_restart_backoff_ms: 300_000,
            max_log_lines: 100_000,
            catalog: Default::default(),
            faults: Default::default(),
            ip_prefix: "172.16.".into(),
            client_token_ttl_secs: 24 * 3600,
            latency_model: Default::default(),
            realistic: Default::default(),
        }
    }
}
