//! The per-pod reconcile: create, update, delete and status mirroring, and the bookkeeping
//! shared by all pods (the provider's latest view, retry counters).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::deadline;
use super::events::EventRecorder;
use super::instance_events::SeenEvents;
use super::references::References;
use super::resolve::{ResolveError, resolve_pod, resolve_pod_with_warnings};
use super::status::{desired_status, failed_status, is_terminal_phase, owned_part, waiting_status};
use super::watched::{ObjectChange, WatchedNamespaces};
use super::{PodControllerConfig, PodError};
use crate::provider::{
    InstancePhase, InstanceStatus, PodRef, Provider, ProviderError, RestartPolicy, StatusEvent,
};

/// Shared by every reconcile.
pub struct PodContext {
    client: kube::Client,
    config: PodControllerConfig,
    provider: Arc<dyn Provider>,
    events: EventRecorder,
    store: Store<Pod>,
    /// Secrets and configMaps of the namespaces with pods here; also the resolver's source.
    watched: WatchedNamespaces,
    /// The provider's latest report per pod UID.
    instances: Mutex<HashMap<String, InstanceStatus>>,
    /// Pods whose provider delete has been sent (so it is sent once).
    deleting: Mutex<HashSet<String>>,
    /// Last generation handed to the provider, per UID.
    generations: Mutex<HashMap<String, i64>>,
    /// Consecutive failures per UID, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// When each pod's service-account tokens are due to be re-issued.
    token_refresh: Mutex<HashMap<String, Timestamp>>,
    /// Pods with a mounted secret/configMap that changed since their files were last sent.
    mounted_changed: Mutex<HashSet<String>>,
    /// What our last status write returned, per UID: until the watch brings that write, the
    /// store's copy is older than what the API holds.
    written: Mutex<HashMap<String, Written>>,
    /// When each pod's instance was last created, until the pod is forgotten.
    created: Mutex<HashMap<String, std::time::Instant>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Reconciles running now (for timing logs).
    running: std::sync::atomic::AtomicUsize,
    /// When the watch first brought a pod that was not started yet (for start-up timing logs).
    first_seen: Mutex<HashMap<String, std::time::Instant>>,
    /// The provider's container events already recorded on pods.
    provider_events: SeenEvents,
}

struct Written {
    /// The pod's resourceVersion after the write.
    version: String,
    /// Its status then (what we sent when the answer has none).
    status: PodStatus,
}

/// Right after a create, a `Pending` status is held back this long: a provider that starts
/// at once reports `Running` first, and the pod gets one status write instead of two.
pub const INTERIM_DELAY: Duration = Duration::from_millis(250);
/// A created instance that the provider has not reported yet is not created again for this
/// long (a polling provider lists it a little later); then the create is repeated (it is
/// idempotent by UID).
pub const REPORT_WAIT: Duration = Duration::from_secs(30);

/// Whether resourceVersion `a` is older than `b`. Versions are opaque to clients, but every
/// API server backed by etcd hands out increasing integers; anything else is only compared
/// for equality (then a different version counts as older, and the next write corrects it).
fn older_version(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => a != b,
    }
}

/// The pod's phase as the API holds it.
fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another reconcile panicked; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.namespace().unwrap_or_else(|| "default".into()),
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
    }
}

/// Requeue after `after`, or when the pod's active deadline comes, whichever is first.
fn requeue(pod: &Pod, after: Option<Duration>) -> Action {
    // A little past the deadline, so the check that runs then finds it exceeded.
    let deadline =
        deadline::remaining(pod, Timestamp::now()).map(|d| d + Duration::from_millis(50));
    after
        .into_iter()
        .chain(deadline)
        .min()
        .map_or_else(Action::await_change, Action::requeue)
}

/// How long until `at`; zero when it has passed.
fn until(at: Timestamp) -> Duration {
    let left = at.duration_since(Timestamp::now());
    if left.is_positive() {
        left.unsigned_abs()
    } else {
        Duration::ZERO
    }
}

