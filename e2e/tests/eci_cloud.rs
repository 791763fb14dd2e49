//! The Jenkins-style build pod through the `eci` provider and the mock ECI cloud in `process`
//! mode: real processes in bubblewrap sandboxes, a shared workspace, real logs and exit codes.

use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_phase};
use e2e::{kubectl, kubectl_ok, wait_for};
use kube::api::{DeleteParams, PostParams};

async fn setup(prefix: &str) -> TestBed {
    Options::eci(prefix, "process", &[])
        .serving_cert()
        .start()
        .await
}

/// The groups the cloud holds for this node, asked with the provider's own client.
async fn groups(s: &TestBed) -> Vec<String> {
    s.cloud().groups(&s.vk.node).await.unwrap()
}

#[tokio::test]
async fn jenkins_build_pod_runs_for_real_through_eci() {
    let s = setup("vk-eci").await;
    s.create_example_pod("jenkins-build-pod.yaml").await;

    // A cold `go build` of the standard library takes a while on two cores.
    let done = wait_phase(&s.pods, "build-demo", "Succeeded", Duration::from_secs(300)).await;
    for c in done.status.unwrap().container_statuses.unwrap() {
        let t = c
            .state
            .unwrap()
            .terminated
            .unwrap_or_else(|| panic!("{} not terminated", c.name));
        assert_eq!(t.exit_code, 0, "{} exited {}", c.name, t.exit_code);
    }
    let ns = s.ns.name.clone();
    let golang = kubectl_ok(&["-n", &ns, "logs", "build-demo", "-c", "golang"]);
    assert!(
        golang.contains("hello from a build on the virtual node"),
        "{golang}"
    );
    assert!(golang.contains("go version go1."), "{golang}");
    let kaniko = kubectl_ok(&["-n", &ns, "logs", "build-demo", "-c", "kaniko"]);
    assert!(
        kaniko.contains("would build an image with hello-bin ("),
        "the file golang wrote did not reach kaniko: {kaniko}"
    );
    assert!(
        kaniko.contains("config.json: 56 bytes") || kaniko.contains("config.json:"),
        "{kaniko}"
    );

    assert_eq!(groups(&s).await, vec!["build-demo".to_string()]);
    s.pods
        .delete("build-demo", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "the pod to leave the API",
        Duration::from_secs(60),
        || async { s.pods.get_opt("build-demo").await.unwrap().is_none() },
    )
    .await;
    let mut left = groups(&s).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !left.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = groups(&s).await;
    }
    assert!(
        left.is_empty(),
        "container groups left in the cloud: {left:?}"
    );
}

#[tokio::test]
async fn real_exit_codes_reach_the_pod_status() {
    let s = setup("vk-eci-exit").await;
    let mut pod = pod_for_node("fails", &s.vk.node, &["main"], &[]);
    pod.spec.as_mut().unwrap().containers[0].command = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo about to fail; exit 3".into(),
    ]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let failed = wait_phase(&s.pods, "fails", "Failed", Duration::from_secs(120)).await;
    let c = &failed.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(
        c.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        3
    );
    let out = kubectl_ok(&["-n", &s.ns.name, "logs", "fails"]);
    assert!(out.contains("about to fail"), "{out}");
}

/// `/stats/summary` through the API server's node proxy reports the real CPU time and memory
/// of an eci pod's processes (DescribeMultiContainerGroupMetric on the mock cloud).
#[tokio::test]
async fn stats_summary_reports_real_usage_of_eci_pods() {
    let s = setup("vk-eci-stats").await;
    let mut pod = pod_for_node("spin", &s.vk.node, &["main"], &[]);
    pod.spec.as_mut().unwrap().containers[0].command =
        Some(vec!["sh".into(), "-c".into(), "while :; do :; done".into()]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_phase(&s.pods, "spin", "Running", Duration::from_secs(120)).await;
    let path = format!("/api/v1/nodes/{}/proxy/stats/summary", s.vk.node);
    let usage = |summary: &serde_json::Value| {
        let ours = summary["pods"]
            .as_array()?
            .iter()
            .find(|p| p["podRef"]["name"] == "spin")?;
        let main = &ours["containers"][0];
        Some((
            main["cpu"]["usageCoreNanoSeconds"].as_u64()?,
            main["cpu"]["usageNanoCores"].as_u64()?,
            main["memory"]["workingSetBytes"].as_u64()?,
        ))
    };
    // The busy loop has used a tenth of a second of CPU soon after it starts.
    let mut last = None;
    wait_for(
        "the spinning pod's CPU time in /stats/summary",
        Duration::from_secs(60),
        || {
            let out = kubectl(&["get", "--raw", &path]);
            last = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|summary| usage(&summary));
            let done = last.is_some_and(|(cpu_time, _, _)| cpu_time >= 100_000_000);
            async move { done }
        },
    )
    .await;
    let (_, nano_cores, working_set) = last.unwrap();
    assert!(nano_cores > 0, "{last:?}");
    assert!(working_set > 0, "{last:?}");
}
