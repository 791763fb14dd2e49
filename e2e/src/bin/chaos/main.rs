//! The chaos soak (`e2e/chaos [--minutes 20] [--seed S]`): on a control plane of its own, one
//! eci node against the simulator (`simulate` executor, a state file) with faults on (30% of
//! calls answered 5xx throughout; throttling bursts, slow answers, a group vanishing, the API
//! down), a steady stream of build pods created and deleted at random (exit codes 0 and
//! non-zero, some deleted while starting, some while running), and at random moments: vk
//! SIGKILLed (started again at once or after a while), kube-apiserver killed and started again,
//! etcd restarted, the simulator itself killed and started again on its state file. At the end
//! a ledger: pods created, each pod's end against what its spec implies, the groups the cloud
//! made per pod UID, pods stuck, Warning events by reason, vk restarts survived and how long
//! each outage took to recover from. Exits non-zero on any lost, duplicated, leaked or stuck
//! pod (or a wrong end). The same seed gives the same pods and the same outages in the same
//! order (not the same timings).

mod ledger;
mod sim;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use e2e::own_cluster::OwnCluster;
use e2e::pods::{node_condition, pod_for_node, wait_node_ready};
use e2e::vk::{Vk, service_account_kubeconfig};
use e2e::{TestNamespace, client, kubectl, unique};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{EnvVar, Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

use ledger::{Expect, Outage, PodLine};
use sim::Sim;

#[derive(Parser)]
#[command(about = "Chaos soak: vk on an eci node through faults and restarts; prints a ledger")]
struct Cli {
    /// How long pods are created and outages happen (the tail, until every pod is gone,
    /// comes after).
    #[arg(long, default_value_t = 20.0)]
    minutes: f64,
    /// Seed of the pods' plans and the outages' order (random when not given; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the ledger is written as JSON.
    #[arg(long, default_value = "chaos-ledger.json")]
    ledger: PathBuf,
}

/// Faults on throughout: 30% of calls answered 5xx (half of them after the action ran).
const BASE_FAULTS: &str = r#"{"error_rate":0.3}"#;

/// A pod with no final phase this long after its container should have ended is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(150);

/// What the soak does to a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Runs `run` and exits with `code`; deleted once its end was seen.
    Complete,
    /// Deleted this soon after its create, while it starts.
    DeleteStarting(Duration),
    /// Runs long; deleted this long after its create.
    DeleteRunning(Duration),
}

/// What the watch saw of one pod (by UID).
#[derive(Clone, Debug, Default)]
struct Seen {
    running: Option<Instant>,
    final_phase: Option<String>,
    final_at: Option<Instant>,
    exit_code: Option<i32>,
    reason: Option<String>,
    gone: Option<Instant>,
}

/// One pod the soak made.
#[derive(Clone, Debug)]
struct Made {
    name: String,
    uid: String,
    plan: Plan,
    run: Duration,
    code: i32,
    created: Instant,
    /// The soak made its group vanish: vk must fail it (ProviderInstanceLost), not run it again.
    vanished: bool,
    deleted: Option<Instant>,
    stuck: bool,
}

#[derive(Default)]
struct Book {
    seen: HashMap<String, Seen>,
    made: Vec<Made>,
    /// When a pod started running or ended (pods making progress).
    progress: Vec<Instant>,
}

type Shared = Arc<Mutex<Book>>;

fn book(b: &Shared) -> std::sync::MutexGuard<'_, Book> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

fn say(start: Instant, what: &str) {
    eprintln!("[chaos {:>6.1}s] {what}", start.elapsed().as_secs_f64());
}

/// The soak's watch tries again every half second through an outage (a growing back-off
/// would measure the soak's own patience, not vk's recovery).
struct Steady;

impl Iterator for Steady {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(500))
    }
}

impl kube::runtime::utils::Backoff for Steady {
    fn reset(&mut self) {}
}