fn has_started(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        || status
            .container_statuses
            .iter()
            .chain(status.init_container_statuses.iter())
            .flatten()
            .any(|c| {
                c.state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            })
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
            instances: Mutex::new(HashMap::new()),
            deleting: Mutex::new(HashSet::new()),
            generations: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            token_refresh: Mutex::new(HashMap::new()),
            mounted_changed: Mutex::new(HashSet::new()),
            written: Mutex::new(HashMap::new()),
            created: Mutex::new(HashMap::new()),
            first_seen: Mutex::new(HashMap::new()),
            provider_events: SeenEvents::new(Timestamp::now()),
            running: std::sync::atomic::AtomicUsize::new(0),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        }
    }

    /// Record into `metrics` (the controller's, served by the binary).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Fill the instance map from one `list` call, retrying until the provider answers.
    pub async fn load_instances(&self, cancel: &CancellationToken) {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.provider.list().await {
                Ok(list) => {
                    tracing::info!(instances = list.len(), "loaded the provider's instances");
                    let mut map = lock(&self.instances);
                    for status in list {
                        map.insert(status.pod.uid.clone(), status);
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing the provider's instances failed; retrying")
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Record a provider report; returns the pod it concerns.
    pub fn apply_status_event(&self, event: StatusEvent) -> PodRef {
        let mut map = lock(&self.instances);
        match event {
            StatusEvent::Changed(status) => {
                let pod = status.pod.clone();
                map.insert(pod.uid.clone(), status);
                pod
            }
            StatusEvent::Gone(pod) => {
                map.remove(&pod.uid);
                // Gone before it ever ran: the next reconcile creates it again at once.
                lock(&self.created).remove(&pod.uid);
                pod
            }
        }
    }

    fn instance(&self, uid: &str) -> Option<InstanceStatus> {
        lock(&self.instances).get(uid).cloned()
    }

    fn forget(&self, uid: &str) {
        lock(&self.deleting).remove(uid);
        lock(&self.generations).remove(uid);
        lock(&self.failures).remove(uid);
        lock(&self.token_refresh).remove(uid);
        lock(&self.mounted_changed).remove(uid);
        lock(&self.written).remove(uid);
        lock(&self.created).remove(uid);
        lock(&self.first_seen).remove(uid);
        self.provider_events.forget(uid);
        self.watched.remove_pod(uid);
    }

    /// The watch brought `pod`. One this node has not created yet starts its preparation
    /// before a reconcile worker is free: its namespace is watched and its service-account
    /// tokens are asked for, so the create that follows finds them ready.
    pub fn seen(&self, pod: &Pod) {
        let pending = phase(pod) == Some("Pending");
        if !pending || has_started(pod) || pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let (Some(uid), Some(namespace)) = (pod.uid(), pod.namespace()) else {
            return;
        };
        let first = match lock(&self.first_seen).entry(uid.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(std::time::Instant::now());
                true
            }
        };
        if first && self.instance(&uid).is_none() && self.created_ago(&uid).is_none() {
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
                lock(&self.mounted_changed).insert(r.uid.clone());
            }
            tracing::debug!(pod = %r, kind = %change.kind, name = %change.name, "a referenced object changed");
            pods.push(r);
        }
        pods
    }

    /// How long the pod's projected service-account tokens may be used before they are
    /// re-issued: 80% of the shortest requested lifetime, as the kubelet does.
    fn token_refresh_after(&self, pod: &Pod) -> Option<Duration> {
        let shortest = pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| v.projected.as_ref())
            .flat_map(|p| p.sources.iter().flatten())
            .filter_map(|s| s.service_account_token.as_ref())
            .map(|t| t.expiration_seconds.unwrap_or(3600).max(1))
            .min()?;
        Some(
            self.config
                .token_refresh_interval
                .unwrap_or(Duration::from_secs(shortest as u64 * 4 / 5)),
        )
    }

    fn schedule_token_refresh(&self, pod: &Pod, uid: &str) {
        if let Some(after) = self.token_refresh_after(pod) {
            let at = Timestamp::now()
                .checked_add(after)
                .unwrap_or_else(|_| Timestamp::now());
            lock(&self.token_refresh).insert(uid.to_string(), at);
        }
    }

    /// A pod object vanished from the API (force delete, or our own final delete): make sure
    /// its instance is gone too.
    pub async fn delete_instances_of_removed_pods(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Pod>,
    ) {
        while let Some(pod) = rx.recv().await {
            let pod = pod_ref(&pod);
            if self.instance(&pod.uid).is_some() {
                tracing::info!(pod = %pod, "pod removed from the API; deleting its instance");
                if let Err(e) = self.provider.delete(&pod, Duration::ZERO).await {
                    tracing::warn!(pod = %pod, error = %e, "deleting the instance failed; the orphan sweep will retry");
                }
            }
            self.forget(&pod.uid);
        }
    }

    /// Delete instances whose pod no longer exists: at start-up, then periodically.
    pub async fn sweep_orphans(self: Arc<Self>, cancel: CancellationToken) {
        if self.store.wait_until_ready().await.is_err() {
            return;
        }
        loop {
            let known: HashSet<String> =
                self.store.state().iter().filter_map(|p| p.uid()).collect();
            self.watched.retain_pods(&known);
            match self.provider.list().await {
                Ok(list) => {
                    for instance in list {
                        if !known.contains(&instance.pod.uid) {
                            tracing::info!(pod = %instance.pod, uid = %instance.pod.uid, "deleting an instance that has no pod");
                            if let Err(e) =
                                self.provider.delete(&instance.pod, Duration::ZERO).await
                            {
                                tracing::warn!(pod = %instance.pod, error = %e, "deleting an orphan failed; retrying later");
                            }
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

    /// Queue an event about the pod (published in the background; never waits).
    fn event(&self, pod: &Pod, type_: EventType, reason: &str, note: String) {
        self.event_at(pod, None, type_, reason, note);
    }

    /// An event about one container: the field path keeps the events of different containers
    /// apart.
    fn event_at(
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

    /// The pod as the API holds it: the store's copy, or what our last status write returned
    /// when the watch has not brought that write yet (so the same status is neither written
    /// again nor announced again with events).
    pub(crate) fn current(&self, pod: &Arc<Pod>) -> Arc<Pod> {
        let uid = pod.uid().unwrap_or_default();
        let mut written = lock(&self.written);
        let Some(ours) = written.get(&uid) else {
            return pod.clone();
        };
        match pod.resource_version() {
            Some(seen) if older_version(&seen, &ours.version) => {
                let mut newer = (**pod).clone();
                newer.status = Some(ours.status.clone());
                Arc::new(newer)
            }
            _ => {
                // The watch caught up.
                written.remove(&uid);
                pod.clone()
            }
        }
    }

    /// How long the instance was created ago, if it was created by this process.
    fn created_ago(&self, uid: &str) -> Option<Duration> {
        lock(&self.created).get(uid).map(|at| at.elapsed())
    }

    /// How much longer a `Pending` status for a just-created instance is held back.
    fn interim_wait(&self, uid: &str, status: &PodStatus) -> Option<Duration> {
        if status.phase.as_deref() != Some("Pending") {
            return None;
        }
        let ago = self.created_ago(uid)?;
        INTERIM_DELAY.checked_sub(ago).filter(|d| !d.is_zero())
    }

    /// Write what the pod shows while its instance starts, unless it is held back; the next
    /// reconcile is due when the hold ends, or after `then`.
    async fn show_progress(
        &self,
        pod: &Pod,
        instance: Option<&InstanceStatus>,
        then: Duration,
    ) -> Result<Action, PodError> {
        let uid = pod.uid().unwrap_or_default();
        let status = desired_status(
            pod,
            instance,
            self.provider.name(),
            &self.config.node_ip,
            "ContainerCreating",
            Timestamp::now(),
        );
        if let Some(wait) = self.interim_wait(&uid, &status) {
            return Ok(requeue(pod, Some(wait)));
        }
        self.started_events(pod, &status);
        self.write_status(pod, status).await?;
        Ok(requeue(pod, Some(then)))
    }

    async fn write_status(&self, pod: &Pod, status: PodStatus) -> Result<(), PodError> {
        let current = pod.status.clone().unwrap_or_default();
        if owned_part(&current) == owned_part(&status) {
            return Ok(());
        }
        let uid = pod.uid().unwrap_or_default();
        let new_phase = status.phase.clone().unwrap_or_default();
        let sent = status.clone();
        let started = std::time::Instant::now();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod_ref(pod).namespace);
        let patch = Pod {
            status: Some(status),
            ..Default::default()
        };
        let mut patch = serde_json::to_value(&patch).map_err(kube::Error::SerdeError)?;
        // podIPs/hostIPs merge by IP in a strategic patch; a changed IP must replace the old
        // one, not be appended to it (the API rejects two IPs of one family).
        for list in ["podIPs", "hostIPs"] {
            if let Some(serde_json::Value::Array(items)) =
                patch.pointer_mut(&format!("/status/{list}"))
            {
                items.push(serde_json::json!({"$patch": "replace"}));
            }
        }
        let urgent = self.events.urgent();
        let result = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await;
        drop(urgent);
        let took = started.elapsed();
        self.metrics
            .status_write_seconds
            .observe(took.as_secs_f64());
        self.metrics
            .status_writes
            .get_or_create(&crate::metrics::Outcome {
                result: if result.is_ok() { "ok" } else { "error" },
            })
            .inc();
        let was_running = phase(pod) == Some("Running");
        if result.is_ok()
            && new_phase == "Running"
            && !was_running
            && let Some(seen) = lock(&self.first_seen).remove(&uid)
        {
            self.metrics
                .pod_start_seconds
                .observe(seen.elapsed().as_secs_f64());
        }
        tracing::debug!(
            pod = %pod_ref(pod),
            phase = %new_phase,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            ok = result.is_ok(),
            "status written"
        );
        match result {
            Ok(answer) => {
                if let Some(version) = answer.resource_version() {
                    let status = answer.status.unwrap_or(sent);
                    lock(&self.written).insert(uid, Written { version, status });
                }
                Ok(())
            }
            Err(e) => {
                lock(&self.written).remove(&uid);
                Err(e.into())
            }
        }
    }

    async fn delete_from_api(&self, pod: &Pod) -> Result<(), PodError> {
        let r = pod_ref(pod);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &r.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(r.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&r.name, &params).await {
            Ok(_) => Ok(()),
            // Already gone, or a new pod with the same name: nothing of ours to delete.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn reconcile_deletion(
        &self,
        pod: &Pod,
        instance: Option<InstanceStatus>,
    ) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        let first_time = lock(&self.deleting).insert(r.uid.clone());
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .unwrap_or(30)
            .max(0) as u64;
        if instance.is_some() && first_time {
            self.event(
                pod,
                EventType::Normal,
                "Killing",
                format!("Stopping the pod's {} instance", self.provider.name()),
            );
            if let Err(e) = self.provider.delete(&r, Duration::from_secs(grace)).await {
                lock(&self.deleting).remove(&r.uid);
                return Err(e.into());
            }
        }
        let instance = self.instance(&r.uid);
        let grace_over = pod
            .metadata
            .deletion_timestamp
            .as_ref()
            .is_none_or(|t| t.0 <= Timestamp::now());
        let stopped = instance
            .as_ref()
            .is_none_or(|i| matches!(i.phase, InstancePhase::Succeeded | InstancePhase::Failed));
        if stopped || grace_over {
            if !stopped {
                tracing::warn!(pod = %r, "grace period over while the instance still runs; deleting the pod anyway");
            }
            self.delete_from_api(pod).await?;
            return Ok(Action::await_change());
        }
        let remaining = pod
            .metadata
            .deletion_timestamp
            .as_ref()
            .map(|t| t.0.duration_since(Timestamp::now()).unsigned_abs())
            .unwrap_or_default();
        Ok(Action::requeue(remaining.min(Duration::from_secs(5))))
    }

    /// A spec the provider can never run: Failed with restartPolicy Never, otherwise Pending
    /// with the reason, as the issue tracker's users expect from a kubelet.
    async fn refuse(&self, pod: &Pod, reason: &str, message: &str) -> Result<Action, PodError> {
        self.event(pod, EventType::Warning, reason, message.to_string());
        let restart =
            RestartPolicy::parse(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()));
        let now = Timestamp::now();
        let status = if restart == RestartPolicy::Never {
            failed_status(pod, reason, message, &self.config.node_ip, now)
        } else {
            waiting_status(pod, reason, message, &self.config.node_ip, now)
        };
        self.write_status(pod, status).await?;
        Ok(requeue(pod, None))
    }

    /// The pod ran longer than its `activeDeadlineSeconds`: stop the instance and fail the pod,
    /// which stays in the API (as with the kubelet) until it is deleted.
    async fn deadline_exceeded(&self, pod: &Pod) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        tracing::info!(pod = %r, "active deadline exceeded; stopping the instance");
        self.event(
            pod,
            EventType::Normal,
            deadline::REASON,
            deadline::MESSAGE.to_string(),
        );
        let grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0)
            .unsigned_abs();
        // Also when no status was reported yet: a polled provider may not have listed it.
        self.provider.delete(&r, Duration::from_secs(grace)).await?;
        let status = failed_status(
            pod,
            deadline::REASON,
            deadline::MESSAGE,
            &self.config.node_ip,
            Timestamp::now(),
        );
        self.write_status(pod, status).await?;
        self.watched.remove_pod(&r.uid);
        Ok(Action::await_change())
    }

    async fn create(&self, pod: &Pod) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        let began = std::time::Instant::now();
        let (resolved, warnings) = match resolve_pod_with_warnings(
            pod,
            &self.config.node_name,
            &self.config.node_ip,
            &self.watched,
        )
        .await
        {
            Ok(resolved) => resolved,
            Err(ResolveError::MissingReference(message)) => {
                self.event(
                    pod,
                    EventType::Warning,
                    "Failed",
                    format!("Error: {message}"),
                );
                let status = waiting_status(
                    pod,
                    "CreateContainerConfigError",
                    &message,
                    &self.config.node_ip,
                    Timestamp::now(),
                );
                self.write_status(pod, status).await?;
                // A watched secret or configMap wakes the pod when it appears; the fallback
                // covers what is not watched (a service account).
                return Ok(requeue(pod, Some(Duration::from_secs(30))));
            }
            Err(ResolveError::Unsupported { reason, message }) => {
                return self.refuse(pod, &reason, &message).await;
            }
            Err(ResolveError::Invalid(message)) => {
                return self.refuse(pod, "InvalidPodSpec", &message).await;
            }
            Err(e @ ResolveError::Api(_)) => return Err(e.into()),
        };
        let resolved_in = began.elapsed();
        let result = self.provider.create(&resolved).await;
        let since_seen = lock(&self.first_seen)
            .get(&r.uid)
            .map(|at| (began - *at).as_secs_f64() * 1000.0);
        tracing::debug!(
            pod = %r,
            since_seen_ms = since_seen,
            resolve_ms = resolved_in.as_secs_f64() * 1000.0,
            create_ms = (began.elapsed() - resolved_in).as_secs_f64() * 1000.0,
            ok = result.is_ok(),
            "provider create"
        );
        let outcome = match &result {
            Ok(()) => "ok",
            Err(ProviderError::InvalidSpec { .. }) => "invalid",
            Err(_) => "error",
        };
        self.metrics
            .provider_creates
            .get_or_create(&crate::metrics::Outcome { result: outcome })
            .inc();
        match result {
            Ok(()) => {}
            Err(ProviderError::InvalidSpec { reason, message }) => {
                return self.refuse(pod, &reason, &message).await;
            }
            Err(e) => {
                self.event(
                    pod,
                    EventType::Warning,
                    "ProviderCreateFailed",
                    format!(
                        "Creating the {} instance failed, retrying: {e}",
                        self.provider.name()
                    ),
                );
                return Err(e.into());
            }
        }
        let first = lock(&self.generations)
            .insert(r.uid.clone(), pod.metadata.generation.unwrap_or_default())
            .is_none();
        self.schedule_token_refresh(pod, &r.uid);
        // A create repeated after REPORT_WAIT (idempotent by UID) is not news for the user.
        if first {
            // What the kubelet would have warned about while still running the pod (a missing
            // image pull secret, skipped envFrom keys), once per pod.
            for warning in warnings {
                tracing::warn!(pod = %r, reason = %warning.reason, "{}", warning.message);
                self.event(pod, EventType::Warning, &warning.reason, warning.message);
            }
            self.event(
                pod,
                EventType::Normal,
                "ProviderCreated",
                format!("Created the pod's {} instance", self.provider.name()),
            );
        }
        lock(&self.created).insert(r.uid.clone(), std::time::Instant::now());
        // Until the provider's first report arrives, the pod shows that it is being created.
        let instance = self.instance(&r.uid);
        self.show_progress(pod, instance.as_ref(), REPORT_WAIT)
            .await
    }

    /// The instance was created but not reported yet: show that it is being created, and
    /// create it again only once the provider had time to report it.
    async fn await_report(&self, pod: &Pod, ago: Duration) -> Result<Action, PodError> {
        let left = REPORT_WAIT.saturating_sub(ago) + Duration::from_millis(50);
        self.show_progress(pod, None, left).await
    }

    async fn mirror(&self, pod: &Pod, instance: &InstanceStatus) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        let generation = pod.metadata.generation.unwrap_or_default();
        let sent = lock(&self.generations).get(&r.uid).copied();
        // Unknown after a restart: the tokens' age is unknown too, so re-issue them now.
        let live = matches!(
            instance.phase,
            InstancePhase::Pending | InstancePhase::Running
        );
        let refresh_due = live
            && self.token_refresh_after(pod).is_some()
            && lock(&self.token_refresh)
                .get(&r.uid)
                .is_none_or(|at| *at <= Timestamp::now());
        let files_changed = live && lock(&self.mounted_changed).remove(&r.uid);
        let respec = sent.is_some_and(|g| g != generation);
        if respec || refresh_due || files_changed {
            match self.send_update(pod).await {
                Ok(()) => {
                    tracing::debug!(pod = %r, respec, refresh_due, files_changed, "instance updated");
                    lock(&self.generations).insert(r.uid.clone(), generation);
                }
                // Like a kubelet whose volume refresh fails: the instance keeps the files it
                // has; the next change of the object (or the next token refresh) tries again.
                Err(PodError::Resolve(ResolveError::MissingReference(message))) => {
                    self.event(
                        pod,
                        EventType::Warning,
                        "FailedMount",
                        format!(
                            "Refreshing the pod's files failed; the instance keeps their previous content: {message}"
                        ),
                    );
                    if self.token_refresh_after(pod).is_some() {
                        let retry = Timestamp::now()
                            .checked_add(Duration::from_secs(30))
                            .unwrap_or_else(|_| Timestamp::now());
                        lock(&self.token_refresh).insert(r.uid.clone(), retry);
                    }
                }
                Err(e) => {
                    if files_changed {
                        lock(&self.mounted_changed).insert(r.uid.clone());
                    }
                    return Err(e);
                }
            }
        } else {
            lock(&self.generations).insert(r.uid.clone(), generation);
        }
        let status = desired_status(
            pod,
            Some(instance),
            self.provider.name(),
            &self.config.node_ip,
            "ContainerCreating",
            Timestamp::now(),
        );
        if let Some(wait) = self.interim_wait(&r.uid, &status) {
            return Ok(requeue(pod, Some(wait)));
        }
        self.started_events(pod, &status);
        self.container_events(pod, instance);
        self.write_status(pod, status).await?;
        let next_refresh = lock(&self.token_refresh).get(&r.uid).copied().map(until);
        let wake = next_refresh.map_or(Duration::from_secs(300), |d| {
            d.min(Duration::from_secs(300)) + Duration::from_millis(50)
        });
        Ok(requeue(pod, Some(wake)))
    }

    /// Resolve the pod again and hand it to the provider (new images, re-issued tokens,
    /// changed configMap/secret files).
    async fn send_update(&self, pod: &Pod) -> Result<(), PodError> {
        let resolved = resolve_pod(
            pod,
            &self.config.node_name,
            &self.config.node_ip,
            &self.watched,
        )
        .await?;
        self.provider.update(&resolved).await?;
        self.schedule_token_refresh(pod, &resolved.pod.uid);
        Ok(())
    }

    /// The provider's container events (`Unhealthy`, `Killing`) not recorded yet.
    fn container_events(&self, pod: &Pod, instance: &InstanceStatus) {
        let uid = pod.uid().unwrap_or_default();
        let init: HashSet<&str> = pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .map(|c| c.name.as_str())
            .collect();
        for e in self.provider_events.fresh(&uid, &instance.events) {
            let field_path = e.container.as_ref().map(|name| {
                let list = if init.contains(name.as_str()) {
                    "initContainers"
                } else {
                    "containers"
                };
                format!("spec.{list}{{{name}}}")
            });
            let type_ = if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.event_at(pod, field_path, type_, &e.reason, e.message.clone());
        }
    }

    /// `Started` for each container that runs now and did not in the API's last status.
    fn started_events(&self, pod: &Pod, desired: &PodStatus) {
        let was_running = |name: &str| {
            pod.status.as_ref().is_some_and(|s| {
                s.container_statuses
                    .iter()
                    .chain(s.init_container_statuses.iter())
                    .flatten()
                    .any(|c| {
                        c.name == name
                            && c.state.as_ref().is_some_and(|st| st.running.is_some())
                            && c.restart_count >= 0
                    })
            })
        };
        let started: Vec<String> = desired
            .container_statuses
            .iter()
            .chain(desired.init_container_statuses.iter())
            .flatten()
            .filter(|c| {
                c.state.as_ref().is_some_and(|s| s.running.is_some()) && !was_running(&c.name)
            })
            .map(|c| c.name.clone())
            .collect();
        let init: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .map(|c| c.name.clone())
            .collect();
        for name in started {
            let list = if init.contains(&name) {
                "initContainers"
            } else {
                "containers"
            };
            self.event_at(
                pod,
                Some(format!("spec.{list}{{{name}}}")),
                EventType::Normal,
                "Started",
                format!("Started container {name}"),
            );
        }
    }

    async fn reconcile_pod(&self, pod: &Pod) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        let instance = self.instance(&r.uid);
        if pod.metadata.deletion_timestamp.is_some() {
            self.watched.remove_pod(&r.uid);
            return self.reconcile_deletion(pod, instance).await;
        }
        if is_terminal_phase(phase(pod)) {
            // Terminal pods are never re-created; the instance stays for `kubectl logs`
            // until the pod is deleted. Nothing they reference matters any more.
            self.watched.remove_pod(&r.uid);
            return Ok(Action::await_change());
        }
        if deadline::must_stop(pod, instance.as_ref(), Timestamp::now()) {
            return self.deadline_exceeded(pod).await;
        }
        self.watched.add_pod(&r.namespace, &r.uid);
        match instance {
            Some(instance) => self.mirror(pod, &instance).await,
            None if has_started(pod) => {
                let message = format!(
                    "the pod's {} instance no longer exists (deleted outside Kubernetes, or lost by the cloud)",
                    self.provider.name()
                );
                tracing::warn!(pod = %r, "{message}; marking the pod Failed");
                self.event(
                    pod,
                    EventType::Warning,
                    "ProviderInstanceLost",
                    message.clone(),
                );
                let status = failed_status(
                    pod,
                    "ProviderInstanceLost",
                    &message,
                    &self.config.node_ip,
                    Timestamp::now(),
                );
                self.write_status(pod, status).await?;
                Ok(Action::await_change())
            }
            None => match self.created_ago(&r.uid) {
                Some(ago) if ago < REPORT_WAIT => self.await_report(pod, ago).await,
                _ => self.create(pod).await,
            },
        }
    }
}

