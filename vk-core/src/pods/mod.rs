//! The pod controller: watches the pods bound to this node, runs them through the provider and
//! mirrors the provider's status back. One reconcile per pod at a time, different pods
//! concurrently up to `workers`, first come first served (the `queue`).
//!
//! One pod's reconcile is a line: `measure` times it around `reconcile`, which reads the
//! pod and its `record` into plain facts, lets `decide` pick the action (pure, tested on
//! plain values), and applies it: provider calls, status writes (`status` maps, `pod_api`
//! writes), Events, and the record's bookkeeping. `context` keeps the records current
//! between reconciles (provider reports, the pod watch, removed pods, orphans).

mod accounting;
mod cluster_dns;
mod config;
mod context;
pub mod cost;
pub mod deadline;
mod decide;
mod error;
pub mod events;
mod instance_events;
mod lock;
mod measure;
mod pod_api;
mod queue;
mod reconcile;
mod record;
pub mod references;
mod report;
pub mod resolve;
mod source;
pub mod status;
#[cfg(test)]
pub(crate) mod test_api;
pub mod timeline;
mod watched;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::PodControllerConfig;
pub use context::PodContext;
pub use error::PodError;
pub use queue::Action;
pub use source::ApiObjectSource;
pub use watched::{ObjectChange, WatchedNamespaces};

use crate::provider::{Provider, StatusEvent, StatusPoller, StatusSource};
use queue::{Timers, WorkQueue};

pub struct PodController {
    client: kube::Client,
    config: PodControllerConfig,
    provider: Arc<dyn Provider>,
    reader: reflector::Store<Pod>,
    writer: reflector::store::Writer<Pod>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl PodController {
    pub fn new(
        client: kube::Client,
        config: PodControllerConfig,
        provider: Arc<dyn Provider>,
    ) -> Self {
        let (reader, writer) = reflector::store();
        Self {
            client,
            config,
            provider,
            reader,
            writer,
            metrics: Arc::new(crate::metrics::Metrics::new()),
        }
    }

    /// Record into `metrics` (one registry shared with the provider and the kubelet API).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// What the controller measures (pod start-up, status writes, provider creates).
    pub fn metrics(&self) -> Arc<crate::metrics::Metrics> {
        self.metrics.clone()
    }

    /// The pods bound to this node, as the controller sees them (for the kubelet API).
    pub fn store(&self) -> reflector::Store<Pod> {
        self.reader.clone()
    }

    /// Run until cancelled. Instances are left running on exit: the next start adopts them.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), PodError> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let (reader, writer) = (self.reader, self.writer);
        let events = events::EventRecorder::spawn(
            self.client.clone(),
            events::Reporter {
                controller: "vk-serverless".into(),
                instance: self.config.node_name.clone(),
            },
        );
        let (changes_tx, changes_rx) = mpsc::unbounded_channel::<ObjectChange>();
        let ctx = Arc::new(
            PodContext::new(
                self.client.clone(),
                self.config.clone(),
                self.provider.clone(),
                events,
                reader.clone(),
                WatchedNamespaces::new(self.client.clone(), changes_tx)
                    .with_kubernetes_service(self.config.kubernetes_service.clone())
                    .with_cluster_dns(
                        self.config.cluster_dns.clone(),
                        self.config.cluster_domain.clone(),
                    ),
            )
            .with_metrics(self.metrics.clone()),
        );

        // The provider's view first, so a pod is never re-created only because its status
        // has not arrived yet.
        ctx.load_instances(&cancel).await;

        let status_rx = match self.provider.status_source() {
            StatusSource::Push(rx) => {
                ctx.reports_pushed.store(true, Ordering::Relaxed);
                rx
            }
            StatusSource::Poll(interval) => {
                StatusPoller::spawn(self.provider.clone(), interval, cancel.child_token())
            }
        };
        let queue = Arc::new(WorkQueue::default());
        let (trigger_tx, trigger_rx) = mpsc::channel::<ObjectRef<Pod>>(4096);
        tokio::spawn(forward_status(ctx.clone(), status_rx, queue.clone()));
        tokio::spawn(forward_changes(ctx.clone(), changes_rx, trigger_tx.clone()));

        let (deleted_tx, deleted_rx) = mpsc::unbounded_channel::<Pod>();
        tokio::spawn(ctx.clone().delete_instances_of_removed_pods(deleted_rx));
        // True once the pod watch's first list is in the store (the sweep and the workers
        // wait for it).
        let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(
            ctx.clone()
                .sweep_orphans(synced_rx.clone(), cancel.child_token()),
        );

        let watch_config =
            watcher::Config::default().fields(&format!("spec.nodeName={}", self.config.node_name));
        let seen_ctx = ctx.clone();
        let stream = watcher(pods, watch_config)
            .default_backoff()
            // managedFields are most of a pod's bytes and nothing here reads them.
            .modify(|pod| kube::ResourceExt::managed_fields_mut(pod).clear())
            .reflect(writer)
            .inspect_ok(move |event| match event {
                watcher::Event::Delete(pod) => {
                    let _ = deleted_tx.send(pod.clone());
                }
                watcher::Event::Apply(pod) => seen_ctx.seen(pod),
                watcher::Event::InitDone => {
                    synced_tx.send_replace(true);
                }
                _ => {}
            })
            .applied_objects();

        let timers = Arc::new(Timers::new(queue.clone()));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.config.workers.max(1) {
            workers.spawn(work(
                queue.clone(),
                timers.clone(),
                reader.clone(),
                ctx.clone(),
                synced_rx.clone(),
            ));
        }
        let watched = {
            let queue = queue.clone();
            stream.for_each(move |pod| {
                match pod {
                    // Name and namespace only (`from_obj` also keeps the UID and version).
                    Ok(pod) => queue.add(
                        ObjectRef::new(&pod.name_any())
                            .within(&pod.namespace().unwrap_or_default()),
                    ),
                    // The watcher backs off and resumes by itself.
                    Err(e) => tracing::debug!(error = %e, "pod watch"),
                }
                futures::future::ready(())
            })
        };
        let triggered = {
            let queue = queue.clone();
            let mut trigger_rx = trigger_rx;
            async move {
                while let Some(pod) = trigger_rx.recv().await {
                    queue.add(pod);
                }
                // Only if every sender is gone; the watch goes on.
                futures::future::pending::<()>().await
            }
        };
        tokio::select! {
            _ = watched => tracing::warn!("the pod watch ended"),
            _ = triggered => {}
            _ = cancel.cancelled() => {}
        }
        // The reconciles under way finish; the queued ones are dropped (the next start
        // takes them up from the API and the provider).
        queue.close();
        while workers.join_next().await.is_some() {}
        Ok(())
    }
}

