//! The probes of one container run on tokio's clock: one loop per probe, sharing the counters.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ContainerProbes, Kill, Outcome, ProbeKind, ProbeUpdate};
use crate::provider::{ContainerSpec, ProbeHandler};

/// How a provider checks its container once. [`run`] bounds each call by the probe's timeout.
#[async_trait]
pub trait Checker: Send + Sync {
    async fn check(&self, handler: &ProbeHandler, timeout: Duration) -> Outcome;
}

/// Runs the container's probes from now (its start) until one calls for a kill, which it
/// returns; without a liveness or startup probe that never happens. `report` gets every
/// update as it happens. Drop the future to stop probing (the container ended).
pub async fn run(
    spec: &ContainerSpec,
    checker: &dyn Checker,
    report: &(dyn Fn(ProbeUpdate) + Send + Sync),
) -> Kill {
    let probes = ContainerProbes::new(spec);
    let (started_tx, started_rx) = watch::channel(probes.started());
    let shared = Mutex::new(probes);
    let start = Instant::now();
    let ctx = Loop {
        shared: &shared,
        started_tx: &started_tx,
        checker,
        report,
        start,
    };
    let loops = [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ]
    .into_iter()
    .filter(|kind| ctx.lock().probe(*kind).is_some())
    .map(|kind| Box::pin(ctx.probe_loop(kind, started_rx.clone())));
    let loops: Vec<_> = loops.collect();
    if loops.is_empty() {
        return std::future::pending().await;
    }
    futures::future::select_all(loops).await.0
}

struct Loop<'a> {
    shared: &'a Mutex<ContainerProbes>,
    started_tx: &'a watch::Sender<bool>,
    checker: &'a dyn Checker,
    report: &'a (dyn Fn(ProbeUpdate) + Send + Sync),
    start: Instant,
}

impl Loop<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, ContainerProbes> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One probe until it calls for a kill (pending forever when it never does).
    async fn probe_loop(&self, kind: ProbeKind, mut started: watch::Receiver<bool>) -> Kill {
        let Some(probe) = self.lock().probe(kind).cloned() else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(self.start + probe.initial_delay()).await;
        loop {
            if kind == ProbeKind::Startup {
                if *started.borrow() {
                    // Done for this run of the container.
                    return std::future::pending().await;
                }
            } else if started.wait_for(|s| *s).await.is_err() {
                return std::future::pending().await;
            }
            let timeout = probe.timeout();
            let outcome =
                match tokio::time::timeout(timeout, self.checker.check(&probe.handler, timeout))
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Failure(timed_out(&probe.handler, timeout)),
                };
            let (updates, kill) = {
                let mut probes = self.lock();
                let observed = probes.observe(kind, &outcome);
                self.started_tx.send_replace(probes.started());
                observed
            };
            for update in updates {
                (self.report)(update);
            }
            if let Some(kill) = kill {
                return kill;
            }
            tokio::time::sleep(probe.period()).await;
        }
    }
}

/// The kubelet's wording for a check that took too long.
fn timed_out(handler: &ProbeHandler, timeout: Duration) -> String {
    match handler {
        ProbeHandler::Exec { command } => format!("command {:?} timed out", command.join(" ")),
        _ => format!("timeout: no answer within {}s", timeout.as_secs()),
    }
}