pub async fn reconcile(pod: Arc<Pod>, ctx: Arc<PodContext>) -> Result<Action, PodError> {
    let r = pod_ref(&pod);
    let pod = ctx.current(&pod);
    let began = std::time::Instant::now();
    let running = ctx
        .running
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let result = ctx
        .reconcile_pod(&pod)
        .instrument(tracing::info_span!("reconcile", pod = %r))
        .await;
    ctx.running
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    tracing::trace!(pod = %r, running, took_ms = began.elapsed().as_secs_f64() * 1000.0, "reconciled");
    if result.is_ok() {
        lock(&ctx.failures).remove(&r.uid);
    }
    result
}

/// Exponential backoff with jitter per pod: 0.5 s doubling to 60 s.
pub fn error_policy(pod: Arc<Pod>, error: &PodError, ctx: Arc<PodContext>) -> Action {
    let uid = pod.uid().unwrap_or_default();
    let attempts = {
        let mut failures = lock(&ctx.failures);
        let n = failures.entry(uid).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let base = Duration::from_millis(500)
        .saturating_mul(1u32 << attempts.min(7))
        .min(Duration::from_secs(60));
    let jitter = rand::rng().random_range(0.8..1.2);
    tracing::warn!(pod = %pod_ref(&pod), attempts, error = %error, "reconcile failed; retrying");
    Action::requeue(base.mul_f64(jitter))
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
