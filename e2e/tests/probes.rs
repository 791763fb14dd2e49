//! Probes end to end, on the mock provider and on an eci node backed by `vk-cloud --executor
//! process`: a readiness probe (`test -f <file>`) keeps the pod's Ready condition False until
//! `kubectl exec` creates the file, then True (what the Jenkins kubernetes-plugin waits for
//! before it counts an agent as launched); a failing liveness probe restarts the container
//! (restartCount, `Unhealthy` and `Killing` events on the pod).

use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_events};
use e2e::{kubectl, wait_for};
use k8s_openapi::api::core::v1::{Event, ExecAction, Pod, Probe};
use kube::api::Api;

fn exec_probe(command: &[&str], failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        period_seconds: Some(1),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

fn condition(pod: &Pod, type_: &str) -> Option<(String, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn wait_ready(s: &TestBed, name: &str, want: &str) -> Pod {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pod = s.pods.get(name).await.ok();
        let ready = pod.as_ref().and_then(|p| condition(p, "Ready"));
        if let Some(pod) = pod.filter(|_| ready.as_ref().is_some_and(|(st, _)| st == want)) {
            return pod;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod {name} never became Ready={want}; last: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The readiness half: `ready_file` is the path the probe tests and `kubectl exec` creates.
async fn readiness_gates_ready(s: &TestBed, ready_file: &str) {
    let mut pod = pod_for_node("gated", &s.vk.node, &["web"], &[]);
    pod.spec.as_mut().unwrap().containers[0].readiness_probe =
        Some(exec_probe(&["test", "-f", ready_file], 3));
    s.run_pod_within(&pod, Duration::from_secs(120)).await;
    // Running and probed a few times: still not Ready.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod = s.pods.get("gated").await.unwrap();
    assert_eq!(
        condition(&pod, "Ready"),
        Some(("False".into(), Some("ContainersNotReady".into())))
    );
    assert_eq!(
        condition(&pod, "ContainersReady").map(|c| c.0).as_deref(),
        Some("False")
    );
    let web = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert!(!web.ready);
    assert_eq!(web.started, Some(true));

    let out = kubectl(&[
        "-n", &s.ns.name, "exec", "gated", "-c", "web", "--", "touch", ready_file,
    ]);
    assert!(
        out.status.success(),
        "kubectl exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod = wait_ready(s, "gated", "True").await;
    assert_eq!(
        condition(&pod, "ContainersReady").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert!(pod.status.unwrap().container_statuses.unwrap()[0].ready);
}

/// The liveness half: a probe that always fails restarts the container.
async fn liveness_restarts(s: &TestBed) {
    let mut pod = pod_for_node("doomed", &s.vk.node, &["app"], &[]);
    let spec = pod.spec.as_mut().unwrap();
    spec.restart_policy = Some("Always".into());
    spec.containers[0].liveness_probe =
        Some(exec_probe(&["sh", "-c", "echo not alive; exit 1"], 1));
    s.run_pod_within(&pod, Duration::from_secs(120)).await;
    wait_for(
        "container app of pod doomed restarted",
        Duration::from_secs(60),
        || async {
            s.pods
                .get("doomed")
                .await
                .ok()
                .and_then(|p| p.status?.container_statuses)
                .is_some_and(|c| c[0].restart_count >= 1)
        },
    )
    .await;
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    let seen = wait_events(&events, "doomed", &["Unhealthy", "Killing"]).await;
    let unhealthy = seen
        .iter()
        .find(|e| e.reason.as_deref() == Some("Unhealthy"))
        .unwrap();
    assert_eq!(
        unhealthy.message.as_deref(),
        Some("Liveness probe failed: not alive")
    );
    assert_eq!(unhealthy.type_.as_deref(), Some("Warning"));
    let killing = seen
        .iter()
        .find(|e| {
            e.reason.as_deref() == Some("Killing")
                && e.message.as_deref()
                    == Some("Container app failed liveness probe, will be restarted")
        })
        .expect("a Killing event for the liveness failure");
    assert_eq!(
        killing.involved_object.field_path.as_deref(),
        Some("spec.containers{app}")
    );
}

#[tokio::test]
async fn probes_on_the_mock_provider() {
    let s = Options::mock("vk-probes").serving_cert().start().await;
    // The mock's exec and probes both run in the pod's directory: a relative path is shared.
    readiness_gates_ready(&s, "ready").await;
    liveness_restarts(&s).await;
}

#[tokio::test]
async fn probes_on_eci_with_the_process_cloud() {
    let s = Options::eci("vk-eci-probes", "process", &[])
        .serving_cert()
        .start()
        .await;
    // Inside the container's sandbox, where both exec and the probe run.
    readiness_gates_ready(&s, "/tmp/ready").await;
    liveness_restarts(&s).await;
}
