//! `bench ci-day`: an afternoon of CI replayed on an eci node against `vk-cloud` with the
//! `realistic` latency model, once without image caches and once with them (ECI creates a
//! cache on a miss, `image_cache.auto_create`), and the same trace priced as whole nodes that a
//! cluster autoscaler adds and removes.
//!
//! The trace (generated from a seed): `--pods` Jenkins agent pods over one simulated hour,
//! arriving at a base rate with a peak at minute 35 (a Gaussian, σ 8 min, holding 70% of the
//! pods); each pod is the `jnlp` agent (`jenkins/inbound-agent`, 100m / 256Mi) beside one build
//! image (golang, maven, node, python, gradle or rust, weighted as a mixed shop's jobs;
//! 1500m / 3Gi); its build runs a log-normal time (median 6 min, σ 0.5, 1 to 30 min).
//!
//! Time is compressed by `--compress` for the arrivals and the builds only: the cloud's start
//! (placement, network, pulls) runs at its modelled speed, so create → Running is measured as
//! it would be. A pod's cost is vk's own record (the `virtual-kubelet.io/cost` annotation: the
//! billed time × the billed size × the price) with its compressed build time put back to the
//! simulated one.
//!
//! The autoscaler estimate is computed, not run: nodes of `--node-vcpu` / `--node-gib` (the
//! allocatable part after the system's reserve), added `--node-add-secs` (about 3 min) after a
//! pod finds no room, removed after `--node-idle-secs` (10 min) without pods; a pod on a node
//! pulls its images at the same modelled bandwidth unless the node pulled them before; nodes
//! cost `--node-price-per-hour`, by default the same per-vCPU and per-GiB rates as the
//! instances (ECS's own prices differ by type and region; give yours).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use cloudsim::engine::catalog::ImageCatalog;
use cloudsim::engine::latency::RealisticLatency;
use e2e::cloud::MockCloud;
use e2e::pods::wait_node_ready;
use e2e::vk::{Vk, service_account_kubeconfig};
use e2e::{TestNamespace, client, unique};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rand::{RngExt as _, SeedableRng};
use vk_core::pods::cost::PriceTable;

pub struct Options {
    pub pods: usize,
    pub compress: f64,
    pub seed: u64,
    pub node_vcpu: f64,
    pub node_gib: f64,
    pub node_price_per_hour: Option<f64>,
    pub node_add_secs: f64,
    pub node_idle_secs: f64,
    /// Only the cached run (`with`), only the uncached (`without`), or `both`.
    pub caches: String,
}

/// The build images and how often a job uses each.
const BUILD_IMAGES: &[(&str, u32)] = &[
    ("golang:1.22", 30),
    ("maven:3.9-eclipse-temurin-21", 25),
    ("node:20", 20),
    ("python:3.12", 10),
    ("gradle:8.7-jdk21", 10),
    ("rust:1.78", 5),
];
const AGENT_IMAGE: &str = "jenkins/inbound-agent:3283.v92c105e0f819-1";
/// Requests: the agent's and the build container's (vCPU, GiB).
const AGENT_REQUEST: (f64, f64) = (0.1, 0.25);
const BUILD_REQUEST: (f64, f64) = (1.5, 3.0);
const HOUR: f64 = 3600.0;

/// One build pod of the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub name: String,
    /// Simulated seconds after the trace's start.
    pub arrival: f64,
    pub image: &'static str,
    /// Simulated seconds the build runs.
    pub build: f64,
}

