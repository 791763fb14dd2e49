//! The Jenkins kubernetes-plugin's "active containers" mode (`activeContainers`, 2026): the
//! plugin rewrites each `cat`/`sleep` build container to wait for a bootstrap script in the
//! shared workspace, and the agent hands it each step as files there instead of an exec through
//! the API server (`manifests/examples/jenkins-agent-pod-active.yaml` documents the protocol).
//! On an eci, an aci and a fargate node backed by the mock clouds' `process` executor: the
//! rewritten command, args and env reach the containers, the workspace is shared while they
//! run, exit codes and stdout/stderr come back through files, a durable step runs on in the
//! background under nohup, an abort kills its processes through /proc, the logs pass through
//! to `kubectl logs`, and vk serves not one exec session for any of it.

use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::jenkins::{POD, text};
use e2e::kubectl_command;
use e2e::vk::health_get;

fn logs(s: &TestBed, container: &str) -> String {
    let out = kubectl_command(&["-n", &s.ns.name, "logs", POD, "-c", container])
        .output()
        .expect("running kubectl logs");
    text(&out.stdout)
}

/// Each line of `expected`, in order, among the lines of `log`.
fn assert_in_order(log: &str, expected: &[&str]) {
    let mut lines = log.lines();
    for want in expected {
        assert!(
            lines.any(|l| l == *want),
            "{want:?} missing (or out of order) in:\n{log}"
        );
    }
}

async fn steps_run_through_the_workspace(options: Options) {
    let health = e2e::vk::free_port();
    let s = options
        .serving_cert()
        .config(&format!("health_port: {health}\n"))
        .start()
        .await;
    s.example_pod_ready(
        "jenkins-agent-pod-active.yaml",
        POD,
        Duration::from_secs(180),
    )
    .await;
    let done = "agent: all steps done";
    let finished = tokio::time::timeout(Duration::from_secs(180), async {
        while !logs(&s, "jnlp").contains(done) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "the agent's steps did not finish in 180 s\njnlp:\n{}\ngolang:\n{}\nkaniko:\n{}",
        logs(&s, "jnlp"),
        logs(&s, "golang"),
        logs(&s, "kaniko")
    );

    let agent = logs(&s, "jnlp");
    assert_in_order(
        &agent,
        &[
            // A failing step: its exit code, stdout and stderr apart.
            "agent: launch 1 in golang exited 7",
            "agent:   out | to-out",
            "agent:   err | to-err",
            // The other container reads what golang wrote to the shared workspace, in the
            // working directory the agent gave, with its own secret volume and no terminal.
            "agent: launch 2 in kaniko exited 0",
            "agent:   out | from-golang",
            "agent:   out | config.json",
            "agent:   out | /home/jenkins/agent/workspace/demo",
            "agent:   out | no-terminal",
            // A durable step: the launcher returns at once, the step runs on under nohup and
            // leaves its log and exit code in its control directory.
            "agent: launch 3 in golang exited 0",
            "agent: durable step ended with exit code 3",
            "agent:   log | step-ran in /home/jenkins/agent/workspace/demo",
            // An abort: the kill by JENKINS_SERVER_COOKIE, then none of its processes left.
            "agent: launch 5 in golang exited 0",
            "agent: launch 6 in golang exited 0",
            "agent:   out | processes left: 0",
            done,
        ],
    );
    // The build containers' own logs: the bootstrap loop each runs as its main process.
    assert_in_order(
        &logs(&s, "golang"),
        &[
            "bootstrap: golang takes its steps from /home/jenkins/agent/container-work/golang",
            "bootstrap: 0000000000000001 ended with 7",
            "bootstrap: 0000000000000006 ended with 0",
        ],
    );
    assert_in_order(
        &logs(&s, "kaniko"),
        &["bootstrap: 0000000000000002 ended with 0"],
    );

    // All three containers still run, none restarted.
    s.assert_containers_running(POD).await;
    // Not one exec went through vk: the steps travelled through the workspace only.
    let metrics = health_get(health, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let execs: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("vk_streaming_sessions_total{kind=\"exec\"}"))
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    assert!(execs.is_empty(), "vk served exec sessions: {execs:?}");
}

#[tokio::test]
async fn active_containers_run_the_plugins_steps_on_an_eci_node() {
    steps_run_through_the_workspace(Options::eci("vk-active-eci", "process", &[])).await;
}

#[tokio::test]
async fn active_containers_run_the_plugins_steps_on_an_aci_node() {
    steps_run_through_the_workspace(Options::aci("vk-active-aci", "process", &[])).await;
}

#[tokio::test]
async fn active_containers_run_the_plugins_steps_on_a_fargate_node() {
    steps_run_through_the_workspace(Options::fargate("vk-active-fargate", "process", &[])).await;
}
