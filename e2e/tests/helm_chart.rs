//! The Helm chart (`manifests/helm/vk-serverless`) with a real helm (built from its Go module by
//! `e2e/helm/build.sh`, pinned and cached): `helm lint` is clean, the rendered manifests pass the
//! API server's own validation (server-side dry-run), their RBAC is the kustomize base's, the
//! schema refuses what would break a node, and the config the chart renders starts a real vk.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use e2e::pods::wait_node_ready;
use e2e::vk::{Vk, free_port, service_account_kubeconfig};
use e2e::{client, kubectl_command, output_with_input, repo_root, unique};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use serde_json::Value;

fn helm_binary() -> &'static PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new(repo_root().join("e2e/helm/build.sh"))
            .output()
            .expect("running e2e/helm/build.sh");
        assert!(
            out.status.success(),
            "building helm failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().expect("the binary's path").trim())
    })
}

fn chart() -> String {
    repo_root()
        .join("manifests/helm/vk-serverless")
        .to_string_lossy()
        .into_owned()
}

fn helm(args: &[&str]) -> Output {
    Command::new(helm_binary())
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("vk-e2e-helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("vk-e2e-helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("vk-e2e-helm/data"),
        )
        .output()
        .expect("running helm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `helm <command> vk-serverless` with `extra` arguments and each of `sets` as `--set`.
fn helm_chart(command: &[&str], extra: &[&str], sets: &[&str]) -> Output {
    let chart = chart();
    let mut args: Vec<&str> = command.to_vec();
    args.push(&chart);
    args.extend(extra);
    for s in sets {
        args.extend(["--set", s]);
    }
    helm(&args)
}

/// `helm template` with `sets`, in `namespace`; the rendered YAML.
fn render(namespace: &str, sets: &[&str]) -> String {
    let out = helm_chart(&["template", "vk"], &["--namespace", namespace], sets);
    assert!(out.status.success(), "helm template: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The YAML documents of a multi-document text, as JSON values (empty ones dropped).
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|d| {
            let v: Value = serde::Deserialize::deserialize(d).expect("YAML document");
            (!v.is_null()).then_some(v)
        })
        .collect()
}

fn rules_of(docs: &[Value], kind: &str) -> Vec<Value> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| d["rules"].clone())
        .collect()
}

const ECI_VALUES: &[&str] = &[
    "provider=eci",
    "eci.regionId=cn-shanghai",
    "eci.zoneId=cn-shanghai-b",
    "eci.vswitchId=vsw-1",
    "eci.securityGroupId=sg-1",
    "eci.credentials.existingSecret=eci-keys",
    "eci.rrsa.enabled=true",
    "eci.rrsa.roleArn=acs:ram::123:role/vk",
    "eci.rrsa.oidcProviderArn=acs:ram::123:oidc-provider/ack-rrsa-c1",
    "clusterDns={10.96.0.10}",
    "podDisruptionBudget.enabled=true",
    "node.labels.topology\\.kubernetes\\.io/zone=cn-shanghai-b",
    "nodes[0].zoneId=cn-shanghai-b",
    "nodes[1].zoneId=cn-shanghai-g",
    "nodes[1].vswitchId=vsw-2",
    "nodes[1].kubeletPort=10300",
];

