//! Component tests of interactive exec: the ECI provider calls ExecContainerCommand on the mock
//! cloud over HTTP, connects to the WebSocketUri it answers, and bridges the client's streams.
//! The `simulate` cases need nothing; the `process` cases run real commands in bubblewrap
//! sandboxes (without `bwrap` they fail and say how to install it).

use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use vk_core::provider::{
    ContainerSpec, EnvVar, ExecIo, ExecOutcome, InstancePhase, PodRef, Provider, ProviderError,
    RestartPolicy, Volume, VolumeMount, VolumeSource,
};

use super::EciProvider;
use crate::exec::{ConnectError, connect};
use crate::tests_support::*;
use crate::wire::request::ExecContainerCommand;
use cloudsim::MockCloud;
use cloudsim::test_support::{exec_client, processes_with, read_all, wait_until};

/// Run a command with the given stdin; (outcome, stdout, stderr).
async fn run(
    provider: &EciProvider,
    pod: &PodRef,
    container: &str,
    command: &[&str],
    stdin: Option<&'static [u8]>,
    tty: bool,
) -> (ExecOutcome, String, String) {
    let c = exec_client(stdin, tty);
    let command = command.iter().map(|s| s.to_string()).collect();
    let (outcome, out, err) = tokio::join!(
        provider.exec(pod, container, command, c.io),
        read_all(c.stdout),
        read_all(c.stderr)
    );
    (outcome.expect("exec starts"), out, err)
}

/// A simulated running pod `exec-sim` with `app` (runs forever) and `quick` (exits at once).
async fn simulated() -> (MockCloud, EciProvider, PodRef) {
    let cloud = cloud(|c| c.exec_token_ttl_ms = 2_000).await;
    let provider = provider(&cloud, "node-x");
    let p = pod(
        "exec-sim",
        RestartPolicy::Never,
        vec![
            sim_container("app", "forever", 0),
            sim_container("quick", "1", 0),
        ],
    );
    provider.create(&p).await.expect("create");
    wait_for(&provider, "exec-sim", "app running, quick done", |s| {
        s.phase == InstancePhase::Running
            && matches!(
                s.containers[1].state,
                vk_core::provider::ContainerState::Terminated { .. }
            )
    })
    .await;
    (cloud, provider, p.pod)
}

