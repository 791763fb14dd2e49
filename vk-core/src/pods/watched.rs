//! The secrets, configMaps and Services of the namespaces that have pods on this node, watched
//! with one reflector per kind and namespace, never cluster-wide. A namespace is watched from the
//! moment its first pod is reconciled until its last pod leaves (deleted, or terminal).
//!
//! Resolution reads through [`WatchedNamespaces`] (it is the controller's [`ObjectSource`]):
//! from the cache once the first list is complete; a miss, or a namespace not synced yet, is
//! asked of the API by name, so a pod created right after its secret never waits for the
//! watch event. Every create or change of a secret or configMap seen after the first list is
//! sent on the change channel, so the pods that reference the object are reconciled again.
//! Services only feed the service-link variables of containers yet to start, so their changes
//! wake nobody (as with the kubelet, a running container keeps the variables it started with).

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::cluster_dns::ClusterDnsLookup;
use super::lock::lock;
use super::references::ObjectKind;
use super::resolve::{
    ClusterDns, ObjectSource, ResolveError, service_account_name, token_requests,
};
use super::source::ApiObjectSource;

/// Token requests issued ahead at once; more wait for a slot (more only queue in the API
/// server during a burst).
const PREFETCH_IN_FLIGHT: usize = 16;
/// A resolve in a namespace whose watch has just started waits this long after the start for
/// its first lists (one LIST per kind, already under way) before it reads the API itself: a
/// burst of pods in a new namespace then costs three LISTs, not two calls per pod while the
/// API server is busiest.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(5);
/// Tokens issued ahead and not taken yet, at most.
const PREFETCH_MAX: usize = 1024;
/// A token issued ahead is used only this long after it was asked for.
const PREFETCH_TTL: Duration = Duration::from_secs(60);

/// A secret or configMap was created or changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectChange {
    pub kind: ObjectKind,
    pub namespace: String,
    pub name: String,
}

pub struct WatchedNamespaces {
    client: kube::Client,
    /// Tokens, and reads the cache cannot answer.
    api: ApiObjectSource,
    changes: mpsc::UnboundedSender<ObjectChange>,
    state: Mutex<State>,
    /// Service-account tokens asked for as soon as the watch brought a pod that is to be
    /// created, so the TokenRequest runs while the pod waits for a reconcile worker. Each one
    /// is taken once, by the resolution it was issued for.
    prefetched: Mutex<HashMap<TokenKey, Prefetched>>,
    prefetch_slots: Arc<Semaphore>,
    /// Where pods reach the API server ([`ObjectSource::kubernetes_service`]).
    kubernetes_service: Option<(String, u16)>,
    /// The cluster DNS servers and domain ([`ObjectSource::cluster_dns`]).
    cluster_dns: ClusterDnsLookup,
}

/// One token a pod's projected volumes ask for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TokenKey {
    uid: String,
    account: String,
    audience: Option<String>,
    expiration_seconds: i64,
}

struct Prefetched {
    asked: Instant,
    answer: oneshot::Receiver<Result<String, ResolveError>>,
}

#[derive(Default)]
struct State {
    pods: PodsByNamespace,
    watches: HashMap<String, NamespaceWatch>,
}

/// The reflectors of one namespace; dropping it stops them.
struct NamespaceWatch {
    /// When the reflectors started: a resolve waits for their first lists until
    /// [`FIRST_LIST_WAIT`] after this.
    started: Instant,
    secrets: Cached<Secret>,
    config_maps: Cached<ConfigMap>,
    services: Cached<Service>,
    _stop: DropGuard,
}

/// One reflector's store, and whether its first list is in it. (The store's own
/// `wait_until_ready` keeps one waker only: of many resolves waiting at once, one is woken.)
struct Cached<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    synced: watch::Receiver<bool>,
}

/// Which pods keep which namespace watched.
#[derive(Debug, Default)]
struct PodsByNamespace {
    namespaces: HashMap<String, HashSet<String>>,
    /// Pod UID -> its namespace.
    pods: HashMap<String, String>,
}

