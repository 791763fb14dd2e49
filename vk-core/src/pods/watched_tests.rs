//! The bookkeeping of watched namespaces, change detection, and the reflectors against the
//! fake API server of [`crate::pods::test_api`].

use std::collections::HashSet;
use std::time::Duration;

use futures::FutureExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::pods::test_api::FakeApi;

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
    eventually("a secret, a configMap and a Service watch in ci", || {
        api.open_watches() == 3
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
    // Reported only once the cache holds it, so a woken pod reads the new object.
    let cm = watched
        .cached("ci", "settings", |w| &w.config_maps)
        .await
        .expect("the created configMap in the cache when its change is reported");
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
    let cached = watched
        .cached("ci", "registry", |w| &w.secrets)
        .await
        .unwrap();
    assert_eq!(cached.data.unwrap()["token"].0, b"two");

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

    // The last pod leaving stops the watches.
    watched.remove_pod("uid-1");
    assert_eq!(watched.namespaces(), ["ci"]);
    watched.remove_pod("uid-2");
    assert!(watched.namespaces().is_empty());
    eventually("the watches closed", || api.open_watches() == 0).await;

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
    eventually("six watches", || api.open_watches() == 6).await;
    watched.retain_pods(&["kept".to_string()].into());
    assert_eq!(watched.namespaces(), ["web"]);
    eventually("the ci watches closed", || api.open_watches() == 3).await;
}

fn pod_with_token_volume(name: &str, uid: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ci", "uid": uid},
        "spec": {
            "serviceAccountName": "builder",
            "containers": [{"name": "main", "image": "busybox"}],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"serviceAccountToken": {"path": "vault", "audience": "vault", "expirationSeconds": 600}},
            ]}}],
        },
    }))
    .unwrap()
}

fn token_requests(api: &FakeApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.starts_with("POST") && r.contains("/serviceaccounts/builder/token"))
        .count()
}

#[tokio::test]
async fn tokens_asked_for_ahead_are_used_once_by_the_pods_resolution() {
    let api = FakeApi::start().await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let watched = WatchedNamespaces::new(api.client(), tx);
    let pod = pod_with_token_volume("build-1", "uid-1");
    watched.prefetch_tokens(&pod);
    watched.prefetch_tokens(&pod);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while token_requests(&api) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            api.requests()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Both tokens of the volume, once each, bound to the pod.
    let first = watched
        .service_account_token("ci", "builder", "build-1", "uid-1", None, 3607)
        .await
        .unwrap();
    let vault = watched
        .service_account_token("ci", "builder", "build-1", "uid-1", Some("vault"), 600)
        .await
        .unwrap();
    assert!(first.starts_with("token-builder-build-1-"), "{first}");
    assert!(vault.starts_with("token-builder-build-1-") && vault != first);
    assert_eq!(
        token_requests(&api),
        2,
        "the resolution took the tokens asked for ahead"
    );
    // Taken once: the next resolution (a refresh) asks again.
    let again = watched
        .service_account_token("ci", "builder", "build-1", "uid-1", None, 3607)
        .await
        .unwrap();
    assert_ne!(again, first);
    assert_eq!(token_requests(&api), 3);
}

#[tokio::test]
async fn tokens_asked_for_ahead_are_dropped_with_their_pod() {
    let api = FakeApi::start().await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let watched = WatchedNamespaces::new(api.client(), tx);
    watched.prefetch_tokens(&pod_with_token_volume("build-2", "uid-2"));
    assert_eq!(lock(&watched.prefetched).len(), 2);
    watched.remove_pod("uid-2");
    assert!(lock(&watched.prefetched).is_empty());
    // A pod without a token volume asks for nothing.
    let plain: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ci", "uid": "uid-3"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .unwrap();
    watched.prefetch_tokens(&plain);
    assert!(lock(&watched.prefetched).is_empty());
}

fn service_json(name: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "ci"},
        "spec": {"clusterIP": ip, "ports": [{"port": 80}]},
    })
}

