//! The `process` executor honours what a pod's security context, lifecycle hooks,
//! termination message and `shareProcessNamespace` ask for, driven by the ECI provider over
//! HTTP: the user of every process, a read-only root with writable volumes, preStop before
//! the stop, a failing postStart killing the run, the message file, one PID namespace.

use std::time::Duration;

use futures::TryStreamExt as _;
use vk_core::provider::{
    ContainerSecurity, ContainerSpec, ContainerState, InstancePhase, Lifecycle, LifecycleHandler,
    LogOptions, PodRef, Provider, RestartPolicy, TerminationMessagePolicy, Volume, VolumeMount,
    VolumeSource,
};

use crate::EciProvider;
use crate::tests_support::{group_id, pod, process_cloud, provider, wait_for};
use crate::wire::request::{DescribeContainerGroups, ExecContainerCommand};

fn work_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vk-cloud-sec-{name}-{}", std::process::id()))
}

fn shell(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "busybox:1.36".into(),
        command: vec!["/bin/sh".into(), "-c".into()],
        args: vec![script.into()],
        ..Default::default()
    }
}

fn exec_hook(script: &str) -> Option<LifecycleHandler> {
    Some(LifecycleHandler::Exec {
        command: vec!["sh".into(), "-c".into(), script.into()],
    })
}

async fn logs(provider: &EciProvider, pod: &PodRef, container: &str) -> String {
    match provider.logs(pod, container, &LogOptions::default()).await {
        Ok(stream) => {
            let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap_or_default();
            String::from_utf8_lossy(&chunks.concat()).into_owned()
        }
        Err(_) => String::new(),
    }
}

async fn exec(provider: &EciProvider, id: &str, container: &str, command: &[&str]) -> String {
    provider
        .client()
        .send(&ExecContainerCommand {
            container_group_id: id.to_string(),
            container_name: container.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            sync: true,
            ..Default::default()
        })
        .await
        .expect("exec")
        .sync_response
}

