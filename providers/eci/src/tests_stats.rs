//! Component tests of `stats`: the ECI provider reads DescribeMultiContainerGroupMetric from
//! the mock cloud over HTTP, in batches of 20 groups, for the node's running groups only.

use std::time::Duration;

use vk_core::provider::{ContainerSpec, InstancePhase, PodStats, Provider, RestartPolicy};

use crate::tests_support::*;

fn stats_of<'a>(stats: &'a [PodStats], uid: &str) -> Option<&'a PodStats> {
    stats
        .iter()
        .find(|s| s.pod.as_ref().is_some_and(|p| p.uid == uid))
}

#[tokio::test]
async fn stats_cover_every_running_group_in_batches() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-s");
    // More running pods than one metric call may ask for (20), and one that has finished.
    for i in 0..23 {
        let mut app = sim_container("app", "forever", 0);
        app.resources.cpu_limit_millis = Some(1000);
        let p = pod(&format!("uid-{i}"), RestartPolicy::Never, vec![app]);
        provider.create(&p).await.expect("create");
    }
    let done = pod(
        "uid-done",
        RestartPolicy::Never,
        vec![sim_container("app", "1", 0)],
    );
    provider.create(&done).await.expect("create");
    wait_for(&provider, "uid-done", "Succeeded", |s| {
        s.phase == InstancePhase::Succeeded
    })
    .await;
    for i in 0..23 {
        wait_for(&provider, &format!("uid-{i}"), "Running", |s| {
            s.phase == InstancePhase::Running
        })
        .await;
    }
    // Another node's pod is not ours to report.
    let other = crate::tests_support::provider(&cloud, "node-other");
    other
        .create(&pod(
            "uid-other",
            RestartPolicy::Never,
            vec![sim_container("app", "forever", 0)],
        ))
        .await
        .expect("create");

    let stats = provider.stats().await.expect("stats");
    assert_eq!(stats.len(), 23, "{stats:#?}");
    assert!(stats_of(&stats, "uid-done").is_none());
    assert!(stats_of(&stats, "uid-other").is_none());
    let first = stats_of(&stats, "uid-0").expect("uid-0 reported");
    let pod = first.pod.as_ref().unwrap();
    assert_eq!(
        (pod.namespace.as_str(), pod.name.as_str()),
        ("default", "pod-uid-0")
    );
    assert_eq!(first.containers.len(), 1);
    let app = &first.containers[0];
    assert_eq!(app.name, "app");
    // The simulated share of one vCPU: from 10% to 60%, and some memory in use.
    assert!(
        (100_000_000..=600_000_000).contains(&app.cpu_usage_nano_cores),
        "{app:?}"
    );
    assert!(app.memory_working_set_bytes > 0, "{app:?}");

    // CPU time only grows.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let later = provider.stats().await.expect("stats");
    let again = &stats_of(&later, "uid-0").unwrap().containers[0];
    assert!(again.cpu_usage_core_nano_seconds > app.cpu_usage_core_nano_seconds);
}

#[tokio::test]
async fn no_running_groups_no_figures() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-empty");
    assert_eq!(provider.stats().await.expect("stats"), vec![]);
}

// ---- process executor: usage of the real processes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_processes_report_their_cpu_time_and_memory() {
    let work = std::env::temp_dir().join(format!("vk-cloud-stats-{}", std::process::id()));
    let cloud = process_cloud(work).await;
    let provider = provider(&cloud, "node-real");
    let busy = ContainerSpec {
        name: "busy".into(),
        image: "busybox:1.36".into(),
        command: vec!["/bin/sh".into(), "-c".into()],
        args: vec!["while :; do :; done".into()],
        ..Default::default()
    };
    let idle = ContainerSpec {
        name: "idle".into(),
        image: "busybox:1.36".into(),
        command: vec!["sleep".into(), "3600".into()],
        ..Default::default()
    };
    let p = pod("uid-real", RestartPolicy::Never, vec![busy, idle]);
    provider.create(&p).await.expect("create");
    wait_for(&provider, "uid-real", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;

    // The busy loop accumulates CPU time (counted in 10 ms ticks) as it runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (busy, idle) = loop {
        let stats = provider.stats().await.expect("stats");
        let pod = stats_of(&stats, "uid-real").expect("the pod is reported");
        let find = |name: &str| pod.containers.iter().find(|c| c.name == name).cloned();
        let (busy, idle) = (find("busy").expect("busy"), find("idle").expect("idle"));
        if busy.cpu_usage_core_nano_seconds >= 200_000_000 {
            break (busy, idle);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the busy loop never used 0.2 s of CPU: {busy:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(busy.cpu_usage_nano_cores > 0, "{busy:?}");
    assert!(busy.cpu_usage_core_nano_seconds > idle.cpu_usage_core_nano_seconds);
    // Resident memory of the sandbox's processes (bwrap and the command) is real.
    assert!(busy.memory_working_set_bytes > 100 * 1024, "{busy:?}");
    assert!(idle.memory_working_set_bytes > 100 * 1024, "{idle:?}");
    provider
        .delete(&p.pod, Duration::ZERO)
        .await
        .expect("delete");
}