#[tokio::test]
async fn services_come_from_the_namespaces_cache_and_wake_no_pod() {
    let api = FakeApi::start().await;
    api.put("services", service_json("jenkins", "10.96.1.1"));
    let (tx, mut changes) = mpsc::unbounded_channel();
    let watched = WatchedNamespaces::new(api.client(), tx);

    // Not watched yet: one list of the namespace.
    let names = |services: Vec<k8s_openapi::api::core::v1::Service>| -> Vec<String> {
        let mut names: Vec<String> = services
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(watched.services("ci").await.unwrap()), ["jenkins"]);
    let lists = |api: &FakeApi| {
        api.requests()
            .iter()
            .filter(|r| {
                r.starts_with("GET /api/v1/namespaces/ci/services?") && !r.contains("watch=true")
            })
            .count()
    };
    assert_eq!(lists(&api), 1);

    watched.add_pod("ci", "uid-1");
    eventually("three watches in ci", || api.open_watches() == 3).await;
    eventually("the Services' first list in the cache", || {
        watched
            .cached_services("ci")
            .now_or_never()
            .flatten()
            .is_some()
    })
    .await;
    let listed = lists(&api);
    api.put("services", service_json("cache", "10.96.1.2"));
    eventually("the new Service in the cache", || {
        watched
            .cached_services("ci")
            .now_or_never()
            .flatten()
            .is_some_and(|s| {
                s.iter()
                    .any(|s| s.metadata.name.as_deref() == Some("cache"))
            })
    })
    .await;
    assert_eq!(
        names(watched.services("ci").await.unwrap()),
        ["cache", "jenkins"]
    );
    assert_eq!(lists(&api), listed, "served from the cache");
    assert!(changes.try_recv().is_err(), "a Service change wakes no pod");
}

#[tokio::test]
async fn cluster_dns_is_configured_or_the_kube_dns_service() {
    let api = FakeApi::start().await;
    let (tx, _changes) = mpsc::unbounded_channel();
    let configured = WatchedNamespaces::new(api.client(), tx.clone())
        .with_cluster_dns(vec!["10.0.0.10".parse().unwrap()], "corp.local".into());
    let dns = configured.cluster_dns().await.unwrap();
    assert_eq!(dns.servers, ["10.0.0.10"]);
    assert_eq!(dns.domain, "corp.local");
    assert!(api.requests().is_empty(), "configured: no request");

    // Not configured and no kube-dns: none (remembered a while, not asked per pod).
    let looked_up =
        WatchedNamespaces::new(api.client(), tx).with_cluster_dns(vec![], "cluster.local".into());
    assert!(looked_up.cluster_dns().await.unwrap().servers.is_empty());
    assert!(looked_up.cluster_dns().await.unwrap().servers.is_empty());
    let gets = api
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/namespaces/kube-system/services/kube-dns"))
        .count();
    assert_eq!(gets, 1);
}

#[tokio::test]
async fn a_burst_in_a_namespace_just_watched_waits_for_its_first_lists() {
    let api = FakeApi::start().await;
    api.put("services", service_json("jenkins", "10.96.1.1"));
    api.put(
        "configmaps",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": "ci"},
            "data": {"ca.crt": "pem"},
        }),
    );
    let (tx, _changes) = mpsc::unbounded_channel();
    let watched = Arc::new(WatchedNamespaces::new(api.client(), tx));

    // Sixteen pods of one burst resolve, each in its own task (as reconcile workers do),
    // while the namespace's watch makes its first lists.
    watched.add_pod("ci", "uid-1");
    let resolves = (0..16).map(|_| {
        let watched = watched.clone();
        tokio::spawn(async move {
            let services = watched.services("ci").await.unwrap();
            let ca = watched
                .config_map("ci", "kube-root-ca.crt")
                .await
                .unwrap()
                .expect("the root CA configMap");
            (services.len(), ca.data.unwrap()["ca.crt"].clone())
        })
    });
    for answer in futures::future::join_all(resolves).await {
        assert_eq!(answer.unwrap(), (1, "pem".to_string()));
    }
    // What the API saw: the watch's one list per kind, no read of its own by any pod.
    let requests = api.requests();
    let reads = |prefix: &str| {
        requests
            .iter()
            .filter(|r| r.starts_with(prefix) && !r.contains("watch=true"))
            .count()
    };
    assert_eq!(
        reads("GET /api/v1/namespaces/ci/services"),
        1,
        "{requests:#?}"
    );
    assert_eq!(
        reads("GET /api/v1/namespaces/ci/configmaps"),
        1,
        "{requests:#?}"
    );
}
