//! Benchmarks that print figures (tests never assert on wall time).
//!
//!   bench pod-startup [--pods 100]   100 pods at once on a mock node with zero latency:
//!                                    bind -> Running (observed by a watch) p50/p99, throughput
//!   bench pod-startup --against go-vk [--runs 1]
//!                                    the same burst through vk, the Go virtual-kubelet and the
//!                                    floor, interleaved: one table with RSS and CPU
//!   bench log-stream [--bytes 1073741824] [--proto both] [--apiserver]
//!                                    follow a container writing 1 GiB through the kubelet API
//!                                    on loopback (and through kube-apiserver): MB/s and RSS
//!   bench eci-burst [--pods 300]     300 pods at once on an eci node against `vk-cloud`
//!                                    (simulate, default quota: burst 100, 20/s): time to
//!                                    all-Running, and pods that failed or saw throttling;
//!                                    `--latency-model realistic` adds the modelled start
//!                                    (aci-burst and fargate-burst likewise, at their limits)
//!   bench ci-day [--pods 300] [--compress 20]
//!                                    an afternoon of CI on an eci node against `vk-cloud`'s
//!                                    realistic latency model, with and without image caches,
//!                                    beside an autoscaled node pool's estimate: create ->
//!                                    Running p50/p90/p99, pulls, cost
//!   bench exec [--bytes 1073741824] [--sessions 50]
//!                                    exec stdout through kube-apiserver (kubectl and kube-rs):
//!                                    MB/s at the client; concurrent sessions' output checked

