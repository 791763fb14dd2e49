//! Pod builders and waits shared by the e2e tests.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, Toleration};
use kube::api::{Api, ObjectMeta};

use crate::wait_for;

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
    let mut last = None;
    wait_for(&format!("pod {name} to be {want}"), timeout, || async {
        last = api.get_opt(name).await.ok().flatten();
        last.as_ref().and_then(phase).as_deref() == Some(want)
    })
    .await;
    last.expect("pod")
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
    let mut last = None;
    wait_for(&format!("node {name} Ready={status}"), timeout, || async {
        last = api.get_opt(name).await.ok().flatten();
        last.as_ref()
            .and_then(|n| node_condition(n, "Ready"))
            .is_some_and(|(s, _)| s == status)
    })
    .await;
    last.expect("node")
}

/// A config file body for `vk run` with the mock provider.
pub fn mock_config(extra: &str) -> String {
    format!("provider: mock\nhealth_port: 0\nmock:\n  log_interval_ms: 200\n{extra}")
}
