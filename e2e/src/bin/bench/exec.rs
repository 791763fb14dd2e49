//! `bench exec`: exec through kube-apiserver to a vk node with the mock provider (commands
//! run as local processes).
//!
//! - throughput: `kubectl exec shell -- head -c N /dev/zero`, bytes counted as kubectl
//!   writes them to its stdout (a pipe this process drains), and the same through kube-rs'
//!   `Api::<Pod>::exec`;
//! - concurrency: `--sessions` kube-rs execs at once, each printing its own marker after
//!   64 KiB; every one must come back whole with exit code 0.
//!
//! Against 1.35 the apiserver translates the clients' WebSocket v5 to SPDY/3.1 towards vk;
//! against 1.36+ it passes the WebSocket through (vk declares `ExtendWebSocketsToKubelet`).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2e::harness;
use e2e::pods::pod_for_node;
use e2e::{client, cluster};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

pub struct Options {
    pub bytes: u64,
    pub sessions: usize,
    pub runs: usize,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let client = client().await;
    let info = client.apiserver_version().await?;
    let s = harness::Options::mock("bench-exec")
        .serving_cert()
        .start()
        .await;
    s.run_pod(&pod_for_node("shell", &s.vk.node, &["main"], &[]))
        .await;
    let (vk, node, ns, pods) = (&s.vk, &s.vk.node, &s.ns, &s.pods);
    println!(
        "kube-apiserver {}.{} ({}), node {node}",
        info.major, info.minor, info.git_version
    );

    let vk_pid = pid_of(&format!("--node-name {node} "));
    let apiserver_pid = cluster().state.as_ref().and_then(|s| {
        std::fs::read_to_string(s.join("pids/kube-apiserver.pid"))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    });
    for run in 1..=opts.runs {
        let before = (
            vk_pid.and_then(process_cpu),
            apiserver_pid.and_then(process_cpu),
            children_cpu(),
        );
        let (bytes, elapsed) = kubectl_throughput(&ns.name, opts.bytes)?;
        print_throughput(&format!("kubectl exec, run {run}"), bytes, elapsed);
        let after = (
            vk_pid.and_then(process_cpu),
            apiserver_pid.and_then(process_cpu),
            children_cpu(),
        );
        let spent = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.1} s", b.saturating_sub(a).as_secs_f64()),
            _ => "?".to_owned(),
        };
        println!(
            "  CPU during the run: vk {}, kube-apiserver {}, kubectl {} (load average {})",
            spent(before.0, after.0),
            spent(before.1, after.1),
            spent(Some(before.2), Some(after.2)),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap_or("?")
        );
    }
    for run in 1..=opts.runs {
        let (bytes, elapsed) = kube_rs_throughput(pods, opts.bytes).await?;
        print_throughput(&format!("kube-rs exec, run {run}"), bytes, elapsed);
    }
    concurrent_sessions(pods, opts.sessions).await?;

    let transports: Vec<String> = vk
        .logs()
        .lines()
        .filter_map(|l| {
            let t = l.split("transport=").nth(1)?;
            let p = l.split("protocol=").nth(1)?;
            Some(format!(
                "{} {}",
                t.split_whitespace().next()?,
                p.split_whitespace().next()?
            ))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    println!("vk saw: {}", transports.join(", "));
    Ok(())
}

fn print_throughput(what: &str, bytes: u64, elapsed: Duration) {
    println!(
        "{what}: {bytes} bytes in {:.2} s = {:.1} MB/s",
        elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// Runs kubectl exec and counts its stdout; the time is from spawn to the end of output.
fn kubectl_throughput(namespace: &str, bytes: u64) -> anyhow::Result<(u64, Duration)> {
    let start = Instant::now();
    let mut child = e2e::kubectl_command(&["-n", namespace, "exec", "shell", "-c", "main", "--"])
        .args(["head", "-c", &bytes.to_string(), "/dev/zero"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kubectl")?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let elapsed = start.elapsed();
    let out = child.wait_with_output()?;
    if !out.status.success() || total != bytes {
        bail!(
            "kubectl exec: {} after {total} of {bytes} bytes: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((total, elapsed))
}

async fn kube_rs_throughput(pods: &Api<Pod>, bytes: u64) -> anyhow::Result<(u64, Duration)> {
    let start = Instant::now();
    let params = AttachParams::default()
        .container("main")
        .stdout(true)
        .stderr(false);
    let count = bytes.to_string();
    let mut attached = pods
        .exec("shell", vec!["head", "-c", &count, "/dev/zero"], &params)
        .await?;
    let mut stdout = attached.stdout().context("stdout")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let elapsed = start.elapsed();
    attached.join().await?;
    if total != bytes {
        bail!("kube-rs exec: {total} of {bytes} bytes");
    }
    Ok((total, elapsed))
}

/// stdout and the exit code of a kube-rs exec.
async fn exec_output(pods: &Api<Pod>, command: &[&str]) -> anyhow::Result<(Vec<u8>, i32)> {
    let params = AttachParams::default()
        .container("main")
        .stdout(true)
        .stderr(false);
    let mut attached = pods.exec("shell", command.to_vec(), &params).await?;
    let mut stdout = attached.stdout().context("stdout")?;
    let status = attached.take_status().context("status")?;
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).await?;
    let status = status.await.context("no status")?;
    attached.join().await?;
    let code = if status.status.as_deref() == Some("Success") {
        0
    } else {
        status
            .details
            .and_then(|d| d.causes)
            .and_then(|c| {
                c.into_iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
            })
            .and_then(|c| c.message?.parse().ok())
            .unwrap_or(-1)
    };
    Ok((out, code))
}

async fn concurrent_sessions(pods: &Api<Pod>, sessions: usize) -> anyhow::Result<()> {
    let start = Instant::now();
    let results = futures::stream::iter((0..sessions).map(|i| {
        let pods = pods.clone();
        async move {
            let script = format!("head -c 65536 /dev/zero | tr '\\0' a; echo \" session-{i}\"");
            let t = Instant::now();
            let result = exec_output(&pods, &["sh", "-c", &script]).await;
            (i, result, t.elapsed())
        }
    }))
    .buffer_unordered(sessions.max(1))
    .collect::<Vec<_>>()
    .await;
    let elapsed = start.elapsed();
    let mut ok = 0;
    let mut latencies = Vec::new();
    for (i, result, took) in results {
        let mut expected = vec![b'a'; 65536];
        expected.extend_from_slice(format!(" session-{i}\n").as_bytes());
        match result {
            Ok((out, 0)) if out == expected => {
                ok += 1;
                latencies.push(took);
            }
            Ok((out, code)) => println!(
                "session {i}: exit {code}, {} bytes of output (expected {})",
                out.len(),
                expected.len()
            ),
            Err(e) => println!("session {i}: {e:#}"),
        }
    }
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0, |d| d.as_millis())
    };
    println!(
        "{sessions} concurrent kube-rs exec sessions: {ok} correct (output and exit 0) in {:.2} s; per session p50 {} ms, max {} ms",
        elapsed.as_secs_f64(),
        pick(0.5),
        pick(1.0)
    );
    if ok != sessions {
        bail!("{} of {sessions} sessions failed", sessions - ok);
    }
    Ok(())
}

/// The pid of the process whose command line contains `needle` (space-separated).
fn pid_of(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some(pid)
        })
}

/// User + system CPU time of a live process.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

/// User + system CPU time of this process's reaped children (kubectl).
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