impl PodsByNamespace {
    /// True when `namespace` had no pod before.
    fn add(&mut self, namespace: &str, uid: &str) -> bool {
        if self.pods.contains_key(uid) {
            return false;
        }
        self.pods.insert(uid.to_string(), namespace.to_string());
        let pods = self.namespaces.entry(namespace.to_string()).or_default();
        pods.insert(uid.to_string());
        pods.len() == 1
    }

    /// The pod's namespace when the pod was its last one.
    fn remove(&mut self, uid: &str) -> Option<String> {
        let namespace = self.pods.remove(uid)?;
        let pods = self.namespaces.get_mut(&namespace)?;
        pods.remove(uid);
        if !pods.is_empty() {
            return None;
        }
        self.namespaces.remove(&namespace);
        Some(namespace)
    }

    /// Forget the pods not in `live`; the namespaces left without a pod.
    fn retain(&mut self, live: &HashSet<String>) -> Vec<String> {
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|uid| !live.contains(*uid))
            .cloned()
            .collect();
        gone.iter().filter_map(|uid| self.remove(uid)).collect()
    }
}

impl WatchedNamespaces {
    pub fn new(client: kube::Client, changes: mpsc::UnboundedSender<ObjectChange>) -> Self {
        Self {
            api: ApiObjectSource::new(client.clone()),
            cluster_dns: ClusterDnsLookup::new(
                client.clone(),
                Vec::new(),
                ClusterDns::default().domain,
            ),
            client,
            changes,
            state: Mutex::new(State::default()),
            prefetched: Mutex::new(HashMap::new()),
            prefetch_slots: Arc::new(Semaphore::new(PREFETCH_IN_FLIGHT)),
            kubernetes_service: None,
        }
    }

    /// Pods reach the API server at `host:port` (their `KUBERNETES_SERVICE_*` variables).
    pub fn with_kubernetes_service(mut self, service: Option<(String, u16)>) -> Self {
        self.kubernetes_service = service;
        self
    }

    /// `ClusterFirst` pods use these servers (empty: the ClusterIP of `kube-system/kube-dns`)
    /// and this cluster domain.
    pub fn with_cluster_dns(mut self, servers: Vec<std::net::IpAddr>, domain: String) -> Self {
        self.cluster_dns = ClusterDnsLookup::new(self.client.clone(), servers, domain);
        self
    }

    /// Ask for the service-account tokens `pod` will need (it is about to be created); the
    /// answers wait for the pod's resolution. Must run inside a tokio runtime.
    pub fn prefetch_tokens(&self, pod: &Pod) {
        let (Some(uid), Some(namespace), Some(name)) = (
            pod.metadata.uid.as_deref(),
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return;
        };
        let account = service_account_name(pod);
        let mut prefetched = lock(&self.prefetched);
        prefetched.retain(|_, p| p.asked.elapsed() < PREFETCH_TTL);
        for (audience, expiration_seconds) in token_requests(pod) {
            let key = TokenKey {
                uid: uid.to_string(),
                account: account.to_string(),
                audience,
                expiration_seconds,
            };
            if prefetched.len() >= PREFETCH_MAX || prefetched.contains_key(&key) {
                continue;
            }
            let (tx, answer) = oneshot::channel();
            let api = ApiObjectSource::new(self.client.clone());
            let slots = self.prefetch_slots.clone();
            let (namespace, name) = (namespace.to_string(), name.to_string());
            let request = key.clone();
            tokio::spawn(async move {
                let Ok(_slot) = slots.acquire_owned().await else {
                    return;
                };
                let answer = api
                    .service_account_token(
                        &namespace,
                        &request.account,
                        &name,
                        &request.uid,
                        request.audience.as_deref(),
                        request.expiration_seconds,
                    )
                    .await;
                let _ = tx.send(answer);
            });
            prefetched.insert(
                key,
                Prefetched {
                    asked: Instant::now(),
                    answer,
                },
            );
        }
    }

    /// The token issued ahead for this request, if there is one and it was issued.
    async fn take_prefetched(&self, key: &TokenKey) -> Option<String> {
        let prefetched = lock(&self.prefetched).remove(key)?;
        if prefetched.asked.elapsed() >= PREFETCH_TTL {
            return None;
        }
        match prefetched.answer.await {
            Ok(Ok(token)) => Some(token),
            // Asked again, so the error the pod shows is a current one.
            Ok(Err(e)) => {
                tracing::debug!(uid = %key.uid, error = %e, "token issued ahead failed; asking again");
                None
            }
            Err(_) => None,
        }
    }

