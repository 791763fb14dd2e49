//! Pods on the virtual node, end to end: kube-scheduler binds them, vk runs them through the
//! mock provider and mirrors their status; deletion, exit codes, the active deadline, and a vk
//! crash.

use std::path::Path;
use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{phase, pod_for_node, wait_events, wait_phase};
use e2e::vk::health_get;
use e2e::wait_for;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

/// The mock provider's persisted view of "the cloud": instances by pod UID, and how many
/// times each UID was created.
fn cloud_state(path: &Path) -> serde_json::Value {
    serde_json::to_value(mock::Persisted::load(path)).unwrap_or(serde_json::Value::Null)
}

fn instance_exists(path: &Path, uid: &str) -> bool {
    cloud_state(path)["instances"].get(uid).is_some()
}

fn creates(path: &Path, uid: &str) -> u64 {
    cloud_state(path)["creates"][uid].as_u64().unwrap_or(0)
}

/// A vk with the mock provider persisting its state, and a namespace.
async fn setup(prefix: &str) -> TestBed {
    Options::mock(prefix).state_file().start().await
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

#[tokio::test]
async fn example_build_pod_is_scheduled_to_the_virtual_node_and_runs() {
    let s = setup("vk-build").await;
    // The example's golang script runs ~10 s; the mock keeps containers running.
    s.create_example_pod("jenkins-build-pod.yaml").await;
    let running = wait_phase(&s.pods, "build-demo", "Running", Duration::from_secs(60)).await;
    assert_eq!(
        running.spec.as_ref().unwrap().node_name.as_deref(),
        Some(s.vk.node.as_str())
    );
    let status = running.status.unwrap();
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    let names: Vec<_> = status
        .container_statuses
        .unwrap()
        .into_iter()
        .map(|c| {
            assert!(c.state.unwrap().running.is_some(), "{} not running", c.name);
            c.name
        })
        .collect();
    assert_eq!(names, ["jnlp", "golang", "kaniko"]);
    assert_eq!(
        status.host_ip.as_deref(),
        Some(e2e::cluster().node_ip.as_str())
    );
    assert!(status.pod_ip.is_some());
    assert!(status.start_time.is_some());

    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    wait_events(
        &events,
        "build-demo",
        &["Scheduled", "ProviderCreated", "Started"],
    )
    .await;
}

#[tokio::test]
async fn pod_without_the_toleration_is_not_placed_on_the_virtual_node() {
    let s = setup("vk-taint").await;
    let mut pod = pod_for_node("intolerant", &s.vk.node, &["main"], &[]);
    pod.spec.as_mut().unwrap().tolerations = None;
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    wait_for(
        "FailedScheduling because of the taint",
        Duration::from_secs(60),
        || async {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=intolerant"))
                .await
                .unwrap();
            list.items.iter().any(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && e.message
                        .as_deref()
                        .unwrap_or_default()
                        .contains("untolerated taint")
            })
        },
    )
    .await;
    let pod = s.pods.get("intolerant").await.unwrap();
    assert_eq!(phase(&pod).as_deref(), Some("Pending"));
    assert!(pod.spec.unwrap().node_name.is_none());
}

#[tokio::test]
async fn exit_codes_decide_succeeded_or_failed() {
    let s = setup("vk-exit").await;
    let ok = pod_for_node(
        "exits-zero",
        &s.vk.node,
        &["main"],
        &[("mock.vk.io/run-ms", "500")],
    );
    let bad = pod_for_node(
        "exits-three",
        &s.vk.node,
        &["main", "side"],
        &[
            ("mock.vk.io/run-ms", "500"),
            ("mock.vk.io/exit-code.main", "3"),
        ],
    );
    s.pods.create(&PostParams::default(), &ok).await.unwrap();
    s.pods.create(&PostParams::default(), &bad).await.unwrap();

    let done = wait_phase(&s.pods, "exits-zero", "Succeeded", Duration::from_secs(60)).await;
    let c = &done.status.unwrap().container_statuses.unwrap()[0];
    let t = c
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .expect("terminated");
    assert_eq!(t.exit_code, 0);
    assert_eq!(t.reason.as_deref(), Some("Completed"));
    assert!(t.finished_at.is_some());

    let failed = wait_phase(&s.pods, "exits-three", "Failed", Duration::from_secs(60)).await;
    let statuses = failed.status.unwrap().container_statuses.unwrap();
    let main = statuses.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(
        main.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        3
    );
    let side = statuses.iter().find(|c| c.name == "side").unwrap();
    assert_eq!(
        side.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        0
    );
}