mod against;
mod ci_day;
mod exec;
mod floor;
mod hold;
mod log_stream;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use e2e::cloud::MockCloud;
use e2e::pods::{mock_config, pod_for_node, wait_node_ready};
use e2e::vk::{Vk, service_account_kubeconfig};
use e2e::{TestNamespace, client, kubectl, unique};
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::events::v1::Event as ApiEvent;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Pod start-up latency and throughput through vk with the mock provider.
    PodStartup {
        #[arg(long, default_value_t = 100)]
        pods: usize,
        #[arg(long, default_value_t = 16)]
        workers: u16,
        /// Pods without the service-account token volume (`automountServiceAccountToken:
        /// false`): no TokenRequest per pod.
        #[arg(long)]
        no_token: bool,
        /// No vk: the bench registers the node and patches each bound pod Running itself,
        /// with `--workers` patches at once (the control plane's floor for this figure).
        #[arg(long)]
        floor: bool,
        /// Also run the burst through another kubelet and the floor, interleaved, and print
        /// one table (`go-vk`: the Go virtual-kubelet; its binary in `GO_VK_BIN`).
        #[arg(long, value_enum, conflicts_with = "floor")]
        against: Option<against::Against>,
        /// Rounds of (vk, other, floor) with `--against`.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// After the burst, hold the pods Running this long and print vk's memory.
        #[arg(long, conflicts_with_all = ["floor", "against"])]
        hold_secs: Option<u64>,
        /// After the hold, SIGKILL vk and start it again: the time to serve every pod again,
        /// and the status writes and creates it made (should be none).
        #[arg(long, requires = "hold_secs")]
        restart: bool,
        /// The mock's containers write a log line this often (0: never).
        #[arg(long, default_value_t = 200)]
        log_interval_ms: u64,
    },
    /// Log streaming through the kubelet API: throughput and memory while following a
    /// container that writes `--bytes`.
    LogStream {
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
        /// Bytes per item of the provider's log stream (whole 100-byte lines).
        #[arg(long, default_value_t = 16 * 1024)]
        chunk_bytes: usize,
        /// HTTP version of the loopback client.
        #[arg(long, value_enum, default_value = "both")]
        proto: log_stream::Proto,
        /// Also follow through kube-apiserver with `kubectl logs -f` (needs the local control
        /// plane, or the cluster KUBECONFIG names).
        #[arg(long)]
        apiserver: bool,
    },
    /// Exec through kube-apiserver: stdout throughput at the client (kubectl and kube-rs),
    /// and `--sessions` execs at once that must all return their own output and exit 0.
    Exec {
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
        #[arg(long, default_value_t = 50)]
        sessions: usize,
        /// Throughput runs per client.
        #[arg(long, default_value_t = 2)]
        runs: usize,
    },
    /// An afternoon of CI (a generated trace) on an eci node against `vk-cloud` with the
    /// realistic latency model, without and with image caches, and the same trace on an
    /// autoscaled node pool (computed): start latencies, pulls and cost.
    CiDay {
        #[arg(long, default_value_t = 300)]
        pods: usize,
        /// Arrivals and build times run this many times faster (the cloud's start does not).
        #[arg(long, default_value_t = 20.0)]
        compress: f64,
        #[arg(long, default_value_t = 20261204)]
        seed: u64,
        /// `both`, `with` or `without` image caches.
        #[arg(long, default_value = "both")]
        caches: String,
        /// Allocatable vCPU of a node of the autoscaled pool (8 vCPU less the system's reserve).
        #[arg(long, default_value_t = 7.5)]
        node_vcpu: f64,
        /// Allocatable GiB of such a node (32 GiB less the reserve).
        #[arg(long, default_value_t = 28.0)]
        node_gib: f64,
        /// A node's price per hour; default: 8 vCPU and 32 GiB at the instances' rates.
        #[arg(long)]
        node_price_per_hour: Option<f64>,
        #[arg(long, default_value_t = 180.0)]
        node_add_secs: f64,
        #[arg(long, default_value_t = 600.0)]
        node_idle_secs: f64,
    },
    /// A burst of pods through vk with the eci provider against the mock ECI cloud at its
    /// default quota: the client must pace itself instead of failing pods.
    EciBurst {
        #[arg(long, default_value_t = 300)]
        pods: usize,
        #[command(flatten)]
        options: BurstOptions,
        /// Pace creates at the quota itself (`write_rate` burst 100, 20/s) instead of the
        /// provider's default 80 % of it (burst 80, 16/s).
        #[arg(long)]
        at_quota: bool,
    },
    /// The same burst through vk with the aci provider against the simulator's ACI face at
    /// ACI's published limits (100 creates per 5 minutes, 300 per hour, per subscription and
    /// region; ARM's 1 200 writes per hour).
    AciBurst {
        #[arg(long, default_value_t = 100)]
        pods: usize,
        #[command(flatten)]
        options: BurstOptions,
    },
    /// The same burst through vk with the fargate provider against the simulator's ECS face
    /// at Fargate's published launch rates (RunTask 20 a second, burst 20; 100 task launches
    /// at once, refilled at 20 a second).
    FargateBurst {
        #[arg(long, default_value_t = 100)]
        pods: usize,
        #[command(flatten)]
        options: BurstOptions,
    },
}

/// What the bursts against a cloud share.
#[derive(clap::Args, Clone, Copy)]
struct BurstOptions {
    #[arg(long, default_value_t = 16)]
    workers: u16,
    /// vk lists the node's instances this often.
    #[arg(long, default_value_t = 1000)]
    status_interval_ms: u64,
    /// The simulator's start latency: `instant` (its test defaults) or `realistic`
    /// (placement, network attach, image pulls; the README's model).
    #[arg(long, value_enum, default_value_t = LatencyModel::Instant)]
    latency_model: LatencyModel,
    /// After the burst, hold the pods this long and print vk's memory.
    #[arg(long)]
    hold_secs: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LatencyModel {
    Instant,
    Realistic,
}

impl LatencyModel {
    /// Its name, as the simulator's `--latency-model` takes it.
    fn name(self) -> &'static str {
        match self {
            LatencyModel::Instant => "instant",
            LatencyModel::Realistic => "realistic",
        }
    }
}

/// Which provider a burst goes through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BurstKind {
    Eci,
    Aci,
    Fargate,
}

