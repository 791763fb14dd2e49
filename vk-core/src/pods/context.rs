//! What every reconcile shares ([`PodContext`]), and what keeps it current between
//! reconciles: the provider's reports, the pod watch, removed pods and the orphan sweep.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable as _};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::config::PodControllerConfig;
use super::decide::orphans;
use super::events::EventRecorder;
use super::pod_api::{older_version, pod_ref};
use super::record::Records;
use super::references::References;
use super::status::{has_started, pod_phase};
use super::watched::{ObjectChange, WatchedNamespaces};
use crate::provider::{InstancePhase, InstanceStatus, PodRef, Provider, StatusEvent};

/// Start-up's `list` is retried without end: 0.2 s, doubling up to 10 s.
pub(super) fn load_retries() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_factor(2.0)
        .with_max_delay(Duration::from_secs(10))
        .without_max_times()
}

/// How long a create's reconcile waits for a pushing provider's first report past `Pending`
/// ([`PodContext::first_report`]).
pub const FIRST_REPORT_WAIT: Duration = Duration::from_millis(50);

/// Shared by every reconcile.
pub struct PodContext {
    pub(super) client: kube::Client,
    pub(super) config: PodControllerConfig,
    pub(super) provider: Arc<dyn Provider>,
    pub(super) events: EventRecorder,
    pub(super) store: Store<Pod>,
    /// Secrets and configMaps of the namespaces with pods here; also the resolver's source.
    pub(super) watched: WatchedNamespaces,
    /// What is remembered about each pod.
    pub(super) records: Records,
    pub(super) metrics: Arc<crate::metrics::Metrics>,
    /// Reconciles running now (for timing logs).
    pub(super) running: AtomicUsize,
    /// When this process started: the provider's container events from before are not
    /// recorded again.
    pub(super) started: Timestamp,
    /// The provider pushes its reports (rather than being polled): a new instance's first
    /// report usually follows its create within milliseconds ([`Self::first_report`]).
    pub(super) reports_pushed: AtomicBool,
    /// Woken on every provider report.
    reported: Notify,
}

