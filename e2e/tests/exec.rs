//! `kubectl exec` through the API server, which upgrades its connection to vk's kubelet API
//! to SPDY/3.1: the mock provider runs the command as a local process, so stdout, stderr,
//! stdin and the exit code are real.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_container_terminated};
use e2e::{kubectl, output_with_input};
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

/// The command's process is gone once the client is.
#[tokio::test]
async fn a_disconnected_client_kills_the_command() {
    let s = setup("vk-exec-kill").await;
    let mut child = kubectl_command(&s, &["-i"], &["sh", "-c", "echo $$; exec sleep 300"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line.trim().parse().expect("the command's pid");
    let proc = format!("/proc/{pid}");
    assert!(std::path::Path::new(&proc).exists(), "the command runs");

    child.kill().unwrap();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(&proc) {
        assert!(
            Instant::now() < deadline,
            "the command (pid {pid}) outlived its client"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A process that exists and is not a zombie.
fn alive(proc: &str) -> bool {
    match std::fs::read_to_string(format!("{proc}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
