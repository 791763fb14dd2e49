//! Authentication and authorization: the kubelet's attribute mapping, certificate and token
//! identities, the cached decisions, and the 401/403/500 answers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::{Method, Request};
use tokio::net::TcpListener;

use super::{Caller, Harness, NODE, Pki, TestProvider, status_of, store_with_build_pod};
use crate::kubelet::auth::{Gate, Rejection, api_verb, subresources};
use crate::kubelet::{AuthError, ClientIdentity, KubeletAuth, KubeletServer, NodeAccess, Reviewer};

/// Knows some tokens, allows some (user, verb, subresource), counts what it was asked.
#[derive(Default)]
struct FakeReviewer {
    tokens: HashMap<String, ClientIdentity>,
    allowed: HashSet<(String, &'static str, &'static str)>,
    /// Users whose reviews fail as if the API server were down.
    failing: HashSet<String>,
    token_calls: AtomicUsize,
    access_calls: Mutex<Vec<(ClientIdentity, NodeAccess)>>,
}

impl FakeReviewer {
    fn allow(mut self, user: &str, verb: &'static str, subresource: &'static str) -> Self {
        self.allowed.insert((user.to_string(), verb, subresource));
        self
    }

    fn token(mut self, token: &str, who: ClientIdentity) -> Self {
        self.tokens.insert(token.to_string(), who);
        self
    }

    fn asked(&self) -> Vec<&'static str> {
        let calls = self.access_calls.lock().unwrap();
        calls.iter().map(|(_, a)| a.subresource).collect()
    }
}

#[async_trait]
impl Reviewer for FakeReviewer {
    async fn review_token(&self, token: &str) -> Result<Option<ClientIdentity>, AuthError> {
        self.token_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.tokens.get(token).cloned())
    }

    async fn review_access(
        &self,
        who: &ClientIdentity,
        access: &NodeAccess,
    ) -> Result<bool, AuthError> {
        self.access_calls
            .lock()
            .unwrap()
            .push((who.clone(), access.clone()));
        if self.failing.contains(&who.user) {
            let down = std::io::Error::other("API server down");
            return Err(AuthError::Api(kube::Error::ReadEvents(down)));
        }
        assert_eq!(access.node_name, NODE);
        let key = (who.user.clone(), access.verb, access.subresource);
        Ok(self.allowed.contains(&key))
    }
}

fn server_with(reviewer: Arc<FakeReviewer>) -> KubeletServer {
    KubeletServer::new(
        NODE,
        Arc::new(TestProvider::new()),
        store_with_build_pod(),
        KubeletAuth::Reviewer(reviewer),
    )
}

fn get(path: &str, authorization: Option<&str>) -> Request<Empty<Bytes>> {
    let mut req = Request::get(path);
    if let Some(value) = authorization {
        req = req.header(AUTHORIZATION, value);
    }
    req.body(Empty::new()).unwrap()
}

#[test]
fn subresources_follow_the_kubelet() {
    for (path, expected) in [
        ("/stats/summary", vec!["stats"]),
        ("/stats", vec!["stats"]),
        ("/statsx", vec!["proxy"]),
        ("/metrics/resource", vec!["metrics"]),
        ("/logs/messages", vec!["log"]),
        ("/pods", vec!["pods", "proxy"]),
        ("/runningpods/", vec!["pods", "proxy"]),
        ("/healthz", vec!["healthz", "proxy"]),
        ("/containerLogs/ci/build/app", vec!["proxy"]),
        ("/exec/ci/build/app", vec!["proxy"]),
        ("/", vec!["proxy"]),
    ] {
        assert_eq!(subresources(path), expected, "{path}");
    }
    assert_eq!(api_verb(&Method::GET), Some("get"));
    assert_eq!(api_verb(&Method::HEAD), Some("get"));
    assert_eq!(api_verb(&Method::POST), Some("create"));
    assert_eq!(api_verb(&Method::PUT), Some("update"));
    assert_eq!(api_verb(&Method::PATCH), Some("patch"));
    assert_eq!(api_verb(&Method::DELETE), Some("delete"));
    assert_eq!(api_verb(&Method::OPTIONS), None);
}

#[test]
fn certificate_subject_is_the_identity() {
    let pki = Pki::new();
    let der = pki.client_certificate("system:node:n1", &["system:nodes", "ops"]);
    assert_eq!(
        ClientIdentity::from_certificate(&der),
        Some(ClientIdentity::new(
            "system:node:n1",
            &["system:nodes", "ops"]
        ))
    );
    assert_eq!(ClientIdentity::from_certificate(b"not a certificate"), None);
}

#[tokio::test]
async fn disabled_for_dev_allows_anonymous() {
    let h = Harness::open().await;
    for path in ["/healthz", "/stats/summary", "/containerLogs/ci/build/app"] {
        assert_eq!(h.get(path).await.status, 200, "{path}");
    }
    h.stop().await;
}

/// A kube client for an API server that refuses connections.
async fn unreachable_api() -> kube::Client {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}").parse().unwrap();
    kube::Client::try_from(kube::Config::new(url)).unwrap()
}

