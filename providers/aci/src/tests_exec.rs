//! Exec with exit codes for real: the face's `process` executor runs containers as sandboxed
//! processes (bubblewrap) with a real `/bin/sh`, and its exec is ACI's terminal-only socket.
//! Needs `bwrap` on the machine; without it the tests fail and say how to install it.

use std::time::Duration;

use cloudsim::engine::executor::ExecutorKind;
use cloudsim::engine::executor::process::check_bwrap;
use cloudsim::test_support::{exec_client, read_all};
use vk_core::provider::{ContainerSpec, ExecOutcome, InstancePhase, Provider, RestartPolicy};

use crate::AciProvider;
use crate::tests_support::*;

async fn process_cloud(name: &str) -> (cloudsim::aci::AciCloud, std::path::PathBuf) {
    if let Err(e) = check_bwrap(std::path::Path::new("bwrap")).await {
        panic!("{e}");
    }
    let work = std::env::temp_dir().join(format!("vk-aci-exec-{name}-{}", std::process::id()));
    let w = work.clone();
    let cloud = cloud(move |c| {
        c.executor = ExecutorKind::Process;
        c.process.work_dir = Some(w);
    })
    .await;
    (cloud, work)
}

async fn running_pod(provider: &AciProvider, uid: &str) -> vk_core::provider::PodRef {
    let app = ContainerSpec {
        name: "app".into(),
        image: "busybox:1.36".into(),
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo started; exec sleep 61.3".into(),
        ],
        ..Default::default()
    };
    let p = pod(uid, RestartPolicy::Always, vec![app]);
    provider.create(&p).await.expect("create");
    wait_for(provider, uid, "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    p.pod
}

#[tokio::test]
async fn exec_returns_exit_codes_separate_stderr_and_takes_stdin_to_its_end() {
    let (cloud, work) = process_cloud("codes").await;
    let provider = provider(&cloud, "node-e");
    let pod = running_pod(&provider, "uid-exec").await;

    let client = exec_client(Some(b"hello\nworld\n"), false);
    let argv = [
        "sh",
        "-c",
        "echo out; echo err >&2; cat; printf 'last' >&2; exit 5",
    ];
    let outcome = provider
        .exec(
            &pod,
            "app",
            argv.iter().map(|s| s.to_string()).collect(),
            client.io,
        )
        .await
        .expect("exec starts");
    assert_eq!(outcome, ExecOutcome::Exited(5));
    assert_eq!(read_all(client.stdout).await, "out\nhello\nworld\n");
    assert_eq!(read_all(client.stderr).await, "err\nlast\n");

    // Without stdin the command sees its end at once; quotes survive; exit 0.
    let client = exec_client(None, false);
    let outcome = provider
        .exec(
            &pod,
            "app",
            vec![
                "sh".into(),
                "-c".into(),
                "cat; echo \"it's $((6*7))\"".into(),
            ],
            client.io,
        )
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(read_all(client.stdout).await, "it's 42\n");

    // A command that exits while stdin is still open ends the exec.
    let (_keep, stdin) = tokio::io::duplex(64);
    let mut client = exec_client(None, false);
    client.io.stdin = Some(Box::new(stdin));
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        provider.exec(&pod, "app", vec!["false".into()], client.io),
    )
    .await
    .expect("the exec ends with its command")
    .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(1));

    // A missing program: the shell's 127.
    let client = exec_client(None, false);
    let outcome = provider
        .exec(&pod, "app", vec!["no-such-program".into()], client.io)
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(127));
    let (out, err) = (read_all(client.stdout).await, read_all(client.stderr).await);
    assert!(err.contains("not found"), "stderr {err:?}, stdout {out:?}");

    provider.delete(&pod, Duration::ZERO).await.unwrap();
    drop(cloud);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn exec_with_a_tty_runs_on_the_terminal() {
    let (cloud, work) = process_cloud("tty").await;
    let provider = provider(&cloud, "node-e2");
    let pod = running_pod(&provider, "uid-tty").await;
    let client = exec_client(Some(b"typed\n"), true);
    let outcome = provider
        .exec(
            &pod,
            "app",
            vec![
                "sh".into(),
                "-c".into(),
                "test -t 0 && read x && echo \"got $x\"; exit 3".into(),
            ],
            client.io,
        )
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(3));
    let out = read_all(client.stdout).await;
    assert!(out.contains("got typed"), "{out:?}");
    provider.delete(&pod, Duration::ZERO).await.unwrap();
    drop(cloud);
    let _ = std::fs::remove_dir_all(&work);
}
