//! The router: health, pod lists, stats, metrics, and the Status answers for everything else.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request};

use super::{Caller, Harness, NODE, TestProvider, status_of, store_with_build_pod};
use crate::kubelet::{KubeletAuth, KubeletServer, Summary};
use crate::provider::ProviderError;

#[tokio::test]
async fn healthz_answers_ok_over_http1_and_h2() {
    let h = Harness::open().await;
    let reply = h.get("/healthz").await;
    assert_eq!(reply.version, hyper::Version::HTTP_11);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text().await, "ok");

    let reply = h.request(Method::GET, "/healthz", Caller::H2).await;
    assert_eq!(reply.version, hyper::Version::HTTP_2);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text().await, "ok");
    h.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_status() {
    let h = Harness::open().await;
    for path in [
        "/",
        "/configz",
        "/containerLogs/ci/build",
        "/containerLogs/ci//app",
        "/containerLogs/ci/build/app/extra",
        "/stats",
        "/podsx",
    ] {
        let (code, reason, message) = status_of(h.get(path).await).await;
        assert_eq!((code, reason.as_str()), (404, "NotFound"), "{path}");
        assert_eq!(message, "the server could not find the requested resource");
    }
    h.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_status() {
    let h = Harness::open().await;
    for (method, path) in [
        (Method::POST, "/pods"),
        (Method::DELETE, "/containerLogs/ci/build/app"),
        (Method::PUT, "/stats/summary"),
    ] {
        let reply = h.request(method.clone(), path, Caller::Anonymous).await;
        let (code, reason, message) = status_of(reply).await;
        assert_eq!((code, reason.as_str()), (405, "MethodNotAllowed"));
        assert!(message.contains(method.as_str()), "{message}");
    }
    h.stop().await;
}

#[tokio::test]
async fn pods_lists_the_store() {
    let h = Harness::open().await;
    let reply = h.get("/pods").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type(), "application/json");
    let list = reply.json().await;
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["apiVersion"], "v1");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "build");
    assert_eq!(items[0]["spec"]["nodeName"], NODE);
    h.stop().await;
}

#[tokio::test]
async fn running_pods_come_from_the_provider() {
    let h = Harness::open().await;
    for path in ["/runningpods/", "/runningpods"] {
        let list = h.get(path).await.json().await;
        assert_eq!(list["kind"], "PodList");
        let pod = &list["items"][0];
        assert_eq!(pod["metadata"]["namespace"], "ci");
        assert_eq!(pod["metadata"]["name"], "build");
        assert_eq!(pod["metadata"]["uid"], "uid-build");
        assert_eq!(pod["status"]["phase"], "Running");
    }
    h.stop().await;
}