/// The trace from `seed`: `pods` jobs, sorted by arrival.
pub fn trace(pods: usize, seed: u64) -> Vec<Job> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total_weight: u32 = BUILD_IMAGES.iter().map(|(_, w)| w).sum();
    let mut jobs: Vec<Job> = (0..pods)
        .map(|_| {
            let arrival = if rng.random_bool(0.7) {
                // Box-Muller for the peak.
                let (u1, u2): (f64, f64) = (rng.random_range(1e-9..1.0), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (35.0 * 60.0 + z * 8.0 * 60.0).clamp(0.0, HOUR - 1.0)
            } else {
                rng.random_range(0.0..HOUR)
            };
            let mut pick = rng.random_range(0..total_weight);
            let image = BUILD_IMAGES
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .map_or(BUILD_IMAGES[0].0, |(i, _)| i);
            let (u1, u2): (f64, f64) = (rng.random_range(1e-9..1.0), rng.random());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let build = (360.0 * (0.5 * z).exp()).clamp(60.0, 1800.0);
            Job {
                name: String::new(),
                arrival,
                image,
                build,
            }
        })
        .collect();
    jobs.sort_by(|a, b| a.arrival.total_cmp(&b.arrival));
    for (i, job) in jobs.iter_mut().enumerate() {
        job.name = format!("ci-{i:04}");
    }
    jobs
}

/// What the autoscaled node pool would have done with the trace.
#[derive(Debug, PartialEq)]
pub struct NodePool {
    /// Arrival → the pod's containers started, simulated seconds, per job.
    pub start_secs: Vec<f64>,
    /// Jobs that waited for a new node.
    pub waited_for_node: usize,
    /// Jobs that pulled an image on their node.
    pub pulled: usize,
    pub peak_nodes: usize,
    pub node_seconds: f64,
}

pub struct PoolModel {
    pub node_vcpu: f64,
    pub node_gib: f64,
    pub add_secs: f64,
    pub idle_secs: f64,
    /// A container starts this long after its images are on the node.
    pub container_start_secs: f64,
}

struct PoolNode {
    created: f64,
    ready: f64,
    free: (f64, f64),
    images: Vec<String>,
    running: usize,
    idle_since: f64,
    removed: Option<f64>,
}

/// Simulate the pool, one-second steps: pods go first-fit onto ready nodes; pods that fit
/// nowhere (nor on nodes on their way) make the autoscaler add enough nodes for them, ready
/// `add_secs` later; a node without pods for `idle_secs` is removed.
pub fn node_pool(jobs: &[Job], model: &PoolModel) -> NodePool {
    let latency = RealisticLatency::default();
    let catalog = ImageCatalog::default();
    let need = (
        AGENT_REQUEST.0 + BUILD_REQUEST.0,
        AGENT_REQUEST.1 + BUILD_REQUEST.1,
    );
    let per_node = ((model.node_vcpu / need.0).floor())
        .min((model.node_gib / need.1).floor())
        .max(1.0) as usize;
    let mut nodes: Vec<PoolNode> = Vec::new();
    let mut pending: Vec<usize> = Vec::new();
    let mut ends: Vec<(f64, usize)> = Vec::new(); // (end, node)
    let mut start_secs = vec![0.0; jobs.len()];
    let mut waited = HashSet::new();
    let mut pulled = 0;
    let mut peak = 0;
    let mut next = 0;
    let mut t = 0.0;
    loop {
        // Builds that ended free their node.
        ends.retain(|&(end, n)| {
            if end <= t {
                let node = &mut nodes[n];
                node.free.0 += need.0;
                node.free.1 += need.1;
                node.running -= 1;
                if node.running == 0 {
                    node.idle_since = end;
                }
                false
            } else {
                true
            }
        });
        while next < jobs.len() && jobs[next].arrival <= t {
            pending.push(next);
            next += 1;
        }
        let mut still = Vec::new();
        for &j in &pending {
            let fit = nodes.iter().position(|n| {
                n.removed.is_none() && n.ready <= t && n.free.0 >= need.0 && n.free.1 >= need.1
            });
            let Some(n) = fit else {
                still.push(j);
                continue;
            };
            let node = &mut nodes[n];
            let images = vec![AGENT_IMAGE.to_string(), jobs[j].image.to_string()];
            let plan = latency
                .plan(&catalog, &images, &node.images)
                .unwrap_or_default();
            if plan.pulled_mb() > 0.0 {
                pulled += 1;
            }
            for image in images {
                if !node.images.contains(&image) {
                    node.images.push(image);
                }
            }
            let started = t + plan.pull_ms() as f64 / 1000.0 + model.container_start_secs;
            start_secs[j] = started - jobs[j].arrival;
            node.free.0 -= need.0;
            node.free.1 -= need.1;
            node.running += 1;
            ends.push((started + jobs[j].build, n));
        }
        pending = still;
        // The autoscaler: room on nodes still coming counts; the rest gets new nodes.
        let coming: usize = nodes
            .iter()
            .filter(|n| n.removed.is_none() && n.ready > t)
            .map(|n| ((n.free.0 / need.0).floor().min((n.free.1 / need.1).floor())) as usize)
            .sum();
        if pending.len() > coming {
            for &j in &pending {
                waited.insert(j);
            }
            let add = (pending.len() - coming).div_ceil(per_node);
            for _ in 0..add {
                nodes.push(PoolNode {
                    created: t,
                    ready: t + model.add_secs,
                    free: (model.node_vcpu, model.node_gib),
                    images: Vec::new(),
                    running: 0,
                    idle_since: t + model.add_secs,
                    removed: None,
                });
            }
        } else {
            for &j in &pending {
                if nodes.iter().any(|n| n.removed.is_none() && n.ready > t) {
                    waited.insert(j);
                }
            }
        }
        for n in nodes.iter_mut() {
            if n.removed.is_none()
                && n.ready <= t
                && n.running == 0
                && t - n.idle_since >= model.idle_secs
            {
                n.removed = Some(t);
            }
        }
        peak = peak.max(nodes.iter().filter(|n| n.removed.is_none()).count());
        if next == jobs.len() && pending.is_empty() && nodes.iter().all(|n| n.removed.is_some()) {
            break;
        }
        t += 1.0;
    }
    NodePool {
        start_secs,
        waited_for_node: waited.len(),
        pulled,
        peak_nodes: peak,
        node_seconds: nodes
            .iter()
            .map(|n| n.removed.unwrap_or(t) - n.created)
            .sum(),
    }
}

