//! Two eci virtual nodes from one `vk run` (the config's `nodes:` list), one per zone of the
//! mock cloud: each registers its own Node (zone label, kubelet port), Lease and serving
//! certificate; pods spread over the zones by a topologySpreadConstraint land on both, each
//! pod's container group in the zone and vSwitch of its node; `kubectl logs` works on both.

use std::time::Duration;

use e2e::cloud::MockCloud;
use e2e::pods::{pod_for_node, wait_node_ready, wait_phase};
use e2e::vk::{Vk, approve_serving_csr, free_port, service_account_kubeconfig};
use e2e::{TestNamespace, client, kubectl, unique, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, PostParams};

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Deletes the nodes when the test ends (after vk, declared later, is stopped).
struct Nodes(Vec<String>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &self.0 {
            let _ = kubectl(&["delete", "node", node, "--wait=false"]);
        }
    }
}

/// The subjectAltName of the certificate served at the node IP on `port` (`openssl s_client`).
fn served_certificate_names(port: u16) -> String {
    use std::process::{Command, Stdio};
    let address = format!("{}:{port}", e2e::cluster().node_ip);
    let pem = Command::new("openssl")
        .args(["s_client", "-connect", &address, "-showcerts"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("running openssl s_client");
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running openssl x509");
    {
        use std::io::Write;
        let mut stdin = x509.stdin.take().expect("stdin");
        stdin
            .write_all(&pem.stdout)
            .expect("the certificate to openssl");
    }
    let out = x509.wait_with_output().expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn two_zones_from_one_vk_spread_pods_over_both() {
    let client = client().await;
    let kubeconfig = service_account_kubeconfig(&client).await;
    let cloud = MockCloud::start("simulate", &[]);
    let base = unique("vk-zones");
    let zones = [
        ("cn-hangzhou-j", "vsw-vk-demo-j", free_port()),
        ("cn-hangzhou-k", "vsw-vk-demo-k", free_port()),
    ];
    let names: Vec<String> = zones
        .iter()
        .map(|(zone, _, _)| format!("{base}-{zone}"))
        .collect();
    let _cleanup = Nodes(names.clone());
    let mut config = format!(
        "provider: eci\nhealth_port: 0\n{}  security_group_id: sg-vk-demo\n  capacity:\n    cpu_millis: 400000\nlabels:\n  e2e.vk-serverless.io/set: {base}\nnodes:\n",
        cloud.eci_config()
    );
    for (zone, vswitch, port) in &zones {
        config.push_str(&format!(
            "- zone_id: {zone}\n  vswitch_id: {vswitch}\n  kubelet_port: {port}\n"
        ));
    }
    let vk = Vk::start(&kubeconfig, &base, &config);

    // Each node: its own CSR (approved as an operator would), Ready, its Lease, its port.
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for (name, (zone, _, port)) in names.iter().zip(&zones) {
        approve_serving_csr(&client, name).await;
        let node = wait_node_ready(&nodes, name, "True", Duration::from_secs(60)).await;
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(ZONE_LABEL).map(String::as_str), Some(*zone));
        assert_eq!(
            labels
                .get("topology.kubernetes.io/region")
                .map(String::as_str),
            Some("cn-hangzhou")
        );
        let endpoint = node
            .status
            .and_then(|s| s.daemon_endpoints)
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port);
        assert_eq!(endpoint, Some(i32::from(*port)), "{name}");
        let lease = leases.get(name).await.expect("the node's own Lease");
        assert_eq!(
            lease.spec.and_then(|s| s.holder_identity).as_deref(),
            Some(name.as_str())
        );
        let path = format!("/api/v1/nodes/{name}/proxy/healthz");
        wait_for(
            "the API server to reach the node's kubelet API",
            Duration::from_secs(30),
            || async { kubectl(&["get", "--raw", &path]).status.success() },
        )
        .await;
        // The certificate served on this node's port is issued for this node's name.
        let names = served_certificate_names(*port);
        assert!(
            names.contains(&format!("DNS:{name}")),
            "{name} on port {port} serves a certificate for {names}"
        );
    }

    // Four pods spread over the zones (at most one apart), on this test's two nodes only.
    let ns = TestNamespace::new(&client, "vk-zones").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let app = [("app".to_string(), "spread".to_string())];
    for i in 0..4 {
        let mut pod = pod_for_node(&format!("spread-{i}"), "", &["main"], &[]);
        pod.metadata.labels = Some(app.clone().into());
        let spec = pod.spec.as_mut().expect("a spec");
        spec.node_selector = Some([("e2e.vk-serverless.io/set".to_string(), base.clone())].into());
        spec.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: ZONE_LABEL.into(),
            when_unsatisfiable: "DoNotSchedule".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(app.clone().into()),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let mut placed = Vec::new();
    for i in 0..4 {
        let name = format!("spread-{i}");
        let pod = wait_phase(&pods, &name, "Running", Duration::from_secs(60)).await;
        let node = pod.spec.and_then(|s| s.node_name).expect("bound");
        placed.push((name, node));
    }
    for node in &names {
        let here = placed.iter().filter(|(_, n)| n == node).count();
        assert_eq!(here, 2, "pods per node: {placed:?}");
    }

    // Each group sits in its node's zone and vSwitch, with the shared security group.
    for (node, (zone, vswitch, _)) in names.iter().zip(&zones) {
        let groups = cloud.node_groups(node).await;
        assert_eq!(groups.len(), 2, "{node}");
        for g in &groups {
            assert_eq!(g.zone_id, *zone, "{}", g.container_group_name);
            assert_eq!(g.vswitch_id, *vswitch, "{}", g.container_group_name);
            assert_eq!(g.security_group_id, "sg-vk-demo");
        }
    }

    // kubectl logs through each node's own kubelet API and serving certificate.
    for (pod, _) in &placed {
        wait_for("the pod's log", Duration::from_secs(30), || async {
            let out = kubectl(&["logs", "-n", &ns.name, pod, "-c", "main"]);
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("main: started")
        })
        .await;
    }

    // `vk doctor` with the same config checks both nodes, and their summed CPU (800 vCPUs)
    // against the account's quota (the mock cloud's 1000).
    let out = vk.doctor(None, &[]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}");
    for name in &names {
        for check in ["node", "serving-cert", "zone", "vswitch", "security-group"] {
            assert!(
                report.lines().any(|l| l.starts_with("ok")
                    && l.split_whitespace().nth(1) == Some(check)
                    && l.contains(name.as_str())),
                "{check} of {name}: {report}"
            );
        }
    }
    assert!(
        report.contains("covers the 800 vCPUs advertised"),
        "{report}"
    );
    drop(vk);
}