#[tokio::test]
async fn stats_summary_has_the_kubelet_shape() {
    let h = Harness::open().await;
    let reply = h.get("/stats/summary/").await;
    assert_eq!(reply.status, 200);
    let summary = reply.json().await;

    let node = &summary["node"];
    assert_eq!(node["nodeName"], NODE);
    assert!(node["startTime"].is_string());
    // Sums over every instance, the one without a pod included: 5 + 1 + 2 millicores.
    assert_eq!(node["cpu"]["usageNanoCores"], 8_000_000);
    assert_eq!(node["cpu"]["usageCoreNanoSeconds"], 6_000_000_000u64);
    assert_eq!(node["memory"]["workingSetBytes"], 20 << 20);
    assert_eq!(node["memory"]["usageBytes"], 20 << 20);
    assert!(node["cpu"]["time"].is_string());

    let pods = summary["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert_eq!(
        pod["podRef"],
        serde_json::json!({"name": "build", "namespace": "ci", "uid": "uid-build"})
    );
    assert_eq!(pod["startTime"], "2024-05-01T10:00:00Z");
    assert_eq!(pod["cpu"]["usageNanoCores"], 6_000_000);
    assert_eq!(pod["memory"]["workingSetBytes"], 16 << 20);
    let containers: HashMap<_, _> = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    assert_eq!(containers["app"]["startTime"], "2024-05-01T10:00:05Z");
    // No running state in the pod's status: the pod's start time stands in.
    assert_eq!(containers["sidecar"]["startTime"], "2024-05-01T10:00:00Z");
    assert_eq!(
        containers["app"]["cpu"]["usageCoreNanoSeconds"],
        3_000_000_000u64
    );
    assert_eq!(containers["sidecar"]["memory"]["workingSetBytes"], 6 << 20);

    let typed: Summary = serde_json::from_value(summary).unwrap();
    assert_eq!(typed.pods[0].containers.len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn stats_summary_reports_provider_failures() {
    let h = Harness::open().await;
    *h.provider.stats_error.lock().unwrap() = Some(ProviderError::Transient("busy".into()));
    let (code, reason, _) = status_of(h.get("/stats/summary").await).await;
    assert_eq!((code, reason.as_str()), (503, "ServiceUnavailable"));
    h.stop().await;
}

/// `name{labels}` -> value, after checking every sample's family has HELP and TYPE first.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut typed = HashMap::new();
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(kind == "counter" || kind == "gauge", "{line}");
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, rest) = line.rsplit_once('}').map_or_else(
            || line.split_once(' ').unwrap(),
            |(series, rest)| (series, rest.trim_start()),
        );
        let name = series.split('{').next().unwrap();
        assert!(typed.contains_key(name), "{name} has no TYPE line");
        let mut fields = rest.split(' ');
        let value: f64 = fields.next().unwrap().parse().unwrap();
        if let Some(ms) = fields.next() {
            ms.parse::<i64>().unwrap();
        }
        let series = if line.contains('{') {
            format!("{series}}}")
        } else {
            series.to_string()
        };
        out.insert(series, value);
    }
    out
}

#[tokio::test]
async fn metrics_resource_uses_the_kubelet_names() {
    let h = Harness::open().await;
    let reply = h.get("/metrics/resource").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.text().await;
    assert!(text.contains(
        "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node \
         in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\n"
    ));
    let samples = samples(&text);
    let app = r#"{container="app",namespace="ci",pod="build"}"#;
    let pod = r#"{namespace="ci",pod="build"}"#;
    assert_eq!(samples["node_cpu_usage_seconds_total"], 6.0);
    assert_eq!(
        samples["node_memory_working_set_bytes"],
        f64::from(20 << 20)
    );
    assert_eq!(samples[&format!("pod_cpu_usage_seconds_total{pod}")], 4.0);
    assert_eq!(
        samples[&format!("pod_memory_working_set_bytes{pod}")],
        f64::from(16 << 20)
    );
    assert_eq!(
        samples[&format!("container_cpu_usage_seconds_total{app}")],
        3.0
    );
    assert_eq!(
        samples[&format!("container_memory_working_set_bytes{app}")],
        f64::from(10 << 20)
    );
    assert_eq!(
        samples[&format!("container_start_time_seconds{app}")],
        1_714_557_605.0
    );
    assert_eq!(samples["resource_scrape_error"], 0.0);
    assert_eq!(samples["scrape_error"], 0.0);
    h.stop().await;
}

#[tokio::test]
async fn metrics_resource_flags_a_failed_scrape() {
    let h = Harness::open().await;
    *h.provider.stats_error.lock().unwrap() = Some(ProviderError::Transient("busy".into()));
    let reply = h.get("/metrics/resource").await;
    assert_eq!(reply.status, 200);
    let samples = samples(&reply.text().await);
    assert_eq!(samples["resource_scrape_error"], 1.0);
    assert_eq!(samples["scrape_error"], 1.0);
    assert!(!samples.contains_key("node_cpu_usage_seconds_total"));
    h.stop().await;
}

#[tokio::test]
async fn handle_serves_without_tls() {
    let server = KubeletServer::new(
        NODE,
        Arc::new(TestProvider::new()),
        store_with_build_pod(),
        KubeletAuth::DisabledForDev,
    );
    let req = Request::get("/healthz")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = server.handle(req, None).await;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "ok");
}