/// The cloud a burst runs against.
enum BurstCloud {
    Eci(MockCloud),
    Aci(e2e::aci_cloud::AciCloud),
    Fargate(e2e::fargate_cloud::FargateCloud),
}

impl BurstCloud {
    fn start(kind: BurstKind, latency: LatencyModel) -> BurstCloud {
        let args = &["--latency-model", latency.name()];
        match kind {
            BurstKind::Aci => BurstCloud::Aci(e2e::aci_cloud::AciCloud::start("simulate", args)),
            BurstKind::Eci => BurstCloud::Eci(MockCloud::start("simulate", args)),
            BurstKind::Fargate => {
                BurstCloud::Fargate(e2e::fargate_cloud::FargateCloud::start("simulate", args))
            }
        }
    }

    /// What vk's environment needs besides the config file.
    fn env(&self) -> Vec<(String, String)> {
        match self {
            BurstCloud::Fargate(_) => e2e::fargate_cloud::FargateCloud::env(),
            _ => Vec::new(),
        }
    }

    fn config(&self, status_interval_ms: u64) -> String {
        match self {
            BurstCloud::Eci(c) => format!(
                "provider: eci\n{}",
                c.eci_config_polling(status_interval_ms)
            ),
            BurstCloud::Aci(c) => format!(
                "provider: aci\n{}",
                c.aci_config().replace(
                    "status_interval_ms: 500",
                    &format!("status_interval_ms: {status_interval_ms}")
                )
            ),
            BurstCloud::Fargate(c) => format!(
                "provider: fargate\n{}",
                c.fargate_config().replace(
                    "status_interval_ms: 500",
                    &format!("status_interval_ms: {status_interval_ms}")
                )
            ),
        }
    }

    fn quota(&self) -> &'static str {
        match self {
            BurstCloud::Eci(_) => "eci provider -> vk-cloud simulate, quota burst 100 at 20/s",
            BurstCloud::Aci(_) => {
                "aci provider -> vk-cloud --face aci simulate, ACI's limits: 100 creates per 5 min, 300 per hour"
            }
            BurstCloud::Fargate(_) => {
                "fargate provider -> vk-cloud --face ecs simulate, Fargate's rates: RunTask 20/s (burst 20), launches 100 at once then 20/s"
            }
        }
    }

    async fn groups(&self, node: &str) -> anyhow::Result<Vec<String>> {
        match self {
            BurstCloud::Eci(c) => c.groups(node).await,
            BurstCloud::Aci(c) => c.groups(node).await,
            BurstCloud::Fargate(c) => c.tasks(node).await,
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Seen {
    created: Option<Instant>,
    bound: Option<Instant>,
    running: Option<Instant>,
    failed: Option<Instant>,
    bound_wall: Option<Timestamp>,
    running_wall: Option<Timestamp>,
}

/// What a watch saw of one pod at one moment.
struct Observed {
    name: String,
    bound: bool,
    phase: Option<String>,
    at: Instant,
    /// The same moment on the wall clock, to compare with the API's event times.
    wall: Timestamp,
    /// The cost vk recorded on the pod when it ended, if it has.
    cost: Option<vk_core::pods::cost::Cost>,
}

/// Watch the namespace's pods; every applied object is reported with the time it arrived.
/// Returns once the watch is established (its initial list done), so no change is missed or
/// seen late.
async fn watch_pods(pods: Api<Pod>) -> tokio::sync::mpsc::UnboundedReceiver<Observed> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let stream = watcher(pods, watcher::Config::default());
        futures::pin_mut!(stream);
        let mut ready = Some(ready_tx);
        while let Ok(Some(event)) = stream.try_next().await {
            let pod = match event {
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => pod,
                watcher::Event::InitDone => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    continue;
                }
                _ => continue,
            };
            let observed = Observed {
                name: pod.metadata.name.clone().unwrap_or_default(),
                bound: pod.spec.as_ref().is_some_and(|s| s.node_name.is_some()),
                phase: pod.status.as_ref().and_then(|s| s.phase.clone()),
                at: Instant::now(),
                wall: Timestamp::now(),
                cost: pod
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(vk_core::pods::cost::ANNOTATION))
                    .and_then(|text| serde_json::from_str(text).ok()),
            };
            if tx.send(observed).is_err() {
                return;
            }
        }
    });
    let _ = ready_rx.await;
    rx
}

