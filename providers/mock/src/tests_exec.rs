//! Exec on the mock: real commands inside the container's sandbox, on tokio's real clock.

use tokio::io::{AsyncBufReadExt, BufReader};
use vk_core::provider::{
    EnvVar, ExecIo, ExecOutcome, InstancePhase, PodRef, Provider, ProviderError, TermSize,
};

use super::*;
use crate::tests::{pod, provider, wait_for};
use cloudsim::test_support::{exec_client, read_all};

pub(super) fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// A running pod `pod-<uid>` with app container `main` (env `GREETING=hi`) and `quick`
/// (exits after 10 ms). Each test has its own UID: a pod's files are per UID.
pub(super) async fn running(uid: &str) -> (MockProvider, PodRef) {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod(
        uid,
        &[("mock.vk.io/run-ms.quick", "10")],
        &["main", "quick"],
    );
    spec.containers[0].env = vec![EnvVar {
        name: "GREETING".into(),
        value: "hi".into(),
    }];
    p.create(&spec).await.unwrap();
    let status = wait_for(&mut rx, |s| {
        s.phase == InstancePhase::Running
            && matches!(
                s.containers[1].state,
                vk_core::provider::ContainerState::Terminated { .. }
            )
    })
    .await;
    (p, status.pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_a_real_command_with_the_containers_env() {
    let (p, pod) = running("x1").await;
    let c = exec_client(None, false);
    let outcome = p
        .exec(
            &pod,
            "main",
            sh("echo $GREETING; echo err >&2; pwd; exit 3"),
            c.io,
        )
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(3));
    let out = read_all(c.stdout).await;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hi"));
    // No workingDir: the container's root.
    assert_eq!(lines.next(), Some("/"));
    assert_eq!(read_all(c.stderr).await, "err\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipes_stdin_and_a_tty_merges_stderr() {
    let (p, pod) = running("x2").await;
    let c = exec_client(Some(b"hello\n"), false);
    let outcome = p
        .exec(&pod, "main", vec!["cat".into()], c.io)
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(read_all(c.stdout).await, "hello\n");

    let c = exec_client(None, true);
    let outcome = p
        .exec(&pod, "main", sh("echo out; echo err >&2"), c.io)
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(0));
    let out = read_all(c.stdout).await;
    // On a terminal: both streams on it, newlines as CR LF.
    assert!(
        out.contains("out\r\n") && out.contains("err\r\n"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pods_containers_and_stopped_containers_are_errors() {
    let (p, pod) = running("x3").await;
    let other = PodRef {
        uid: "nope".into(),
        ..pod.clone()
    };
    let err = p
        .exec(&other, "main", sh("true"), exec_client(None, false).io)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err}");
    let err = p
        .exec(&pod, "nope", sh("true"), exec_client(None, false).io)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err}");
    let err = p
        .exec(&pod, "quick", sh("true"), exec_client(None, false).io)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot exec in a stopped container"),
        "{err}"
    );
    let outcome = p
        .exec(
            &pod,
            "main",
            vec!["no-such-program-vk".into()],
            exec_client(None, false).io,
        )
        .await
        .unwrap();
    assert!(
        matches!(&outcome, ExecOutcome::Error(m) if m.contains("no-such-program-vk")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tty_exec_runs_on_a_terminal_of_the_clients_size_and_follows_resizes() {
    let (p, pod) = running("x5").await;
    let (out_w, stdout) = tokio::io::duplex(1 << 16);
    let (sizes, resize) = tokio::sync::mpsc::channel(4);
    sizes
        .send(TermSize {
            width: 100,
            height: 30,
        })
        .await
        .unwrap();
    let io = ExecIo {
        stdin: None,
        stdout: Some(Box::new(out_w)),
        stderr: None,
        tty: true,
        resize: Some(resize),
    };
    let script = "trap 'stty size; exit 4' WINCH; tty; stty size; echo err >&2; \
                  while :; do sleep 0.05; done";
    let exec = p.exec(&pod, "main", sh(script), io);
    let client = async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            let line = line.trim_end_matches('\r').to_string();
            if line == "err" {
                sizes
                    .send(TermSize {
                        width: 120,
                        height: 40,
                    })
                    .await
                    .unwrap();
            }
            seen.push(line);
        }
        seen
    };
    let (outcome, seen) = tokio::join!(exec, client);
    assert_eq!(outcome.unwrap(), ExecOutcome::Exited(4), "{seen:?}");
    assert!(seen[0].starts_with("/dev/pts/"), "{seen:?}");
    assert_eq!(seen[1..], ["30 100", "err", "40 120"], "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tty_exec_takes_raw_stdin_through_the_line_discipline() {
    let (p, pod) = running("x6").await;
    let (out_w, stdout) = tokio::io::duplex(1 << 16);
    let io = ExecIo {
        stdin: Some(Box::new(&b"hello\r"[..])),
        stdout: Some(Box::new(out_w)),
        stderr: None,
        tty: true,
        resize: None,
    };
    let outcome = p
        .exec(&pod, "main", sh("read line; echo got:$line"), io)
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(0));
    let out = read_all(stdout).await;
    // The terminal echoes the input and turns newlines into CR LF.
    assert!(out.contains("hello\r\n"), "{out:?}");
    assert!(out.contains("got:hello\r\n"), "{out:?}");
}
