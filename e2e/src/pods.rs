//! Pod builders and waits shared by the e2e tests.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Event, Node, Pod, PodSpec, Toleration};
use kube::api::{Api, ListParams, ObjectMeta};

/// A pod aimed at one virtual node: nodeSelector on its hostname and the provider toleration,
/// as a build pod template has them.
pub fn pod_for_node(
    name: &str,
    node: &str,
    containers: &[&str],
    annotations: &[(&str, &str)],
) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: containers
                .iter()
                .map(|c| Container {
                    name: c.to_string(),
                    image: Some("busybox:1.36".into()),
                    command: Some(vec![
                        "sh".into(),
                        "-c".into(),
                        "echo hello; sleep 3600".into(),
                    ]),
                    ..Default::default()
                })
                .collect(),
            restart_policy: Some("Never".into()),
            node_selector: Some([("kubernetes.io/hostname".to_string(), node.to_string())].into()),
            tolerations: Some(vec![Toleration {
                key: Some("virtual-kubelet.io/provider".into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            }]),
            termination_grace_period_seconds: Some(5),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn phase(pod: &Pod) -> Option<String> {
    pod.status.as_ref().and_then(|s| s.phase.clone())
}

/// Wait until the pod's phase is `want`; returns the pod.
pub async fn wait_phase(api: &Api<Pod>, name: &str, want: &str, timeout: Duration) -> Pod {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let pod = api.get_opt(name).await.ok().flatten();
        if let Some(pod) = pod.as_ref().filter(|p| phase(p).as_deref() == Some(want)) {
            return pod.clone();
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for pod {name} to be {want}; last seen: {:?}",
                pod.and_then(|p| p.status)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The events about `object` once an event with each of `reasons` is among them. vk publishes
/// events in the background, after the status they go with, so a test that saw the status
/// waits for them.
pub async fn wait_events(events: &Api<Event>, object: &str, reasons: &[&str]) -> Vec<Event> {
    // Generous: on a loaded 2-core machine a pod's first start can take most of a minute.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let params = ListParams::default().fields(&format!("involvedObject.name={object}"));
    loop {
        let items = events
            .list(&params)
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let seen: Vec<&str> = items.iter().filter_map(|e| e.reason.as_deref()).collect();
        if reasons.iter().all(|r| seen.contains(r)) {
            return items;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for events {reasons:?} about {object}; seen: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until container `container` of pod `name` has terminated (the pod may run on).
pub async fn wait_container_terminated(
    api: &Api<Pod>,
    name: &str,
    container: &str,
    timeout: Duration,
) {
    crate::wait_for(
        &format!("container {container} of pod {name} to terminate"),
        timeout,
        || async {
            let pod = api.get_opt(name).await.ok().flatten();
            pod.and_then(|p| p.status?.container_statuses)
                .unwrap_or_default()
                .iter()
                .any(|c| {
                    c.name == container && c.state.as_ref().is_some_and(|s| s.terminated.is_some())
                })
        },
    )
    .await;
}

pub fn node_condition(node: &Node, type_: &str) -> Option<(String, Option<String>)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Wait until the node's Ready condition has `status`.
pub async fn wait_node_ready(api: &Api<Node>, name: &str, status: &str, timeout: Duration) -> Node {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let node = api.get_opt(name).await.ok().flatten();
        let ready = node.as_ref().and_then(|n| node_condition(n, "Ready"));
        if ready.as_ref().is_some_and(|(s, _)| s == status)
            && let Some(node) = node
        {
            return node;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for node {name} Ready={status}; last seen: {ready:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A config file body for `vk run` with the mock provider.
pub fn mock_config(extra: &str) -> String {
    // vk's health port (and /metrics) is off unless the test asks for one.
    let health = if extra.contains("health_port:") {
        ""
    } else {
        "health_port: 0\n"
    };
    format!("provider: mock\n{health}mock:\n  log_interval_ms: 200\n{extra}")
}

/// A ClusterIP Service `name` (selecting `app=<name>`) with `ports` (name, port), as a test makes it.
pub fn service(name: &str, ports: &[(&str, i32)]) -> k8s_openapi::api::core::v1::Service {
    use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
    Service {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), name.to_string())].into()),
            ports: Some(
                ports
                    .iter()
                    .map(|(port_name, port)| ServicePort {
                        name: Some(port_name.to_string()),
                        port: *port,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ClusterIP the API server gave `svc`.
pub fn cluster_ip(svc: &k8s_openapi::api::core::v1::Service) -> String {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .expect("the Service has a ClusterIP")
}
