//! The state machine on tokio's paused clock: times are the virtual clock's, never the wall's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::*;
use crate::provider::{ContainerSpec, Probe, ProbeHandler};

/// Answers each command as the test set it; records when each was checked.
#[derive(Default)]
struct Script {
    answers: Mutex<HashMap<String, bool>>,
    /// A command that hangs until it times out.
    hang: Mutex<Option<String>>,
    calls: Mutex<Vec<(String, Duration)>>,
    start: Mutex<Option<Instant>>,
}

impl Script {
    fn new() -> Arc<Self> {
        let s = Arc::new(Self::default());
        *s.start.lock().unwrap() = Some(Instant::now());
        s
    }

    fn set(&self, command: &str, ok: bool) {
        self.answers.lock().unwrap().insert(command.into(), ok);
    }

    /// Seconds since the start at which `command` was checked.
    fn times(&self, command: &str) -> Vec<u64> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == command)
            .map(|(_, at)| at.as_secs())
            .collect()
    }
}

#[async_trait]
impl Checker for Script {
    async fn check(&self, handler: &ProbeHandler, _timeout: Duration) -> Outcome {
        let ProbeHandler::Exec { command } = handler else {
            return Outcome::Failure("not an exec probe".into());
        };
        let name = command[0].clone();
        let start = self.start.lock().unwrap().unwrap();
        self.calls
            .lock()
            .unwrap()
            .push((name.clone(), Instant::now() - start));
        if self.hang.lock().unwrap().as_deref() == Some(name.as_str()) {
            std::future::pending::<()>().await;
        }
        if self
            .answers
            .lock()
            .unwrap()
            .get(&name)
            .copied()
            .unwrap_or(false)
        {
            Outcome::Success
        } else {
            Outcome::Failure(format!("{name}: no"))
        }
    }
}

fn probe(command: &str, delay: u32, period: u32, success: u32, failure: u32) -> Probe {
    Probe {
        initial_delay_seconds: delay,
        period_seconds: period,
        success_threshold: success,
        failure_threshold: failure,
        ..Probe::new(ProbeHandler::Exec {
            command: vec![command.into()],
        })
    }
}

type Updates = Arc<Mutex<Vec<(u64, ProbeUpdate)>>>;

/// Runs the probes of `spec` in a task; the updates with the second they came at.
fn start(
    spec: ContainerSpec,
    script: Arc<Script>,
) -> (Updates, tokio::task::JoinHandle<(u64, Kill)>) {
    let updates: Updates = Arc::default();
    let sink = updates.clone();
    let t0 = Instant::now();
    let task = tokio::spawn(async move {
        let report = move |u: ProbeUpdate| {
            sink.lock()
                .unwrap()
                .push(((Instant::now() - t0).as_secs(), u));
        };
        let kill = run(&spec, script.as_ref(), &report).await;
        ((Instant::now() - t0).as_secs(), kill)
    });
    (updates, task)
}

fn statuses(updates: &Updates) -> Vec<(u64, bool, bool)> {
    updates
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(at, u)| match u {
            ProbeUpdate::Status { started, ready } => Some((*at, *started, *ready)),
            _ => None,
        })
        .collect()
}

fn unhealthy(updates: &Updates) -> Vec<(u64, String)> {
    updates
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(at, u)| match u {
            ProbeUpdate::Unhealthy { message, .. } => Some((*at, message.clone())),
            _ => None,
        })
        .collect()
}

fn spec() -> ContainerSpec {
    ContainerSpec {
        name: "app".into(),
        ..Default::default()
    }
}

#[test]
fn initial_state_follows_the_probes() {
    assert_eq!(initial(&spec()), (true, true));
    let with_readiness = ContainerSpec {
        readiness_probe: Some(probe("ready", 0, 10, 1, 3)),
        ..spec()
    };
    assert_eq!(initial(&with_readiness), (true, false));
    let with_startup = ContainerSpec {
        startup_probe: Some(probe("up", 0, 10, 1, 3)),
        liveness_probe: Some(probe("live", 0, 10, 1, 3)),
        ..spec()
    };
    assert_eq!(initial(&with_startup), (false, false));
}