/// One worker: once the pod watch's first list is in the store, reconciles the pods the
/// queue hands out, as the store holds them by then (gone: nothing is left to do here, the
/// removed pods' path deletes the instance), until the queue is closed.
async fn work(
    queue: Arc<WorkQueue<ObjectRef<Pod>>>,
    timers: Arc<Timers<ObjectRef<Pod>>>,
    store: reflector::Store<Pod>,
    ctx: Arc<PodContext>,
    mut synced: tokio::sync::watch::Receiver<bool>,
) {
    // Not `Store::wait_until_ready`: it wakes only one of the tasks waiting on it.
    if synced.wait_for(|synced| *synced).await.is_err() {
        return;
    }
    while let Some(key) = queue.next().await {
        if let Some(pod) = store.get(&key) {
            // In a task of its own, so a panic fails this reconcile, not the worker.
            let run = tokio::spawn(measure::reconcile(pod.clone(), ctx.clone()));
            let action = match run.await {
                Ok(Ok(action)) => action,
                Ok(Err(e)) => {
                    tracing::debug!(pod = %key, error = %e, "reconcile failed; will retry");
                    measure::error_policy(pod, &e, ctx.clone())
                }
                Err(e) => {
                    tracing::error!(pod = %key, error = %e, "reconcile panicked; will retry");
                    Action::requeue(PANIC_RETRY)
                }
            };
            if let Some(after) = action.requeue_after() {
                timers.add_after(key.clone(), after);
            }
        }
        queue.done(&key);
    }
}

/// A reconcile that panicked is tried again after this long.
const PANIC_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps the context's instance map current and wakes the pod each change concerns, ahead of
/// the pods waiting for other work (see [`WorkQueue::add_urgent`]).
async fn forward_status(
    ctx: Arc<PodContext>,
    mut rx: mpsc::Receiver<StatusEvent>,
    queue: Arc<WorkQueue<ObjectRef<Pod>>>,
) {
    while let Some(event) = rx.recv().await {
        let pod = ctx.apply_status_event(event);
        queue.add_urgent(ObjectRef::new(&pod.name).within(&pod.namespace));
    }
}

/// Wakes the pods that read a secret or configMap that was created or changed.
async fn forward_changes(
    ctx: Arc<PodContext>,
    mut rx: mpsc::UnboundedReceiver<ObjectChange>,
    trigger: mpsc::Sender<ObjectRef<Pod>>,
) {
    while let Some(change) = rx.recv().await {
        for pod in ctx.pods_reading(&change) {
            let target = ObjectRef::new(&pod.name).within(&pod.namespace);
            if trigger.send(target).await.is_err() {
                return;
            }
        }
    }
}
