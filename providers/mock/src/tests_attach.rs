//! Main processes and attach on the mock: real local processes, on tokio's real clock.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, DuplexStream};
use vk_core::provider::{
    ContainerState, ExecIo, ExecOutcome, InstancePhase, LogOptions, PodRef, Provider,
    ProviderError, TermSize,
};

use super::*;
use crate::tests::{pod, provider, wait_for};
use cloudsim::test_support::{processes_with, wait_until};

/// A running pod `pod-<uid>` whose container `main` runs `script` as its main process.
async fn running(
    uid: &str,
    script: &str,
    stdin: bool,
    tty: bool,
) -> (MockProvider, PodRef, mpsc::Receiver<StatusEvent>) {
    let (p, mut rx) = provider(MockConfig {
        log_interval_ms: 0,
        ..MockConfig::default()
    });
    let mut spec = pod(uid, &[("mock.vk.io/process.main", script)], &["main"]);
    spec.containers[0].stdin = stdin;
    spec.containers[0].tty = tty;
    p.create(&spec).await.unwrap();
    let status = wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    // Attach waits for the process's registration, which follows the container's start.
    (p, status.pod, rx)
}

struct Client {
    io: ExecIo,
    stdin: Option<DuplexStream>,
    stdout: DuplexStream,
    resize: Option<mpsc::Sender<TermSize>>,
}

fn client(stdin: bool, tty: bool) -> Client {
    let (out_w, stdout) = tokio::io::duplex(1 << 16);
    let (in_client, in_server) = tokio::io::duplex(1 << 16);
    let (sizes, resize) = mpsc::channel(4);
    Client {
        io: ExecIo {
            stdin: stdin.then(|| Box::new(in_server) as Box<dyn AsyncRead + Send + Unpin>),
            stdout: Some(Box::new(out_w)),
            stderr: None,
            tty,
            resize: tty.then_some(resize),
        },
        stdin: stdin.then_some(in_client),
        stdout,
        resize: tty.then_some(sizes),
    }
}

