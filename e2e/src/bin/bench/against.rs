//! `pod-startup --against go-vk`: the same burst through vk (mock provider), the reference Go
//! virtual-kubelet (its nodeutil node with a mock provider, client QPS/burst raised; built by
//! `e2e/go-vk/build.sh`, path in `GO_VK_BIN`) and the `--floor` node, interleaved on one control
//! plane, each on a node of its own; one table of bind -> Running, throughput, RSS and CPU.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::TestNamespace;
use e2e::pods::{mock_config, wait_node_ready};
use e2e::vk::{Vk, service_account_kubeconfig};
use e2e::{client, unique};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::Api;

use crate::{create_pods, floor, ms, percentile, remove_node, wait_root_ca, watch_pods};

/// The implementations `--against` can compare vk with.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Against {
    GoVk,
}

/// The Go kubelet's client rate limit (its own rest.Config QPS/burst, set by e2e/go-vk/main.go).
const GO_VK_QPS: u32 = 1000;
const GO_VK_BURST: u32 = 2000;

#[derive(Clone, Copy)]
enum Subject {
    Vk,
    GoVk,
    Floor,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Vk => "vk (mock)",
            Subject::GoVk => "Go VK v1.14.1 (mock, QPS 1000/2000)",
            Subject::Floor => "floor (bench patches Running)",
        }
    }
}

/// One burst's figures.
struct Figures {
    subject: Subject,
    run: usize,
    /// bind -> Running as seen by the watch, sorted.
    bind_to_running: Vec<Duration>,
    /// create returned -> bound as seen by the watch (the scheduler's part), sorted.
    create_to_bound: Vec<Duration>,
    running: usize,
    total: Duration,
    idle_rss_kb: Option<u64>,
    peak_rss_kb: Option<u64>,
    /// utime + stime of the kubelet process during the burst.
    cpu: Option<Duration>,
}

/// A running Go virtual-kubelet; killed on drop.
struct GoVk {
    child: Child,
}