    fn forget_prefetched(&self, uid: &str) {
        lock(&self.prefetched).retain(|key, _| key.uid != uid);
    }

    /// The pod `uid` of `namespace` is on this node: watch its namespace (must run inside a
    /// tokio runtime, which drives the reflectors).
    pub fn add_pod(&self, namespace: &str, uid: &str) {
        let mut state = lock(&self.state);
        if state.pods.add(namespace, uid) {
            let watch = self.start(namespace);
            state.watches.insert(namespace.to_string(), watch);
        }
    }

    /// The pod left the node or ended; its namespace stops being watched with its last pod.
    pub fn remove_pod(&self, uid: &str) {
        self.forget_prefetched(uid);
        let mut state = lock(&self.state);
        if let Some(namespace) = state.pods.remove(uid) {
            state.watches.remove(&namespace);
            tracing::info!(%namespace, "no pod left in the namespace; stopped watching its secrets, configMaps and Services");
        }
    }

    /// Forget every pod not in `live` (pods deleted while the pod watch was reconnecting
    /// produce no delete event).
    pub fn retain_pods(&self, live: &HashSet<String>) {
        lock(&self.prefetched).retain(|key, _| live.contains(&key.uid));
        let mut state = lock(&self.state);
        for namespace in state.pods.retain(live) {
            state.watches.remove(&namespace);
            tracing::info!(%namespace, "no pod left in the namespace; stopped watching its secrets, configMaps and Services");
        }
    }

    /// The namespaces watched now, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut list: Vec<String> = lock(&self.state).watches.keys().cloned().collect();
        list.sort();
        list
    }

    fn start(&self, namespace: &str) -> NamespaceWatch {
        let stop = CancellationToken::new();
        tracing::info!(%namespace, "watching the namespace's secrets, configMaps and Services");
        NamespaceWatch {
            started: Instant::now(),
            secrets: self.spawn_reflector(namespace, Some(ObjectKind::Secret), stop.clone()),
            config_maps: self.spawn_reflector(namespace, Some(ObjectKind::ConfigMap), stop.clone()),
            services: self.spawn_reflector(namespace, None, stop.clone()),
            _stop: stop.drop_guard(),
        }
    }

    /// A reflector of `K` in `namespace`; its creates and changes are reported as `report`
    /// (None: not reported).
    fn spawn_reflector<K>(
        &self,
        namespace: &str,
        report: Option<ObjectKind>,
        stop: CancellationToken,
    ) -> Cached<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + DeserializeOwned
            + Send
            + Sync
            + 'static,
    {
        let (reader, writer) = reflector::store::<K>();
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let changes = self.changes.clone();
        let cache = reader.clone();
        let ns = namespace.to_string();
        let mut synced = false;
        let (synced_tx, synced_rx) = watch::channel(false);
        // A change is found against the cache before the event is applied, and reported only
        // after it is: a pod woken by the report then reads the new object from the cache.
        let found = Arc::new(Mutex::new(None::<String>));
        let reported = found.clone();
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            // Field ownership is of no use here and is often larger than the data.
            .modify(|o: &mut K| o.managed_fields_mut().clear())
            .inspect_ok(move |event| {
                let changed = changed_object(&cache, event, &mut synced);
                *lock(&found) = changed.filter(|_| report.is_some());
            })
            .reflect(writer)
            .inspect_ok(move |event| {
                if matches!(event, watcher::Event::InitDone) {
                    synced_tx.send_replace(true);
                }
                if let (Some(kind), Some(name)) = (report, lock(&reported).take()) {
                    let _ = changes.send(ObjectChange {
                        kind,
                        namespace: ns.clone(),
                        name,
                    });
                }
            });
        let ns = namespace.to_string();
        tokio::spawn(async move {
            let run = stream.for_each(|result| {
                if let Err(e) = result {
                    tracing::warn!(namespace = %ns, kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff");
                }
                std::future::ready(())
            });
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = run => {}
            }
        });
        Cached {
            store: reader,
            synced: synced_rx,
        }
    }

    /// The namespace's Services from its cache, when it is watched and its first list is
    /// complete (waited for, see [`FIRST_LIST_WAIT`]).
    async fn cached_services(&self, namespace: &str) -> Option<Vec<Service>> {
        let cache = self.synced_store(namespace, |w| &w.services).await?;
        Some(cache.state().iter().map(|s| (**s).clone()).collect())
    }

    /// The object from the namespace's cache, when the namespace is watched, its first list is
    /// complete (waited for, see [`FIRST_LIST_WAIT`]) and the object is in it.
    async fn cached<K>(
        &self,
        namespace: &str,
        name: &str,
        store: impl Fn(&NamespaceWatch) -> &Cached<K>,
    ) -> Option<K>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        let cache = self.synced_store(namespace, store).await?;
        cache
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| (*o).clone())
    }

    /// The namespace's store of `K` once its first list is complete; a watch younger than
    /// [`FIRST_LIST_WAIT`] is waited for until then. None: not watched, or not synced in time.
    async fn synced_store<K>(
        &self,
        namespace: &str,
        store: impl Fn(&NamespaceWatch) -> &Cached<K>,
    ) -> Option<Store<K>>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        let (cache, mut synced, started) = {
            let state = lock(&self.state);
            let watch = state.watches.get(namespace)?;
            let cached = store(watch);
            (cached.store.clone(), cached.synced.clone(), watch.started)
        };
        let wait = FIRST_LIST_WAIT.saturating_sub(started.elapsed());
        // The flag is read before the timer: a synced store answers at once.
        match tokio::time::timeout(wait, synced.wait_for(|synced| *synced)).await {
            Ok(Ok(_)) => Some(cache),
            _ => None,
        }
    }
}

