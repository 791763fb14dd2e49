//! `/stats/summary` (the kubelet's stats API v1alpha1 `Summary`) and `/metrics/resource` (the
//! kubelet's resource metrics, what metrics-server and `kubectl top` read), both computed from
//! one provider `stats()` call. The node's figures are the sums of its pods': a virtual node has
//! no usage of its own.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::{Deserialize, Serialize};

use crate::provider;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub node: NodeStats,
    pub pods: Vec<PodStats>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    pub start_time: Timestamp,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    pub start_time: Timestamp,
    pub containers: Vec<ContainerStats>,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodReference {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    pub start_time: Timestamp,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub time: Timestamp,
    pub usage_nano_cores: u64,
    pub usage_core_nano_seconds: u64,
}

/// Providers report the working set only; `usageBytes` (which also counts reclaimable cache)
/// is given the same figure rather than left out, since consumers expect both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: Timestamp,
    pub working_set_bytes: u64,
    pub usage_bytes: u64,
}

#[derive(Clone, Copy, Default)]
struct Usage {
    nano_cores: u64,
    core_nano_seconds: u64,
    working_set_bytes: u64,
}

impl Usage {
    fn add(self, other: Usage) -> Usage {
        Usage {
            nano_cores: self.nano_cores.saturating_add(other.nano_cores),
            core_nano_seconds: self
                .core_nano_seconds
                .saturating_add(other.core_nano_seconds),
            working_set_bytes: self
                .working_set_bytes
                .saturating_add(other.working_set_bytes),
        }
    }

    fn of(c: &provider::ContainerStats) -> Usage {
        Usage {
            nano_cores: c.cpu_usage_nano_cores,
            core_nano_seconds: c.cpu_usage_core_nano_seconds,
            working_set_bytes: c.memory_working_set_bytes,
        }
    }

    fn cpu(self, time: Timestamp) -> CpuStats {
        CpuStats {
            time,
            usage_nano_cores: self.nano_cores,
            usage_core_nano_seconds: self.core_nano_seconds,
        }
    }

    fn memory(self, time: Timestamp) -> MemoryStats {
        MemoryStats {
            time,
            working_set_bytes: self.working_set_bytes,
            usage_bytes: self.working_set_bytes,
        }
    }
}

/// `metav1.Time` has second precision; finer timestamps would not round-trip through Go.
fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// The summary of the provider's figures. Start times come from the pod's API status, which
/// the provider does not know; an instance without a pod counts toward the node only.
pub(crate) fn summary(
    node_name: &str,
    node_start: Timestamp,
    now: Timestamp,
    pods: &Store<Pod>,
    stats: Vec<provider::PodStats>,
) -> Summary {
    let time = whole_seconds(now);
    let mut node = Usage::default();
    let mut out = Vec::new();
    for pod_stats in stats {
        let usage = pod_stats
            .containers
            .iter()
            .map(Usage::of)
            .fold(Usage::default(), Usage::add);
        node = node.add(usage);
        let Some(r) = pod_stats.pod else {
            continue;
        };
        let api_pod = pods
            .get(&ObjectRef::<Pod>::new(&r.name).within(&r.namespace))
            .filter(|p| r.uid.is_empty() || p.metadata.uid.as_deref() == Some(r.uid.as_str()));
        let status = api_pod.as_ref().and_then(|p| p.status.as_ref());
        let pod_start = status
            .and_then(|s| s.start_time.as_ref())
            .map_or(node_start, |t| t.0);
        let containers = pod_stats
            .containers
            .iter()
            .map(|c| {
                let started = status
                    .into_iter()
                    .flat_map(|s| {
                        let init = s.init_container_statuses.iter().flatten();
                        init.chain(s.container_statuses.iter().flatten())
                    })
                    .find(|cs| cs.name == c.name)
                    .and_then(|cs| cs.state.as_ref()?.running.as_ref()?.started_at.as_ref())
                    .map_or(pod_start, |t| t.0);
                ContainerStats {
                    name: c.name.clone(),
                    start_time: whole_seconds(started),
                    cpu: Usage::of(c).cpu(time),
                    memory: Usage::of(c).memory(time),
                }
            })
            .collect();
        out.push(PodStats {
            pod_ref: PodReference {
                name: r.name,
                namespace: r.namespace,
                uid: r.uid,
            },
            start_time: whole_seconds(pod_start),
            containers,
            cpu: usage.cpu(time),
            memory: usage.memory(time),
        });
    }
    out.sort_by(|a, b| {
        (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name))
    });
    Summary {
        node: NodeStats {
            node_name: node_name.to_string(),
            start_time: whole_seconds(node_start),
            cpu: node.cpu(time),
            memory: node.memory(time),
        },
        pods: out,
    }
}