#[tokio::test]
async fn deleting_a_pod_removes_it_from_the_api_and_the_provider() {
    let s = setup("vk-del").await;
    let pod = pod_for_node("doomed", &s.vk.node, &["main"], &[]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = wait_phase(&s.pods, "doomed", "Running", Duration::from_secs(60)).await;
    let uid = uid(&running);
    assert!(instance_exists(s.state_file(), &uid));
    s.pods
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "the pod to leave the API",
        Duration::from_secs(30),
        || async { s.pods.get_opt("doomed").await.unwrap().is_none() },
    )
    .await;
    wait_for(
        "the instance to leave the provider",
        Duration::from_secs(10),
        || async { !instance_exists(s.state_file(), &uid) },
    )
    .await;
}

#[tokio::test]
async fn active_deadline_fails_the_pod_and_stops_its_instance() {
    let s = setup("vk-deadline").await;
    let mut pod = pod_for_node("bounded", &s.vk.node, &["build"], &[]);
    pod.spec.as_mut().unwrap().active_deadline_seconds = Some(6);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = wait_phase(&s.pods, "bounded", "Running", Duration::from_secs(60)).await;
    let uid = uid(&running);
    assert!(instance_exists(s.state_file(), &uid));

    let failed = wait_phase(&s.pods, "bounded", "Failed", Duration::from_secs(60)).await;
    let status = failed.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    let started = status.start_time.expect("start time").0;
    let build = &status.container_statuses.unwrap()[0];
    let terminated = build
        .state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .expect("the container was stopped");
    let finished = terminated.finished_at.as_ref().expect("finished at").0;
    assert!(
        finished.duration_since(started).as_secs() >= 6,
        "stopped before the deadline: started {started}, finished {finished}"
    );
    // The instance is gone from the cloud; the pod stays in the API, as with the kubelet.
    wait_for(
        "the instance to leave the provider",
        Duration::from_secs(10),
        || async { !instance_exists(s.state_file(), &uid) },
    )
    .await;
    assert!(s.pods.get_opt("bounded").await.unwrap().is_some());
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    wait_events(&events, "bounded", &["DeadlineExceeded"]).await;
}

#[tokio::test]
async fn vk_killed_mid_flight_loses_and_duplicates_nothing() {
    let mut s = setup("vk-crash").await;
    // Some pods are still being created (2 s start latency), some finish while vk is down.
    let mut names = Vec::new();
    for i in 0..6 {
        let name = format!("p{i}");
        let annotations: Vec<(&str, &str)> = match i % 3 {
            0 => vec![("mock.vk.io/start-latency-ms", "2000")],
            1 => vec![("mock.vk.io/run-ms", "3000")],
            _ => vec![],
        };
        let pod = pod_for_node(&name, &s.vk.node, &["main"], &annotations);
        s.pods.create(&PostParams::default(), &pod).await.unwrap();
        names.push(name);
    }
    wait_for(
        "every pod to reach the provider",
        Duration::from_secs(60),
        || async {
            let list = s.pods.list(&ListParams::default()).await.unwrap();
            list.items.len() == 6
                && list
                    .items
                    .iter()
                    .all(|p| creates(s.state_file(), &uid(p)) >= 1)
        },
    )
    .await;
    s.vk.kill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    s.vk.restart();

    for (i, name) in names.iter().enumerate() {
        let want = if i % 3 == 1 { "Succeeded" } else { "Running" };
        let pod = wait_phase(&s.pods, name, want, Duration::from_secs(60)).await;
        assert_eq!(
            creates(s.state_file(), &uid(&pod)),
            1,
            "pod {name} was created more than once"
        );
    }
    let state = cloud_state(s.state_file());
    assert_eq!(
        state["instances"].as_object().map(|m| m.len()),
        Some(6),
        "{state}"
    );
}