impl GoVk {
    fn start(exe: &Path, kubeconfig: &Path, node: &str, workers: u16) -> anyhow::Result<GoVk> {
        let log_path = std::env::temp_dir().join(format!("{node}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(exe)
            .arg("-kubeconfig")
            .arg(kubeconfig)
            .args(["-nodename", node, "-taint", "mock"])
            .args(["-qps", &GO_VK_QPS.to_string()])
            .args(["-burst", &GO_VK_BURST.to_string()])
            .args(["-workers", &workers.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        println!("  Go VK log: {}", log_path.display());
        Ok(GoVk { child })
    }
}

impl Drop for GoVk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Kubelet {
    Vk(Vk),
    GoVk(GoVk),
    Floor(tokio::task::JoinHandle<()>),
}

impl Kubelet {
    fn pid(&self) -> Option<u32> {
        match self {
            Kubelet::Vk(vk) => vk.pid(),
            Kubelet::GoVk(go) => Some(go.child.id()),
            Kubelet::Floor(_) => None,
        }
    }
}

/// A `kB` line of /proc/PID/status (VmRSS, VmHWM).
fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of a process, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it start at field 3 (state).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

pub async fn run(
    against: Against,
    count: usize,
    workers: u16,
    no_token: bool,
    runs: usize,
) -> anyhow::Result<()> {
    let Against::GoVk = against;
    let exe = std::env::var_os("GO_VK_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "GO_VK_BIN does not name a binary: run e2e/go-vk/build.sh (e2e/bench does)"
            )
        })?;
    let client = client().await;
    let kubeconfig = service_account_kubeconfig(&client).await;
    // vk's least-privilege RBAC lacks verbs Go VK uses (pods/status update, core/v1 Events,
    // node update), so it runs with the bench's own kubeconfig.
    let admin_kubeconfig = e2e::cluster().kubeconfig.clone();
    println!(
        "{count} pods at once per burst ({}), {workers} pod workers each, {runs} run(s) of vk, Go VK, floor",
        if no_token {
            "no service-account token"
        } else {
            "each with a service-account token; Go VK's mock ignores volumes"
        }
    );
    // The first burst on a fresh control plane is slower for whoever makes it (the API
    // server's caches and connections are cold; vk, always first, paid for it in every
    // earlier table): one burst through the floor first, not counted.
    println!("warm-up: {} (not counted)", Subject::Floor.label());
    burst(
        &client,
        [&kubeconfig, &admin_kubeconfig],
        &exe,
        Subject::Floor,
        0,
        count,
        workers,
        no_token,
    )
    .await?;
    let mut all = Vec::new();
    for run in 1..=runs.max(1) {
        // Each run starts with another kubelet, so none always follows the same one.
        let mut order = [Subject::Vk, Subject::GoVk, Subject::Floor];
        order.rotate_left((run - 1) % 3);
        for subject in order {
            println!("run {run}: {}", subject.label());
            let figures = burst(
                &client,
                [&kubeconfig, &admin_kubeconfig],
                &exe,
                subject,
                run,
                count,
                workers,
                no_token,
            )
            .await?;
            all.push(figures);
        }
    }
    // The table lists each run's kubelets in one order, whatever order they ran in.
    all.sort_by_key(|f| (f.run, f.subject as u8));
    print_table(count, no_token, &all);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn burst(
    client: &kube::Client,
    [kubeconfig, admin_kubeconfig]: [&Path; 2],
    exe: &Path,
    subject: Subject,
    run: usize,
    count: usize,
    workers: u16,
    no_token: bool,
) -> anyhow::Result<Figures> {
    let node = unique(match subject {
        Subject::Vk => "bench-vk",
        Subject::GoVk => "bench-govk",
        Subject::Floor => "bench-floor",
    });
    let kubelet = match subject {
        Subject::Vk => Kubelet::Vk(Vk::start(
            kubeconfig,
            &node,
            &mock_config(&format!("pod_workers: {workers}\n")),
        )),
        Subject::GoVk => Kubelet::GoVk(GoVk::start(exe, admin_kubeconfig, &node, workers)?),
        Subject::Floor => {
            floor::register_node(client, &node).await?;
            Kubelet::Floor(floor::spawn_status_writer(
                client.clone(),
                node.clone(),
                workers.into(),
            ))
        }
    };
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, &node, "True", Duration::from_secs(60)).await;
    let ns = TestNamespace::new(client, "bench").await;
    let ns_name = ns.name.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    wait_root_ca(client, &ns.name).await?;
    let mut rx = watch_pods(pods.clone()).await;

    let pid = kubelet.pid();
    let idle_rss_kb = pid.and_then(|p| status_kb(p, "VmRSS"));
    let cpu_before = pid.and_then(cpu_time);
    let start = Instant::now();
    let mut seen = create_pods(&pods, &node, "bench", count, no_token).await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.values().filter(|s| s.running.is_some()).count() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(observed)) = tokio::time::timeout(remaining, rx.recv()).await else {
            println!("  not all pods Running within 300 s");
            break;
        };
        seen.entry(observed.name.clone())
            .or_default()
            .observe(&observed);
    }
    let total = start.elapsed();
    let peak_rss_kb = pid.and_then(|p| status_kb(p, "VmHWM"));
    let cpu = match (cpu_before, pid.and_then(cpu_time)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let mut bind_to_running: Vec<Duration> = seen
        .values()
        .filter_map(|s| Some(s.running?.saturating_duration_since(s.bound?)))
        .collect();
    bind_to_running.sort();
    let mut create_to_bound: Vec<Duration> = seen
        .values()
        .filter_map(|s| Some(s.bound?.saturating_duration_since(s.created?)))
        .collect();
    create_to_bound.sort();
    let running = seen.values().filter(|s| s.running.is_some()).count();
    println!(
        "  {running}/{count} Running in {}, bind -> Running p50 {}",
        ms(total),
        ms(percentile(&bind_to_running, 0.5))
    );

    match kubelet {
        Kubelet::Vk(vk) => remove_node(vk, &node, ns),
        Kubelet::GoVk(go) => {
            drop(go);
            remove_node(None, &node, ns);
        }
        Kubelet::Floor(writer) => {
            writer.abort();
            remove_node(None, &node, ns);
        }
    }
    settle(client, &ns_name).await;
    Ok(Figures {
        subject,
        run,
        bind_to_running,
        create_to_bound,
        running,
        total,
        idle_rss_kb,
        peak_rss_kb,
        cpu,
    })
}

/// Wait (up to 120 s) for the burst's namespace to be gone, so its pods' deletion does not load
/// the control plane during the next burst.
async fn settle(client: &kube::Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if matches!(namespaces.get_opt(ns).await, Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("  namespace {ns} still terminating after 120 s; going on");
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("n/a".into(), |kb| format!("{:.0} MB", kb as f64 / 1024.0))
}

fn print_table(count: usize, no_token: bool, all: &[Figures]) {
    println!();
    println!(
        "{count} pods, {}: bind -> Running (watch)",
        if no_token {
            "no token volume"
        } else {
            "token volume"
        }
    );
    println!(
        "| kubelet | run | p50 | p90 | p99 | max | Running | pods/s | create -> bound p50 | RSS idle | RSS peak | CPU (burst) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for f in all {
        let b = &f.bind_to_running;
        println!(
            "| {} | {} | {} | {} | {} | {} | {}/{count} | {:.1} | {} | {} | {} | {} |",
            f.subject.label(),
            f.run,
            ms(percentile(b, 0.50)),
            ms(percentile(b, 0.90)),
            ms(percentile(b, 0.99)),
            ms(b.last().copied().unwrap_or_default()),
            f.running,
            f.running as f64 / f.total.as_secs_f64(),
            ms(percentile(&f.create_to_bound, 0.50)),
            mb(f.idle_rss_kb),
            mb(f.peak_rss_kb),
            f.cpu
                .map_or("n/a".into(), |c| format!("{:.2} s", c.as_secs_f64())),
        );
    }
}
