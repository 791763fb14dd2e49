//! The `process` executor for real: containers run as sandboxed processes (bubblewrap), driven
//! by the ECI provider over HTTP. Needs `bwrap` on the machine; without it the tests fail and
//! say how to install it.

use std::time::Duration;

use futures::TryStreamExt as _;
use vk_core::provider::{
    ContainerSpec, ContainerState, EnvVar, InstancePhase, LogOptions, PodRef, Provider,
    RestartPolicy, Volume, VolumeFile, VolumeMount, VolumeSource,
};

use crate::EciProvider;
use crate::tests_support::{group_id, pod, process_cloud, provider, wait_for};
use crate::wire::request::ExecContainerCommand;

fn work_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vk-cloud-test-{name}-{}", std::process::id()))
}

fn shell(name: &str, script: &str, mounts: &[(&str, &str)]) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "busybox:1.36".into(),
        command: vec!["/bin/sh".into(), "-c".into()],
        args: vec![script.into()],
        volume_mounts: mounts
            .iter()
            .map(|(volume, path)| VolumeMount {
                volume: volume.to_string(),
                mount_path: path.to_string(),
                read_only: false,
                sub_path: None,
            })
            .collect(),
        ..Default::default()
    }
}

async fn logs(provider: &EciProvider, pod: &PodRef, container: &str) -> String {
    let chunks: Vec<bytes::Bytes> = provider
        .logs(pod, container, &LogOptions::default())
        .await
        .expect("logs")
        .try_collect()
        .await
        .expect("log stream");
    String::from_utf8(chunks.concat()).expect("utf-8")
}

fn exit_code(state: &ContainerState) -> Option<i32> {
    match state {
        ContainerState::Terminated { exit_code, .. } => Some(*exit_code),
        _ => None,
    }
}

#[tokio::test]
async fn two_containers_share_an_empty_dir_for_real() {
    let work = work_dir("share");
    let cloud = process_cloud(work.clone()).await;
    let provider = provider(&cloud, "node-p");

    let mut writer = shell(
        "writer",
        "echo \"hello from $GREETER\" > /data/msg && echo wrote && echo oops >&2",
        &[("shared", "/data")],
    );
    writer.env = vec![EnvVar {
        name: "GREETER".into(),
        value: "the writer".into(),
    }];
    let mut reader = shell(
        "reader",
        "while [ ! -f msg ]; do sleep 0.05; done; cat msg; pwd; cat /etc/app/config.txt; \
         stat -c %a /etc/app/config.txt; cat /init/done; echo pid $$; exit 3",
        &[
            ("shared", "/data"),
            ("config", "/etc/app"),
            ("scratch", "/init"),
        ],
    );
    reader.working_dir = Some("/data".into());
    let mut p = pod("proc-1", RestartPolicy::Never, vec![writer, reader]);
    // An init container with `tty: true` runs on a terminal too.
    let mut init = shell(
        "init",
        "test -t 0 && test -t 1 && echo \"initialized on $TERM\" > /init/done",
        &[("scratch", "/init")],
    );
    init.tty = true;
    p.init_containers = vec![init];
    let empty_dir = || VolumeSource::EmptyDir {
        memory: false,
        size_limit_bytes: None,
    };
    p.volumes = vec![
        Volume {
            name: "shared".into(),
            source: empty_dir(),
        },
        Volume {
            name: "scratch".into(),
            source: empty_dir(),
        },
        Volume {
            name: "config".into(),
            source: VolumeSource::Files(vec![VolumeFile {
                path: "config.txt".into(),
                content: b"setting=1\n".to_vec(),
                mode: 0o640,
            }]),
        },
    ];
    provider.create(&p).await.expect("create");
    let done = wait_for(&provider, "proc-1", "Failed", |s| {
        s.phase == InstancePhase::Failed
    })
    .await;
    assert_eq!(exit_code(&done.init_containers[0].state), Some(0));
    let by_name = |name: &str| {
        done.containers
            .iter()
            .find(|c| c.name == name)
            .expect("container")
    };
    let writer_logs = logs(&provider, &p.pod, "writer").await;
    let reader_logs = logs(&provider, &p.pod, "reader").await;
    assert_eq!(
        exit_code(&by_name("writer").state),
        Some(0),
        "{writer_logs}"
    );
    assert_eq!(
        exit_code(&by_name("reader").state),
        Some(3),
        "{reader_logs}"
    );

    assert!(writer_logs.contains("wrote\n"), "{writer_logs}");
    assert!(
        writer_logs.contains("oops\n"),
        "stderr is captured too: {writer_logs}"
    );
    let lines: Vec<&str> = reader_logs.lines().collect();
    assert_eq!(lines[0], "hello from the writer", "{reader_logs}");
    assert_eq!(lines[1], "/data", "working dir: {reader_logs}");
    assert_eq!(lines[2], "setting=1", "{reader_logs}");
    assert_eq!(lines[3], "640", "config file mode: {reader_logs}");
    assert_eq!(
        lines[4], "initialized on xterm",
        "init container ran first: {reader_logs}"
    );
    // Its own PID namespace: the shell is one of the first processes there.
    let pid: u32 = lines[5]
        .strip_prefix("pid ")
        .and_then(|n| n.parse().ok())
        .expect("pid line");
    assert!(pid <= 3, "{reader_logs}");

    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leftovers = std::fs::read_dir(&work).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "the sandbox is removed with the group");
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn exec_runs_in_the_containers_sandbox_and_delete_stops_it() {
    let work = work_dir("exec");
    let cloud = process_cloud(work.clone()).await;
    let provider = provider(&cloud, "node-p");
    let app = shell(
        "app",
        "echo ready > /data/state; echo started; exec sleep 61.7",
        &[("shared", "/data")],
    );
    let mut p = pod("proc-2", RestartPolicy::Always, vec![app]);
    p.volumes = vec![Volume {
        name: "shared".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit_bytes: None,
        },
    }];
    provider.create(&p).await.expect("create");
    wait_for(&provider, "proc-2", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let id = group_id(&provider).await;
    let exec = |command: &[&str]| ExecContainerCommand {
        container_group_id: id.clone(),
        container_name: "app".into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        sync: true,
        ..Default::default()
    };
    // The file may lag the Running status by a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let output = loop {
        let answer = provider
            .client()
            .send(&exec(&["cat", "/data/state"]))
            .await
            .expect("exec");
        if answer.sync_response == "ready\n" || tokio::time::Instant::now() > deadline {
            break answer.sync_response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(output, "ready\n");
    let answer = provider
        .client()
        .send(&exec(&[
            "sh",
            "-c",
            "echo $HOSTNAME; ls /proc | grep -c '^[0-9]'",
        ]))
        .await
        .expect("exec");
    let mut lines = answer.sync_response.lines();
    assert_eq!(
        lines.next(),
        Some("default-pod-proc-2"),
        "{}",
        answer.sync_response
    );

    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // No sleep of ours is left behind on the host.
    let ours = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline.as_slice() == b"sleep\x0061.7\x00")
        .count();
    assert_eq!(ours, 0, "the container's process was killed with its group");
    let _ = std::fs::remove_dir_all(&work);
}