/// Watch the namespace's pods through every outage (the watcher starts again by itself).
fn watch(pods: Api<Pod>, book_: Shared) {
    tokio::spawn(async move {
        let stream = watcher(pods, watcher::Config::default()).backoff(Steady);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let (pod, deleted) = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => (pod, false),
                Ok(watcher::Event::Delete(pod)) => (pod, true),
                Ok(_) | Err(_) => continue,
            };
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let now = Instant::now();
            let mut b = book(&book_);
            let mut progressed = false;
            let seen = b.seen.entry(uid).or_default();
            if deleted {
                seen.gone.get_or_insert(now);
                continue;
            }
            let status = pod.status.as_ref();
            let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
            if phase == "Running" && seen.running.is_none() {
                seen.running = Some(now);
                progressed = true;
            }
            if matches!(phase.as_str(), "Succeeded" | "Failed") && seen.final_phase.is_none() {
                let terminated = status
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs.first())
                    .and_then(|c| c.state.as_ref())
                    .and_then(|s| s.terminated.clone());
                seen.final_phase = Some(phase);
                seen.final_at = Some(now);
                seen.exit_code = terminated.as_ref().map(|t| t.exit_code);
                seen.reason = status
                    .and_then(|s| s.reason.clone())
                    .or(terminated.as_ref().and_then(|t| t.reason.clone()));
                progressed = true;
            }
            if progressed {
                b.progress.push(now);
            }
        }
    });
}