#[tokio::test]
async fn simulated_exec_streams_output_stdin_and_exit_codes() {
    let (_cloud, provider, pod) = simulated().await;
    let (outcome, out, err) = run(
        &provider,
        &pod,
        "app",
        &["echo", "hi", "there"],
        None,
        false,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(out, "hi there\n");
    assert_eq!(err, "");

    let (outcome, out, _) = run(&provider, &pod, "app", &["cat"], Some(b"piped in\n"), false).await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(out, "piped in\n");

    let (outcome, _, _) = run(&provider, &pod, "app", &["exit", "3"], None, false).await;
    assert_eq!(outcome, ExecOutcome::Exited(3));
    let (outcome, _, _) = run(&provider, &pod, "app", &["false"], None, true).await;
    assert_eq!(outcome, ExecOutcome::Exited(1));
}

#[tokio::test]
async fn exec_errors_name_the_cause() {
    let (_cloud, provider, pod) = simulated().await;
    let unknown_pod = PodRef {
        uid: "nope".into(),
        ..pod.clone()
    };
    let err = provider
        .exec(&unknown_pod, "app", vec!["true".into()], ExecIo::empty())
        .await
        .unwrap_err();
    assert!(matches!(err.plain(), ProviderError::NotFound(_)), "{err}");
    let err = provider
        .exec(&pod, "nosuch", vec!["true".into()], ExecIo::empty())
        .await
        .unwrap_err();
    assert!(matches!(err.plain(), ProviderError::NotFound(_)), "{err}");
    let err = provider
        .exec(&pod, "quick", vec!["true".into()], ExecIo::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(err.plain(), ProviderError::InvalidSpec { reason, .. } if reason == "ContainerNotRunning"),
        "{err}"
    );
    let err = provider
        .exec(&pod, "app", vec![], ExecIo::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(err.plain(), ProviderError::InvalidSpec { .. }),
        "{err}"
    );
    // ECI's own limit: at most 20 words.
    let err = provider
        .exec(&pod, "app", vec!["echo".into(); 21], ExecIo::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(err.plain(), ProviderError::InvalidSpec { reason, .. } if reason == "InvalidParameter"),
        "{err}"
    );
}

#[tokio::test]
async fn the_websocket_uri_is_single_use_and_expires() {
    let (_cloud, provider, _pod) = simulated().await;
    let id = group_id(&provider).await;
    let ask = || async {
        provider
            .client()
            .send(&ExecContainerCommand {
                container_group_id: id.clone(),
                container_name: "app".into(),
                command: vec!["echo".into(), "once".into()],
                stdin: false,
                ..Default::default()
            })
            .await
            .expect("ExecContainerCommand")
    };
    let answer = ask().await;
    assert!(
        answer.web_socket_uri.starts_with("ws://") && answer.web_socket_uri.contains("/exec/?s="),
        "{answer:?}"
    );
    assert_eq!(answer.sync_response, "");
    let timeout = Duration::from_secs(10);
    let ws = connect(&answer.web_socket_uri, timeout)
        .await
        .expect("first use");
    let c = exec_client(None, false);
    let (outcome, out) = tokio::join!(crate::exec::bridge(ws, c.io), read_all(c.stdout));
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(out, "once\n");
    // Replayed: refused before any upgrade.
    match connect(&answer.web_socket_uri, timeout).await {
        Err(ConnectError::Handshake(e)) => assert!(e.contains("403"), "{e}"),
        Err(e) => panic!("a replayed URI failed otherwise: {e}"),
        Ok(_) => panic!("a replayed URI was accepted"),
    }
    // A token nobody was given.
    let forged = format!(
        "{}?s=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        answer.web_socket_uri.split('?').next().unwrap()
    );
    assert!(matches!(
        connect(&forged, timeout).await,
        Err(ConnectError::Handshake(_))
    ));
    // Unused past its time to live (2 s here).
    let late = ask().await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    match connect(&late.web_socket_uri, timeout).await {
        Err(ConnectError::Handshake(e)) => assert!(e.contains("403"), "{e}"),
        Err(e) => panic!("an expired URI failed otherwise: {e}"),
        Ok(_) => panic!("an expired URI was accepted"),
    }
}

// ---- process executor: real commands in the container's sandbox ----

fn work_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vk-cloud-exec-{name}-{}", std::process::id()))
}

fn shell(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "busybox:1.36".into(),
        command: vec!["/bin/sh".into(), "-c".into()],
        args: vec![script.into()],
        volume_mounts: vec![VolumeMount {
            volume: "workspace".into(),
            mount_path: "/home/jenkins/agent".into(),
            read_only: false,
            sub_path: None,
        }],
        working_dir: Some("/home/jenkins/agent".into()),
        ..Default::default()
    }
}