/// The content type Prometheus scrapers expect for the text format.
pub(crate) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The kubelet's `/metrics/resource` text: its metric names, labels, help texts and sample
/// timestamps (milliseconds). `None` (the provider failed) reports only the scrape error.
pub(crate) fn resource_metrics(summary: Option<&Summary>) -> String {
    let mut out = String::new();
    if let Some(s) = summary {
        let containers = || {
            s.pods.iter().flat_map(|p| {
                p.containers.iter().map(move |c| {
                    let labels = format!(
                        "{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}}",
                        escape(&c.name),
                        escape(&p.pod_ref.namespace),
                        escape(&p.pod_ref.name)
                    );
                    (labels, c)
                })
            })
        };
        let pods = || {
            s.pods.iter().map(|p| {
                let labels = format!(
                    "{{namespace=\"{}\",pod=\"{}\"}}",
                    escape(&p.pod_ref.namespace),
                    escape(&p.pod_ref.name)
                );
                (labels, p)
            })
        };
        family(
            &mut out,
            "container_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the container in core-seconds",
            containers().map(|(l, c)| (l, seconds(&c.cpu), c.cpu.time)),
        );
        family(
            &mut out,
            "container_memory_working_set_bytes",
            "gauge",
            "Current working set of the container in bytes",
            containers().map(|(l, c)| (l, c.memory.working_set_bytes.to_string(), c.memory.time)),
        );
        family(
            &mut out,
            "container_start_time_seconds",
            "gauge",
            "Start time of the container since unix epoch in seconds",
            containers().map(|(l, c)| (l, c.start_time.as_second().to_string(), c.start_time)),
        );
        family(
            &mut out,
            "node_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the node in core-seconds",
            [(String::new(), seconds(&s.node.cpu), s.node.cpu.time)],
        );
        let node_memory = &s.node.memory;
        family(
            &mut out,
            "node_memory_working_set_bytes",
            "gauge",
            "Current working set of the node in bytes",
            [(
                String::new(),
                node_memory.working_set_bytes.to_string(),
                node_memory.time,
            )],
        );
        family(
            &mut out,
            "pod_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the pod in core-seconds",
            pods().map(|(l, p)| (l, seconds(&p.cpu), p.cpu.time)),
        );
        family(
            &mut out,
            "pod_memory_working_set_bytes",
            "gauge",
            "Current working set of the pod in bytes",
            pods().map(|(l, p)| (l, p.memory.working_set_bytes.to_string(), p.memory.time)),
        );
    }
    let error = if summary.is_some() { "0" } else { "1" };
    // `resource_scrape_error` is the kubelet's stable name; `scrape_error` its deprecated one,
    // still read by older tooling (and the Go virtual-kubelet).
    for (name, stability) in [
        ("resource_scrape_error", "[STABLE]"),
        ("scrape_error", "[ALPHA] (Deprecated since 1.29.0)"),
    ] {
        out.push_str(&format!(
            "# HELP {name} {stability} 1 if there was an error while getting container metrics, \
             0 otherwise\n# TYPE {name} gauge\n{name} {error}\n"
        ));
    }
    out
}

fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, String, Timestamp)>,
) {
    let mut samples = samples.into_iter().peekable();
    // The Go client leaves out families without samples.
    if samples.peek().is_none() {
        return;
    }
    out.push_str(&format!(
        "# HELP {name} [STABLE] {help}\n# TYPE {name} {kind}\n"
    ));
    for (labels, value, time) in samples {
        out.push_str(&format!(
            "{name}{labels} {value} {}\n",
            time.as_millisecond()
        ));
    }
}

fn seconds(cpu: &CpuStats) -> String {
    // f64 keeps nanosecond precision up to ~104 days of core time, plenty for a scrape.
    (cpu.usage_core_nano_seconds as f64 / 1e9).to_string()
}

/// Label values escape backslash, double quote and newline in the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