#[tokio::test]
async fn a_non_root_read_only_container_runs_its_pre_stop_hook_on_delete() {
    let work = work_dir("user");
    let cloud = process_cloud(work.clone()).await;
    let provider = provider(&cloud, "node-s");
    let mut app = shell("app", "echo started; exec sleep 600");
    app.security = ContainerSecurity {
        run_as_user: Some(1000),
        read_only_root_filesystem: Some(true),
        ..Default::default()
    };
    app.volume_mounts = vec![VolumeMount {
        volume: "scratch".into(),
        mount_path: "/scratch".into(),
        read_only: false,
        sub_path: None,
    }];
    app.lifecycle = Lifecycle {
        pre_stop: exec_hook("echo pre-stop as $(id -u)"),
        ..Default::default()
    };
    let mut p = pod("sec-1", RestartPolicy::Always, vec![app]);
    p.termination_grace_period = Some(Duration::from_secs(20));
    p.volumes = vec![Volume {
        name: "scratch".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit_bytes: None,
        },
    }];
    provider.create(&p).await.expect("create");
    wait_for(&provider, "sec-1", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let id = group_id(&provider).await;
    assert_eq!(exec(&provider, &id, "app", &["id", "-u"]).await, "1000\n");
    assert_eq!(exec(&provider, &id, "app", &["id", "-g"]).await, "0\n");
    let root = exec(
        &provider,
        &id,
        "app",
        &["sh", "-c", "touch /x 2>&1; echo $?"],
    )
    .await;
    assert!(root.contains("Read-only file system"), "{root}");
    let volume = exec(
        &provider,
        &id,
        "app",
        &["sh", "-c", "touch /scratch/y && echo ok"],
    )
    .await;
    assert_eq!(volume, "ok\n");
    let caps = exec(
        &provider,
        &id,
        "app",
        &["grep", "CapEff", "/proc/self/status"],
    )
    .await;
    assert!(caps.ends_with("0000000000000000\n"), "{caps}");
    // ECI echoes the context.
    let described = provider
        .client()
        .send(&DescribeContainerGroups::default())
        .await
        .expect("describe");
    let security = described.container_groups[0].containers[0]
        .security_context
        .clone()
        .expect("security context echoed");
    assert_eq!(security.run_as_user, Some(1000));
    assert!(security.read_only_root_filesystem);

    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
    // The group terminates: the hook's output reaches the log before the group goes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while tokio::time::Instant::now() < deadline {
        let log = logs(&provider, &p.pod, "app").await;
        if log.contains("pre-stop as 1000") {
            seen = log;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.contains("started"), "{seen}");
    assert!(seen.contains("pre-stop as 1000"), "{seen}");
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn a_failing_post_start_hook_restarts_the_container_and_messages_are_kept() {
    let work = work_dir("hooks");
    let cloud = process_cloud(work.clone()).await;
    let provider = provider(&cloud, "node-s");
    let mut hooked = shell("hooked", "exec sleep 600");
    hooked.lifecycle = Lifecycle {
        post_start: exec_hook("echo no >&2; exit 7"),
        ..Default::default()
    };
    let mut p = pod("sec-2", RestartPolicy::Always, vec![hooked]);
    p.termination_grace_period = Some(Duration::from_secs(5));
    provider.create(&p).await.expect("create");
    let status = wait_for(&provider, "sec-2", "restarted", |s| {
        s.containers[0].restart_count >= 1
            && s.events.iter().any(|e| e.reason == "FailedPostStartHook")
    })
    .await;
    let event = status
        .events
        .iter()
        .find(|e| e.reason == "FailedPostStartHook")
        .expect("event");
    assert!(event.warning);
    assert_eq!(event.container.as_deref(), Some("hooked"));
    assert!(event.message.contains("exited with 7"), "{}", event.message);
    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");

    let mut file = shell("file", "printf 'all done' > /dev/termination-log; exit 3");
    file.termination_message_path = Some("/dev/termination-log".into());
    let mut fallback = shell("fallback", "echo the last words; exit 2");
    fallback.termination_message_policy = TerminationMessagePolicy::FallbackToLogsOnError;
    let p = pod("sec-3", RestartPolicy::Never, vec![file, fallback]);
    provider.create(&p).await.expect("create");
    let status = wait_for(&provider, "sec-3", "finished", |s| {
        s.phase == InstancePhase::Failed
    })
    .await;
    let message = |i: usize| match &status.containers[i].state {
        ContainerState::Terminated { message, .. } => message.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(message(0).as_deref(), Some("all done"));
    assert_eq!(message(1).as_deref(), Some("the last words"));
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn containers_sharing_the_process_namespace_see_each_other() {
    let work = work_dir("pid");
    let cloud = process_cloud(work.clone()).await;
    let provider = provider(&cloud, "node-s");
    let mut p = pod(
        "sec-4",
        RestartPolicy::Always,
        vec![
            shell("one", "exec sleep 607.5"),
            shell("two", "exec sleep 608.5"),
        ],
    );
    p.share_process_namespace = true;
    provider.create(&p).await.expect("create");
    wait_for(&provider, "sec-4", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let id = group_id(&provider).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while tokio::time::Instant::now() < deadline {
        seen = exec(
            &provider,
            &id,
            "two",
            &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"],
        )
        .await;
        if seen.contains("607.5") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.contains("sleep 607.5"), "{seen}");
    assert!(seen.contains("sleep 608.5"), "{seen}");
    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn a_non_root_container_without_a_user_is_not_started() {
    let work = work_dir("nonroot");
    let cloud = process_cloud(work.clone()).await;
    let provider = provider(&cloud, "node-s");
    let mut app = shell("app", "exec sleep 600");
    app.security = ContainerSecurity {
        run_as_non_root: Some(true),
        ..Default::default()
    };
    let p = pod("sec-5", RestartPolicy::Always, vec![app]);
    provider.create(&p).await.expect("create");
    let status = wait_for(&provider, "sec-5", "refused", |s| {
        matches!(&s.containers[0].state,
            ContainerState::Waiting { reason, .. } if reason == "CreateContainerConfigError")
    })
    .await;
    match &status.containers[0].state {
        ContainerState::Waiting { message, .. } => assert_eq!(
            message.as_deref(),
            Some("container has runAsNonRoot and image will run as root")
        ),
        other => panic!("{other:?}"),
    }
    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
    let _ = std::fs::remove_dir_all(&work);
}