impl PodContext {
    pub fn new(
        client: kube::Client,
        config: PodControllerConfig,
        provider: Arc<dyn Provider>,
        events: EventRecorder,
        store: Store<Pod>,
        watched: WatchedNamespaces,
    ) -> Self {
        Self {
            watched,
            client,
            config,
            provider,
            events,
            store,
            records: Records::default(),
            running: AtomicUsize::new(0),
            started: Timestamp::now(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            reports_pushed: AtomicBool::new(false),
            reported: Notify::new(),
        }
    }

    /// Record into `metrics` (the controller's, served by the binary).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Fill the records from one `list` call, retrying (per [`load_retries`]) until the
    /// provider answers or `cancel` fires.
    pub async fn load_instances(&self, cancel: &CancellationToken) {
        let listed = (|| self.provider.list())
            .retry(load_retries())
            .notify(|e, after| {
                tracing::warn!(error = %e, ?after, "listing the provider's instances failed; retrying");
            });
        let list = tokio::select! {
            _ = cancel.cancelled() => return,
            listed = listed => listed,
        };
        match list {
            Ok(list) => {
                tracing::info!(instances = list.len(), "loaded the provider's instances");
                for status in list {
                    self.records
                        .update(&status.pod.uid.clone(), |r| r.instance = Some(status));
                }
            }
            // Not reached: the retries have no end.
            Err(e) => tracing::warn!(error = %e, "listing the provider's instances failed"),
        }
    }

    /// Record a provider report; returns the pod it concerns.
    pub fn apply_status_event(&self, event: StatusEvent) -> PodRef {
        let pod = self.records.apply(event, |pod| {
            let key = ObjectRef::new(&pod.name).within(&pod.namespace);
            self.store
                .get(&key)
                .is_some_and(|p| p.uid().as_deref() == Some(pod.uid.as_str()))
        });
        self.reported.notify_waiters();
        pod
    }

    /// What the provider reported of the instance just created for `uid`. A provider that
    /// pushes its reports is given up to [`FIRST_REPORT_WAIT`] to report it past `Pending`,
    /// so the create's reconcile writes that status itself instead of the pod waiting for a
    /// worker again (a polled provider's first report comes with its next poll: not waited
    /// for).
    pub(super) async fn first_report(&self, uid: &str) -> Option<InstanceStatus> {
        let reported = || {
            self.records
                .read(uid, |r| r.and_then(|r| r.instance.clone()))
        };
        if !self.reports_pushed.load(Ordering::Relaxed) {
            return reported();
        }
        let deadline = tokio::time::Instant::now() + FIRST_REPORT_WAIT;
        loop {
            // Registered before the record is read: a report in between still wakes it.
            let notified = self.reported.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let instance = reported();
            if instance
                .as_ref()
                .is_some_and(|i| i.phase != InstancePhase::Pending)
            {
                return instance;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return instance;
            }
        }
    }

    /// The watch brought `pod`. One this node has not created yet starts its preparation
    /// before a reconcile worker is free: its namespace is watched and its service-account
    /// tokens are asked for, so the create that follows finds them ready.
    pub fn seen(&self, pod: &Pod) {
        let pending = pod_phase(pod) == Some("Pending");
        if !pending || has_started(pod) || pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let (Some(uid), Some(namespace)) = (pod.uid(), pod.namespace()) else {
            return;
        };
        let prepare = self.records.update(&uid, |r| {
            let first = r.first_seen.is_none();
            r.first_seen.get_or_insert_with(Instant::now);
            first && r.instance.is_none() && r.created.is_none()
        });
        if prepare {
            self.watched.add_pod(&namespace, &uid);
            self.watched.prefetch_tokens(pod);
        }
    }

    /// A secret or configMap was created or changed: the pods of its namespace that read it,
    /// to be reconciled again (a waiting pod may start; a running one that mounts it gets its
    /// files re-sent).
    pub fn pods_reading(&self, change: &ObjectChange) -> Vec<PodRef> {
        let mut pods = Vec::new();
        for pod in self.store.state() {
            if pod.metadata.namespace.as_deref() != Some(change.namespace.as_str()) {
                continue;
            }
            let refs = References::of(&pod);
            if !refs.mentions(change.kind, &change.name) {
                continue;
            }
            let r = pod_ref(&pod);
            if refs.mounts(change.kind, &change.name) {
                self.records
                    .update(&r.uid, |rec| rec.mounted_changed = true);
            }
            tracing::debug!(pod = %r, kind = %change.kind, name = %change.name, "a referenced object changed");
            pods.push(r);
        }
        pods
    }

    /// A pod object vanished from the API (force delete, or our own final delete): make sure
    /// its instance is gone too.
    pub async fn delete_instances_of_removed_pods(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Pod>,
    ) {
        while let Some(pod) = rx.recv().await {
            let pod = pod_ref(&pod);
            if self.records.instance(&pod.uid).is_some() {
                tracing::info!(pod = %pod, "pod removed from the API; deleting its instance");
                if let Err(e) = self.provider.delete(&pod, Duration::ZERO).await {
                    tracing::warn!(pod = %pod, error = %e, "deleting the instance failed; the orphan sweep will retry");
                }
            }
            self.records.forget(&pod.uid);
            // Its namespace's secrets and configMaps no longer matter to it.
            self.watched.remove_pod(&pod.uid);
        }
    }

    /// Delete instances whose pod no longer exists: once the pod watch's first list is in the
    /// store (`synced` turns true), then periodically.
    ///
    /// Not `Store::wait_until_ready`: its readiness wakes only the task that polled it last,
    /// and the controller waits on the same store, so a sweep waiting there never woke (and
    /// no orphan was ever deleted).
    pub async fn sweep_orphans(
        self: Arc<Self>,
        mut synced: tokio::sync::watch::Receiver<bool>,
        cancel: CancellationToken,
    ) {
        tokio::select! {
            _ = cancel.cancelled() => return,
            ready = synced.wait_for(|ready| *ready) => if ready.is_err() {
                return;
            },
        }
        loop {
            let listed = self.provider.list().await;
            // The pods known once the listing is back, not before it: a pod seen (and its
            // instance made) while the listing was under way has an instance in the list and
            // is no orphan. Every listed instance was made for a pod this store held first.
            let known: HashSet<String> =
                self.store.state().iter().filter_map(|p| p.uid()).collect();
            self.watched.retain_pods(&known);
            match listed {
                Ok(list) => {
                    tracing::debug!(instances = list.len(), pods = known.len(), "orphan sweep");
                    for pod in orphans(&list, &known) {
                        tracing::info!(pod = %pod, uid = %pod.uid, "deleting an instance that has no pod");
                        if let Err(e) = self.provider.delete(pod, Duration::ZERO).await {
                            tracing::warn!(pod = %pod, error = %e, "deleting an orphan failed; retrying later");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "orphan sweep could not list instances"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.config.orphan_sweep_interval) => {}
            }
        }
    }

    /// The pod as the API holds it: the store's copy, or what our last status write returned
    /// when the watch has not brought that write yet (so the same status is neither written
    /// again nor announced again with events).
    pub(crate) fn current(&self, pod: &Arc<Pod>) -> Arc<Pod> {
        let uid = pod.uid().unwrap_or_default();
        let seen = pod.resource_version();
        let ours = self.records.update_existing(&uid, |r| {
            let ours = r.written.as_ref()?;
            match &seen {
                Some(seen) if older_version(seen, &ours.version) => Some(ours.status.clone()),
                _ => {
                    // The watch caught up.
                    r.written = None;
                    None
                }
            }
        });
        match ours.flatten() {
            Some(status) => {
                let mut newer = (**pod).clone();
                newer.status = Some(status);
                Arc::new(newer)
            }
            None => pod.clone(),
        }
    }

    /// Queue an event about the pod (published in the background; never waits).
    pub(super) fn event(&self, pod: &Pod, type_: EventType, reason: &str, note: String) {
        self.event_at(pod, None, type_, reason, note);
    }

    /// An event about one container: the field path keeps the events of different containers
    /// apart.
    pub(super) fn event_at(
        &self,
        pod: &Pod,
        field_path: Option<String>,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let mut reference: ObjectReference = pod.object_ref(&());
        reference.field_path = field_path;
        self.events.record(reference, type_, reason, note);
    }
}
