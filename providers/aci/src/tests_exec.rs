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

/// The shape of a Jenkins agent pod: TTY `cat` containers sharing a workspace, steps run by
/// exec with a script on stdin, and their exit codes.
#[tokio::test]
async fn a_jenkins_shaped_pod_keeps_its_cat_containers_and_runs_steps_by_exec() {
    use vk_core::provider::{Volume, VolumeMount, VolumeSource};
    let (cloud, work) = process_cloud("jenkins").await;
    let provider = provider(&cloud, "node-j");
    let cat = |name: &str| ContainerSpec {
        name: name.into(),
        image: "busybox:1.36".into(),
        command: vec!["cat".into()],
        tty: true,
        working_dir: Some("/home/jenkins/agent".into()),
        volume_mounts: vec![VolumeMount {
            volume: "workspace".into(),
            mount_path: "/home/jenkins/agent".into(),
            read_only: false,
            sub_path: None,
        }],
        ..Default::default()
    };
    let mut p = pod(
        "uid-jenkins",
        RestartPolicy::Never,
        vec![cat("maven"), cat("golang")],
    );
    p.volumes = vec![Volume {
        name: "workspace".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit_bytes: None,
        },
    }];
    provider.create(&p).await.expect("create");
    wait_for(&provider, "uid-jenkins", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = wait_for(&provider, "uid-jenkins", "Running", |_| true).await;
    assert_eq!(
        still.phase,
        InstancePhase::Running,
        "cat keeps waiting on its stdin: {still:#?}"
    );
    assert!(
        still
            .events
            .iter()
            .any(|e| e.reason == crate::mapping::UNSUPPORTED_FIELD)
    );

    // A step: `sh` reads its script from stdin, in the workspace, and fails with 4.
    let client = exec_client(Some(b"pwd\necho built > artifact.txt\nexit 4\n"), false);
    let outcome = provider
        .exec(&p.pod, "maven", vec!["sh".into()], client.io)
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(4));
    // Exec runs in the container's working directory, as the kubelet's does.
    assert_eq!(read_all(client.stdout).await, "/home/jenkins/agent\n");
    // The other container sees the shared workspace.
    let client = exec_client(None, false);
    let outcome = provider
        .exec(
            &p.pod,
            "golang",
            vec!["cat".into(), "artifact.txt".into()],
            client.io,
        )
        .await
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(read_all(client.stdout).await, "built\n");
    provider.delete(&p.pod, Duration::ZERO).await.unwrap();
    drop(cloud);
    let _ = std::fs::remove_dir_all(&work);
}
