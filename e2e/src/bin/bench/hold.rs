//! `pod-startup --hold-secs S [--restart]`: after the burst, vk holds every pod Running for
//! `S` seconds (its memory then: VmRSS and the peak VmHWM), then, with `--restart`, is killed
//! with SIGKILL and started again: the time until its node's heartbeat is back, and what it
//! wrote meanwhile — pod status writes and instance creates from its own metrics, and the
//! pods whose resourceVersion moved (any write at all, by anyone). A re-sync should write
//! nothing for pods that did not change. (The mock's cloud lives in vk's process: its
//! containers are run again after a restart, so their start times do change.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use e2e::vk::{Vk, health_get};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

/// A `kB` line of /proc/PID/status (VmRSS, VmHWM), in MB.
fn status_mb(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// The sum of a counter's samples in a Prometheus text answer (all label sets).
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn versions(pods: &Api<Pod>) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = pods.list(&params).await?;
        for p in &page.items {
            out.insert(
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata.resource_version.clone().unwrap_or_default(),
            );
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

fn running(pods: &[Pod]) -> usize {
    pods.iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|phase| phase == "Running")
        })
        .count()
}

/// Where vk's time per pod went, by the phases of `vk_pod_start_phase_seconds` (queued for a
/// worker, resolve, the provider's create, then until Running was written): mean and count.
pub async fn print_phases(health_port: u16) {
    let Some(metrics) = metrics(health_port).await else {
        println!("vk's start phases: its metrics did not answer");
        return;
    };
    let mut parts = Vec::new();
    for phase in ["queued", "resolve", "create", "instance"] {
        let label = format!("{{phase=\"{phase}\"}}");
        let sum = counter(&metrics, &format!("vk_pod_start_phase_seconds_sum{label}"));
        let count = counter(
            &metrics,
            &format!("vk_pod_start_phase_seconds_count{label}"),
        );
        if count > 0.0 {
            parts.push(format!("{phase} {:.1} ms ({count})", sum / count * 1000.0));
        }
    }
    let writes = counter(&metrics, "vk_pod_status_write_seconds_sum");
    let write_count = counter(&metrics, "vk_pod_status_write_seconds_count");
    if write_count > 0.0 {
        parts.push(format!(
            "status write {:.1} ms ({write_count})",
            writes / write_count * 1000.0
        ));
    }
    println!("vk's start phases (mean per pod): {}", parts.join(", "));
}

/// vk's metrics, or None while its health port does not answer.
async fn metrics(port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = "GET /metrics HTTP/1.1\r\nHost: vk\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    Some(answer)
}

/// Wait `hold`, then print vk's memory (it holds `count` pods).
pub async fn memory(vk: &Vk, count: usize, hold: Duration) -> anyhow::Result<()> {
    tokio::time::sleep(hold).await;
    let pid = vk
        .pid()
        .ok_or_else(|| anyhow::anyhow!("vk is not running"))?;
    let rss = status_mb(pid, "VmRSS").unwrap_or(0.0);
    let peak = status_mb(pid, "VmHWM").unwrap_or(0.0);
    println!(
        "vk holding {count} Running pods after {} s: RSS {rss:.1} MB (peak {peak:.1} MB)",
        hold.as_secs(),
    );
    Ok(())
}

pub async fn run(
    vk: &mut Vk,
    node: &str,
    health_port: u16,
    pods: &Api<Pod>,
    count: usize,
    hold: Duration,
    restart: bool,
) -> anyhow::Result<()> {
    memory(vk, count, hold).await?;
    if !restart {
        return Ok(());
    }
    let before = versions(pods).await?;
    vk.kill();
    let killed = Instant::now();
    vk.restart();
    let deadline = Instant::now() + Duration::from_secs(600);
    // Back: the new process renewed the node's Lease (its heartbeat).
    let synced = loop {
        if let Some(m) = metrics(health_port).await
            && counter(&m, "vk_node_lease_renewals_total") > 0.0
        {
            break killed.elapsed();
        }
        if Instant::now() > deadline {
            anyhow::bail!("vk did not renew its node's Lease within 600 s of its restart");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Re-synced: every pod reconciled once by the new process.
    let resynced = loop {
        if let Some(m) = metrics(health_port).await
            && counter(&m, "vk_pods_reconciled_total") >= count as f64
        {
            break killed.elapsed();
        }
        if Instant::now() > deadline {
            anyhow::bail!("vk did not reconcile all {count} pods within 600 s of its restart");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Give it time to do whatever it would do after its watch synced.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let metrics = health_get(health_port, "/metrics").await;
    let _ = node;
    let after = versions(pods).await?;
    let moved = before
        .iter()
        .filter(|(name, version)| after.get(*name).is_some_and(|v| v != *version))
        .count();
    let still_running = running(&pods.list(&ListParams::default()).await?.items);
    let pid = vk.pid().unwrap_or(0);
    println!(
        "SIGKILL + restart: the node's heartbeat again {:.1} s after the kill, every pod reconciled by the new process {:.1} s after it; in the 15 s after: {} pod status writes, {} instance creates, {moved} pods whose resourceVersion moved, {still_running}/{count} Running; RSS then {:.1} MB",
        synced.as_secs_f64(),
        resynced.as_secs_f64(),
        counter(&metrics, "vk_pod_status_writes_total") as u64,
        counter(&metrics, "vk_provider_creates_total") as u64,
        status_mb(pid, "VmRSS").unwrap_or(0.0),
    );
    Ok(())
}