#[tokio::test]
async fn webhook_without_identity_is_401() {
    let h = Harness::start(KubeletAuth::Webhook {
        client: unreachable_api().await,
    })
    .await;
    // Unknown routes too: an anonymous caller learns nothing about the routes.
    for path in ["/healthz", "/containerLogs/ci/build/app", "/nowhere"] {
        let (code, reason, message) = status_of(h.get(path).await).await;
        assert_eq!(
            (code, reason.as_str(), message.as_str()),
            (401, "Unauthorized", "Unauthorized")
        );
    }
    // A token the API server cannot vouch for (it is down) is no identity either.
    let reply = h
        .request(Method::GET, "/healthz", Caller::Token("some-token"))
        .await;
    assert_eq!(status_of(reply).await.0, 401);
    assert!(h.provider.calls.lock().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn certificate_identity_is_authorized_per_subresource() {
    let user = "kube-apiserver-kubelet-client";
    let reviewer = Arc::new(FakeReviewer::default().allow(user, "get", "proxy"));
    let h = Harness::start(KubeletAuth::Reviewer(reviewer.clone())).await;
    let caller = || Caller::Certificate(user, &["system:masters"]);

    let reply = h
        .request(Method::GET, "/containerLogs/ci/build/app", caller())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text().await.lines().count(), 5);

    let reply = h.request(Method::GET, "/stats/summary", caller()).await;
    assert_eq!(
        status_of(reply).await,
        (
            403,
            "Forbidden".into(),
            format!("Forbidden (user={user}, verb=get, resource=nodes, subresource(s)=[stats])")
        )
    );
    let calls = reviewer.access_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, ClientIdentity::new(user, &["system:masters"]));
    assert_eq!(
        calls[0].1,
        NodeAccess {
            verb: "get",
            subresource: "proxy",
            node_name: NODE.into()
        }
    );
    assert_eq!(reviewer.token_calls.load(Ordering::SeqCst), 0);
    h.stop().await;
}

#[tokio::test]
async fn bearer_tokens_are_reviewed_once() {
    let alice = ClientIdentity::new("alice", &["devs"]);
    let reviewer = Arc::new(
        FakeReviewer::default()
            .token("good", alice.clone())
            .allow("alice", "get", "pods"),
    );
    let server = server_with(reviewer.clone());
    for _ in 0..2 {
        let response = server.handle(get("/pods", Some("Bearer good")), None).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(reviewer.token_calls.load(Ordering::SeqCst), 1);
    assert_eq!(reviewer.asked(), ["pods"], "the decision is cached too");

    // The scheme is case-insensitive, the credential is not.
    let response = server.handle(get("/pods", Some("bearer good")), None).await;
    assert_eq!(response.status(), 200);
    for header in ["Bearer bad", "Basic Z29vZA==", "Bearer", "Bearer "] {
        let response = server.handle(get("/pods", Some(header)), None).await;
        assert_eq!(response.status(), 401, "{header}");
    }
}

#[tokio::test]
async fn pods_fall_back_to_proxy() {
    let reviewer = Arc::new(FakeReviewer::default().allow("bob", "get", "proxy"));
    let server = server_with(reviewer.clone());
    let bob = Some(ClientIdentity::new("bob", &[]));
    let response = server.handle(get("/pods", None), bob.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(reviewer.asked(), ["pods", "proxy"]);

    let response = server.handle(get("/runningpods/", None), bob).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unmapped_methods_are_forbidden_without_asking() {
    let reviewer = Arc::new(FakeReviewer::default().allow("bob", "get", "proxy"));
    let server = server_with(reviewer.clone());
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/pods")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = server
        .handle(req, Some(ClientIdentity::new("bob", &[])))
        .await;
    assert_eq!(response.status(), 403);
    assert!(reviewer.asked().is_empty());
}

#[tokio::test]
async fn review_failure_is_500() {
    let mut reviewer = FakeReviewer::default();
    reviewer.failing.insert("eve".into());
    let server = server_with(Arc::new(reviewer));
    let response = server
        .handle(
            get("/stats/summary", None),
            Some(ClientIdentity::new("eve", &[])),
        )
        .await;
    assert_eq!(response.status(), 500);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        status["message"],
        "Authorization error (user=eve, verb=get, resource=nodes, subresource=stats)"
    );
}

#[tokio::test(start_paused = true)]
async fn decisions_expire_like_the_kubelet_caches() {
    let reviewer = Arc::new(
        FakeReviewer::default()
            .token("t", ClientIdentity::new("dave", &[]))
            .allow("dave", "get", "stats"),
    );
    let gate = Gate::new(NODE, Some(reviewer.clone()));
    let token = HeaderValue::from_static("Bearer t");
    let method = Method::GET;
    let admit = |path: &'static str| gate.admit(&method, path, Some(&token), None);

    // Allowed: kept for 5 minutes. Denied: kept for 30 seconds.
    assert_eq!(admit("/stats/summary").await, Ok(()));
    assert!(matches!(
        admit("/metrics/resource").await,
        Err(Rejection::Forbidden(_))
    ));
    assert!(admit("/metrics/resource").await.is_err());
    assert_eq!(reviewer.asked(), ["stats", "metrics"]);

    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(admit("/metrics/resource").await.is_err());
    assert_eq!(admit("/stats/summary").await, Ok(()));
    assert_eq!(reviewer.asked(), ["stats", "metrics", "metrics"]);
    assert_eq!(reviewer.token_calls.load(Ordering::SeqCst), 1);

    // Tokens are kept for 2 minutes, allow decisions for 5.
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(admit("/stats/summary").await, Ok(()));
    assert_eq!(reviewer.token_calls.load(Ordering::SeqCst), 2);
    assert_eq!(reviewer.asked().len(), 3);
    tokio::time::advance(Duration::from_secs(200)).await;
    assert_eq!(admit("/stats/summary").await, Ok(()));
    assert_eq!(reviewer.asked().len(), 4);
}
