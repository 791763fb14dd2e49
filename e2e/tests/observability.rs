//! The dashboard and alert rules of `manifests/observability/`: the files are well formed,
//! and every vk metric they query is one a live vk exposes (eci provider against the mock
//! cloud, after a pod start and an exec, so the series exist). `promtool` is not used (it
//! is a heavy Go build): the rules are checked for structure only.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use e2e::harness::Options;
use e2e::pods::pod_for_node;
use e2e::vk::health_get;

fn observability_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/observability")
}

fn read(name: &str) -> String {
    let path = observability_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rule groups of the plain rules file and of the PrometheusRule.
fn rule_groups() -> (serde_yaml::Value, serde_yaml::Value) {
    let plain: serde_yaml::Value = serde_yaml::from_str(&read("rules.yaml")).unwrap();
    let crd: serde_yaml::Value = serde_yaml::from_str(&read("prometheusrule.yaml")).unwrap();
    assert_eq!(crd["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(crd["kind"], "PrometheusRule");
    (plain["groups"].clone(), crd["spec"]["groups"].clone())
}

/// Every PromQL expression of the dashboard and the rules.
fn expressions() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(&read("dashboard.json")).unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    let (plain, _) = rule_groups();
    for group in plain.as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            exprs.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    exprs
}

/// Metric-name tokens starting with `vk_` (a loose parse: identifiers of PromQL).
fn vk_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut token = String::new();
    for c in text.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
        } else {
            if token.starts_with("vk_") {
                names.insert(std::mem::take(&mut token));
            }
            token.clear();
        }
    }
    names
}

#[test]
fn the_rules_and_the_dashboard_are_well_formed() {
    let (plain, crd) = rule_groups();
    assert_eq!(plain, crd, "rules.yaml and prometheusrule.yaml differ");
    let groups: Vec<&str> = plain
        .as_sequence()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            "vk-serverless.node",
            "vk-serverless.pods",
            "vk-serverless.cloud"
        ]
    );
    let mut alerts = Vec::new();
    for group in plain.as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let alert = rule["alert"].as_str().expect("every rule is an alert");
            for field in ["expr", "for"] {
                assert!(rule[field].as_str().is_some(), "{alert}: no {field}");
            }
            assert!(rule["labels"]["severity"].as_str().is_some(), "{alert}");
            assert!(rule["annotations"]["summary"].as_str().is_some(), "{alert}");
            alerts.push(alert.to_string());
        }
    }
    for expected in [
        "VirtualNodeNotReady",
        "VirtualNodeLeaseRenewalsFailing",
        "VirtualNodeCreateFailures",
        "VirtualNodePodStartSlow",
        "VirtualNodeCredentialRefreshFailing",
        "VirtualNodeCloudThrottled",
    ] {
        assert!(alerts.iter().any(|a| a == expected), "{expected} missing");
    }
    // Node readiness comes from kube-state-metrics, the rest from vk.
    let exprs = expressions();
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("kube_node_status_condition"))
    );
    let used = vk_names(&exprs.join("\n"));
    for name in [
        "vk_pod_start_seconds_bucket",
        "vk_pod_start_phase_seconds_bucket",
        "vk_pod_status_writes_total",
        "vk_provider_calls_total",
        "vk_provider_credential_refresh_failures_total",
        "vk_streaming_sessions_open",
        "vk_node_lease_renewals_total",
    ] {
        assert!(used.contains(name), "{name} not used: {used:?}");
    }
}

#[tokio::test]
async fn every_vk_metric_the_dashboard_and_rules_use_is_exposed() {
    let port = e2e::vk::free_port();
    let s = Options::eci("vk-obs", "process", &[])
        .serving_cert()
        .config(&format!("health_port: {port}\n"))
        .start()
        .await;
    let mut pod = pod_for_node("build", &s.vk.node, &["main"], &[]);
    pod.spec.as_mut().unwrap().containers[0].command =
        Some(vec!["sh".into(), "-c".into(), "sleep 3600".into()]);
    s.run_pod_within(&pod, Duration::from_secs(120)).await;
    let out = e2e::kubectl(&[
        "-n", &s.ns.name, "exec", "build", "-c", "main", "--", "echo", "hi",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let answer = health_get(port, "/metrics").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let exposed: BTreeSet<String> = answer
        .lines()
        .filter(|l| l.starts_with("vk_"))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let used = vk_names(&expressions().join("\n"));
    let missing: Vec<&String> = used.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "used but not exposed: {missing:?}\nexposed: {exposed:?}"
    );
    // The series of this start and this exec.
    for line in [
        "vk_provider_calls_total{action=\"CreateContainerGroup\",outcome=\"ok\"} 1",
        "vk_streaming_sessions_total{kind=\"exec\"} 1",
        "vk_pod_start_seconds_count 1",
        "vk_pod_start_phase_seconds_count{phase=\"queued\"} 1",
        "vk_pod_start_phase_seconds_count{phase=\"resolve\"} 1",
        "vk_pod_start_phase_seconds_count{phase=\"create\"} 1",
        "vk_pod_start_phase_seconds_count{phase=\"instance\"} 1",
    ] {
        assert!(answer.contains(line), "{line} missing:\n{answer}");
    }
}
