//! Timing and metrics around the reconcile: the reconcile notes what it did in a [`Report`];
//! this wrapper times it, counts the reconciles in flight, turns the report into metrics and
//! timing logs, and backs off pods whose reconcile fails.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::pods::queue::Action;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use rand::RngExt;
use tracing::Instrument;

use super::context::PodContext;
use super::decide::backoff;
use super::error::PodError;
use super::pod_api::pod_ref;
use super::report::{CreateOutcome, Report};
use crate::metrics::{Outcome, PhaseLabel};
use crate::provider::PodRef;

/// Reconcile one pod, measured. The pod is taken as the API holds it
/// ([`PodContext::current`]).
pub async fn reconcile(pod: Arc<Pod>, ctx: Arc<PodContext>) -> Result<Action, PodError> {
    let r = pod_ref(&pod);
    let pod = ctx.current(&pod);
    let began = Instant::now();
    let running = ctx.running.fetch_add(1, Ordering::Relaxed) + 1;
    let mut report = Report::default();
    let result = ctx
        .reconcile_pod(&pod, &mut report)
        .instrument(tracing::info_span!("reconcile", pod = %r))
        .await;
    ctx.running.fetch_sub(1, Ordering::Relaxed);
    ctx.measure(&r, &report);
    let first = ctx
        .records
        .update_existing(&r.uid, |rec| !std::mem::replace(&mut rec.reconciled, true));
    if first == Some(true) {
        ctx.metrics.pods_reconciled.inc();
    }
    tracing::trace!(pod = %r, running, decisions = ?report.decisions, took_ms = ms(began.elapsed()), "reconciled");
    if result.is_ok() {
        ctx.records.update_existing(&r.uid, |rec| rec.failures = 0);
    }
    result
}

/// Exponential backoff with jitter per pod: 0.5 s doubling to 60 s.
pub fn error_policy(pod: Arc<Pod>, error: &PodError, ctx: Arc<PodContext>) -> Action {
    let uid = pod.uid().unwrap_or_default();
    let attempts = ctx.records.update(&uid, |rec| {
        rec.failures = rec.failures.saturating_add(1);
        rec.failures
    });
    let jitter = rand::rng().random_range(0.8..1.2);
    tracing::warn!(pod = %pod_ref(&pod), attempts, error = %error, "reconcile failed; retrying");
    Action::requeue(backoff(attempts).mul_f64(jitter))
}

impl PodContext {
    /// Metrics and timing logs from one reconcile's report.
    fn measure(&self, pod: &PodRef, report: &Report) {
        if let Some(create) = &report.create {
            let seen = self
                .records
                .read(&pod.uid, |rec| rec.and_then(|rec| rec.first_seen));
            let queued = seen.map(|seen| create.began.saturating_duration_since(seen));
            let since_seen = queued.map(ms);
            tracing::debug!(
                pod = %pod,
                since_seen_ms = since_seen,
                resolve_ms = ms(create.resolve),
                create_ms = ms(create.call),
                ok = create.outcome == CreateOutcome::Ok,
                "provider create"
            );
            self.metrics
                .provider_creates
                .get_or_create(&Outcome {
                    result: create.outcome.label(),
                })
                .inc();
            if create.outcome == CreateOutcome::Ok {
                if let Some(queued) = queued {
                    self.phase("queued", queued);
                }
                self.phase("resolve", create.resolve);
                self.phase("create", create.call);
            }
        }
        for write in &report.status_writes {
            self.metrics
                .status_write_seconds
                .observe(write.took.as_secs_f64());
            self.metrics
                .status_writes
                .get_or_create(&Outcome {
                    result: if write.ok { "ok" } else { "error" },
                })
                .inc();
            if write.ok && write.became_running {
                let (seen, created) = self
                    .records
                    .update_existing(&pod.uid, |rec| (rec.first_seen.take(), rec.created))
                    .unwrap_or_default();
                if let Some(seen) = seen {
                    self.metrics
                        .pod_start_seconds
                        .observe(write.at.saturating_duration_since(seen).as_secs_f64());
                    // Only for starts measured whole (this process saw the pod new and created
                    // its instance), so the phases add up to `pod_start_seconds`.
                    if let Some(created) = created {
                        self.phase("instance", write.at.saturating_duration_since(created));
                    }
                }
            }
            tracing::debug!(
                pod = %pod,
                phase = %write.phase,
                ms = ms(write.took),
                ok = write.ok,
                "status written"
            );
        }
    }
}

impl PodContext {
    fn phase(&self, phase: &'static str, took: Duration) {
        self.metrics
            .pod_start_phase_seconds
            .get_or_create(&PhaseLabel { phase })
            .observe(took.as_secs_f64());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