/// What one replay on vk measured.
struct Replay {
    /// Create → Running, per job (None: never ran).
    start: Vec<Option<Duration>>,
    /// The job's pod reported a pull (`Pulling`) / a cache hit.
    pulled: Vec<bool>,
    hit: Vec<bool>,
    /// Its cost with the build time put back to the simulated one.
    cost: Vec<Option<f64>>,
    currency: String,
    peak_running: usize,
    took: Duration,
}

fn build_pod(job: &Job, node: &str, run_ms: u64) -> Pod {
    let env = serde_json::json!([{"name": "MOCKCLOUD_RUN_MS", "value": run_ms.to_string()},
        {"name": "MOCKCLOUD_LOG_INTERVAL_MS", "value": "0"}]);
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": job.name, "labels": {"jenkins/label": "ci-day"}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [
                {"name": "jnlp", "image": AGENT_IMAGE, "env": env,
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
                {"name": "build", "image": job.image, "command": ["cat"], "tty": true, "env": env,
                 "resources": {"requests": {"cpu": "1500m", "memory": "3Gi"}}}
            ]
        }
    }))
    .expect("a valid pod")
}

async fn replay(jobs: &[Job], compress: f64, caches: bool) -> anyhow::Result<Replay> {
    let client = client().await;
    let kubeconfig = service_account_kubeconfig(&client).await;
    let cloud = MockCloud::start("simulate", &["--latency-model", "realistic"]);
    let node = unique(if caches { "ci-day-cache" } else { "ci-day" });
    let config = format!(
        "health_port: 0\npod_workers: 16\nprovider: eci\n{}  image_cache:\n    auto_match: {caches}\n    auto_create: {caches}\n    controller: false\n",
        cloud.eci_config_polling(1000)
    );
    let vk = Vk::start_with_env(&kubeconfig, &node, &config, Vec::new());
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, &node, "True", Duration::from_secs(60)).await;
    let ns = TestNamespace::new(&client, "ci-day").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let index: HashMap<String, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.clone(), i))
        .collect();

    // The watch: Running, and Succeeded/Failed (then the cost and the delete, as Jenkins
    // deletes an agent pod when its build is done).
    let mut rx = super::watch_pods(pods.clone()).await;

    let began = Instant::now();
    let creator = {
        let pods = pods.clone();
        let jobs = jobs.to_vec();
        let node = node.clone();
        tokio::spawn(async move {
            let mut created = Vec::with_capacity(jobs.len());
            for job in &jobs {
                let at = began + Duration::from_secs_f64(job.arrival / compress);
                tokio::time::sleep_until(at.into()).await;
                let run_ms = (job.build / compress * 1000.0) as u64;
                let pod = build_pod(job, &node, run_ms);
                let result = pods.create(&PostParams::default(), &pod).await;
                created.push((Instant::now(), result.is_ok()));
                if let Err(e) = result {
                    eprintln!("creating {}: {e}", job.name);
                }
            }
            created
        })
    };

    let mut running_at: Vec<Option<Instant>> = vec![None; jobs.len()];
    let mut ended = vec![false; jobs.len()];
    let mut cost: Vec<Option<f64>> = vec![None; jobs.len()];
    let mut currency = String::new();
    let mut running_now = 0usize;
    let mut peak_running = 0usize;
    let horizon = Duration::from_secs_f64(HOUR / compress) + Duration::from_secs(900);
    let deadline = Instant::now() + horizon;
    while ended.iter().any(|e| !e) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(seen)) = tokio::time::timeout(remaining, rx.recv()).await else {
            println!(
                "  only {} of {} pods ended within {horizon:?}",
                ended.iter().filter(|e| **e).count(),
                jobs.len()
            );
            break;
        };
        let Some(&i) = index.get(&seen.name) else {
            continue;
        };
        let phase = seen.phase.as_deref().unwrap_or_default();
        if phase == "Running" && running_at[i].is_none() {
            running_at[i] = Some(seen.at);
            running_now += 1;
            peak_running = peak_running.max(running_now);
        }
        if (phase == "Succeeded" || phase == "Failed") && !ended[i] {
            let Some(c) = seen.cost else {
                // The cost annotation follows the status write; wait for it.
                continue;
            };
            ended[i] = true;
            if running_at[i].is_some() {
                running_now = running_now.saturating_sub(1);
            }
            let real_build = (jobs[i].build / compress * 1000.0).floor() / 1000.0;
            let seconds = (c.seconds - real_build + jobs[i].build).max(0.0);
            cost[i] = Some(seconds * c.price_per_second);
            currency = c.currency.clone();
            let pods = pods.clone();
            let name = jobs[i].name.clone();
            tokio::spawn(async move {
                let _ = pods.delete(&name, &DeleteParams::default()).await;
            });
        }
    }
    let took = began.elapsed();
    let created = creator.await?;

    // Pulls and hits from the pods' Events (the cloud's, passed through by vk).
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let mut reasons: HashMap<String, HashSet<String>> = HashMap::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = events.list(&params).await?;
        for e in &page.items {
            if let (Some(name), Some(reason)) = (&e.involved_object.name, &e.reason) {
                reasons
                    .entry(name.clone())
                    .or_default()
                    .insert(reason.clone());
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let has = |j: &Job, r: &str| reasons.get(&j.name).is_some_and(|s| s.contains(r));
    let start = jobs
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let (made, ok) = created.get(i).copied()?;
            ok.then_some(())?;
            running_at[i].map(|r| r.saturating_duration_since(made))
        })
        .collect();
    let report = Replay {
        start,
        pulled: jobs.iter().map(|j| has(j, "Pulling")).collect(),
        hit: jobs
            .iter()
            .map(|j| has(j, "SuccessfulHitImageCache"))
            .collect(),
        cost,
        currency,
        peak_running,
        took,
    };
    drop(vk);
    drop(cloud);
    Ok(report)
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