#[test]
fn helm_lint_is_clean_for_each_provider() {
    for sets in [&["provider=mock"][..], ECI_VALUES] {
        let out = helm_chart(&["lint", "--strict"], &[], sets);
        assert!(
            out.status.success(),
            "helm lint {sets:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[tokio::test]
async fn rendered_manifests_pass_server_side_dry_run_and_match_the_base_rbac() {
    let client = client().await;
    let ns = e2e::TestNamespace::new(&client, "vk-helm").await;
    let rendered = render(&ns.name, ECI_VALUES);
    let out = output_with_input(
        kubectl_command(&["apply", "--dry-run=server", "-f", "-"]),
        Some(&rendered),
    );
    assert!(
        out.status.success(),
        "server-side dry-run: {}\n{rendered}",
        text(&out.stderr)
    );
    let applied = text(&out.stdout);
    for kind in [
        "serviceaccount/vk",
        "clusterrole.rbac.authorization.k8s.io/vk",
        "deployment.apps/vk",
        "configmap/vk-config",
        "poddisruptionbudget.policy/vk",
    ] {
        assert!(applied.contains(kind), "{kind} not in: {applied}");
    }

    let docs = documents(&rendered);
    let base = documents(
        &std::fs::read_to_string(repo_root().join("manifests/base/rbac.yaml")).expect("base RBAC"),
    );
    for kind in ["ClusterRole", "Role"] {
        assert_eq!(
            rules_of(&docs, kind),
            rules_of(&base, kind),
            "the chart's {kind} rules differ from manifests/base/rbac.yaml"
        );
    }

    // RRSA: the projected token and the variables the SDKs' credential chain reads.
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for name in [
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    ] {
        assert!(env.contains(&name), "{name} missing: {env:?}");
    }
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let config: Value =
        serde_yaml::from_str(config["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["eci"]["endpoint"],
        "https://eci.cn-shanghai.aliyuncs.com"
    );
    assert_eq!(config["eci"]["vswitch_id"], "vsw-1");
    assert_eq!(config["cluster_dns"][0], "10.96.0.10");
    assert_eq!(config["taint"]["value"], "eci");
    // Two nodes, one per zone, each with its kubelet port (the container exposes both).
    assert_eq!(config["nodes"][0]["zone_id"], "cn-shanghai-b");
    assert_eq!(config["nodes"][0]["kubelet_port"], 10250);
    assert_eq!(config["nodes"][1]["vswitch_id"], "vsw-2");
    assert_eq!(config["nodes"][1]["kubelet_port"], 10300);
    let ports: Vec<i64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["containerPort"].as_i64())
        .collect();
    assert!(
        ports.contains(&10250) && ports.contains(&10300),
        "{ports:?}"
    );
    // No secret ever lands in the ConfigMap.
    assert!(config["eci"].get("access_key_secret").is_none());
}

#[test]
fn the_schema_refuses_values_that_would_break_the_node() {
    for (set, names) in [
        ("replicas=2", "replicas"),
        ("provider=aws", "provider"),
        ("node.taint.effect=Sometimes", "effect"),
        ("servingCert=none", "servingCert"),
    ] {
        let out = helm_chart(&["template", "vk"], &[], &[set]);
        assert!(!out.status.success(), "{set} was accepted");
        assert!(
            text(&out.stderr).contains(names),
            "{set}: {}",
            text(&out.stderr)
        );
    }
    // RRSA without its role is a clear error, not a broken pod.
    let out = helm_chart(&["template", "vk"], &[], &["eci.rrsa.enabled=true"]);
    assert!(text(&out.stderr).contains("eci.rrsa.roleArn is required"));
}

/// High availability: two replicas with leader election, rolled one at a time, each named in the
/// Lease by its pod name; a PodDisruptionBudget; the Role on leases in the release namespace.
#[test]
fn two_replicas_with_leader_election_render_for_high_availability() {
    let rendered = render(
        "vk-ha",
        &[
            "provider=mock",
            "replicas=2",
            "leaderElection.enabled=true",
            "leaderElection.leaseDurationSeconds=20",
            "podDisruptionBudget.enabled=true",
        ],
    );
    let docs = documents(&rendered);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "POD_NAME"),
        "{env}"
    );
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let config: Value =
        serde_yaml::from_str(config["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(config["leader_election"]["enabled"], true);
    assert_eq!(config["leader_election"]["lease_duration_seconds"], 20);
    assert!(docs.iter().any(|d| d["kind"] == "PodDisruptionBudget"));
    assert!(docs.iter().any(|d| d["kind"] == "Role"
        && d["metadata"]["namespace"] == "vk-ha"
        && d["rules"][0]["resources"][0] == "leases"));
    // Without leader election the chart stays single-replica.
    let single = render("vk-ha", &["provider=mock"]);
    assert!(!single.contains("leader_election"), "{single}");
}

/// The config.yaml the chart renders for the mock provider is one vk runs with.
#[tokio::test]
async fn the_rendered_config_starts_a_virtual_node() {
    let client = client().await;
    let node = unique("vk-helm-node");
    let health = free_port().to_string();
    let rendered = render(
        "vk-system",
        &[
            "provider=mock",
            &format!("node.name={node}"),
            &format!("healthPort={health}"),
        ],
    );
    let docs = documents(&rendered);
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let config = config["data"]["config.yaml"].as_str().unwrap().to_string();
    let kubeconfig = service_account_kubeconfig(&client).await;
    let mut vk = Vk::start(&kubeconfig, &node, &config);
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = wait_node_ready(&nodes, &node, "True", Duration::from_secs(60)).await;
    let taints = ready.spec.and_then(|s| s.taints).unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "virtual-kubelet.io/provider" && t.value.as_deref() == Some("mock")),
        "{taints:?}"
    );
    vk.terminate();
    let _ = nodes.delete(&node, &Default::default()).await;
}