#[tokio::test(start_paused = true)]
async fn readiness_is_false_until_the_first_success_after_the_initial_delay() {
    let script = Script::new();
    let spec = ContainerSpec {
        readiness_probe: Some(probe("ready", 5, 10, 1, 3)),
        ..spec()
    };
    let (updates, task) = start(spec, script.clone());
    tokio::time::sleep(Duration::from_secs(21)).await;
    // Probed at 5, 15: both failed, readiness stays false (no status change reported).
    assert_eq!(script.times("ready"), vec![5, 15]);
    assert!(statuses(&updates).is_empty());
    assert_eq!(
        unhealthy(&updates),
        vec![
            (5, "Readiness probe failed: ready: no".to_string()),
            (15, "Readiness probe failed: ready: no".to_string())
        ]
    );
    script.set("ready", true);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(statuses(&updates), vec![(25, true, true)]);
    // Ready stays until failureThreshold failures in a row.
    script.set("ready", false);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        statuses(&updates),
        vec![(25, true, true), (55, true, false)]
    );
    assert!(!task.is_finished(), "readiness never kills");
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn success_threshold_needs_that_many_successes_in_a_row() {
    let script = Script::new();
    script.set("ready", true);
    let spec = ContainerSpec {
        readiness_probe: Some(probe("ready", 0, 1, 3, 1)),
        ..spec()
    };
    let (updates, task) = start(spec, script.clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(script.times("ready"), vec![0, 1, 2]);
    assert_eq!(statuses(&updates), vec![(2, true, true)]);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn liveness_failures_reach_the_threshold_and_kill() {
    let script = Script::new();
    script.set("live", true);
    let spec = ContainerSpec {
        liveness_probe: Some(probe("live", 3, 2, 1, 3)),
        ..spec()
    };
    let (updates, task) = start(spec, script.clone());
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(script.times("live"), vec![3, 5, 7]);
    script.set("live", false);
    // One success between failures resets the count: fail at 9, 11, ok at 13, fail 15, 17, 19.
    tokio::time::sleep(Duration::from_secs(4)).await;
    script.set("live", true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    script.set("live", false);
    let (at, kill) = task.await.unwrap();
    assert_eq!(at, 19);
    assert_eq!(kill.kind, ProbeKind::Liveness);
    assert_eq!(
        kill.message,
        "Container app failed liveness probe, will be restarted"
    );
    let failures: Vec<u64> = unhealthy(&updates).into_iter().map(|(at, _)| at).collect();
    assert_eq!(failures, vec![9, 11, 15, 17, 19]);
    assert_eq!(unhealthy(&updates)[0].1, "Liveness probe failed: live: no");
    // Without readiness probe, liveness never changes readiness.
    assert!(statuses(&updates).is_empty());
}

#[tokio::test(start_paused = true)]
async fn startup_gates_liveness_and_readiness() {
    let script = Script::new();
    script.set("live", true);
    script.set("ready", true);
    let spec = ContainerSpec {
        startup_probe: Some(probe("up", 0, 5, 1, 10)),
        liveness_probe: Some(probe("live", 0, 10, 1, 3)),
        readiness_probe: Some(probe("ready", 0, 10, 1, 3)),
        ..spec()
    };
    let (updates, task) = start(spec, script.clone());
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(script.times("up"), vec![0, 5, 10]);
    assert!(script.times("live").is_empty());
    assert!(script.times("ready").is_empty());
    script.set("up", true);
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Started at 15; liveness and readiness run at once, the startup probe no more.
    assert_eq!(script.times("up"), vec![0, 5, 10, 15]);
    assert_eq!(script.times("live"), vec![15]);
    assert_eq!(script.times("ready"), vec![15]);
    assert_eq!(
        statuses(&updates),
        vec![(15, true, false), (15, true, true)]
    );
    assert!(!task.is_finished());
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_failing_startup_probe_kills() {
    let script = Script::new();
    let spec = ContainerSpec {
        startup_probe: Some(probe("up", 0, 1, 1, 4)),
        liveness_probe: Some(probe("live", 0, 1, 1, 1)),
        ..spec()
    };
    let (_updates, task) = start(spec, script.clone());
    let (at, kill) = task.await.unwrap();
    assert_eq!(at, 3);
    assert_eq!(kill.kind, ProbeKind::Startup);
    assert_eq!(
        kill.message,
        "Container app failed startup probe, will be restarted"
    );
    assert!(script.times("live").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_check_that_outlives_its_timeout_fails() {
    let script = Script::new();
    *script.hang.lock().unwrap() = Some("live".into());
    let spec = ContainerSpec {
        liveness_probe: Some(Probe {
            timeout_seconds: 2,
            ..probe("live", 0, 10, 1, 1)
        }),
        ..spec()
    };
    let (updates, task) = start(spec, script.clone());
    let (at, kill) = task.await.unwrap();
    assert_eq!(at, 2);
    assert_eq!(kill.kind, ProbeKind::Liveness);
    assert_eq!(
        unhealthy(&updates),
        vec![(
            2,
            "Liveness probe failed: command \"live\" timed out".to_string()
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn without_probes_nothing_runs_and_nothing_kills() {
    let script = Script::new();
    let (updates, task) = start(spec(), script.clone());
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!task.is_finished());
    assert!(updates.lock().unwrap().is_empty());
    task.abort();
}

#[test]
fn errors_are_reported_but_never_counted() {
    let spec = ContainerSpec {
        liveness_probe: Some(probe("live", 0, 1, 1, 1)),
        readiness_probe: Some(probe("ready", 0, 1, 1, 1)),
        ..spec()
    };
    let mut probes = ContainerProbes::new(&spec);
    let (updates, kill) = probes.observe(
        ProbeKind::Liveness,
        &Outcome::Error("container is not running".into()),
    );
    assert_eq!(kill, None);
    assert_eq!(
        updates,
        vec![ProbeUpdate::Unhealthy {
            kind: ProbeKind::Liveness,
            message:
                "Liveness probe errored and resulted in unknown state: container is not running"
                    .into()
        }]
    );
    probes.observe(ProbeKind::Readiness, &Outcome::Success);
    assert!(probes.ready());
    // An error does not turn a ready container un-ready either.
    probes.observe(ProbeKind::Readiness, &Outcome::Error("gone".into()));
    assert!(probes.ready());
    let (_, kill) = probes.observe(ProbeKind::Liveness, &Outcome::Failure("no".into()));
    assert_eq!(kill.map(|k| k.kind), Some(ProbeKind::Liveness));
}
