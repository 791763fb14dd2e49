//! Probes on the `process` executor, driven by the eci provider: a readiness probe holds the
//! container un-ready until its file exists, a failing liveness probe restarts it, and the
//! kubelet's events come back through DescribeContainerGroups.

use vk_core::provider::{
    ContainerSpec, ContainerState, Probe, ProbeHandler, Provider, RestartPolicy, Volume,
    VolumeMount, VolumeSource,
};

use crate::tests_support::{pod, process_cloud, provider, wait_for};

fn exec_probe(script: &str) -> Probe {
    Probe {
        period_seconds: 1,
        failure_threshold: 1,
        ..Probe::new(ProbeHandler::Exec {
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        })
    }
}

fn shell(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "busybox:1.36".into(),
        command: vec!["/bin/sh".into(), "-c".into()],
        args: vec![script.into()],
        volume_mounts: vec![VolumeMount {
            volume: "data".into(),
            mount_path: "/data".into(),
            read_only: false,
            sub_path: None,
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn readiness_waits_for_the_file_and_liveness_failures_restart() {
    let work = std::env::temp_dir().join(format!("vk-cloud-test-probes-{}", std::process::id()));
    let cloud = process_cloud(work).await;
    let provider = provider(&cloud, "node-probes");

    let mut web = shell("web", "sleep 1000");
    web.readiness_probe = Some(exec_probe("test -f /data/ready"));
    let mut doomed = shell("doomed", "sleep 1000");
    doomed.liveness_probe = Some(exec_probe("echo not alive; exit 1"));
    let mut p = pod("probes-1", RestartPolicy::Always, vec![web, doomed]);
    p.volumes = vec![Volume {
        name: "data".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit_bytes: None,
        },
    }];
    provider.create(&p).await.expect("create");

    let running =
        |s: &vk_core::provider::ContainerStatus| matches!(s.state, ContainerState::Running { .. });
    // Running, probed and failing: not ready.
    let status = wait_for(&provider, "probes-1", "probed", |s| {
        running(&s.containers[0])
            && s.events
                .iter()
                .any(|e| e.message == "Readiness probe failed: ")
    })
    .await;
    assert!(!status.containers[0].ready);

    // The liveness probe fails once (threshold 1): killed, restarted, with both events.
    let status = wait_for(&provider, "probes-1", "restarted", |s| {
        s.containers[1].restart_count >= 1 && s.events.iter().any(|e| e.reason == "Killing")
    })
    .await;
    let unhealthy = status
        .events
        .iter()
        .find(|e| e.reason == "Unhealthy" && e.message.starts_with("Liveness"))
        .expect("an Unhealthy event");
    assert_eq!(unhealthy.message, "Liveness probe failed: not alive");
    assert!(unhealthy.warning);
    let killing = status
        .events
        .iter()
        .find(|e| e.reason == "Killing")
        .unwrap();
    assert_eq!(killing.container.as_deref(), Some("doomed"));
    assert_eq!(
        killing.message,
        "Container doomed failed liveness probe, will be restarted"
    );
    assert!(!status.containers[0].ready);

    // The file appears in the sandbox: the next readiness check passes.
    let id = crate::tests_support::group_id(&provider).await;
    let (group, def, _) = cloud.engine().exec_target(&id, "web").expect("web runs");
    cloud
        .engine()
        .executor()
        .exec(&group, &def, &["touch".into(), "/data/ready".into()])
        .await
        .expect("touch");
    wait_for(&provider, "probes-1", "ready", |s| s.containers[0].ready).await;
    provider
        .delete(&p.pod, std::time::Duration::ZERO)
        .await
        .expect("delete");
}
