//! Container requests/limits and the pod's effective request.

use super::*;
use crate::provider::Resources;

fn res(cpu_req: &str, mem_req: &str) -> serde_json::Value {
    let mut requests = serde_json::Map::new();
    if !cpu_req.is_empty() {
        requests.insert("cpu".into(), json!(cpu_req));
    }
    if !mem_req.is_empty() {
        requests.insert("memory".into(), json!(mem_req));
    }
    json!({"requests": requests})
}

fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
    json!({"name": name, "resources": res(cpu, mem)})
}

fn sidecar(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
    json!({"name": name, "restartPolicy": "Always", "resources": res(cpu, mem)})
}

async fn effective(spec: serde_json::Value) -> (u64, u64) {
    let r = resolve(&pod(spec), &FakeSource::new()).await.unwrap();
    (r.effective_cpu_millis, r.effective_memory_bytes)
}

#[tokio::test]
async fn container_requests_and_limits() {
    let p = pod_with_container(json!({"resources": {
        "requests": {"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "0.5", "memory": "1G"},
    }}));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(
        app(&r).resources,
        Resources {
            cpu_request_millis: Some(100),
            cpu_limit_millis: Some(500),
            memory_request_bytes: Some(64 << 20),
            memory_limit_bytes: Some(1_000_000_000),
        }
    );
}

#[tokio::test]
async fn limits_default_requests() {
    let p = pod_with_container(json!({"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(
        app(&r).resources,
        Resources {
            cpu_request_millis: Some(2000),
            cpu_limit_millis: Some(2000),
            memory_request_bytes: Some(1 << 30),
            memory_limit_bytes: Some(1 << 30),
        }
    );
    assert_eq!(
        (r.effective_cpu_millis, r.effective_memory_bytes),
        (2000, 1 << 30)
    );

    // An explicit request is kept even when a limit is set.
    let p = pod_with_container(
        json!({"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}),
    );
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(app(&r).resources.cpu_request_millis, Some(1000));
    assert_eq!(app(&r).resources.memory_request_bytes, None);
}

#[tokio::test]
async fn invalid_quantities() {
    for (resources, want) in [
        (
            json!({"requests": {"cpu": "1 core"}}),
            "resources.requests.cpu",
        ),
        (
            json!({"requests": {"memory": "1GB"}}),
            "resources.requests.memory",
        ),
        (json!({"limits": {"cpu": "-1"}}), "resources.limits.cpu"),
        (json!({"limits": {"memory": ""}}), "resources.limits.memory"),
    ] {
        let p = pod_with_container(json!({"resources": resources}));
        assert_invalid(resolve(&p, &FakeSource::new()).await, want);
    }
    let p = pod(json!({"overhead": {"cpu": "x"}, "containers": []}));
    assert_invalid(resolve(&p, &FakeSource::new()).await, "overhead");
}

#[tokio::test]
async fn app_containers_add_up() {
    assert_eq!(
        effective(json!({"containers": [c("a", "100m", "1Mi"), c("b", "250m", "2Mi")]})).await,
        (350, 3 << 20)
    );
    assert_eq!(
        effective(json!({"containers": [c("a", "", ""), c("b", "", "")]})).await,
        (0, 0)
    );
}

#[tokio::test]
async fn regular_init_containers_take_the_max() {
    // Init containers run one at a time, before the app containers.
    let spec = json!({
        "initContainers": [c("i1", "2", "64Mi"), c("i2", "500m", "1Gi")],
        "containers": [c("a", "1", "128Mi"), c("b", "500m", "128Mi")],
    });
    assert_eq!(effective(spec).await, (2000, 1 << 30));
    let spec =
        json!({"initContainers": [c("i1", "100m", "1Mi")], "containers": [c("a", "1", "1Gi")]});
    assert_eq!(effective(spec).await, (1000, 1 << 30));
}

#[tokio::test]
async fn sidecars_follow_kep_753() {
    // Sidecars keep running: they add to the app containers, and every init container after
    // them needs its own request plus the sidecars already started.
    let spec = json!({
        "initContainers": [
            sidecar("s1", "100m", "10Mi"),
            c("i1", "500m", "50Mi"),   // needs 500 + 100 = 600m, 60Mi
            sidecar("s2", "200m", "20Mi"),
            c("i2", "300m", "40Mi"),   // needs 300 + 300 = 600m, 70Mi
        ],
        "containers": [c("a", "50m", "5Mi"), c("b", "50m", "5Mi")], // 100m + 300m sidecars = 400m, 40Mi
    });
    assert_eq!(effective(spec).await, (600, 70 << 20));

    // Steady state dominates when the sidecars are big.
    let spec = json!({
        "initContainers": [sidecar("s", "1", "1Gi"), c("i", "100m", "1Mi")],
        "containers": [c("a", "100m", "512Mi")],
    });
    assert_eq!(effective(spec).await, (1100, (1 << 30) + (512 << 20)));

    // An init container before the sidecar does not count it.
    let spec = json!({
        "initContainers": [c("i", "1", "1Gi"), sidecar("s", "1", "1Gi")],
        "containers": [c("a", "100m", "1Mi")],
    });
    assert_eq!(effective(spec).await, (1100, (1 << 30) + (1 << 20)));

    // Only sidecars.
    let spec =
        json!({"initContainers": [sidecar("s", "300m", "")], "containers": [c("a", "", "")]});
    assert_eq!(effective(spec).await, (300, 0));
}

#[tokio::test]
async fn limits_count_as_requests_for_the_effective_total() {
    let spec = json!({"containers": [
        {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        c("b", "500m", "1Gi"),
    ]});
    assert_eq!(effective(spec).await, (1500, 2 << 30));
}

#[tokio::test]
async fn overhead_is_added() {
    let spec = json!({
        "overhead": {"cpu": "250m", "memory": "120Mi"},
        "initContainers": [c("i", "2", "")],
        "containers": [c("a", "1", "1Gi")],
    });
    assert_eq!(effective(spec).await, (2250, (1 << 30) + (120 << 20)));
}

#[tokio::test]
async fn pod_level_resources_replace_the_container_sum() {
    let spec = json!({
        "resources": {"requests": {"cpu": "4"}, "limits": {"memory": "8Gi"}},
        "overhead": {"cpu": "100m"},
        "containers": [c("a", "1", "1Gi")],
    });
    assert_eq!(effective(spec).await, (4100, 8 << 30));
}
