//! The bookkeeping of watched namespaces, change detection, and the reflectors against a small
//! fake API server (plain HTTP on 127.0.0.1) that serves list, watch and get for secrets and
//! configMaps and records every request.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

#[test]
fn a_namespace_is_kept_while_it_has_a_pod() {
    let mut p = PodsByNamespace::default();
    assert!(p.add("ci", "a"), "the first pod opens the namespace");
    assert!(!p.add("ci", "b"));
    assert!(!p.add("ci", "a"), "adding a pod twice changes nothing");
    assert!(p.add("web", "c"));
    assert_eq!(p.remove("a"), None, "b is still in ci");
    assert_eq!(p.remove("a"), None, "already gone");
    assert_eq!(p.remove("b").as_deref(), Some("ci"));
    assert_eq!(p.remove("unknown"), None);
    assert!(p.add("ci", "d"), "a namespace can be opened again");

    let live: HashSet<String> = ["c".to_string()].into();
    assert_eq!(p.retain(&live), vec!["ci".to_string()]);
    assert_eq!(p.retain(&live), Vec::<String>::new());
    assert_eq!(p.remove("c").as_deref(), Some("web"));
    assert!(p.namespaces.is_empty() && p.pods.is_empty());
}

fn config_map(name: &str, version: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ci", "resourceVersion": version},
        "data": {"k": version},
    }))
    .unwrap()
}

#[test]
fn only_creates_and_changes_after_the_first_list_are_reported() {
    let (cache, mut writer) = reflector::store::<ConfigMap>();
    let mut synced = false;
    let mut step = |event: Event<ConfigMap>| {
        let changed = changed_object(&cache, &event, &mut synced);
        writer.apply_watcher_event(&event);
        changed
    };
    // The first list: readers use the API until it is complete, nothing to report.
    assert_eq!(step(Event::Init), None);
    assert_eq!(step(Event::InitApply(config_map("a", "1"))), None);
    assert_eq!(step(Event::InitApply(config_map("b", "1"))), None);
    assert_eq!(step(Event::InitDone), None);
    // Watch events.
    assert_eq!(
        step(Event::Apply(config_map("a", "2"))).as_deref(),
        Some("a")
    );
    assert_eq!(
        step(Event::Apply(config_map("c", "3"))).as_deref(),
        Some("c")
    );
    assert_eq!(step(Event::Delete(config_map("c", "4"))), None);
    // A re-list after a lost watch reports only what differs from the cache.
    assert_eq!(step(Event::Init), None);
    assert_eq!(step(Event::InitApply(config_map("a", "2"))), None);
    assert_eq!(
        step(Event::InitApply(config_map("b", "5"))).as_deref(),
        Some("b")
    );
    assert_eq!(
        step(Event::InitApply(config_map("d", "6"))).as_deref(),
        Some("d")
    );
    assert_eq!(step(Event::InitDone), None);
}

/// What the fake API server holds and saw.
#[derive(Default)]
struct FakeState {
    /// (resource, namespace, name) -> object.
    objects: BTreeMap<(String, String, String), Value>,
    /// `METHOD path?query` of every request.
    requests: Vec<String>,
    /// Open watches: (resource, namespace, events sender).
    watches: Vec<(String, String, mpsc::UnboundedSender<Bytes>)>,
    version: u64,
}

struct FakeApi {
    url: String,
    state: Arc<Mutex<FakeState>>,
    open_watches: Arc<AtomicUsize>,
}

/// Counts a watch connection for as long as its response body lives.
struct OpenWatch(Arc<AtomicUsize>);

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

impl FakeApi {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeState::default()));
        let open_watches = Arc::new(AtomicUsize::new(0));
        let (s, o) = (state.clone(), open_watches.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, o) = (s.clone(), o.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let response = handle(&s, &o, req);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            state,
            open_watches,
        }
    }

    fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Create or replace an object; open watches of its namespace see it.
    fn put(&self, resource: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        object["metadata"]["resourceVersion"] = json!(state.version.to_string());
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let key = (resource.to_string(), ns.clone(), name);
        let kind = if state.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.objects.insert(key, object.clone());
        let line = format!("{}\n", json!({"type": kind, "object": object}));
        for (r, n, tx) in &state.watches {
            if r == resource && *n == ns {
                let _ = tx.send(Bytes::from(line.clone()));
            }
        }
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    fn open_watches(&self) -> usize {
        self.open_watches.load(Ordering::SeqCst)
    }
}

