//! The virtual node on the real control plane: registration, Lease, readiness, recreation,
//! and what the controller-manager concludes when vk goes away. vk runs with the
//! ServiceAccount token from manifests/base only.

use std::time::Duration;

use e2e::harness::Options;
use e2e::pods::{node_condition, wait_node_ready};
use e2e::vk::service_account_kubeconfig;
use e2e::{client, kubectl, repo_root, unique, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};

#[tokio::test]
async fn node_registers_turns_ready_and_renews_its_lease() {
    let s = Options::mock("vk-reg").start_node().await;
    let (client, nodes, name) = (&s.client, &s.nodes, s.vk.node.clone());
    let node = wait_node_ready(nodes, &name, "True", Duration::from_secs(60)).await;

    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("type").map(String::as_str),
        Some("virtual-kubelet")
    );
    assert_eq!(
        labels.get("kubernetes.io/role").map(String::as_str),
        Some("agent")
    );
    assert_eq!(labels.get("kubernetes.io/hostname"), Some(&name));
    assert_eq!(
        labels
            .get("node.kubernetes.io/instance-type")
            .map(String::as_str),
        Some("mock")
    );
    let spec = node.spec.clone().unwrap_or_default();
    let taints = spec.taints.unwrap_or_default();
    assert!(
        taints.iter().any(|t| t.key == "virtual-kubelet.io/provider"
            && t.value.as_deref() == Some("mock")
            && t.effect == "NoSchedule"),
        "{taints:?}"
    );
    let status = node.status.clone().unwrap_or_default();
    let capacity = status.capacity.unwrap_or_default();
    for resource in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(capacity.contains_key(resource), "capacity lacks {resource}");
    }
    let addresses = status.addresses.unwrap_or_default();
    assert!(
        addresses
            .iter()
            .any(|a| a.type_ == "InternalIP" && a.address == e2e::cluster().node_ip)
    );
    assert_eq!(
        status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port),
        Some(i32::from(s.vk.kubelet_port))
    );
    let info = status.node_info.unwrap_or_default();
    assert!(
        info.kubelet_version.contains("vk-serverless"),
        "{}",
        info.kubelet_version
    );
    for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(
            node_condition(&node, pressure).map(|c| c.0).as_deref(),
            Some("False")
        );
    }

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    // The first renewal follows registration; on a loaded machine it may trail Ready.
    wait_for("the node's lease", Duration::from_secs(30), || async {
        leases.get_opt(&name).await.ok().flatten().is_some()
    })
    .await;
    let first = leases.get(&name).await.expect("the node's lease");
    let spec = first.spec.clone().unwrap_or_default();
    assert_eq!(spec.lease_duration_seconds, Some(40));
    assert_eq!(spec.holder_identity.as_deref(), Some(name.as_str()));
    let owner = first.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.kind.as_str()), Some("Node"));
    assert_eq!(
        owner.first().map(|o| o.uid.clone()),
        node.metadata.uid.clone()
    );
    let renewed_at = spec.renew_time.expect("renewTime").0;
    wait_for(
        "the lease to be renewed",
        Duration::from_secs(30),
        || async {
            let lease = leases.get(&name).await.unwrap();
            lease
                .spec
                .and_then(|s| s.renew_time)
                .is_some_and(|t| t.0 > renewed_at)
        },
    )
    .await;
}

#[tokio::test]
async fn deleted_node_is_registered_again() {
    let s = Options::mock("vk-recreate").start_node().await;
    let (nodes, name) = (s.nodes.clone(), s.vk.node.clone());
    let first = wait_node_ready(&nodes, &name, "True", Duration::from_secs(60)).await;
    nodes.delete(&name, &DeleteParams::default()).await.unwrap();
    wait_for(
        "the node to come back under a new UID",
        Duration::from_secs(30),
        || async {
            nodes
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .is_some_and(|n| n.metadata.uid != first.metadata.uid)
        },
    )
    .await;
    wait_node_ready(&nodes, &name, "True", Duration::from_secs(30)).await;
}

#[tokio::test]
async fn failing_provider_ping_makes_the_node_not_ready() {
    let flag = std::env::temp_dir().join(format!("{}.ping-fails", unique("vk-ping")));
    let s = Options::mock("vk-ping")
        .config(&format!("  ping_fail_file: {}\n", flag.display()))
        .start_node()
        .await;
    let (nodes, name) = (s.nodes.clone(), s.vk.node.clone());
    std::fs::write(&flag, "down").unwrap();
    let node = wait_node_ready(&nodes, &name, "False", Duration::from_secs(40)).await;
    assert_eq!(
        node_condition(&node, "Ready").and_then(|c| c.1).as_deref(),
        Some("ProviderUnreachable")
    );
    std::fs::remove_file(&flag).unwrap();
    wait_node_ready(&nodes, &name, "True", Duration::from_secs(40)).await;
}

#[tokio::test]
async fn node_turns_not_ready_while_vk_is_stopped_and_ready_when_it_returns() {
    let mut s = Options::mock("vk-away").start_node().await;
    let (nodes, name) = (s.nodes.clone(), s.vk.node.clone());
    let vk = &mut s.vk;
    assert_eq!(
        vk.terminate(),
        Some(0),
        "vk did not stop cleanly on SIGTERM"
    );
    // The node lifecycle controller (grace period 30 s in e2e/cluster) marks it Unknown.
    let node = wait_node_ready(&nodes, &name, "Unknown", Duration::from_secs(120)).await;
    assert_eq!(
        node_condition(&node, "Ready").and_then(|c| c.1).as_deref(),
        Some("NodeStatusUnknown")
    );
    vk.restart();
    wait_node_ready(&nodes, &name, "True", Duration::from_secs(60)).await;
}

#[tokio::test]
async fn manifests_apply_with_server_side_dry_run() {
    // Dry-run cannot create the namespace the other objects live in; make it exist first.
    let client = client().await;
    service_account_kubeconfig(&client).await;
    let base = repo_root().join("manifests/base");
    let out = kubectl(&["apply", "-k", &base.to_string_lossy(), "--dry-run=server"]);
    assert!(
        out.status.success(),
        "kubectl apply -k manifests/base --dry-run=server failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let examples = repo_root().join("manifests/examples");
    let out = kubectl(&[
        "apply",
        "-k",
        &examples.to_string_lossy(),
        "--dry-run=server",
        "-n",
        "default",
    ]);
    assert!(
        out.status.success(),
        "kubectl apply -k manifests/examples --dry-run=server failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