/// A running pod `exec-proc`: `writer` puts a file into the shared workspace and exits,
/// `build` (env `TOOL=go`) stays up.
async fn real(name: &str) -> (MockCloud, EciProvider, PodRef) {
    let cloud = process_cloud(work_dir(name)).await;
    let provider = provider(&cloud, "node-p");
    let mut build = shell("build", "sleep 3600");
    build.env = vec![EnvVar {
        name: "TOOL".into(),
        value: "go".into(),
    }];
    let writer = shell("writer", "echo built by writer > artifact.txt; sleep 3600");
    let mut p = pod("exec-proc", RestartPolicy::Never, vec![build, writer]);
    p.volumes = vec![Volume {
        name: "workspace".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit_bytes: None,
        },
    }];
    provider.create(&p).await.expect("create");
    wait_for(&provider, "exec-proc", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    (cloud, provider, p.pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_exec_runs_in_the_containers_sandbox() {
    let (_cloud, provider, pod) = real("sandbox").await;
    // Separate streams and the real exit code.
    let (outcome, out, err) = run(
        &provider,
        &pod,
        "build",
        &["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
        None,
        false,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(3));
    assert_eq!(out, "to-out\n");
    assert_eq!(err, "to-err\n");

    // The container's env and working directory, and the workspace another container wrote.
    let mut seen = String::new();
    for _ in 0..100 {
        let (outcome, out, _) = run(
            &provider,
            &pod,
            "build",
            &["sh", "-c", "echo $TOOL; pwd; cat artifact.txt"],
            None,
            false,
        )
        .await;
        seen = out;
        if outcome == ExecOutcome::Exited(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "go\n/home/jenkins/agent\nbuilt by writer\n");

    // Piped stdin, ended by EOF.
    let (outcome, out, _) = run(
        &provider,
        &pod,
        "build",
        &["sh", "-c", "wc -c; tr a-z A-Z < /dev/null"],
        Some(b"twelve bytes"),
        false,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(out.trim(), "12");
    let (outcome, out, _) = run(
        &provider,
        &pod,
        "build",
        &["tr", "a-z", "A-Z"],
        Some(b"shout\n"),
        false,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(out, "SHOUT\n");

    // With a terminal: a real one (isatty, sized as the client says), stderr on it too.
    let (sizes, resize) = tokio::sync::mpsc::channel(1);
    sizes
        .send(vk_core::provider::TermSize {
            width: 50,
            height: 20,
        })
        .await
        .unwrap();
    let mut c = exec_client(Some(b"typed\n"), true);
    c.io.resize = Some(resize);
    let script = "while [ \"$(stty size)\" = '0 0' ]; do sleep 0.05; done; \
                  test -t 0 && test -t 1 && echo tty; stty size; read line; echo \"got $line\"; \
                  echo err >&2; exit 4";
    let (outcome, out) = tokio::join!(
        provider.exec(
            &pod,
            "build",
            vec!["sh".into(), "-c".into(), script.into()],
            c.io
        ),
        read_all(c.stdout)
    );
    drop(sizes);
    assert_eq!(outcome.expect("exec starts"), ExecOutcome::Exited(4));
    let out = out.replace("\r\n", "\n");
    assert!(out.contains("tty\n20 50\n"), "{out:?}");
    assert!(out.contains("got typed\n"), "{out:?}");
    assert!(out.ends_with("err\n"), "{out:?}");

    // A command that does not exist in the sandbox.
    let (outcome, _, err) = run(&provider, &pod, "build", &["no-such-tool"], None, false).await;
    assert!(
        matches!(outcome, ExecOutcome::Exited(c) if c != 0),
        "{outcome:?} {err}"
    );
}

/// A client that goes away leaves its command running, as containerd's CRI does: stdin ends,
/// output is dropped, nothing is killed; the command goes when the container does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_outlives_its_client_until_the_container_stops() {
    let (cloud, provider, pod) = real("gone").await;
    let provider = std::sync::Arc::new(provider);

    // The call is dropped (the kubelet API does that when kubectl's connection closes).
    let marker = format!("sleep 3601.{}", std::process::id() % 1000);
    let call = {
        let (provider, pod) = (provider.clone(), pod.clone());
        let script = format!("{marker}; echo never");
        tokio::spawn(async move {
            let c = exec_client(None, false);
            let _keep = (c.stdout, c.stderr);
            provider
                .exec(&pod, "build", vec!["sh".into(), "-c".into(), script], c.io)
                .await
        })
    };
    wait_until("the exec'd sleep to start", || {
        !processes_with(&marker).is_empty()
    })
    .await;
    call.abort();
    // A command reading its stdin gets its end and finishes.
    let reader = format!("cat > /dev/null # reader-{}", std::process::id());
    let c = exec_client(None, false);
    let (provider2, pod2, script) = (provider.clone(), pod.clone(), reader.clone());
    let mut io = c.io;
    let (stdin_tx, stdin_rx) = tokio::io::duplex(64);
    io.stdin = Some(Box::new(stdin_rx));
    let call = tokio::spawn(async move {
        let _keep = (c.stdout, c.stderr);
        provider2
            .exec(&pod2, "build", vec!["sh".into(), "-c".into(), script], io)
            .await
    });
    wait_until("the exec'd reader to start", || {
        !processes_with(&reader).is_empty()
    })
    .await;
    call.abort();
    drop(stdin_tx);
    wait_until("the reader to see its stdin end", || {
        processes_with(&reader).is_empty()
    })
    .await;
    assert!(
        !processes_with(&marker).is_empty(),
        "the sleep ignoring its stdin still runs after its client left"
    );

    // The client stops reading: the exec call ends with an error, the command goes on.
    let ticker = format!("tick-{}", std::process::id());
    let script = format!("while :; do echo {ticker}; sleep 0.05; done");
    let c = exec_client(None, false);
    let mut stdout = c.stdout;
    let (provider3, pod3) = (provider.clone(), pod.clone());
    let call = tokio::spawn(async move {
        provider3
            .exec(&pod3, "build", vec!["sh".into(), "-c".into(), script], c.io)
            .await
    });
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).await.expect("output arrives");
    drop(stdout);
    let outcome = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("exec ends once its client is gone")
        .expect("task")
        .expect("exec started");
    assert!(matches!(outcome, ExecOutcome::Error(_)), "{outcome:?}");
    assert!(!processes_with(&ticker).is_empty(), "the loop goes on");

    // Deleting the group ends a running exec with an error and ends every command left.
    let last = format!("sleep 3602.{}", std::process::id() % 1000);
    let c = exec_client(None, false);
    let (provider4, pod4, m) = (provider.clone(), pod.clone(), last.clone());
    let call = tokio::spawn(async move {
        let _keep = (c.stdout, c.stderr);
        provider4
            .exec(&pod4, "build", vec!["sh".into(), "-c".into(), m], c.io)
            .await
    });
    wait_until("the exec'd sleep to start", || {
        !processes_with(&last).is_empty()
    })
    .await;
    provider.delete(&pod, Duration::ZERO).await.expect("delete");
    let outcome = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("exec ends with its group")
        .expect("task")
        .expect("exec started");
    // Either the session learns of the deletion first, or the command's SIGKILL arrives first
    // (137, what a kubelet's exec reports for a command killed with its container).
    assert!(
        matches!(outcome, ExecOutcome::Error(_) | ExecOutcome::Exited(137)),
        "{outcome:?}"
    );
    for m in [&marker, &ticker, &last] {
        wait_until("the container's processes to end with it", || {
            processes_with(m).is_empty()
        })
        .await;
    }
    assert_eq!(cloud.exec_sessions().pending(), 0);
}

/// Jenkins' durable task: the step's script starts in the background through exec and must
/// outlive the exec; another container sees its result in the shared workspace. The exec'd
/// command is a process of the container: it sees the container's processes and hostname.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_joins_the_container_and_background_jobs_outlive_it() {
    let (_cloud, provider, pod) = real("joined").await;
    let (outcome, _, _) = run(
        &provider,
        &pod,
        "build",
        &["sh", "-c", "(sleep 1; echo done > result.txt) >&- 2>&- &"],
        None,
        false,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    let mut seen = String::new();
    for _ in 0..200 {
        let (_, out, _) = run(
            &provider,
            &pod,
            "writer",
            &["sh", "-c", "cat result.txt 2>/dev/null"],
            None,
            false,
        )
        .await;
        seen = out;
        if seen == "done\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "done\n", "the background job wrote its result");

    let (outcome, out, _) = run(
        &provider,
        &pod,
        "build",
        &[
            "sh",
            "-c",
            "hostname; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done",
        ],
        None,
        false,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("default-pod-exec-proc"), "{out}");
    assert!(
        lines.any(|l| l.trim_end() == "sleep 3600"),
        "the container's main process is visible: {out}"
    );
}

/// The kubernetes-plugin's build containers: `cat` kept waiting by a terminal (`tty: true`)
/// or by an open stdin (`stdin: true`) runs for the pod's life, and exec works in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_containers_with_a_terminal_or_stdin_keep_running() {
    let cloud = process_cloud(work_dir("cat")).await;
    let provider = provider(&cloud, "node-p");
    let cat = |name: &str, tty: bool, stdin: bool| ContainerSpec {
        name: name.into(),
        image: "golang:1.22".into(),
        command: vec!["cat".into()],
        tty,
        stdin,
        ..Default::default()
    };
    let p = pod(
        "cat-pod",
        RestartPolicy::Never,
        vec![cat("golang", true, false), cat("kaniko", false, true)],
    );
    provider.create(&p).await.expect("create");
    wait_for(&provider, "cat-pod", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A runtime sets TERM for a container with a terminal.
    for (container, term) in [("golang", "xterm\n"), ("kaniko", "\n")] {
        let (outcome, out, _) = run(
            &provider,
            &p.pod,
            container,
            &["sh", "-c", "echo $TERM"],
            None,
            false,
        )
        .await;
        assert_eq!(outcome, ExecOutcome::Exited(0), "{container}: {out}");
        assert_eq!(out, term, "{container}");
    }
    let status = cloudsim::test_support::status_of(&provider, &p.pod)
        .await
        .expect("status")
        .expect("known");
    for c in &status.containers {
        assert!(
            matches!(c.state, vk_core::provider::ContainerState::Running { .. }),
            "{}: {:?}",
            c.name,
            c.state
        );
    }
    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_of_stdin_and_stdout_flow_both_ways_at_once() {
    let (_cloud, provider, pod) = real("bulk").await;
    // More than the server buffers for stdin (1 MiB) and than any pipe holds, so both
    // directions must keep moving while the other is busy.
    let input: &'static [u8] = Box::leak(
        (0..6 * 1024 * 1024u32)
            .map(|i| b"0123456789abcdef\n"[(i % 17) as usize])
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let c = exec_client(Some(input), false);
    let mut stdout = c.stdout;
    let (outcome, echoed) = tokio::join!(
        provider.exec(&pod, "build", vec!["cat".into()], c.io),
        async move {
            let mut all = Vec::new();
            stdout.read_to_end(&mut all).await.unwrap();
            all
        }
    );
    assert_eq!(outcome.expect("exec starts"), ExecOutcome::Exited(0));
    assert_eq!(echoed.len(), input.len());
    assert!(echoed == input, "the echoed bytes differ");
}

/// A raw HTTP/1.1 request to the cloud; the status line of its answer.
async fn raw_status(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_exec_address_takes_only_a_proper_websocket_upgrade() {
    let (cloud, provider, _pod) = simulated().await;
    let id = group_id(&provider).await;
    let answer = provider
        .client()
        .send(&ExecContainerCommand {
            container_group_id: id,
            container_name: "app".into(),
            command: vec!["echo".into(), "still good".into()],
            stdin: false,
            ..Default::default()
        })
        .await
        .expect("ExecContainerCommand");
    let path = format!(
        "/exec/?{}",
        answer.web_socket_uri.split_once('?').unwrap().1
    );
    // Refused before the token is taken: a plain GET, and a WebSocket of another subprotocol.
    let plain = raw_status(cloud.addr(), &path, "").await;
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let other = raw_status(
        cloud.addr(),
        &path,
        &format!("{upgrade}Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n"),
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 400"), "{other}");
    assert_eq!(cloud.exec_sessions().pending(), 1);
    // The token still works once.
    let ws = connect(&answer.web_socket_uri, Duration::from_secs(10))
        .await
        .expect("the token was not spent by refused requests");
    let c = exec_client(None, false);
    let (outcome, out) = tokio::join!(crate::exec::bridge(ws, c.io), read_all(c.stdout));
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(out, "still good\n");
    assert_eq!(cloud.exec_sessions().pending(), 0);
}