fn row(label: &str, starts: Vec<f64>, extra: &str) -> String {
    format!(
        "| {label} | {} | {:.1} s | {:.1} s | {:.1} s | {extra} |",
        starts.len(),
        pct(starts.clone(), 0.5),
        pct(starts.clone(), 0.9),
        pct(starts, 0.99),
    )
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let jobs = trace(o.pods, o.seed);
    let prices = PriceTable::default();
    let price = &prices.prices[0];
    let node_price_s = o
        .node_price_per_hour
        .map(|h| h / HOUR)
        .unwrap_or(o.node_vcpu * price.vcpu_second + o.node_gib * price.gib_second);
    let mut by_image: BTreeMap<&str, usize> = BTreeMap::new();
    for j in &jobs {
        *by_image.entry(j.image).or_default() += 1;
    }
    println!(
        "ci-day: {} build pods over one simulated hour (seed {}), time compressed {}x; images: {by_image:?}",
        jobs.len(),
        o.seed,
        o.compress
    );
    let model = RealisticLatency::default();
    println!(
        "model: realistic (placement {} ms, network attach {} ms, cache attach {} ms, {} ms per image, {} MB/s pulls, cache snapshot {} ms); prices {} {}/vCPU-s, {}/GiB-s",
        model.placement_ms,
        model.eni_attach_ms,
        model.cache_attach_ms,
        model.per_image_ms,
        model.pull_bandwidth_mb_s,
        model.snapshot_ms,
        prices.currency,
        price.vcpu_second,
        price.gib_second
    );
    let mut lines = vec![
        "| run | pods | create → Running p50 | p90 | p99 | pulls, hits, cost |".to_string(),
        "| --- | --- | --- | --- | --- | --- |".to_string(),
    ];
    let runs: Vec<bool> = match o.caches.as_str() {
        "with" => vec![true],
        "without" => vec![false],
        _ => vec![false, true],
    };
    for caches in runs {
        println!(
            "replaying {} image caches ...",
            if caches { "with" } else { "without" }
        );
        let r = replay(&jobs, o.compress, caches).await?;
        let starts: Vec<f64> = r.start.iter().flatten().map(|d| d.as_secs_f64()).collect();
        let total: f64 = r.cost.iter().flatten().sum();
        let pulled = r.pulled.iter().filter(|p| **p).count();
        let hits = r.hit.iter().filter(|h| **h).count();
        // Jobs whose image set ran earlier in the trace (then a cache could hold it).
        let mut seen_before = HashSet::new();
        let repeat: Vec<f64> = jobs
            .iter()
            .zip(&r.start)
            .filter_map(|(j, s)| {
                let again = !seen_before.insert(j.image);
                s.filter(|_| again).map(|d| d.as_secs_f64())
            })
            .collect();
        let hit_starts: Vec<f64> = r
            .start
            .iter()
            .zip(&r.hit)
            .filter_map(|(s, h)| s.filter(|_| *h).map(|d| d.as_secs_f64()))
            .collect();
        println!(
            "  ended {} / {} in {:.0} s (real); peak {} Running at once; images used before: create → Running p50 {:.1} s; cache hits p50 {:.1} s",
            r.cost.iter().flatten().count(),
            jobs.len(),
            r.took.as_secs_f64(),
            r.peak_running,
            pct(repeat, 0.5),
            pct(hit_starts, 0.5)
        );
        lines.push(row(
            if caches {
                "vk + ECI, image caches (auto-created on a miss)"
            } else {
                "vk + ECI, no image cache"
            },
            starts,
            &format!("{pulled} pulled, {hits} hits, {total:.2} {}", r.currency),
        ));
    }
    let pool = node_pool(
        &jobs,
        &PoolModel {
            node_vcpu: o.node_vcpu,
            node_gib: o.node_gib,
            add_secs: o.node_add_secs,
            idle_secs: o.node_idle_secs,
            container_start_secs: 1.0,
        },
    );
    lines.push(row(
        &format!(
            "autoscaled nodes ({} vCPU / {} GiB, +{:.0} s to add, -{:.0} s idle), estimate",
            o.node_vcpu, o.node_gib, o.node_add_secs, o.node_idle_secs
        ),
        pool.start_secs.clone(),
        &format!(
            "{} waited for a node, {} pulled on their node, peak {} nodes, {:.0} node-hours: {:.2} {}",
            pool.waited_for_node,
            pool.pulled,
            pool.peak_nodes,
            pool.node_seconds / HOUR,
            pool.node_seconds * node_price_s,
            prices.currency
        ),
    ));
    println!();
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_is_the_seeds_and_peaks_in_the_afternoon() {
        let a = trace(300, 7);
        assert_eq!(a, trace(300, 7));
        assert_ne!(a, trace(300, 8));
        assert_eq!(a.len(), 300);
        assert!(a.windows(2).all(|w| w[0].arrival <= w[1].arrival));
        assert!(a.iter().all(|j| (0.0..HOUR).contains(&j.arrival)));
        assert!(a.iter().all(|j| (60.0..=1800.0).contains(&j.build)));
        let in_peak = a
            .iter()
            .filter(|j| (27.0 * 60.0..43.0 * 60.0).contains(&j.arrival))
            .count();
        // 70% of the pods come with the peak (±1σ holds 68% of them), the rest spread evenly.
        assert!(in_peak > 300 / 3, "{in_peak}");
        let images: HashSet<_> = a.iter().map(|j| j.image).collect();
        assert!(images.len() >= 5, "{images:?}");
    }

    fn model() -> PoolModel {
        PoolModel {
            node_vcpu: 7.5,
            node_gib: 28.0,
            add_secs: 180.0,
            idle_secs: 600.0,
            container_start_secs: 1.0,
        }
    }

    fn job(name: &str, arrival: f64, build: f64) -> Job {
        Job {
            name: name.into(),
            arrival,
            image: "golang:1.22",
            build,
        }
    }

    #[test]
    fn a_lone_pod_waits_for_a_node_and_the_node_stays_its_idle_time() {
        let pool = node_pool(&[job("a", 0.0, 300.0)], &model());
        assert_eq!(pool.waited_for_node, 1);
        assert_eq!(pool.pulled, 1);
        // 3 min for the node, then the agent and golang pulled (shared base once), then 1 s.
        let latency = RealisticLatency::default();
        let plan = latency
            .plan(
                &ImageCatalog::default(),
                &[AGENT_IMAGE.to_string(), "golang:1.22".to_string()],
                &[],
            )
            .unwrap();
        let expected = 180.0 + plan.pull_ms() as f64 / 1000.0 + 1.0;
        assert!((pool.start_secs[0] - expected).abs() <= 1.0, "{pool:?}");
        assert_eq!(pool.peak_nodes, 1);
        // Created at 0, busy until the build ends, then 10 idle minutes.
        let busy = expected + 300.0;
        assert!(
            (pool.node_seconds - (busy + 600.0)).abs() <= 2.0,
            "{}",
            pool.node_seconds
        );
    }

    #[test]
    fn pods_share_a_node_and_a_warm_node_needs_no_pull() {
        // Four fit on a 7.5 vCPU node (1.6 each); the fifth makes a second node.
        let jobs: Vec<Job> = (0..5).map(|i| job(&format!("j{i}"), 0.0, 600.0)).collect();
        let pool = node_pool(&jobs, &model());
        assert_eq!(pool.peak_nodes, 2);
        assert_eq!(pool.waited_for_node, 5);
        // A later job on the warm node starts in a second.
        let mut jobs = vec![job("first", 0.0, 60.0)];
        jobs.push(job("second", 400.0, 60.0));
        let pool = node_pool(&jobs, &model());
        assert_eq!(pool.pulled, 1);
        assert!((pool.start_secs[1] - 1.0).abs() < 1e-9, "{pool:?}");
        assert_eq!(pool.waited_for_node, 1);
    }
}