/// Create `pod`, again and again through outages; its UID.
async fn create(pods: &Api<Pod>, pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    loop {
        match tokio::time::timeout(
            Duration::from_secs(10),
            pods.create(&PostParams::default(), pod),
        )
        .await
        {
            Ok(Ok(made)) => return made.metadata.uid.unwrap_or_default(),
            // An earlier try went through and its answer was lost.
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => {
                if let Ok(Ok(Some(made))) =
                    tokio::time::timeout(Duration::from_secs(10), pods.get_opt(&name)).await
                {
                    return made.metadata.uid.unwrap_or_default();
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Delete pod `name`, again and again through outages, until the API took it (or it is gone).
async fn delete(pods: &Api<Pod>, name: &str) {
    loop {
        match tokio::time::timeout(
            Duration::from_secs(10),
            pods.delete(name, &DeleteParams::default()),
        )
        .await
        {
            Ok(Ok(_)) => return,
            Ok(Err(kube::Error::Api(e))) if e.code == 404 => return,
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// A build pod: a container that runs `run` and exits with `code` in the simulator.
fn build_pod(name: &str, node: &str, run: Duration, code: i32) -> Pod {
    let mut pod = pod_for_node(name, node, &["build"], &[]);
    let spec = pod.spec.as_mut().expect("a spec");
    spec.automount_service_account_token = Some(false);
    spec.termination_grace_period_seconds = Some(5);
    let container = &mut spec.containers[0];
    container.command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("make -j4 && exit {code}"),
    ]);
    container.env = Some(vec![
        EnvVar {
            name: "MOCKCLOUD_RUN_MS".into(),
            value: Some(run.as_millis().to_string()),
            ..Default::default()
        },
        EnvVar {
            name: "MOCKCLOUD_EXIT_CODE".into(),
            value: Some(code.to_string()),
            ..Default::default()
        },
        EnvVar {
            name: "MOCKCLOUD_LOG_INTERVAL_MS".into(),
            value: Some("2000".into()),
            ..Default::default()
        },
    ]);
    pod
}

/// One pod's life as the soak plays it: create, then delete at its moment.
async fn pod_life(pods: Api<Pod>, book_: Shared, node: String, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let roll: f64 = rng.random_range(0.0..1.0);
    let plan = if roll < 0.6 {
        Plan::Complete
    } else if roll < 0.8 {
        Plan::DeleteStarting(Duration::from_millis(rng.random_range(0..2500)))
    } else {
        Plan::DeleteRunning(Duration::from_millis(rng.random_range(8_000..30_000)))
    };
    let run = match plan {
        Plan::Complete => Duration::from_millis(rng.random_range(3_000..30_000)),
        _ => Duration::from_millis(rng.random_range(60_000..120_000)),
    };
    let code = if rng.random_bool(0.3) {
        [1, 2, 42, 127][rng.random_range(0..4)]
    } else {
        0
    };
    let name = format!("build-{n:04}");
    let uid = create(&pods, &build_pod(&name, &node, run, code)).await;
    let created = Instant::now();
    let idx = {
        let mut b = book(&book_);
        b.made.push(Made {
            name: name.clone(),
            uid: uid.clone(),
            plan,
            run,
            code,
            created,
            vanished: false,
            deleted: None,
            stuck: false,
        });
        b.made.len() - 1
    };
    match plan {
        Plan::DeleteStarting(after) | Plan::DeleteRunning(after) => {
            tokio::time::sleep(after).await;
        }
        Plan::Complete => {
            // Its end, then a moment (someone reads the result) before the delete.
            let deadline = created + run + STUCK_AFTER;
            loop {
                if book(&book_)
                    .seen
                    .get(&uid)
                    .is_some_and(|s| s.final_at.is_some())
                {
                    break;
                }
                if Instant::now() > deadline {
                    book(&book_).made[idx].stuck = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..4000))).await;
        }
    }
    delete(&pods, &name).await;
    book(&book_).made[idx].deleted = Some(Instant::now());
}

/// An outage the soak causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chaos {
    VkKill,
    VkKillAndWait,
    ApiserverKill,
    EtcdRestart,
    CloudRestart,
    CloudApiDown,
    CloudThrottling,
    CloudSlow,
    GroupVanishes,
}

impl Chaos {
    const ALL: [Chaos; 9] = [
        Chaos::VkKill,
        Chaos::VkKillAndWait,
        Chaos::ApiserverKill,
        Chaos::EtcdRestart,
        Chaos::CloudRestart,
        Chaos::CloudApiDown,
        Chaos::CloudThrottling,
        Chaos::CloudSlow,
        Chaos::GroupVanishes,
    ];

    fn name(self) -> &'static str {
        match self {
            Chaos::VkKill => "vk SIGKILL, started again at once",
            Chaos::VkKillAndWait => "vk SIGKILL, started again later",
            Chaos::ApiserverKill => "kube-apiserver SIGKILL, started again",
            Chaos::EtcdRestart => "etcd restart",
            Chaos::CloudRestart => "simulator SIGKILL, started again on its state",
            Chaos::CloudApiDown => "cloud API down",
            Chaos::CloudThrottling => "cloud throttling burst",
            Chaos::CloudSlow => "cloud answers slow",
            Chaos::GroupVanishes => "a running pod's group vanishes",
        }
    }
}

/// How long each outage lasts: the soak's own figures for a long run, shorter ones for a
/// short run so that every kind fits.
struct Lengths {
    vk_down: Duration,
    apiserver_down: Duration,
    cloud_down: Duration,
    api_down: Duration,
    slow: Duration,
}

impl Lengths {
    fn for_minutes(minutes: f64) -> Lengths {
        if minutes >= 10.0 {
            Lengths {
                vk_down: Duration::from_secs(40),
                apiserver_down: Duration::from_secs(20),
                cloud_down: Duration::from_secs(5),
                api_down: Duration::from_secs(60),
                slow: Duration::from_secs(30),
            }
        } else {
            Lengths {
                vk_down: Duration::from_secs(15),
                apiserver_down: Duration::from_secs(8),
                cloud_down: Duration::from_secs(3),
                api_down: Duration::from_secs(20),
                slow: Duration::from_secs(15),
            }
        }
    }
}

/// What the chaos task works on.
struct Victims {
    cluster: Arc<OwnCluster>,
    vk: Vk,
    sim: Sim,
    client: kube::Client,
    node: String,
    book: Shared,
    start: Instant,
    vk_restarts: usize,
}

impl Victims {
    fn blocking<R>(&self, f: impl FnOnce(&OwnCluster) -> R) -> R {
        let cluster = self.cluster.clone();
        tokio::task::block_in_place(|| f(&cluster))
    }

    /// Cause one outage; when it ended (the component back) and for how long it was down.
    async fn cause(&mut self, chaos: Chaos, lengths: &Lengths) -> anyhow::Result<(Instant, f64)> {
        let began = Instant::now();
        match chaos {
            Chaos::VkKill => {
                self.vk.kill();
                self.vk.restart();
                self.vk_restarts += 1;
            }
            Chaos::VkKillAndWait => {
                self.vk.kill();
                tokio::time::sleep(lengths.vk_down).await;
                self.vk.restart();
                self.vk_restarts += 1;
            }
            Chaos::ApiserverKill => {
                self.blocking(|c| c.kill("kube-apiserver"));
                tokio::time::sleep(lengths.apiserver_down).await;
                self.blocking(|c| c.up());
            }
            Chaos::EtcdRestart => {
                self.blocking(|c| c.restart("etcd"));
            }
            Chaos::CloudRestart => {
                self.sim.kill();
                tokio::time::sleep(lengths.cloud_down).await;
                self.sim.restart()?;
                self.sim.set_faults(BASE_FAULTS).await?;
            }
            Chaos::CloudApiDown => {
                self.sim
                    .set_faults(r#"{"error_rate":0.3,"api_down":true}"#)
                    .await?;
                tokio::time::sleep(lengths.api_down).await;
                self.sim.set_faults(BASE_FAULTS).await?;
            }
            Chaos::CloudThrottling => {
                self.sim
                    .set_faults(r#"{"error_rate":0.3,"throttle_calls":60}"#)
                    .await?;
            }
            Chaos::CloudSlow => {
                self.sim
                    .set_faults(r#"{"error_rate":0.3,"latency_ms":2500}"#)
                    .await?;
                tokio::time::sleep(lengths.slow).await;
                self.sim.set_faults(BASE_FAULTS).await?;
            }
            Chaos::GroupVanishes => self.vanish().await?,
        }
        Ok((Instant::now(), began.elapsed().as_secs_f64()))
    }

    /// Make the group of a running pod with time left vanish from the cloud (waiting up to
    /// 30 s for one).
    async fn vanish(&mut self) -> anyhow::Result<()> {
        let pick = || {
            let b = book(&self.book);
            b.made
                .iter()
                .enumerate()
                .filter(|(_, m)| m.plan == Plan::Complete && !m.vanished && m.deleted.is_none())
                .filter(|(_, m)| {
                    b.seen.get(&m.uid).is_some_and(|s| {
                        s.final_at.is_none()
                            && s.running.is_some_and(|r| {
                                r + m.run > Instant::now() + Duration::from_secs(4)
                            })
                    })
                })
                .map(|(i, m)| (i, m.uid.clone()))
                .next()
        };
        let looking = Instant::now();
        let candidate = loop {
            match pick() {
                Some(found) => break Some(found),
                None if looking.elapsed() > Duration::from_secs(30) => break None,
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let Some((idx, uid)) = candidate else {
            say(
                self.start,
                "no running pod with time left in 30 s: nothing vanishes",
            );
            return Ok(());
        };
        let creates = self.sim.creates().await?;
        let ids: Vec<String> = creates
            .creates
            .iter()
            .filter(|c| c.exists && c.created.tags.get(eci::wire::tags::POD_UID) == Some(&uid))
            .map(|c| c.created.id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        book(&self.book).made[idx].vanished = true;
        let json = serde_json::json!({"error_rate": 0.3, "vanish": ids}).to_string();
        self.sim.set_faults(&json).await?;
        say(
            self.start,
            &format!("{} lost its group {ids:?}", book(&self.book).made[idx].name),
        );
        Ok(())
    }

    /// From `since`: how long until the node is Ready with its lease fresh (renewed since,
    /// with `renewed_since`: after vk or the control plane was down; otherwise within the
    /// lease's 40 s), and until a pod made progress (started running or ended) since; `None`
    /// for what did not happen within `bound`.
    async fn recovery(
        &self,
        since: Instant,
        renewed_since: bool,
        bound: Duration,
    ) -> (Option<f64>, Option<f64>) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let since_wall = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(since.elapsed()).unwrap_or_default())
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let (mut ready, mut progress) = (None, None);
        while since.elapsed() < bound && (ready.is_none() || progress.is_none()) {
            if ready.is_none() {
                let node_ready =
                    tokio::time::timeout(Duration::from_secs(5), nodes.get_opt(&self.node))
                        .await
                        .ok()
                        .and_then(|r| r.ok().flatten())
                        .and_then(|n| node_condition(&n, "Ready"))
                        .is_some_and(|(s, _)| s == "True");
                let renewed =
                    tokio::time::timeout(Duration::from_secs(5), leases.get_opt(&self.node))
                        .await
                        .ok()
                        .and_then(|r| r.ok().flatten())
                        .and_then(|l| l.spec?.renew_time)
                        .is_some_and(|t| {
                            let fresh_from = if renewed_since {
                                since_wall
                            } else {
                                jiff::Timestamp::now() - jiff::SignedDuration::from_secs(40)
                            };
                            t.0 >= fresh_from
                        });
                if node_ready && renewed {
                    ready = Some(since.elapsed().as_secs_f64());
                }
            }
            if progress.is_none()
                && let Some(at) = book(&self.book).progress.iter().find(|p| **p >= since)
            {
                progress = Some(at.duration_since(since).as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (ready, progress)
    }
}

/// The outages of a run, in order, and the moments they begin (from the start).
fn schedule(rng: &mut StdRng, window: Duration) -> Vec<(Duration, Chaos)> {
    let minutes = window.as_secs_f64() / 60.0;
    let cycles = ((minutes / 5.0).floor() as usize).max(1);
    let mut all = Vec::new();
    for _ in 0..cycles {
        let mut cycle = Chaos::ALL.to_vec();
        // Fisher-Yates with the soak's seed.
        for i in (1..cycle.len()).rev() {
            let j = rng.random_range(0..=i);
            cycle.swap(i, j);
        }
        all.extend(cycle);
    }
    let first = Duration::from_secs(20);
    let step = window.saturating_sub(first) / all.len() as u32;
    all.into_iter()
        .enumerate()
        .map(|(i, c)| {
            let jitter = rng.random_range(0..=step.as_millis() as u64 / 3);
            (first + step * i as u32 + Duration::from_millis(jitter), c)
        })
        .collect()
}

async fn run(cli: &Cli, cluster: Arc<OwnCluster>) -> anyhow::Result<bool> {
    let seed = cli.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let total = Duration::from_secs_f64(cli.minutes * 60.0);
    let lengths = Lengths::for_minutes(cli.minutes);
    eprintln!(
        "[chaos] seed {seed}, {} min of pods and outages, on {}",
        cli.minutes,
        cluster.state.display()
    );
    let client = client().await;
    let kubeconfig = service_account_kubeconfig(&client).await;
    let dir = std::env::temp_dir().join(unique("vk-chaos"));
    std::fs::create_dir_all(&dir).context("the soak's directory")?;
    let sim = Sim::start(&dir)?;
    sim.set_faults(BASE_FAULTS).await?;
    let node = unique("chaos");
    let mut config = format!("provider: eci\nhealth_port: 0\n{}", sim.eci_config());
    if let Some(dns) = &e2e::cluster().dns {
        config.push_str(&format!("cluster_dns: [{dns}]\n"));
    }
    let vk = Vk::start(&kubeconfig, &node, &config);
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, &node, "True", Duration::from_secs(90)).await;
    let ns = TestNamespace::new(&client, "chaos").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let shared: Shared = Default::default();
    watch(pods.clone(), shared.clone());
    let start = Instant::now();
    say(start, &format!("node {node} Ready; namespace {}", ns.name));

    // The stream of pods: one every ~4 s until the tail, each living its own life.
    let tail = Duration::from_secs(45).min(total / 2);
    let stream_end = total.saturating_sub(tail);
    let stream = {
        let (pods, shared, node) = (pods.clone(), shared.clone(), node.clone());
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        tokio::spawn(async move {
            let mut lives = Vec::new();
            let mut n = 0;
            while start.elapsed() < stream_end {
                n += 1;
                lives.push(tokio::spawn(pod_life(
                    pods.clone(),
                    shared.clone(),
                    node.clone(),
                    n,
                    rng.random(),
                )));
                tokio::time::sleep(Duration::from_millis(rng.random_range(2_000..6_000))).await;
            }
            for life in lives {
                let _ = life.await;
            }
        })
    };

    // The outages, one after another.
    let plan = schedule(&mut rng, stream_end.saturating_sub(Duration::from_secs(20)));
    let mut victims = Victims {
        cluster: cluster.clone(),
        vk,
        sim,
        client: client.clone(),
        node: node.clone(),
        book: shared.clone(),
        start,
        vk_restarts: 0,
    };
    let mut outages = Vec::new();
    for (at, chaos) in plan {
        if start.elapsed() < at {
            tokio::time::sleep(at - start.elapsed()).await;
        }
        // Pods still run in the tail: outages may begin until shortly before the end.
        if start.elapsed() > total.saturating_sub(Duration::from_secs(25)) {
            say(start, &format!("no time left for: {}", chaos.name()));
            continue;
        }
        say(start, &format!("chaos: {}", chaos.name()));
        let began = start.elapsed().as_secs_f64();
        let (ended, down) = victims.cause(chaos, &lengths).await?;
        let control_plane = matches!(
            chaos,
            Chaos::VkKill | Chaos::VkKillAndWait | Chaos::ApiserverKill | Chaos::EtcdRestart
        );
        let (ready, progress) = victims
            .recovery(ended, control_plane, Duration::from_secs(180))
            .await;
        say(
            start,
            &format!(
                "  back after {down:.1} s; node Ready {} s later, pods progressing {} s later",
                ledger::secs(ready),
                ledger::secs(progress)
            ),
        );
        outages.push(Outage {
            kind: chaos.name().to_string(),
            at_s: began,
            lasted_s: down,
            node_ready_after_s: ready,
            pods_progressing_after_s: progress,
        });
    }

    say(
        start,
        "pods stream over: waiting for every pod's end and delete",
    );
    let _ = stream.await;
    // Every pod deleted: wait until the API has none left.
    let gone_by = Instant::now() + Duration::from_secs(180);
    loop {
        let left = tokio::time::timeout(Duration::from_secs(10), pods.list(&Default::default()))
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|l| l.items.len());
        if left == Some(0) || Instant::now() > gone_by {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Groups whose delete failed go with vk's orphan sweep (every 60 s): give them that.
    let groups_by = Instant::now() + Duration::from_secs(90);
    let creates = loop {
        let creates = victims.sim.creates().await?;
        let node_tag = |c: &cloudsim::eci::persist::CreatedNow| {
            c.created.tags.get(eci::wire::tags::NODE) == Some(&node)
        };
        if !creates.creates.iter().any(|c| c.exists && node_tag(c)) || Instant::now() > groups_by {
            break creates;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let events = ledger::warning_events(&client, &ns.name, &node).await;
    let pods_left: Vec<String> = pods
        .list(&Default::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect()
        })
        .unwrap_or_default();

    let b = book(&shared);
    let lines: Vec<PodLine> = b
        .made
        .iter()
        .map(|m| {
            let seen = b.seen.get(&m.uid).cloned().unwrap_or_default();
            let groups = creates
                .creates
                .iter()
                .filter(|c| c.created.tags.get(eci::wire::tags::POD_UID) == Some(&m.uid))
                .collect::<Vec<_>>();
            PodLine {
                name: m.name.clone(),
                uid: m.uid.clone(),
                expect: match m.plan {
                    Plan::Complete if m.vanished => Expect::InstanceLost,
                    Plan::Complete if m.code == 0 => Expect::Succeeded,
                    Plan::Complete => Expect::Failed(m.code),
                    Plan::DeleteStarting(_) => Expect::GoneWhileStarting,
                    Plan::DeleteRunning(_) => Expect::GoneWhileRunning,
                },
                final_phase: seen.final_phase.clone(),
                exit_code: seen.exit_code,
                reason: seen.reason.clone(),
                end_late_s: seen
                    .final_at
                    .map(|f| f.saturating_duration_since(m.created + m.run).as_secs_f64()),
                groups_created: groups.len(),
                groups_left: groups.iter().filter(|c| c.exists).count(),
                deleted_by_soak: m.deleted.is_some(),
                still_in_api: pods_left.contains(&m.name),
                stuck: m.stuck,
            }
        })
        .collect();
    let known: std::collections::HashSet<&str> = b.made.iter().map(|m| m.uid.as_str()).collect();
    let strays: Vec<String> = creates
        .creates
        .iter()
        .filter(|c| c.created.tags.get(eci::wire::tags::NODE) == Some(&node))
        .filter(|c| {
            !c.created
                .tags
                .get(eci::wire::tags::POD_UID)
                .is_some_and(|u| known.contains(u.as_str()))
        })
        .map(|c| {
            format!(
                "{} ({}; exists: {})",
                c.created.id, c.created.name, c.exists
            )
        })
        .collect();
    drop(b);
    let report = ledger::Ledger::new(
        seed,
        cli.minutes,
        start.elapsed().as_secs_f64(),
        lines,
        strays,
        events,
        victims.vk_restarts,
        outages,
    );
    report.print();
    std::fs::write(&cli.ledger, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", cli.ledger.display()))?;
    eprintln!("[chaos] ledger written to {}", cli.ledger.display());
    if !report.passed {
        eprintln!(
            "[chaos] FAILED; vk's log: {}, the simulator's: {}",
            victims.vk.log.display(),
            victims.sim.log.display()
        );
    }
    // vk first (it would register the node again), then the node; the cloud last.
    victims.vk.kill();
    let _ = kubectl(&["delete", "node", &node, "--wait=false"]);
    drop(ns);
    Ok(report.passed)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if std::env::var_os("VK_BIN").is_none()
        && let Ok(exe) = std::env::current_exe()
    {
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var("VK_BIN", exe.with_file_name("vk")) };
    }
    if !(0.5..=24.0 * 60.0).contains(&cli.minutes) {
        eprintln!("chaos: --minutes must be from 0.5 to 1440");
        return ExitCode::from(2);
    }
    let cluster = Arc::new(OwnCluster::start("vk-chaos"));
    // SAFETY: no other thread runs yet; the harness reads these to find the cluster.
    unsafe {
        std::env::set_var("KUBECONFIG", cluster.state.join("kubeconfig"));
        std::env::set_var("VK_E2E_CLUSTER_STATE", &cluster.state);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(&cli, cluster.clone()));
    drop(runtime);
    drop(cluster);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::FAILURE
        }
    }
}
