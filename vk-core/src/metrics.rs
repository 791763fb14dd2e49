//! vk's own Prometheus metrics (OpenMetrics text), what a platform engineer watches on a
//! virtual node: how long pods take to start, and how the API server and the provider answer.
//! The `vk` binary serves them on its health port at `/metrics`. A provider records its cloud
//! calls through [`ProviderMetrics`] (neutral names: the action is the provider's own word), so
//! everything lands in one registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a call ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `ok`, `error`, or (provider creates) `invalid` for a spec the provider refused.
    pub result: &'static str,
}

/// How one provider call (one HTTP attempt, retries counted apart) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    /// The service's flow control refused it.
    Throttled,
    /// Refused for the request itself (4xx: parameters, auth, not found).
    ClientError,
    /// The service failed (5xx, or an answer that could not be read).
    ServerError,
    /// No answer: connection refused or reset, timeout.
    Network,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Throttled => "throttled",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
            Self::Network => "network",
        }
    }
}

/// A provider call: the action (a small fixed set per provider) and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub action: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
}

/// Which streaming endpoint a session came through.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `exec`, `attach` or `portforward`.
    pub kind: &'static str,
}

/// A phase of a pod's start-up on this node (`vk_pod_start_phase_seconds`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// `queued` (seen → reconcile begins the create), `resolve` (the spec resolved: secrets,
    /// configMaps, tokens), `create` (the provider's create call, until the cloud accepted
    /// it), `instance` (accepted → the Running status written: the cloud places and starts
    /// the instance, vk mirrors it).
    pub phase: &'static str,
}

/// A phase of a pod's start timeline (`vk_pod_start_timeline_seconds`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimelineLabel {
    /// `accepted` (seen → the cloud accepted the create), `images_ready` (→ its images pulled
    /// or taken from a cache), `containers_started` (→ its containers started), `running`
    /// (→ the Running status written).
    pub phase: &'static str,
    /// `hit` (an image cache), `miss` (pulled) or `unknown` (the cloud did not say).
    pub image_cache: &'static str,
}

/// The namespace a pod's cost is charged to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CostLabel {
    pub namespace: String,
    pub currency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    pub namespace: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn start_phase_histogram() -> Histogram {
    // 1 ms .. ~8 min: queueing is milliseconds, a real cloud's instance start is tens of seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

fn call_histogram() -> Histogram {
    // 5 ms .. ~41 s: a cloud API answers in tens of milliseconds, a slow one in seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// What a provider records about its cloud. Cheap to clone; a default one records into
/// nothing served (tests, `vk doctor`).
#[derive(Clone, Debug)]
pub struct ProviderMetrics {
    calls: Family<CallLabels, Counter>,
    call_seconds: HistogramFamily<ActionLabel>,
    credential_refresh_failures: Counter,
}

impl Default for ProviderMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(call_histogram),
            credential_refresh_failures: Counter::default(),
        }
    }
}

impl ProviderMetrics {
    /// One cloud API call (one attempt) and its latency.
    pub fn record_call(&self, action: &str, outcome: CallOutcome, seconds: f64) {
        self.calls
            .get_or_create(&CallLabels {
                action: action.to_string(),
                outcome: outcome.as_str(),
            })
            .inc();
        self.call_seconds
            .get_or_create(&ActionLabel {
                action: action.to_string(),
            })
            .observe(seconds);
    }

    /// Fetching new cloud credentials failed.
    pub fn credential_refresh_failed(&self) {
        self.credential_refresh_failures.inc();
    }
}

/// Streaming sessions (exec, attach, port-forward) open now and in all.
#[derive(Clone, Debug, Default)]
pub struct StreamingMetrics {
    open: Family<KindLabel, Gauge>,
    total: Family<KindLabel, Counter>,
}