impl Seen {
    fn observe(&mut self, o: &Observed) {
        if o.bound && self.bound.is_none() {
            self.bound = Some(o.at);
            self.bound_wall = Some(o.wall);
        }
        match o.phase.as_deref() {
            Some("Running") if self.running.is_none() => {
                self.running = Some(o.at);
                self.running_wall = Some(o.wall);
            }
            Some("Failed") if self.failed.is_none() => self.failed = Some(o.at),
            _ => {}
        }
    }
}

/// Create `count` pods named `prefix-NNNN` at once; the time each create returned.
async fn create_pods(
    pods: &Api<Pod>,
    node: &str,
    prefix: &str,
    count: usize,
    no_token: bool,
) -> anyhow::Result<HashMap<String, Seen>> {
    let creates = futures::stream::iter((0..count).map(|i| {
        let pods = pods.clone();
        let name = format!("{prefix}-{i:04}");
        let mut pod = pod_for_node(&name, node, &["main"], &[]);
        if no_token && let Some(spec) = pod.spec.as_mut() {
            spec.automount_service_account_token = Some(false);
        }
        async move {
            pods.create(&PostParams::default(), &pod)
                .await
                .map(|_| (name, Instant::now()))
        }
    }))
    .buffer_unordered(count.max(1))
    .collect::<Vec<_>>()
    .await;
    let mut seen = HashMap::new();
    for created in creates {
        let (name, at) = created?;
        seen.insert(
            name,
            Seen {
                created: Some(at),
                ..Default::default()
            },
        );
    }
    Ok(seen)
}

