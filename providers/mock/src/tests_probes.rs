//! Probes on the mock, for real: exec probes run inside the container's sandbox.

use std::time::Duration;

use vk_core::provider::{ContainerState, Probe, ProbeHandler, Provider, RestartPolicy};

use super::*;
use crate::root_dir;
use crate::tests::{pod, provider, wait_for};

fn exec_probe(script: &str) -> Probe {
    Probe {
        period_seconds: 1,
        failure_threshold: 1,
        ..Probe::new(ProbeHandler::Exec {
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        })
    }
}

/// `wait_for`, bounded in real time: these probes run real processes.
async fn soon(
    rx: &mut tokio::sync::mpsc::Receiver<StatusEvent>,
    cond: impl Fn(&InstanceStatus) -> bool,
) -> InstanceStatus {
    tokio::time::timeout(Duration::from_secs(20), wait_for(rx, cond))
        .await
        .expect("within 20 s")
}

#[tokio::test]
async fn readiness_follows_a_file_and_liveness_failures_restart() {
    let mut p = pod("probes-1", &[], &["web", "doomed"]);
    p.restart_policy = RestartPolicy::Always;
    for c in &mut p.containers {
        // Timer containers that run until deleted.
        c.command.clear();
        c.args.clear();
    }
    p.containers[0].readiness_probe = Some(exec_probe("test -f ready"));
    p.containers[1].liveness_probe = Some(exec_probe("echo not alive; exit 1"));
    let (provider, mut rx) = provider(MockConfig {
        restart_backoff_ms: 10,
        ..MockConfig::default()
    });
    provider.create(&p).await.expect("create");

    let running =
        |s: &InstanceStatus| matches!(s.containers[0].state, ContainerState::Running { .. });
    let status = soon(&mut rx, running).await;
    assert!(
        !status.containers[0].ready,
        "un-ready until the probe passes"
    );

    let status = soon(&mut rx, |s| {
        s.containers[1].restart_count >= 1 && s.events.iter().any(|e| e.reason == "Killing")
    })
    .await;
    let unhealthy = status
        .events
        .iter()
        .find(|e| e.reason == "Unhealthy" && e.container.as_deref() == Some("doomed"))
        .expect("Unhealthy");
    assert_eq!(unhealthy.message, "Liveness probe failed: not alive");
    let killing = status
        .events
        .iter()
        .find(|e| e.reason == "Killing")
        .unwrap();
    assert_eq!(
        killing.message,
        "Container doomed failed liveness probe, will be restarted"
    );
    assert!(!status.containers[0].ready);
    assert!(
        status
            .events
            .iter()
            .any(|e| e.message == "Readiness probe failed: "
                && e.container.as_deref() == Some("web"))
    );

    // The probe runs in the container's sandbox, in its working directory `/`.
    std::fs::write(root_dir(&p.pod, "web").join("ready"), b"").unwrap();
    soon(&mut rx, |s| s.containers[0].ready).await;
    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
}

#[tokio::test]
async fn a_native_sidecar_is_probed_too() {
    let mut p = pod("probes-2", &[], &["app"]);
    p.containers[0].command.clear();
    p.containers[0].args.clear();
    let mut proxy = p.containers[0].clone();
    proxy.name = "proxy".into();
    proxy.restart_policy = Some(RestartPolicy::Always);
    proxy.readiness_probe = Some(exec_probe("test -f proxy-ready"));
    p.init_containers = vec![proxy];
    let (provider, mut rx) = provider(MockConfig::default());
    provider.create(&p).await.expect("create");
    let status = soon(&mut rx, |s| {
        s.events
            .iter()
            .any(|e| e.container.as_deref() == Some("proxy") && e.reason == "Unhealthy")
    })
    .await;
    assert!(matches!(
        status.init_containers[0].state,
        ContainerState::Running { .. }
    ));
    assert!(!status.init_containers[0].ready);
    std::fs::write(root_dir(&p.pod, "proxy").join("proxy-ready"), b"").unwrap();
    soon(&mut rx, |s| s.init_containers[0].ready).await;
    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
}