impl StreamingMetrics {
    /// A session of `kind` began; it counts as open until the guard is dropped.
    pub fn session(&self, kind: &'static str) -> OpenSession {
        let labels = KindLabel { kind };
        self.total.get_or_create(&labels).inc();
        let open = self.open.get_or_create(&labels).clone();
        open.inc();
        OpenSession { open }
    }
}

/// Held for as long as a streaming session lasts.
#[derive(Debug)]
pub struct OpenSession {
    open: Gauge,
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.open.dec();
    }
}

pub struct Metrics {
    registry: Registry,
    /// From the watch bringing a pod bound to the node to its Running status written.
    pub pod_start_seconds: Histogram,
    /// The same start, phase by phase ([`PhaseLabel`]).
    pub pod_start_phase_seconds: HistogramFamily<PhaseLabel>,
    pub status_writes: Family<Outcome, Counter>,
    pub status_write_seconds: Histogram,
    pub provider_creates: Family<Outcome, Counter>,
    /// Pods this process has reconciled at least once (after a restart: how far its re-sync
    /// has come).
    pub pods_reconciled: Counter,
    /// A pod's start by the phases of its timeline, from the cloud's own reports.
    pub pod_start_timeline_seconds: HistogramFamily<TimelineLabel>,
    /// What ended pods cost, by namespace (for chargeback).
    pub pod_cost: Family<CostLabel, Counter<f64>>,
    pub pod_vcpu_seconds: Family<NamespaceLabel, Counter<f64>>,
    pub pod_memory_gib_seconds: Family<NamespaceLabel, Counter<f64>>,
    /// The node's heartbeat: Lease renewals by result.
    pub node_lease_renewals: Family<Outcome, Counter>,
    /// 1 while this process runs its nodes (the active replica; always, without leader
    /// election), 0 while it stands by.
    pub leader: Gauge,
    provider: ProviderMetrics,
    streaming: StreamingMetrics,
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
        let pod_start_phase_seconds: HistogramFamily<PhaseLabel> =
            Family::new_with_constructor(start_phase_histogram);
        registry.register(
            "pod_start_phase_seconds",
            "A pod's start on this node by phase: queued, resolve, create (until the cloud accepted it), instance (accepted to Running written)",
            pod_start_phase_seconds.clone(),
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
        let pods_reconciled = Counter::default();
        registry.register(
            "pods_reconciled",
            "Pods this process has reconciled at least once (after a restart, how far its re-sync has come)",
            pods_reconciled.clone(),
        );
        let pod_start_timeline_seconds: HistogramFamily<TimelineLabel> =
            Family::new_with_constructor(start_phase_histogram);
        registry.register(
            "pod_start_timeline_seconds",
            "A pod's start by the phases the cloud reports: accepted, images_ready (labelled image_cache hit/miss), containers_started, running",
            pod_start_timeline_seconds.clone(),
        );
        let pod_cost = Family::<CostLabel, Counter<f64>>::default();
        registry.register(
            "pod_cost",
            "What ended pods cost by the configured price table, by namespace and currency",
            pod_cost.clone(),
        );
        let pod_vcpu_seconds = Family::<NamespaceLabel, Counter<f64>>::default();
        registry.register(
            "pod_vcpu_seconds",
            "vCPU-seconds the cloud billed for ended pods, by namespace",
            pod_vcpu_seconds.clone(),
        );
        let pod_memory_gib_seconds = Family::<NamespaceLabel, Counter<f64>>::default();
        registry.register(
            "pod_memory_gib_seconds",
            "GiB-seconds of memory the cloud billed for ended pods, by namespace",
            pod_memory_gib_seconds.clone(),
        );
        let node_lease_renewals = Family::<Outcome, Counter>::default();
        registry.register(
            "node_lease_renewals",
            "Renewals of the node's Lease (its heartbeat), by result",
            node_lease_renewals.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs its nodes (the holder of the leader Lease), 0 while it stands by",
            leader.clone(),
        );
        let provider = ProviderMetrics::default();
        registry.register(
            "provider_calls",
            "Cloud API calls made by the provider (each attempt), by action and outcome",
            provider.calls.clone(),
        );
        registry.register(
            "provider_call_seconds",
            "Latency of cloud API calls made by the provider (each attempt), by action",
            provider.call_seconds.clone(),
        );
        registry.register(
            "provider_credential_refresh_failures",
            "Failed fetches of the provider's cloud credentials",
            provider.credential_refresh_failures.clone(),
        );
        let streaming = StreamingMetrics::default();
        registry.register(
            "streaming_sessions_open",
            "Exec, attach and port-forward sessions open now, by kind",
            streaming.open.clone(),
        );
        registry.register(
            "streaming_sessions",
            "Exec, attach and port-forward sessions begun, by kind",
            streaming.total.clone(),
        );
        Self {
            registry,
            pod_start_seconds,
            pod_start_phase_seconds,
            status_writes,
            status_write_seconds,
            provider_creates,
            pods_reconciled,
            pod_start_timeline_seconds,
            pod_cost,
            pod_vcpu_seconds,
            pod_memory_gib_seconds,
            node_lease_renewals,
            leader,
            provider,
            streaming,
        }
    }

