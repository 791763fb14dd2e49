//! `kubectl exec` through the API server, which upgrades its connection to vk's kubelet API
//! to SPDY/3.1: the mock provider runs the command for real inside the container's sandbox,
//! so stdout, stderr, stdin and the exit code are real.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_container_terminated};
use e2e::{kubectl, output_with_input, processes_with};
use k8s_openapi::api::core::v1::EnvVar;

/// A vk with its serving certificate and a running pod `shell` with containers `main` (env
/// `GREETING=hi`) and `done` (exits after half a second).
async fn setup(prefix: &str) -> TestBed {
    let s = Options::mock(prefix).serving_cert().start().await;
    let mut pod = pod_for_node(
        "shell",
        &s.vk.node,
        &["main", "done"],
        &[("mock.vk.io/run-ms.done", "500")],
    );
    pod.spec.as_mut().unwrap().containers[0].env = Some(vec![EnvVar {
        name: "GREETING".into(),
        value: Some("hi".into()),
        ..Default::default()
    }]);
    s.run_pod(&pod).await;
    s
}

fn kubectl_command(s: &TestBed, flags: &[&str], command: &[&str]) -> Command {
    let exec = ["-n", &s.ns.name, "exec"];
    e2e::kubectl_command(&[&exec, flags, &["shell", "-c", "main", "--"], command].concat())
}

/// `kubectl exec [flags] shell -c main -- command`, with `input` on stdin when given.
fn exec(s: &TestBed, flags: &[&str], command: &[&str], input: Option<&str>) -> Output {
    output_with_input(kubectl_command(s, flags, command), input)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[tokio::test]
async fn kubectl_exec_streams_stdout_stderr_stdin_and_the_exit_code() {
    let s = setup("vk-exec").await;

    let out = exec(
        &s,
        &[],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        None,
    );
    assert_eq!(text(&out.stdout), "out\n");
    assert!(
        text(&out.stderr).starts_with("err\n"),
        "stderr: {:?}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));

    let out = exec(&s, &["-i"], &["cat"], Some("hello\n"));
    assert_eq!(
        text(&out.stdout),
        "hello\n",
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(out.status.success());

    // The container's env, and a clean exit.
    let out = exec(&s, &[], &["sh", "-c", "echo $GREETING"], None);
    assert_eq!(text(&out.stdout), "hi\n");
    assert_eq!(out.status.code(), Some(0));

    // A program that does not exist.
    let out = exec(&s, &[], &["no-such-program-vk"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no-such-program-vk"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn kubectl_exec_into_a_missing_or_stopped_container_fails() {
    let s = setup("vk-exec-err").await;
    let ns = s.ns.name.clone();

    let out = kubectl(&["-n", &ns, "exec", "shell", "-c", "nope", "--", "true"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));

    // `done` exits 500 ms after the start.
    wait_container_terminated(&s.pods, "shell", "done", Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        let out = kubectl(&["-n", &ns, "exec", "shell", "-c", "done", "--", "true"]);
        assert!(
            !out.status.success(),
            "exec into a stopped container worked"
        );
        let err = text(&out.stderr);
        if err.contains("stopped") || Instant::now() > deadline {
            break err;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(err.contains("cannot exec in a stopped container"), "{err}");

    let _ = s.pods.delete("shell", &Default::default()).await;
}

/// As under containerd's CRI, a client that goes away leaves its command running: its stdin
/// ends, its output is dropped; the command goes with its container.
#[tokio::test]
async fn a_disconnected_client_leaves_the_command_running() {
    let s = setup("vk-exec-gone").await;
    let id = std::process::id();
    let start = |script: &str| {
        let mut child = kubectl_command(&s, &["-i"], &["sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "started\n");
        child
    };
    let reader = format!("reader-{id}");
    let sleeper = format!("4001.{}", id % 1000);
    let mut reading = start(&format!(
        "echo started; while read l; do :; done # {reader}"
    ));
    let mut sleeping = start(&format!("echo started; sleep {sleeper}; echo never"));
    assert!(!processes_with(&reader).is_empty() && !processes_with(&sleeper).is_empty());

    for client in [&mut reading, &mut sleeping] {
        client.kill().unwrap();
        let _ = client.wait();
    }
    // The reader sees its stdin end; the sleep, which does not read it, goes on.
    wait_until("the reader to end", || processes_with(&reader).is_empty());
    assert!(!processes_with(&sleeper).is_empty(), "the sleep goes on");

    // The pod goes, and the command with it.
    let _ = s.pods.delete("shell", &Default::default()).await;
    wait_until("the command to end with its pod", || {
        processes_with(&sleeper).is_empty()
    });
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(200));
    }
}
