//! `kubectl exec` into a pod on an `eci` virtual node, through the real API server, vk's
//! kubelet API, the eci provider's ExecContainerCommand and the WebSocket the mock cloud
//! (`vk-cloud`, `process` executor) hands out: the command runs for real in the container's
//! bubblewrap sandbox, with the container's env, working directory and volumes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_container_terminated};
use e2e::{cluster, output_with_input, processes_with};
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, EnvVar, Volume, VolumeMount};

const WORKSPACE: &str = "/home/jenkins/agent";

/// vk with the eci provider against a `process` mock cloud, and a running pod `build`:
/// container `golang` (env `TOOL=go`, workingDir the workspace) stays up; `writer` puts
/// `artifact.txt` into the shared workspace emptyDir and stays up; `done` exits at once.
async fn setup(prefix: &str) -> TestBed {
    let s = Options::eci(prefix, "process", &[])
        .serving_cert()
        .start()
        .await;
    let mut pod = pod_for_node("build", &s.vk.node, &["golang", "writer", "done"], &[]);
    let spec = pod.spec.as_mut().unwrap();
    spec.volumes = Some(vec![Volume {
        name: "workspace-volume".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }]);
    for c in &mut spec.containers {
        c.working_dir = Some(WORKSPACE.into());
        c.volume_mounts = Some(vec![VolumeMount {
            name: "workspace-volume".into(),
            mount_path: WORKSPACE.into(),
            ..Default::default()
        }]);
        let script = match c.name.as_str() {
            "golang" => "sleep 3600",
            "writer" => "echo built by the writer container > artifact.txt; sleep 3600",
            _ => "true",
        };
        c.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
    }
    spec.containers[0].env = Some(vec![EnvVar {
        name: "TOOL".into(),
        value: Some("go".into()),
        ..Default::default()
    }]);
    s.run_pod_within(&pod, Duration::from_secs(120)).await;
    s
}

fn kubectl_command(s: &TestBed, container: &str, flags: &[&str], command: &[&str]) -> Command {
    let exec = ["-n", &s.ns.name, "exec"];
    e2e::kubectl_command(&[&exec, flags, &["build", "-c", container, "--"], command].concat())
}

/// `kubectl exec [flags] build -c CONTAINER -- command`, with `input` on stdin when given.
fn exec(
    s: &TestBed,
    container: &str,
    flags: &[&str],
    command: &[&str],
    input: Option<&str>,
) -> Output {
    output_with_input(kubectl_command(s, container, flags, command), input)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[tokio::test]
async fn kubectl_exec_through_eci_streams_stdout_stderr_stdin_and_the_exit_code() {
    let s = setup("vk-eci-exec").await;

    let out = exec(
        &s,
        "golang",
        &[],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        None,
    );
    assert_eq!(text(&out.stdout), "out\n", "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("err\n"),
        "stderr: {:?}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));

    let out = exec(&s, "golang", &["-i"], &["cat"], Some("hello\nworld\n"));
    assert_eq!(
        text(&out.stdout),
        "hello\nworld\n",
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(out.status.success());

    // The container's env and working directory, and the workspace emptyDir the writer
    // container wrote into.
    let out = exec(
        &s,
        "golang",
        &[],
        &["sh", "-c", "echo $TOOL; pwd; cat artifact.txt"],
        None,
    );
    assert_eq!(
        text(&out.stdout),
        format!("go\n{WORKSPACE}\nbuilt by the writer container\n"),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));

    // And the other way: what an exec writes, the other container sees.
    let out = exec(
        &s,
        "golang",
        &[],
        &["sh", "-c", "echo from exec > from-exec.txt"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = exec(&s, "writer", &[], &["cat", "from-exec.txt"], None);
    assert_eq!(text(&out.stdout), "from exec\n", "{}", text(&out.stderr));

    // A program that does not exist in the sandbox.
    let out = exec(&s, "golang", &[], &["no-such-program-vk"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no-such-program-vk"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn kubectl_exec_through_eci_into_a_stopped_or_missing_container_fails() {
    let s = setup("vk-eci-exec-err").await;
    let out = exec(&s, "nope", &[], &["true"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));

    wait_container_terminated(&s.pods, "build", "done", Duration::from_secs(30)).await;
    let out = exec(&s, "done", &[], &["true"], None);
    assert!(
        !out.status.success(),
        "exec into a stopped container worked"
    );
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
}

/// Killing kubectl leaves the command running in the container, as containerd's CRI does
/// (stdin ends, output is dropped); it ends with the pod.
#[tokio::test]
async fn a_disconnected_kubectl_leaves_the_command_until_the_pod_goes() {
    let s = setup("vk-eci-exec-kill").await;
    let marker = format!("sleep 3603.{}", std::process::id() % 1000);
    let script = format!("echo started; {marker}");
    let mut child = kubectl_command(&s, "golang", &["-i"], &["sh", "-c", &script])
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
    assert!(!processes_with(&marker).is_empty(), "the command runs");

    child.kill().unwrap();
    let _ = child.wait();
    // The disconnect travels kubectl -> API server -> vk -> the cloud; give it a moment to
    // have reached the cloud, then the command must still be there.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !processes_with(&marker).is_empty(),
        "the command was killed with its client"
    );

    s.pods
        .delete("build", &kube::api::DeleteParams::default())
        .await
        .expect("delete the pod");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = processes_with(&marker);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the command (pids {left:?}) outlived its pod"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `kubectl exec -it` (inside `script`, which gives kubectl a terminal): the command runs on
/// a real terminal in the sandbox, and its exit code comes back.
#[tokio::test]
async fn kubectl_exec_with_a_terminal_through_eci() {
    let s = setup("vk-eci-exec-tty").await;
    let c = cluster();
    let inner = format!(
        "{} --kubeconfig {} -n {} exec -it build -c golang -- sh -c 'test -t 0 && test -t 1 && echo is-a-tty; echo on-stderr >&2; exit 5'",
        c.kubectl.display(),
        c.kubeconfig.display(),
        s.ns.name
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("is-a-tty"),
        "{stdout:?} {}",
        text(&out.stderr)
    );
    assert!(stdout.contains("on-stderr"), "{stdout:?}");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{stdout:?} {}",
        text(&out.stderr)
    );
}

/// 32 MiB each way through kubectl, the API server, vk, the eci provider and the exec
/// WebSocket, counted exactly; the rates are printed (`-- --nocapture`), not asserted.
#[tokio::test]
async fn bulk_data_through_kubectl_exec_on_eci() {
    const SIZE: usize = 32 * 1024 * 1024;
    let s = setup("vk-eci-exec-bulk").await;

    let start = Instant::now();
    let out = exec(
        &s,
        "golang",
        &[],
        &["head", "-c", &SIZE.to_string(), "/dev/zero"],
        None,
    );
    let down = start.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), SIZE);
    assert!(out.stdout.iter().all(|b| *b == 0));

    let mut child = kubectl_command(&s, "golang", &["-i"], &["wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let start = Instant::now();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..SIZE / chunk.len() {
            stdin.write_all(&chunk).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    let up = start.elapsed();
    writer.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), SIZE.to_string());

    let rate = |d: Duration| SIZE as f64 / 1e6 / d.as_secs_f64();
    println!(
        "kubectl exec on eci, 32 MiB: stdout {:.1} MB/s ({down:?}), stdin {:.1} MB/s ({up:?})",
        rate(down),
        rate(up)
    );
}
