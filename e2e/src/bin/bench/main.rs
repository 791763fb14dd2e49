//! Benchmarks that print figures (tests never assert on wall time).
//!
//!   bench pod-startup [--pods 100]   100 pods at once on a mock node with zero latency:
//!                                    bind -> Running (observed by a watch) p50/p99, throughput
//!   bench log-stream [--bytes 1073741824] [--proto both] [--apiserver]
//!                                    follow a container writing 1 GiB through the kubelet API
//!                                    on loopback (and through kube-apiserver): MB/s and RSS

mod log_stream;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use e2e::pods::{mock_config, pod_for_node, wait_node_ready};
use e2e::vk::{Vk, service_account_kubeconfig};
use e2e::{TestNamespace, client, unique};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

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
}

#[derive(Default, Clone, Copy)]
struct Seen {
    created: Option<Instant>,
    bound: Option<Instant>,
    running: Option<Instant>,
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

async fn pod_startup(count: usize, workers: u16) -> anyhow::Result<()> {
    let client = client().await;
    let kubeconfig = service_account_kubeconfig(&client).await;
    let node = unique("bench-node");
    let config = mock_config(&format!("pod_workers: {workers}\n"));
    let _vk = Vk::start(&kubeconfig, &node, &config);
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, &node, "True", Duration::from_secs(60)).await;
    let ns = TestNamespace::new(&client, "bench").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, bool, bool, Instant)>();
    let watch_api = pods.clone();
    tokio::spawn(async move {
        let stream = watcher(watch_api, watcher::Config::default()).applied_objects();
        futures::pin_mut!(stream);
        while let Ok(Some(pod)) = stream.try_next().await {
            let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let _ = tx.send((
                pod.metadata.name.clone().unwrap_or_default(),
                bound,
                running,
                Instant::now(),
            ));
        }
    });

    println!(
        "creating {count} pods at once on node {node} (mock provider, zero latency, {workers} workers)"
    );
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let start = Instant::now();
    let creates = futures::stream::iter((0..count).map(|i| {
        let pods = pods.clone();
        let node = node.clone();
        async move {
            let name = format!("bench-{i:04}");
            let pod = pod_for_node(&name, &node, &["main"], &[]);
            pods.create(&PostParams::default(), &pod)
                .await
                .map(|_| (name, Instant::now()))
        }
    }))
    .buffer_unordered(count.max(1))
    .collect::<Vec<_>>()
    .await;
    for created in creates {
        let (name, at) = created?;
        seen.entry(name).or_default().created = Some(at);
    }
    let created_all = start.elapsed();

    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.values().filter(|s| s.running.is_some()).count() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((name, bound, running, at))) = tokio::time::timeout(remaining, rx.recv()).await
        else {
            anyhow::bail!("not all pods reached Running within 300 s");
        };
        let s = seen.entry(name).or_default();
        if bound && s.bound.is_none() {
            s.bound = Some(at);
        }
        if running && s.running.is_none() {
            s.running = Some(at);
        }
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
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::PodStartup { pods, workers } => pod_startup(pods, workers).await,
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
    }
}