#[tokio::test]
async fn provider_errors_are_retried_or_fail_the_pod_with_a_reason() {
    let s = setup("vk-errors").await;
    let flaky = pod_for_node(
        "flaky",
        &s.vk.node,
        &["main"],
        &[("mock.vk.io/create-error", "transient:2")],
    );
    let never = pod_for_node(
        "invalid-never",
        &s.vk.node,
        &["main"],
        &[("mock.vk.io/create-error", "invalid")],
    );
    let mut always = pod_for_node(
        "invalid-always",
        &s.vk.node,
        &["main"],
        &[("mock.vk.io/create-error", "invalid")],
    );
    always.spec.as_mut().unwrap().restart_policy = Some("Always".into());
    for pod in [&flaky, &never, &always] {
        s.pods.create(&PostParams::default(), pod).await.unwrap();
    }

    // Transient: retried with backoff until the provider accepts it; the user sees why it waited.
    wait_phase(&s.pods, "flaky", "Running", Duration::from_secs(60)).await;
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    let list = wait_events(&events, "flaky", &["ProviderCreateFailed"]).await;
    assert!(
        list.iter()
            .any(|e| e.reason.as_deref() == Some("ProviderCreateFailed")
                && e.type_.as_deref() == Some("Warning")),
        "no ProviderCreateFailed Warning"
    );

    // Permanent with restartPolicy Never: Failed, with the provider's reason.
    let failed = wait_phase(&s.pods, "invalid-never", "Failed", Duration::from_secs(60)).await;
    assert_eq!(
        failed.status.unwrap().reason.as_deref(),
        Some("MockInvalidSpec")
    );

    // Permanent with restartPolicy Always: Pending, the reason on the container.
    wait_for(
        "invalid-always to show its reason",
        Duration::from_secs(60),
        || async {
            let pod = s.pods.get("invalid-always").await.unwrap();
            let status = pod.status.unwrap_or_default();
            let reason = status
                .container_statuses
                .unwrap_or_default()
                .first()
                .and_then(|c| c.state.clone())
                .and_then(|st| st.waiting)
                .and_then(|w| w.reason);
            status.phase.as_deref() == Some("Pending")
                && reason.as_deref() == Some("MockInvalidSpec")
        },
    )
    .await;
}

#[tokio::test]
async fn vk_metrics_count_pod_starts_status_writes_and_creates() {
    let port = e2e::vk::free_port();
    let s = Options::mock("vk-metrics")
        .config(&format!("health_port: {port}\n"))
        .start()
        .await;
    for name in ["m1", "m2"] {
        let pod = pod_for_node(name, &s.vk.node, &["main"], &[]);
        s.pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    for name in ["m1", "m2"] {
        wait_phase(&s.pods, name, "Running", Duration::from_secs(60)).await;
    }
    let answer = health_get(port, "/metrics").await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("application/openmetrics-text"),
        "{answer}"
    );
    for line in [
        "vk_pod_start_seconds_count 2",
        "vk_provider_creates_total{result=\"ok\"} 2",
        "# EOF",
    ] {
        assert!(answer.contains(line), "{line} missing:\n{answer}");
    }
    let writes: u64 = answer
        .lines()
        .find_map(|l| l.strip_prefix("vk_pod_status_writes_total{result=\"ok\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(writes >= 2, "{answer}");
    assert!(health_get(port, "/healthz").await.ends_with("ok"));
}
