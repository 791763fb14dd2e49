//! A build pod's start timeline and its cost on an eci node (the simulator's `simulate`
//! executor): the cloud's image events reach the pod, vk records a `StartTimeline` Event when
//! it runs, and when it ends a `Cost` Event, the `virtual-kubelet.io/cost` annotation (the
//! billed time × the billed size × the configured price) and metrics by namespace.

use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{wait_events, wait_phase};
use e2e::vk::{free_port, health_get};
use e2e::wait_for;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, PostParams};

const VCPU_SECOND: f64 = 0.001;
const GIB_SECOND: f64 = 0.0001;

async fn setup(prefix: &str, health: u16) -> TestBed {
    Options::eci(prefix, "simulate", &[])
        .config(&format!(
            "health_port: {health}\ncost:\n  currency: USD\n  prices:\n  - region: \"*\"\n    vcpu_second: {VCPU_SECOND}\n    gib_second: {GIB_SECOND}\n"
        ))
        .start()
        .await
}

/// A build step that runs `run_ms` (or forever), asking 1.5 vCPU / 3 GiB: ECI bills the next
/// specification up, 2 vCPU / 4 GiB.
fn build_pod(name: &str, node: &str, run_ms: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "restartPolicy": "Never",
            "containers": [{
                "name": "golang",
                "image": "golang:1.22",
                "command": ["sh", "-c", "go build ./..."],
                "env": [{"name": "MOCKCLOUD_RUN_MS", "value": run_ms}],
                "resources": {"requests": {"cpu": "1500m", "memory": "3Gi"}}
            }]
        }
    }))
    .unwrap()
}

fn annotation_cost(pod: &Pod) -> Option<serde_json::Value> {
    let text = pod
        .metadata
        .annotations
        .as_ref()?
        .get("virtual-kubelet.io/cost")?;
    Some(serde_json::from_str(text).expect("the cost annotation is JSON"))
}

fn reason<'a>(events: &'a [Event], reason: &str) -> &'a Event {
    events
        .iter()
        .find(|e| e.reason.as_deref() == Some(reason))
        .unwrap_or_else(|| panic!("no {reason} event"))
}

#[tokio::test]
async fn a_finished_pod_carries_its_cost_and_its_start_timeline() {
    let health = free_port();
    let s = setup("vk-cost", health).await;
    s.pods
        .create(
            &PostParams::default(),
            &build_pod("build", &s.vk.node, "3000"),
        )
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    wait_phase(&s.pods, "build", "Running", Duration::from_secs(60)).await;
    let started = wait_events(&events, "build", &["Pulled", "StartTimeline"]).await;
    let timeline = reason(&started, "StartTimeline")
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        timeline.starts_with("Running ") && timeline.contains("accepted by eci in"),
        "{timeline}"
    );
    assert!(timeline.contains("images ready"), "{timeline}");

    wait_phase(&s.pods, "build", "Succeeded", Duration::from_secs(60)).await;
    wait_for("the cost annotation", Duration::from_secs(30), || async {
        annotation_cost(&s.pods.get("build").await.unwrap()).is_some()
    })
    .await;
    let pod = s.pods.get("build").await.unwrap();
    let cost = annotation_cost(&pod).unwrap();
    let f = |k: &str| cost[k].as_f64().unwrap_or_else(|| panic!("{k} in {cost}"));
    assert_eq!((f("vcpu"), f("memoryGib")), (2.0, 4.0), "{cost}");
    assert_eq!(cost["instanceType"], "2.0-4.0Gi", "{cost}");
    assert_eq!(cost["currency"], "USD");
    assert_eq!(cost["spot"], false);
    let seconds = f("seconds");
    let expected = seconds * (2.0 * VCPU_SECOND + 4.0 * GIB_SECOND);
    assert!(
        (f("price") - expected).abs() <= expected * 1e-9,
        "price {} for {seconds} s, expected {expected}",
        f("price")
    );
    assert!((f("vcpuSeconds") - 2.0 * seconds).abs() < 1e-9);
    // The cloud bills from its image pull to the group's end: at least the step's 3 s run,
    // at most the pod's whole life.
    let created = pod.metadata.creation_timestamp.clone().unwrap().0;
    let lifetime = jiff::Timestamp::now().duration_since(created).as_secs_f64();
    assert!(
        (3.0..=lifetime + 1.0).contains(&seconds),
        "billed {seconds} s; the pod lived {lifetime} s"
    );
    let group = s
        .cloud()
        .node_groups(&s.vk.node)
        .await
        .into_iter()
        .find(|g| g.container_group_name.ends_with("build"))
        .expect("the pod's group");
    assert_eq!(group.instance_type, "2.0-4.0Gi");
    let ended = reason(&wait_events(&events, "build", &["Cost"]).await, "Cost")
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        ended.starts_with("Billed 2 vCPU / 4 GiB (2.0-4.0Gi) for "),
        "{ended}"
    );
    let metrics = health_get(health, "/metrics").await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("vk_pod_cost_total{") && l.contains(&s.ns.name))
        .unwrap_or_else(|| panic!("no cost metric for {}:\n{metrics}", s.ns.name));
    assert!(line.contains("currency=\"USD\""), "{line}");
    let total: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((total - f("price")).abs() <= f("price") * 1e-9, "{line}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vk_pod_start_timeline_seconds_count{")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_build_pod_deleted_while_it_runs_is_billed_until_its_deletion() {
    let health = free_port();
    let s = setup("vk-cost-del", health).await;
    s.pods
        .create(
            &PostParams::default(),
            &build_pod("agent", &s.vk.node, "forever"),
        )
        .await
        .unwrap();
    wait_phase(&s.pods, "agent", "Running", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.pods
        .delete("agent", &DeleteParams::default())
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    let cost = reason(&wait_events(&events, "agent", &["Cost"]).await, "Cost")
        .message
        .clone()
        .unwrap_or_default();
    assert!(cost.starts_with("Billed 2 vCPU / 4 GiB"), "{cost}");
    let seconds: f64 = cost
        .split(" for ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seconds in {cost}"));
    assert!(seconds >= 2.0, "{cost}");
    let metrics = health_get(health, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vk_pod_vcpu_seconds_total{") && l.contains(&s.ns.name)),
        "{metrics}"
    );
}
