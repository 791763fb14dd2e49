//! Exec on the mock: real local processes, on tokio's real clock.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader, DuplexStream};
use vk_core::provider::{
    EnvVar, ExecIo, ExecOutcome, InstancePhase, PodRef, Provider, ProviderError, TermSize,
};

use super::tests::{pod, provider, wait_for};
use super::*;

struct Client {
    io: ExecIo,
    stdout: DuplexStream,
    stderr: DuplexStream,
}

fn client(stdin: Option<&'static [u8]>, tty: bool) -> Client {
    let (out_w, stdout) = tokio::io::duplex(1 << 16);
    let (err_w, stderr) = tokio::io::duplex(1 << 16);
    Client {
        io: ExecIo {
            stdin: stdin.map(|b| Box::new(b) as Box<dyn AsyncRead + Send + Unpin>),
            stdout: Some(Box::new(out_w)),
            stderr: (!tty).then(|| Box::new(err_w) as _),
            tty,
            resize: None,
        },
        stdout,
        stderr,
    }
}

async fn read_all(mut r: DuplexStream) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s).await.unwrap();
    s
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// A running pod `pod-u1` with app container `main` (env `GREETING=hi`) and `quick` (exits
/// after 10 ms).
async fn running() -> (MockProvider, PodRef) {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod(
        "u1",
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

/// A process that exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_dead(pid: u32) {
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process {pid} outlived its exec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_a_real_command_with_the_containers_env() {
    let (p, pod) = running().await;
    let c = client(None, false);
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
    let pwd = lines.next().unwrap();
    assert!(pwd.contains("vk-mock-exec"), "{pwd}");
    assert_eq!(read_all(c.stderr).await, "err\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipes_stdin_and_a_tty_merges_stderr() {
    let (p, pod) = running().await;
    let c = client(Some(b"hello\n"), false);
    let outcome = p
        .exec(&pod, "main", vec!["cat".into()], c.io)
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(read_all(c.stdout).await, "hello\n");

    let c = client(None, true);
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
    let (p, pod) = running().await;
    let other = PodRef {
        uid: "nope".into(),
        ..pod.clone()
    };
    let err = p
        .exec(&other, "main", sh("true"), client(None, false).io)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err}");
    let err = p
        .exec(&pod, "nope", sh("true"), client(None, false).io)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err}");
    let err = p
        .exec(&pod, "quick", sh("true"), client(None, false).io)
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
            client(None, false).io,
        )
        .await
        .unwrap();
    assert!(
        matches!(&outcome, ExecOutcome::Error(m) if m.contains("no-such-program-vk")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_kills_the_command() {
    let (p, pod) = running().await;
    // Its output fails.
    let c = client(None, false);
    let exec = p.exec(
        &pod,
        "main",
        sh("echo $$; sleep 300 & while true; do echo tick; sleep 0.05; done"),
        c.io,
    );
    let mut lines = BufReader::new(c.stdout).lines();
    let (outcome, pid) = tokio::join!(exec, async move {
        let pid: u32 = lines.next_line().await.unwrap().unwrap().parse().unwrap();
        drop(lines);
        pid
    });
    assert!(matches!(outcome, Ok(ExecOutcome::Error(_))), "{outcome:?}");
    wait_dead(pid).await;

    // The exec is cancelled (the kubelet API drops it when the connection closes).
    let c = client(None, false);
    let p = std::sync::Arc::new(p);
    let task = {
        let (p, pod) = (p.clone(), pod.clone());
        tokio::spawn(async move {
            p.exec(&pod, "main", sh("echo $$; exec sleep 300"), c.io)
                .await
        })
    };
    let mut lines = BufReader::new(c.stdout).lines();
    let pid: u32 = lines.next_line().await.unwrap().unwrap().parse().unwrap();
    assert!(alive(pid));
    task.abort();
    wait_dead(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tty_exec_runs_on_a_terminal_of_the_clients_size_and_follows_resizes() {
    let (p, pod) = running().await;
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
    let (p, pod) = running().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tty_command_and_its_background_jobs_die_with_the_exec() {
    let (p, pod) = running().await;
    let (out_w, stdout) = tokio::io::duplex(1 << 16);
    let io = ExecIo {
        stdin: None,
        stdout: Some(Box::new(out_w)),
        stderr: None,
        tty: true,
        resize: None,
    };
    let p = std::sync::Arc::new(p);
    let task = {
        let (p, pod) = (p.clone(), pod.clone());
        tokio::spawn(async move {
            p.exec(&pod, "main", sh("sleep 300 & echo $! $$; wait"), io)
                .await
        })
    };
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{line:?}");
    assert!(pids.iter().all(|&pid| alive(pid)));
    task.abort();
    for pid in pids {
        wait_dead(pid).await;
    }
}
