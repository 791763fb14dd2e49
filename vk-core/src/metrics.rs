//! vk's own Prometheus metrics (OpenMetrics text), what a platform engineer watches on a
//! virtual node: how long pods take to start, and how the API server and the provider answer.
//! The `vk` binary serves them on its health port at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a call ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `ok`, `error`, or (provider creates) `invalid` for a spec the provider refused.
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// From the watch bringing a pod bound to the node to its Running status written.
    pub pod_start_seconds: Histogram,
    pub status_writes: Family<Outcome, Counter>,
    pub status_write_seconds: Histogram,
    pub provider_creates: Family<Outcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vk");
        let pod_start_seconds = Histogram::new(exponential_buckets(0.025, 2.0, 14));
        registry.register(
            "pod_start_seconds",
            "Time from the watch bringing a pod bound to this node to its Running status written",
            pod_start_seconds.clone(),
        );
        let status_writes = Family::<Outcome, Counter>::default();
        registry.register(
            "pod_status_writes",
            "Pod status writes to the API server",
            status_writes.clone(),
        );
        let status_write_seconds = Histogram::new(exponential_buckets(0.0025, 2.0, 14));
        registry.register(
            "pod_status_write_seconds",
            "Latency of pod status writes to the API server",
            status_write_seconds.clone(),
        );
        let provider_creates = Family::<Outcome, Counter>::default();
        registry.register(
            "provider_creates",
            "Instance creates asked of the provider",
            provider_creates.clone(),
        );
        Self {
            registry,
            pod_start_seconds,
            status_writes,
            status_write_seconds,
            provider_creates,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric() {
        let m = Metrics::new();
        m.pod_start_seconds.observe(0.3);
        m.status_writes
            .get_or_create(&Outcome { result: "ok" })
            .inc();
        m.status_write_seconds.observe(0.02);
        m.provider_creates
            .get_or_create(&Outcome { result: "invalid" })
            .inc();
        let text = m.encode();
        for line in [
            "vk_pod_start_seconds_count 1",
            "vk_pod_status_writes_total{result=\"ok\"} 1",
            "vk_pod_status_write_seconds_count 1",
            "vk_provider_creates_total{result=\"invalid\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