/// Every pod mounts the namespace's root CA; until the controller-manager has published it,
/// a pod would wait for it (CreateContainerConfigError), which is not what the bench measures.
async fn wait_root_ca(client: &kube::Client, ns: &str) -> anyhow::Result<()> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let ca_deadline = Instant::now() + Duration::from_secs(30);
    while config_maps.get_opt("kube-root-ca.crt").await?.is_none() {
        anyhow::ensure!(
            Instant::now() < ca_deadline,
            "kube-root-ca.crt not published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `--hold-secs` and what goes with it.
struct Hold {
    secs: u64,
    restart: bool,
    log_interval_ms: u64,
}

async fn pod_startup(
    count: usize,
    workers: u16,
    no_token: bool,
    floor: bool,
    hold: Option<Hold>,
) -> anyhow::Result<()> {
    let client = client().await;
    let node = unique("bench-node");
    let health_port = e2e::vk::free_port();
    let (mut vk, floor_writer) = if floor {
        floor::register_node(&client, &node).await?;
        let writer = floor::spawn_status_writer(client.clone(), node.clone(), workers.into());
        (None, Some(writer))
    } else {
        let kubeconfig = service_account_kubeconfig(&client).await;
        let config = match &hold {
            // With --restart the mock keeps its pods in a state file, so they outlive vk as a
            // cloud's do. Only then: it rewrites the whole file on every change, which at
            // thousands of pods costs the process more than vk's own work.
            Some(h) => format!(
                "provider: mock\nhealth_port: {health_port}\npod_workers: {workers}\nmock:\n  log_interval_ms: {}\n  capacity:\n    pods: {}\n{}",
                h.log_interval_ms,
                // Room for every pod of the burst (the node offers 1000 by default).
                count.max(1000),
                if h.restart {
                    format!(
                        "  state_file: {}\n",
                        std::env::temp_dir()
                            .join(format!("vk-bench-{node}-mock-state.json"))
                            .display()
                    )
                } else {
                    String::new()
                }
            ),
            None => mock_config(&format!(
                "health_port: {health_port}\npod_workers: {workers}\n"
            )),
        };
        (Some(Vk::start(&kubeconfig, &node, &config)), None)
    };
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, &node, "True", Duration::from_secs(60)).await;
    let ns = TestNamespace::new(&client, "bench").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    wait_root_ca(&client, &ns.name).await?;

    let mut rx = watch_pods(pods.clone()).await;

    println!(
        "creating {count} pods at once on node {node} ({}, {workers} workers, {})",
        if floor {
            "no vk: the bench patches each bound pod Running"
        } else {
            "mock provider, zero latency"
        },
        if no_token {
            "no service-account token"
        } else {
            "each with a service-account token"
        }
    );
    let start = Instant::now();
    let mut seen = create_pods(&pods, &node, "bench", count, no_token).await?;
    let created_all = start.elapsed();

    // kube-scheduler binds about 50 pods/s with its default client rate.
    let wait = Duration::from_secs(300.max(count as u64 / 15));
    let deadline = Instant::now() + wait;
    while seen.values().filter(|s| s.running.is_some()).count() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(observed)) = tokio::time::timeout(remaining, rx.recv()).await else {
            anyhow::bail!("not all pods reached Running within {} s", wait.as_secs());
        };
        seen.entry(observed.name.clone())
            .or_default()
            .observe(&observed);
    }
    let total = start.elapsed();
    let mut bind_to_running: Vec<Duration> = seen
        .values()
        .filter_map(|s| Some(s.running?.saturating_duration_since(s.bound?)))
        .collect();
    let mut create_to_running: Vec<Duration> = seen
        .values()
        .filter_map(|s| Some(s.running?.saturating_duration_since(s.created?)))
        .collect();
    bind_to_running.sort();
    create_to_running.sort();
    println!("all {count} pods created in {}", ms(created_all));
    println!(
        "bind -> Running (watch): p50 {}  p99 {}  max {}",
        ms(percentile(&bind_to_running, 0.50)),
        ms(percentile(&bind_to_running, 0.99)),
        ms(*bind_to_running.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "create -> Running (watch): p50 {}  p99 {}",
        ms(percentile(&create_to_running, 0.50)),
        ms(percentile(&create_to_running, 0.99))
    );
    println!(
        "throughput: {count} pods Running in {} = {:.1} pods/s",
        ms(total),
        count as f64 / total.as_secs_f64()
    );
    breakdown(&client, &ns.name, &seen).await?;
    if vk.is_some() {
        hold::print_phases(health_port).await;
    }
    if let (Some(h), Some(vk)) = (&hold, vk.as_mut()) {
        hold::run(
            vk,
            &node,
            health_port,
            &pods,
            count,
            Duration::from_secs(h.secs),
            h.restart,
        )
        .await?;
    }
    if let Some(writer) = floor_writer {
        writer.abort();
    }
    remove_node(vk, &node, ns);
    Ok(())
}

/// The event time (wall clock, microseconds) of each pod's first event with `reason`.
async fn event_times(
    client: &kube::Client,
    ns: &str,
    reason: &str,
) -> anyhow::Result<HashMap<String, Timestamp>> {
    let events: Api<ApiEvent> = Api::namespaced(client.clone(), ns);
    let mut times = HashMap::new();
    for e in events.list(&ListParams::default()).await?.items {
        if e.reason.as_deref() != Some(reason) {
            continue;
        }
        let (Some(name), Some(at)) = (e.regarding.and_then(|r| r.name), e.event_time.map(|t| t.0))
        else {
            continue;
        };
        let slot = times.entry(name).or_insert(at);
        if at < *slot {
            *slot = at;
        }
    }
    Ok(times)
}

fn span(from: Timestamp, to: Timestamp) -> Duration {
    let d = to.duration_since(from);
    if d.is_positive() {
        d.unsigned_abs()
    } else {
        Duration::ZERO
    }
}