async fn log_lines(p: &MockProvider, pod: &PodRef) -> Vec<String> {
    let chunks: Vec<bytes::Bytes> = p
        .logs(pod, "main", &LogOptions::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    String::from_utf8(chunks.concat())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_main_process_writes_the_log_and_its_exit_code_ends_the_container() {
    let (p, pod, mut rx) = running(
        "p1",
        "echo out; echo err >&2; echo $HOSTNAME; exit 7",
        false,
        false,
    )
    .await;
    let status = wait_for(&mut rx, |s| s.phase == InstancePhase::Failed).await;
    assert!(
        matches!(
            status.containers[0].state,
            ContainerState::Terminated { exit_code: 7, .. }
        ),
        "{status:?}"
    );
    let lines = log_lines(&p, &pod).await;
    // Only the process's output: a real main process has no line of the mock's own.
    let mut rest: Vec<&str> = lines.iter().map(String::as_str).collect();
    rest.sort_unstable();
    assert_eq!(rest, ["err", "out", "pod-p1"], "{lines:?}");
}

/// Attaches a client in a task; its stdin and a line reader of its stdout.
fn attach_client(
    p: &Arc<MockProvider>,
    pod: &PodRef,
) -> (
    tokio::task::JoinHandle<Result<ExecOutcome, ProviderError>>,
    DuplexStream,
    tokio::io::Lines<BufReader<DuplexStream>>,
) {
    let mut c = client(true, false);
    let stdin = c.stdin.take().unwrap();
    let (p, pod, io) = (p.clone(), pod.clone(), c.io);
    let task = tokio::spawn(async move { p.attach(&pod, "main", io).await });
    (task, stdin, BufReader::new(c.stdout).lines())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_sends_stdin_to_the_process_and_its_output_back_and_detaching_leaves_it_running() {
    let (p, pod, _rx) = running("p2", "exec cat", true, false).await;
    let p = Arc::new(p);
    let (first, mut stdin, mut lines) = attach_client(&p, &pod);
    stdin.write_all(b"hello\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("hello"));
    // Detach: the client goes away. Its attach ends at the next output it cannot write (the
    // kubelet API also drops the call as soon as the connection closes).
    drop((stdin, lines));

    let (second, mut stdin, mut lines) = attach_client(&p, &pod);
    stdin.write_all(b"again\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("again"));
    assert_eq!(first.await.unwrap().unwrap(), ExecOutcome::Exited(0));
    let status = cloudsim::test_support::status_of(&*p, &pod)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(status.containers[0].state, ContainerState::Running { .. }),
        "{status:?}"
    );
    let log = log_lines(&p, &pod).await;
    assert_eq!(log, ["hello", "again"], "{log:?}");
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_ends_when_the_process_exits() {
    let (p, pod, _rx) = running("p3", "read line; echo bye $line", true, false).await;
    let mut c = client(true, false);
    let mut stdin = c.stdin.take().unwrap();
    let attach = p.attach(&pod, "main", c.io);
    let client = async move {
        stdin.write_all(b"now\n").await.unwrap();
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut c.stdout, &mut out)
            .await
            .unwrap();
        out
    };
    let (outcome, out) = tokio::join!(attach, client);
    assert_eq!(outcome.unwrap(), ExecOutcome::Exited(0));
    assert_eq!(out, "bye now\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tty_main_process_runs_on_a_terminal_that_attach_resizes() {
    let (p, pod, _rx) = running(
        "p4",
        "trap 'stty size' WINCH; test -t 0 && test -t 1 && echo on-a-terminal; \
         while :; do sleep 0.05; done",
        true,
        true,
    )
    .await;
    // The trap is set once the process has printed its terminal.
    for _ in 0..200 {
        if !log_lines(&p, &pod).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = log_lines(&p, &pod).await;
    assert_eq!(log[0], "on-a-terminal", "{log:?}");
    let mut c = client(true, true);
    let sizes = c.resize.take().unwrap();
    let attach = tokio::spawn({
        let p = std::sync::Arc::new(p);
        let pod = pod.clone();
        async move { p.attach(&pod, "main", c.io).await }
    });
    sizes
        .send(TermSize {
            width: 77,
            height: 21,
        })
        .await
        .unwrap();
    let mut lines = BufReader::new(c.stdout).lines();
    // The process may print its first line before or after the client attached.
    loop {
        let line = lines.next_line().await.unwrap().unwrap();
        if line.trim_end_matches('\r') == "21 77" {
            break;
        }
        assert_eq!(line.trim_end_matches('\r'), "on-a-terminal");
    }
    attach.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_needs_a_main_process() {
    let (p, mut rx) = provider(MockConfig::default());
    p.create(&pod("p5", &[], &["main"])).await.unwrap();
    let status = wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    let err = p
        .attach(&status.pod, "main", client(false, false).io)
        .await
        .unwrap_err();
    match err {
        ProviderError::InvalidSpec { reason, message } => {
            assert_eq!(reason, "NoMainProcess");
            assert!(message.contains("mock.vk.io/process.main"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_kills_the_main_process_and_everything_it_started_and_removes_the_pods_files() {
    let marker = format!("3901.{}", std::process::id() % 1000);
    let script = format!("sleep {marker} & echo started; wait");
    let (p, pod, _rx) = running("p6", &script, false, false).await;
    // The main process's job, and one an exec started.
    let c = cloudsim::test_support::exec_client(None, false);
    let exec_job = format!("sleep {marker}0 >&- 2>&- &");
    let outcome = p
        .exec(&pod, "main", vec!["sh".into(), "-c".into(), exec_job], c.io)
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(0));
    wait_until("both jobs to run", || processes_with(&marker).len() >= 2).await;
    let dir = crate::pod_dir(&pod);
    assert!(dir.is_dir(), "{}", dir.display());
    p.delete(&pod, Duration::ZERO).await.unwrap();
    wait_until("the pod's directory to go with it", || !dir.exists()).await;
    wait_until("the container's processes to end with it", || {
        processes_with(&marker).is_empty()
    })
    .await;
}
