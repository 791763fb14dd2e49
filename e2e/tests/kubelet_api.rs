//! The kubelet API on :10250, reached the way users reach it: `kubectl logs` and
//! `kubectl get --raw .../proxy/...` through the API server, which authenticates with its
//! kubelet-client certificate and verifies vk's serving certificate (issued through a
//! kubelet-serving CSR that the test approves like an operator).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::harness::Options;
use e2e::pods::{pod_for_node, wait_phase};
use e2e::{cluster, kubectl, kubectl_command, kubectl_ok};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, ListParams, PostParams};

/// `kubectl logs` until it succeeds (the serving certificate may still be on its way).
fn logs(ns: &str, args: &[&str]) -> String {
    let mut full = vec!["-n", ns, "logs"];
    full.extend_from_slice(args);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kubectl(&full);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).to_string();
        }
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            Instant::now() < deadline,
            "kubectl {} failed: {err}",
            full.join(" ")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test]
async fn kubectl_logs_behaves_as_on_a_real_kubelet() {
    let s = Options::mock("vk-logs").serving_cert().start().await;
    let pod = pod_for_node(
        "build",
        &s.vk.node,
        &["golang", "kaniko"],
        &[("mock.vk.io/run-ms.golang", "4000")],
    );
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_phase(&s.pods, "build", "Running", Duration::from_secs(60)).await;
    let ns = s.ns.name.clone();

    // -f: lines arrive while the container runs, and the command ends when it ends.
    let started = Instant::now();
    let mut follow = kubectl_command(&["-n", &ns, "logs", "-f", "build", "-c", "golang"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let mut arrivals = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        arrivals.push((started.elapsed(), line));
    }
    let status = follow.wait().unwrap();
    assert!(status.success(), "kubectl logs -f failed");
    assert!(arrivals.len() >= 5, "too few lines followed: {arrivals:?}");
    let first = arrivals.first().unwrap().0;
    let last = arrivals.last().unwrap().0;
    assert!(
        last - first >= Duration::from_millis(1500),
        "lines did not arrive as produced: {arrivals:?}"
    );
    assert!(arrivals.iter().any(|(_, l)| l.contains("golang: line")));

    let all = logs(&ns, &["build", "-c", "golang"]);
    assert!(all.lines().count() >= 5, "{all}");
    assert!(
        !all.contains("kaniko"),
        "-c golang showed another container: {all}"
    );

    let tail = logs(&ns, &["build", "-c", "golang", "--tail=2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert_eq!(tail.lines().last(), all.lines().last());

    let stamped = logs(&ns, &["build", "-c", "golang", "--timestamps"]);
    for line in stamped.lines() {
        let (stamp, _) = line.split_once(' ').expect("timestamp and text");
        assert!(
            stamp.parse::<jiff::Timestamp>().is_ok(),
            "not an RFC3339 timestamp: {line}"
        );
    }

    let limited = logs(&ns, &["build", "-c", "golang", "--limit-bytes=12"]);
    assert_eq!(limited.len(), 12, "{limited:?}");

    // kaniko keeps running and writing a line every 200 ms.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let recent = logs(&ns, &["build", "-c", "kaniko", "--since=1s"]);
    let everything = logs(&ns, &["build", "-c", "kaniko"]);
    assert!(!recent.is_empty());
    assert!(
        recent.lines().count() < everything.lines().count(),
        "--since=1s returned everything"
    );

    let out = kubectl(&["-n", &ns, "logs", "build", "-c", "kaniko", "--previous"]);
    assert!(
        !out.status.success(),
        "--previous without a previous container succeeded"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("previous terminated container"), "{err}");

    let out = kubectl(&["-n", &ns, "logs", "build", "-c", "nope"]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn stats_and_resource_metrics_through_the_node_proxy() {
    let s = Options::mock("vk-stats").serving_cert().start().await;
    let pod = pod_for_node("busy", &s.vk.node, &["main"], &[]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_phase(&s.pods, "busy", "Running", Duration::from_secs(60)).await;
    let path = format!("/api/v1/nodes/{}/proxy/stats/summary", s.vk.node);
    let deadline = Instant::now() + Duration::from_secs(30);
    let summary: serde_json::Value = loop {
        let out = kubectl(&["get", "--raw", &path]);
        if out.status.success() {
            break serde_json::from_slice(&out.stdout).expect("stats summary JSON");
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(summary["node"]["nodeName"], s.vk.node.as_str());
    let pods = summary["pods"].as_array().expect("pods");
    let ours = pods
        .iter()
        .find(|p| p["podRef"]["name"] == "busy")
        .expect("our pod in the summary");
    assert_eq!(ours["podRef"]["namespace"], s.ns.name.as_str());
    assert!(ours["containers"][0]["cpu"]["usageNanoCores"].is_u64());
    assert!(ours["containers"][0]["memory"]["workingSetBytes"].is_u64());

    let text = kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{}/proxy/metrics/resource", s.vk.node),
    ]);
    let mut samples = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        // name{labels} value [timestamp]
        let rest = line.rsplit_once('}').map(|(_, r)| r).unwrap_or(line);
        let value = rest.split_whitespace().last().expect("a value");
        let fields: Vec<_> = rest.split_whitespace().collect();
        assert!(
            fields.iter().all(|f| f.parse::<f64>().is_ok()) || value.parse::<f64>().is_ok(),
            "not Prometheus text: {line}"
        );
        samples += 1;
    }
    assert!(samples > 0);
    assert!(
        text.contains("container_cpu_usage_seconds_total{container=\"main\""),
        "{text}"
    );
    assert!(text.contains("node_memory_working_set_bytes"), "{text}");
}

fn curl_status(url: &str, token: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
    ]);
    if let Some(t) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    let out = cmd.arg(url).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn kubelet_api_refuses_anonymous_and_unauthorized_callers() {
    let s = Options::mock("vk-authz").serving_cert().start().await;
    let url = format!("https://{}:{}/pods", cluster().node_ip, s.vk.kubelet_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut code = curl_status(&url, None);
    while code == "000" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        code = curl_status(&url, None);
    }
    assert_eq!(code, "401", "anonymous request");

    kubectl_ok(&["-n", &s.ns.name, "create", "serviceaccount", "nobody"]);
    let token = kubectl_ok(&["-n", &s.ns.name, "create", "token", "nobody"]);
    assert_eq!(
        curl_status(&url, Some(token.trim())),
        "403",
        "user without nodes/proxy"
    );
    assert_eq!(
        curl_status(&url, Some("not-a-token")),
        "401",
        "invalid token"
    );
}

fn served_certificate(port: u16) -> String {
    let ip = &cluster().node_ip;
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {ip}:{port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 -issuer"
        ))
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn serving_certificate_comes_from_an_approved_csr_and_survives_a_restart() {
    let mut s = Options::mock("vk-cert").serving_cert().start().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut served = served_certificate(s.vk.kubelet_port);
    while !served.contains("Fingerprint") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        served = served_certificate(s.vk.kubelet_port);
    }
    assert!(
        served.contains("vk-e2e-cluster-ca") || cluster().state.is_none(),
        "not issued by the cluster CA: {served}"
    );

    s.vk.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut again = served_certificate(s.vk.kubelet_port);
    while !again.contains("Fingerprint") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        again = served_certificate(s.vk.kubelet_port);
    }
    assert_eq!(served, again, "a restart replaced the serving certificate");

    let csrs: Api<CertificateSigningRequest> = Api::all(s.client.clone());
    let prefix = format!("vk-serving-{}-", s.vk.node);
    let ours = csrs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .count();
    assert_eq!(ours, 1, "the restart submitted another CSR");

    // And the API server (which verifies the certificate) still reaches the node.
    let pod = pod_for_node("after-restart", &s.vk.node, &["main"], &[]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_phase(&s.pods, "after-restart", "Running", Duration::from_secs(60)).await;
    let out = logs(&s.ns.name, &["after-restart"]);
    assert!(out.contains("main"), "{out}");
}