fn line(what: &str, mut spans: Vec<Duration>) {
    spans.sort();
    println!(
        "  {what}: p50 {}  p99 {}  max {}  (n={})",
        ms(percentile(&spans, 0.50)),
        ms(percentile(&spans, 0.99)),
        ms(*spans.last().unwrap_or(&Duration::ZERO)),
        spans.len()
    );
}

/// Where the time goes, from the API's own timestamps: kube-scheduler's `Scheduled` event
/// (written right after its bind call returned), vk's `Started` event (recorded just before
/// vk writes the Running status), and what the watch saw.
async fn breakdown(
    client: &kube::Client,
    ns: &str,
    seen: &HashMap<String, Seen>,
) -> anyhow::Result<()> {
    // Events are published in the background; give the last ones a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let scheduled = event_times(client, ns, "Scheduled").await?;
    let started = event_times(client, ns, "Started").await?;
    let mut sched_times: Vec<Timestamp> = scheduled.values().copied().collect();
    sched_times.sort();
    if let (Some(first), Some(last)) = (sched_times.first(), sched_times.last()) {
        let secs = span(*first, *last).as_secs_f64();
        println!(
            "kube-scheduler: {} Scheduled events from first to last in {} ({:.0} binds/s)",
            sched_times.len(),
            ms(span(*first, *last)),
            if secs > 0.0 {
                (sched_times.len().saturating_sub(1)) as f64 / secs
            } else {
                0.0
            }
        );
    }
    let first_sched = sched_times.first().copied();
    let mut sched_to_bound = Vec::new();
    let mut bound_to_started = Vec::new();
    let mut started_to_running = Vec::new();
    let mut sched_to_running = Vec::new();
    let mut first_bind_to_running = Vec::new();
    for (name, s) in seen {
        let sched = scheduled.get(name).copied();
        let vk = started.get(name).copied();
        if let (Some(a), Some(b)) = (sched, s.bound_wall) {
            sched_to_bound.push(span(a, b));
        }
        if let (Some(a), Some(b)) = (s.bound_wall, vk) {
            bound_to_started.push(span(a, b));
        }
        if let (Some(a), Some(b)) = (vk, s.running_wall) {
            started_to_running.push(span(a, b));
        }
        if let (Some(a), Some(b)) = (sched, s.running_wall) {
            sched_to_running.push(span(a, b));
        }
        if let (Some(a), Some(b)) = (first_sched, s.running_wall) {
            first_bind_to_running.push(span(a, b));
        }
    }
    println!("breakdown (wall clock; event times have microsecond precision):");
    line(
        "scheduler Scheduled event -> bound seen by the watch",
        sched_to_bound,
    );
    line(
        "bound seen -> vk's Started event (vk: watch, create, status)",
        bound_to_started,
    );
    line(
        "vk's Started event -> Running seen by the watch",
        started_to_running,
    );
    line(
        "scheduler Scheduled event -> Running seen",
        sched_to_running,
    );
    line(
        "first Scheduled event of the burst -> Running seen",
        first_bind_to_running,
    );
    Ok(())
}

/// Stop the burst's kubelet (first, or it registers the deleted node again), then remove its
/// node and namespace. Its pods are force-deleted first: with no kubelet to confirm their deletion they would wait for the pod garbage
/// collector (quarantine, then the controller manager's own client rate), loading the control
/// plane during the next burst.
fn remove_node(vk: impl Into<Option<Vk>>, node: &str, ns: TestNamespace) {
    let vk: Option<Vk> = vk.into();
    drop(vk);
    let _ = kubectl(&[
        "delete",
        "pods",
        "--all",
        "-n",
        &ns.name,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let _ = kubectl(&["delete", "node", node, "--wait=false"]);
    drop(ns);
}

/// The names of the pods that had an event saying their create failed or was throttled.
async fn throttled_pods(events: &Api<Event>) -> anyhow::Result<BTreeSet<String>> {
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("ProviderCreateFailed")
                || e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("Throttling"))
        })
        .filter_map(|e| e.involved_object.name)
        .collect())
}

