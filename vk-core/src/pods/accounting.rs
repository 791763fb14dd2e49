//! What the controller records about a pod's start and end beside its status: the start
//! timeline once it runs ([`super::timeline`]) and the cost once it ends ([`super::cost`]).

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::EventType;

use super::context::PodContext;
use super::cost::{self, Cost};
use super::pod_api::{annotate, pod_ref};
use super::timeline::{self, Timeline};
use crate::metrics::{CostLabel, NamespaceLabel, TimelineLabel};

/// The wall-clock moment an [`Instant`] stood for.
fn wall(now: Timestamp, at: Instant) -> Timestamp {
    let ago = SignedDuration::try_from(at.elapsed()).unwrap_or(SignedDuration::ZERO);
    now.checked_sub(ago).unwrap_or(now)
}

impl PodContext {
    /// The pod's Running status was just written: its start timeline as an Event and metrics,
    /// for a start this process saw whole (it saw the pod new and created its instance).
    pub(super) fn start_timeline(&self, pod: &Pod) {
        let r = pod_ref(pod);
        let now = Timestamp::now();
        let Some((seen, created, instance)) = self.records.read(&r.uid, |rec| {
            let rec = rec?;
            Some((rec.first_seen?, rec.created, rec.instance.clone()?))
        }) else {
            return;
        };
        let timeline = Timeline::of(
            wall(now, seen),
            created.map(|at| wall(now, at)),
            &instance,
            now,
        );
        let image_cache = timeline.images.label();
        for (phase, took) in timeline.phases() {
            self.metrics
                .pod_start_timeline_seconds
                .get_or_create(&TimelineLabel { phase, image_cache })
                .observe(took.as_secs_f64().max(0.0));
        }
        self.event(
            pod,
            EventType::Normal,
            timeline::REASON,
            timeline.message(self.provider.name()),
        );
    }

    /// The pod ended (its instance stopped, or the pod is deleted while it runs, `ended`
    /// then): what it cost, once, as an annotation, an Event and metrics. Nothing when the
    /// provider does not report billing.
    pub(super) async fn record_cost(&self, pod: &Pod, ended: Timestamp) {
        let r = pod_ref(pod);
        let Some(billing) = self.records.read(&r.uid, |rec| {
            let rec = rec?;
            if rec.cost_recorded {
                return None;
            }
            rec.instance.as_ref()?.billing.clone()
        }) else {
            return;
        };
        let Some(cost) = Cost::of(&billing, ended, &self.config.prices) else {
            return;
        };
        self.records
            .update_existing(&r.uid, |rec| rec.cost_recorded = true);
        self.metrics
            .pod_cost
            .get_or_create(&CostLabel {
                namespace: r.namespace.clone(),
                currency: cost.currency.clone(),
            })
            .inc_by(cost.price);
        self.metrics
            .pod_vcpu_seconds
            .get_or_create(&NamespaceLabel {
                namespace: r.namespace.clone(),
            })
            .inc_by(cost.vcpu_seconds);
        self.metrics
            .pod_memory_gib_seconds
            .get_or_create(&NamespaceLabel {
                namespace: r.namespace.clone(),
            })
            .inc_by(cost.gib_seconds);
        self.event(pod, EventType::Normal, cost::REASON, cost.message());
        match serde_json::to_string(&cost) {
            Ok(json) => {
                if let Err(e) = annotate(&self.client, pod, cost::ANNOTATION, &json).await {
                    // The Event and the metrics have it; a pod deleted meanwhile has no
                    // object left to annotate.
                    tracing::debug!(pod = %r, error = %e, "could not annotate the pod's cost");
                }
            }
            Err(e) => tracing::warn!(pod = %r, error = %e, "could not encode the pod's cost"),
        }
    }
}