/// The name of the object `event` creates or changes, compared with what `cache` holds before
/// the event is applied. Nothing is reported until the first list is complete (`synced`):
/// until then readers go to the API. A re-list after a lost watch reports only what differs.
/// Deletions are not reported: a running pod keeps the files it has, as with the kubelet.
fn changed_object<K>(
    cache: &Store<K>,
    event: &watcher::Event<K>,
    synced: &mut bool,
) -> Option<String>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    match event {
        watcher::Event::InitDone => {
            *synced = true;
            None
        }
        watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) if *synced => {
            let before = cache.get(&ObjectRef::from_obj(obj));
            let changed = before.is_none_or(|b| b.resource_version() != obj.resource_version());
            changed.then(|| obj.name_any())
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl ObjectSource for WatchedNamespaces {
    fn kubernetes_service(&self) -> Option<(String, u16)> {
        self.kubernetes_service.clone()
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ResolveError> {
        match self.cached(namespace, name, |w| &w.secrets).await {
            Some(secret) => Ok(Some(secret)),
            None => self.api.secret(namespace, name).await,
        }
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ResolveError> {
        match self.cached(namespace, name, |w| &w.config_maps).await {
            Some(cm) => Ok(Some(cm)),
            None => self.api.config_map(namespace, name).await,
        }
    }

    async fn cluster_dns(&self) -> Result<ClusterDns, ResolveError> {
        self.cluster_dns.get().await
    }

    /// From the cache once the namespace's first list is complete (waited for a while after
    /// the watch starts), else listed (the kubelet too waits for its first list of Services
    /// before it builds a container's environment).
    async fn services(&self, namespace: &str) -> Result<Vec<Service>, ResolveError> {
        match self.cached_services(namespace).await {
            Some(services) => Ok(services),
            None => self.api.services(namespace).await,
        }
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod_name: &str,
        pod_uid: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, ResolveError> {
        let key = TokenKey {
            uid: pod_uid.to_string(),
            account: service_account.to_string(),
            audience: audience.map(str::to_string),
            expiration_seconds,
        };
        if let Some(token) = self.take_prefetched(&key).await {
            return Ok(token);
        }
        self.api
            .service_account_token(
                namespace,
                service_account,
                pod_name,
                pod_uid,
                audience,
                expiration_seconds,
            )
            .await
    }
}

#[cfg(test)]
#[path = "watched_tests.rs"]
mod tests;