/// How fast the ECI face accepted the node's creates (`GET /admin/creates`), against its
/// default quota: the most made in any window of 1 and 10 s (the quota's bucket allows at most
/// its burst + its rate × the window), and how many its quota refused.
async fn print_create_rate(cloud: &MockCloud, node: &str) {
    let quota = cloudsim::eci::config::QuotaConfig::default();
    let allowed = |secs: f64| quota.burst as f64 + quota.per_second * secs;
    let report = cloud.creates().await;
    let mut at: Vec<Timestamp> = report
        .creates
        .iter()
        .filter(|c| {
            c.created
                .tags
                .get(eci::wire::tags::NODE)
                .map(String::as_str)
                == Some(node)
        })
        .map(|c| c.created.created)
        .collect();
    at.sort();
    let (Some(first), Some(last)) = (at.first(), at.last()) else {
        return;
    };
    let most_within = |window: Duration| {
        let mut most = 0;
        let mut start = 0;
        for end in 0..at.len() {
            while at[end].duration_since(at[start]).unsigned_abs() > window {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
        most
    };
    println!(
        "creates the cloud accepted: {} in {} (first to last); at most {} in any 1 s and {} in any 10 s (the quota allows {} and {}); refused by the quota: {}",
        at.len(),
        ms(last.duration_since(*first).unsigned_abs()),
        most_within(Duration::from_secs(1)),
        most_within(Duration::from_secs(10)),
        allowed(1.0),
        allowed(10.0),
        report.refused_by_quota
    );
}

/// `provider_extra`: more keys of the provider's section of vk's config (indented by two).
async fn burst(
    kind: BurstKind,
    count: usize,
    options: BurstOptions,
    provider_extra: &str,
) -> anyhow::Result<()> {
    let BurstOptions {
        workers,
        status_interval_ms,
        latency_model,
        hold_secs,
    } = options;
    let client = client().await;
    let kubeconfig = service_account_kubeconfig(&client).await;
    let cloud = BurstCloud::start(kind, latency_model);
    let node = unique(match kind {
        BurstKind::Eci => "bench-eci",
        BurstKind::Aci => "bench-aci",
        BurstKind::Fargate => "bench-fargate",
    });
    // The eci node offers 1000 pods unless told more.
    let capacity = match kind {
        BurstKind::Eci if count > 1000 => format!("  capacity:\n    pods: {count}\n"),
        _ => String::new(),
    };
    let config = format!(
        "health_port: 0\npod_workers: {workers}\n{}{provider_extra}{capacity}",
        cloud.config(status_interval_ms)
    );
    let vk = Vk::start_with_env(&kubeconfig, &node, &config, cloud.env());
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, &node, "True", Duration::from_secs(60)).await;
    let ns = TestNamespace::new(&client, "bench-eci").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let mut rx = watch_pods(pods.clone()).await;

    println!(
        "creating {count} pods at once on node {node} ({}; {} latency model; {workers} workers, status every {status_interval_ms} ms)",
        cloud.quota(),
        latency_model.name()
    );
    let start = Instant::now();
    let mut seen = create_pods(&pods, &node, "burst", count, false).await?;
    let created_all = start.elapsed();

    // Ten minutes, or more for a burst the cloud's create quota spreads over longer.
    let timeout = Duration::from_secs(600.max(120 + count as u64 / 10));
    let deadline = Instant::now() + timeout;
    let settled = |seen: &HashMap<String, Seen>| {
        seen.values()
            .filter(|s| s.running.is_some() || s.failed.is_some())
            .count()
    };
    while settled(&seen) < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(observed)) = tokio::time::timeout(remaining, rx.recv()).await else {
            println!(
                "only {} of {count} pods Running or Failed after {timeout:?}",
                settled(&seen)
            );
            break;
        };
        seen.entry(observed.name.clone())
            .or_default()
            .observe(&observed);
    }
    let total = start.elapsed();
    let running = seen.values().filter(|s| s.running.is_some()).count();
    let failed: BTreeSet<&String> = seen
        .iter()
        .filter(|(_, s)| s.failed.is_some())
        .map(|(n, _)| n)
        .collect();
    let mut create_to_running: Vec<Duration> = seen
        .values()
        .filter_map(|s| Some(s.running?.saturating_duration_since(s.created?)))
        .collect();
    create_to_running.sort();
    let throttled = throttled_pods(&Api::namespaced(client.clone(), &ns.name)).await?;

    println!("all {count} pods created in {}", ms(created_all));
    if running == count {
        println!("all {count} pods Running after {}", ms(total));
    } else {
        println!("{running} of {count} pods Running after {}", ms(total));
    }
    println!(
        "create -> Running (watch): p50 {}  p99 {}  max {}",
        ms(percentile(&create_to_running, 0.50)),
        ms(percentile(&create_to_running, 0.99)),
        ms(*create_to_running.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "throughput: {:.1} pods/s",
        running as f64 / total.as_secs_f64()
    );
    println!("pods Failed: {}  {failed:?}", failed.len());
    println!(
        "pods with a ProviderCreateFailed or Throttling event: {}  {throttled:?}",
        throttled.len()
    );
    let groups = cloud.groups(&node).await?;
    println!(
        "container groups in the cloud for the node: {}",
        groups.len()
    );
    if let BurstCloud::Eci(c) = &cloud {
        print_create_rate(c, &node).await;
    }
    if let Some(secs) = hold_secs {
        hold::memory(&vk, running, Duration::from_secs(secs)).await?;
    }
    remove_node(vk, &node, ns);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::PodStartup {
            pods,
            workers,
            no_token,
            floor,
            against,
            runs,
            hold_secs,
            restart,
            log_interval_ms,
        } => match against {
            Some(against) => against::run(against, pods, workers, no_token, runs).await,
            None => {
                let hold = hold_secs.map(|secs| Hold {
                    secs,
                    restart,
                    log_interval_ms,
                });
                pod_startup(pods, workers, no_token, floor, hold).await
            }
        },
        Bench::LogStream {
            bytes,
            chunk_bytes,
            proto,
            apiserver,
        } => {
            log_stream::run(log_stream::Options {
                bytes,
                chunk_bytes,
                proto,
                apiserver,
            })
            .await
        }
        Bench::CiDay {
            pods,
            compress,
            seed,
            caches,
            node_vcpu,
            node_gib,
            node_price_per_hour,
            node_add_secs,
            node_idle_secs,
        } => {
            ci_day::run(ci_day::Options {
                pods,
                compress,
                seed,
                caches,
                node_vcpu,
                node_gib,
                // The default prices a whole 8 vCPU / 32 GiB machine, reserve included.
                node_price_per_hour: node_price_per_hour.or_else(|| {
                    let p = vk_core::pods::cost::RegionPrice::default();
                    Some((8.0 * p.vcpu_second + 32.0 * p.gib_second) * 3600.0)
                }),
                node_add_secs,
                node_idle_secs,
            })
            .await
        }
        Bench::EciBurst {
            pods,
            options,
            at_quota,
        } => {
            let pacing = if at_quota {
                let quota = cloudsim::eci::config::QuotaConfig::default();
                format!(
                    "  write_rate:\n    burst: {}\n    per_second: {}\n",
                    quota.burst, quota.per_second
                )
            } else {
                String::new()
            };
            burst(BurstKind::Eci, pods, options, &pacing).await
        }
        Bench::AciBurst { pods, options } => burst(BurstKind::Aci, pods, options, "").await,
        Bench::FargateBurst { pods, options } => burst(BurstKind::Fargate, pods, options, "").await,
        Bench::Exec {
            bytes,
            sessions,
            runs,
        } => {
            exec::run(exec::Options {
                bytes,
                sessions,
                runs,
            })
            .await
        }
    }
}
