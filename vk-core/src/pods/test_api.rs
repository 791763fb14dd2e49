//! A small fake API server for component tests of the pod controller: plain HTTP on
//! 127.0.0.1 that serves list, watch and get of namespaced core objects (secrets, configMaps
//! and Services here), accepts pod status patches and event creates/patches, echoes creates and
//! writes of anything else (nodes, leases), answers 404 to other reads, and records every
//! request (and the body of every status patch).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the fake API server holds and saw.
#[derive(Default)]
pub(crate) struct FakeState {
    /// (resource, namespace, name) -> object.
    objects: BTreeMap<(String, String, String), Value>,
    /// `METHOD path?query` of every request.
    requests: Vec<String>,
    /// The bodies of `pods/<name>/status` patches, by pod name.
    status_patches: Vec<(String, Value)>,
    /// `events.k8s.io/v1` creates and patches: (method, body), in order.
    event_requests: Vec<(String, Value)>,
    /// Open watches: (resource, namespace, events sender).
    watches: Vec<(String, String, mpsc::UnboundedSender<Bytes>)>,
    version: u64,
}

pub(crate) struct FakeApi {
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
    pub(crate) async fn start() -> Self {
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
                        let (s, o) = (s.clone(), o.clone());
                        async move { Ok::<_, Infallible>(handle(&s, &o, req).await) }
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

    pub(crate) fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Create or replace an object; open watches of its namespace see it.
    pub(crate) fn put(&self, resource: &str, mut object: Value) {
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

    /// The resourceVersion of the last change (a put or a status patch).
    pub(crate) fn version(&self) -> String {
        self.state.lock().unwrap().version.to_string()
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The status patches sent for pod `name`, oldest first.
    pub(crate) fn status_patches(&self, name: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .status_patches
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The `events.k8s.io/v1` creates (`POST`) and patches (`PATCH`) with their bodies.
    pub(crate) fn event_requests(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().event_requests.clone()
    }

    pub(crate) fn open_watches(&self) -> usize {
        self.open_watches.load(Ordering::SeqCst)
    }
}

/// Drop the strategic-merge directives (`{"$patch": ...}` list items) from a patch.
fn strip_directives(value: &mut Value) {
    match value {
        Value::Array(items) => {
            items.retain(|i| i.get("$patch").is_none());
            items.iter_mut().for_each(strip_directives);
        }
        Value::Object(fields) => fields.values_mut().for_each(strip_directives),
        _ => {}
    }
}

async fn handle(
    state: &Arc<Mutex<FakeState>>,
    open: &Arc<AtomicUsize>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{method} {path}?{query}"));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ["api", "v1", "namespaces", ns, "pods", name, "status"] = parts.as_slice()
        && method == hyper::Method::PATCH
    {
        let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        s.status_patches.push((name.to_string(), patch.clone()));
        s.version += 1;
        let mut status = patch["status"].clone();
        strip_directives(&mut status);
        // The answer carries the new resourceVersion and the patched status (the fake keeps
        // no pods, so nothing else of the pod).
        return json_response(
            StatusCode::OK,
            &json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": s.version.to_string()},
                "status": status,
            }),
        );
    }
    if let [
        "api",
        "v1",
        "namespaces",
        _,
        "serviceaccounts",
        account,
        "token",
    ] = parts.as_slice()
        && method == hyper::Method::POST
    {
        // TokenRequest: the token names the account, the bound pod and the request's number.
        let mut answer: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        s.version += 1;
        let pod = answer["spec"]["boundObjectRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        answer["status"] = json!({
            "token": format!("token-{account}-{pod}-{}", s.version),
            "expirationTimestamp": "2099-01-01T00:00:00Z",
        });
        return json_response(StatusCode::CREATED, &answer);
    }
    if let [
        "apis",
        "events.k8s.io",
        "v1",
        "namespaces",
        ns,
        "events",
        rest @ ..,
    ] = parts.as_slice()
    {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        s.event_requests.push((method.to_string(), body.clone()));
        let mut answer = body;
        answer["apiVersion"] = json!("events.k8s.io/v1");
        answer["kind"] = json!("Event");
        answer["metadata"]["namespace"] = json!(ns);
        if let [name] = rest {
            answer["metadata"]["name"] = json!(name);
        }
        let code = if method == hyper::Method::POST {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return json_response(code, &answer);
    }
    let (ns, resource, name) = match parts.as_slice() {
        ["api", "v1", "namespaces", ns, resource] => (*ns, *resource, None),
        ["api", "v1", "namespaces", ns, resource, name] => (*ns, *resource, Some(*name)),
        _ => {
            // Anything else (nodes, leases): creates and writes are echoed with a UID and a
            // new resourceVersion; nothing is stored, so reads find nothing.
            if method != hyper::Method::GET && method != hyper::Method::DELETE {
                let mut answer: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
                s.version += 1;
                if answer.get("metadata").is_none_or(|m| !m.is_object()) {
                    answer["metadata"] = json!({});
                }
                answer["metadata"]["resourceVersion"] = json!(s.version.to_string());
                if answer["metadata"].get("uid").is_none() {
                    answer["metadata"]["uid"] = json!(format!("uid-{}", s.version));
                }
                strip_directives(&mut answer);
                let code = if method == hyper::Method::POST {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return json_response(code, &answer);
            }
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("{path} not found"), "reason": "NotFound", "code": 404,
                }),
            );
        }
    };
    let kind = match resource {
        "secrets" => "Secret",
        "services" => "Service",
        _ => "ConfigMap",
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