fn handle(
    state: &Arc<Mutex<FakeState>>,
    open: &Arc<AtomicUsize>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{} {path}?{query}", req.method()));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (ns, resource, name) = match parts.as_slice() {
        ["api", "v1", "namespaces", ns, resource] => (*ns, *resource, None),
        ["api", "v1", "namespaces", ns, resource, name] => (*ns, *resource, Some(*name)),
        _ => {
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({"kind": "Status", "code": 404}),
            );
        }
    };
    let kind = if resource == "secrets" {
        "Secret"
    } else {
        "ConfigMap"
    };
    if let Some(name) = name {
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        return match s.objects.get(&key) {
            Some(object) => json_response(StatusCode::OK, object),
            None => json_response(
                StatusCode::NOT_FOUND,
                &json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("{resource} \"{name}\" not found"),
                    "reason": "NotFound", "code": 404,
                }),
            ),
        };
    }
    if query.split('&').any(|p| p == "watch=true") {
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        s.watches.push((resource.to_string(), ns.to_string(), tx));
        open.fetch_add(1, Ordering::SeqCst);
        let guard = OpenWatch(open.clone());
        let frames = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            let bytes = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(bytes)), (rx, guard)))
        });
        return Response::new(BodyExt::boxed(StreamBody::new(frames)));
    }
    let items: Vec<Value> = s
        .objects
        .iter()
        .filter(|((r, n, _), _)| r == resource && n == ns)
        .map(|(_, o)| o.clone())
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "apiVersion": "v1", "kind": format!("{kind}List"),
            "metadata": {"resourceVersion": s.version.to_string()},
            "items": items,
        }),
    )
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn secret_json(name: &str, token: &str) -> Value {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ci".into()),
            ..Default::default()
        },
        data: Some([("token".to_string(), k8s_openapi::ByteString(token.into()))].into()),
        ..Default::default()
    };
    let mut value = serde_json::to_value(secret).unwrap();
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Secret");
    value
}

fn config_map_json(ns: &str, name: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"settings.xml": value},
    })
}

#[tokio::test]
async fn a_namespace_is_watched_from_its_first_pod_to_its_last() {
    let api = FakeApi::start().await;
    api.put("secrets", secret_json("registry", "one"));
    api.put(
        "configmaps",
        config_map_json("other", "settings", "elsewhere"),
    );
    let (tx, mut changes) = mpsc::unbounded_channel();
    let watched = WatchedNamespaces::new(api.client(), tx);

    watched.add_pod("ci", "uid-1");
    watched.add_pod("ci", "uid-2");
    assert_eq!(watched.namespaces(), ["ci"]);
    eventually("a secret and a configMap watch in ci", || {
        api.open_watches() == 2
    })
    .await;

    // Served from the cache: no request by name.
    let secret = watched.secret("ci", "registry").await.unwrap().unwrap();
    let token = secret.data.unwrap().remove("token").unwrap();
    assert_eq!(token.0, b"one");
    assert!(
        !api.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/ci/secrets/registry")),
        "{:?}",
        api.requests()
    );

    // A create after the first list is reported and lands in the cache.
    api.put(
        "configmaps",
        config_map_json("ci", "settings", "<settings/>"),
    );
    let change = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .expect("a change within 10 s")
        .expect("the channel is open");
    assert_eq!(
        change,
        ObjectChange {
            kind: ObjectKind::ConfigMap,
            namespace: "ci".into(),
            name: "settings".into(),
        }
    );
    let cm = watched.config_map("ci", "settings").await.unwrap().unwrap();
    assert_eq!(cm.data.unwrap()["settings.xml"], "<settings/>");
    // And a change of it too.
    api.put("secrets", secret_json("registry", "two"));
    let change = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (change.kind, change.name.as_str()),
        (ObjectKind::Secret, "registry")
    );

    // A miss is confirmed by name (the object may be newer than the watch).
    assert!(watched.secret("ci", "late").await.unwrap().is_none());
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/ci/secrets/late"))
    );
    // Nothing was ever read outside the pods' namespace.
    for r in api.requests() {
        assert!(r.starts_with("GET /api/v1/namespaces/ci/"), "{r}");
    }

    // The last pod leaving stops both watches.
    watched.remove_pod("uid-1");
    assert_eq!(watched.namespaces(), ["ci"]);
    watched.remove_pod("uid-2");
    assert!(watched.namespaces().is_empty());
    eventually("both watches closed", || api.open_watches() == 0).await;

    // Not watched any more: reads go to the API.
    let before = api.requests().len();
    let secret = watched.secret("ci", "registry").await.unwrap().unwrap();
    assert_eq!(secret.data.unwrap()["token"].0, b"two");
    assert_eq!(api.requests().len(), before + 1);
}

#[tokio::test]
async fn pods_that_vanished_unseen_release_their_namespace() {
    let api = FakeApi::start().await;
    let (tx, _changes) = mpsc::unbounded_channel();
    let watched = WatchedNamespaces::new(api.client(), tx);
    watched.add_pod("ci", "gone");
    watched.add_pod("web", "kept");
    eventually("four watches", || api.open_watches() == 4).await;
    watched.retain_pods(&["kept".to_string()].into());
    assert_eq!(watched.namespaces(), ["web"]);
    eventually("the ci watches closed", || api.open_watches() == 2).await;
}