    /// The recorder handed to the provider: its calls land in this registry.
    pub fn provider(&self) -> ProviderMetrics {
        self.provider.clone()
    }

    /// The recorder of the kubelet API's streaming sessions.
    pub fn streaming(&self) -> StreamingMetrics {
        self.streaming.clone()
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
        m.node_lease_renewals
            .get_or_create(&Outcome { result: "ok" })
            .inc();
        let text = m.encode();
        for line in [
            "vk_pod_start_seconds_count 1",
            "vk_pod_status_writes_total{result=\"ok\"} 1",
            "vk_pod_status_write_seconds_count 1",
            "vk_provider_creates_total{result=\"invalid\"} 1",
            "vk_node_lease_renewals_total{result=\"ok\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn provider_calls_are_counted_by_action_and_outcome_with_latency() {
        let m = Metrics::new();
        let provider = m.provider();
        provider.record_call("Create", CallOutcome::Ok, 0.04);
        provider.record_call("Create", CallOutcome::Throttled, 0.01);
        provider.record_call("Create", CallOutcome::Throttled, 0.01);
        provider.record_call("Describe", CallOutcome::Network, 1.5);
        provider.credential_refresh_failed();
        let text = m.encode();
        for line in [
            "vk_provider_calls_total{action=\"Create\",outcome=\"ok\"} 1",
            "vk_provider_calls_total{action=\"Create\",outcome=\"throttled\"} 2",
            "vk_provider_calls_total{action=\"Describe\",outcome=\"network\"} 1",
            "vk_provider_call_seconds_count{action=\"Create\"} 3",
            "vk_provider_call_seconds_count{action=\"Describe\"} 1",
            "vk_provider_credential_refresh_failures_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // A default recorder is detached: nothing reaches this registry.
        ProviderMetrics::default().credential_refresh_failed();
        assert!(
            m.encode()
                .contains("vk_provider_credential_refresh_failures_total 1")
        );
    }

    #[test]
    fn streaming_sessions_are_open_while_held_and_counted() {
        let m = Metrics::new();
        let streaming = m.streaming();
        let exec = streaming.session("exec");
        let forward = streaming.session("portforward");
        let text = m.encode();
        for line in [
            "vk_streaming_sessions_open{kind=\"exec\"} 1",
            "vk_streaming_sessions_open{kind=\"portforward\"} 1",
            "vk_streaming_sessions_total{kind=\"exec\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        drop(exec);
        drop(forward);
        let _again = streaming.session("exec");
        let text = m.encode();
        for line in [
            "vk_streaming_sessions_open{kind=\"exec\"} 1",
            "vk_streaming_sessions_open{kind=\"portforward\"} 0",
            "vk_streaming_sessions_total{kind=\"exec\"} 2",
            "vk_streaming_sessions_total{kind=\"portforward\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
