//! Lifecycle tests of the mock provider, on tokio's paused clock.

use std::time::Duration;

use tokio::sync::mpsc;
use vk_core::provider::{
    ContainerSpec, ContainerState, InstancePhase, InstanceStatus, PodRef, Provider, ProviderError,
    ResolvedPod, RestartPolicy, StatusEvent, StatusSource,
};

use super::*;

pub(super) fn pod(uid: &str, annotations: &[(&str, &str)], containers: &[&str]) -> ResolvedPod {
    ResolvedPod {
        pod: PodRef {
            namespace: "default".into(),
            name: format!("pod-{uid}"),
            uid: uid.into(),
        },
        node_name: "mock-node".into(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        restart_policy: RestartPolicy::Never,
        containers: containers.iter().map(|c| container(c)).collect(),
        ..Default::default()
    }
}

pub(super) fn container(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: format!("busybox:{name}"),
        command: vec!["sleep".into()],
        args: vec!["1".into()],
        ..Default::default()
    }
}

pub(super) fn provider(config: MockConfig) -> (MockProvider, mpsc::Receiver<StatusEvent>) {
    let provider = MockProvider::new(config);
    match provider.status_source() {
        StatusSource::Push(rx) => (provider, rx),
        StatusSource::Poll(_) => panic!("the mock pushes"),
    }
}

pub(super) async fn next_event(rx: &mut mpsc::Receiver<StatusEvent>) -> StatusEvent {
    tokio::time::timeout(Duration::from_secs(3600), rx.recv())
        .await
        .expect("no event within an hour")
        .expect("channel closed")
}

/// Consume `Changed` events until one satisfies `cond`.
pub(super) async fn wait_for(
    rx: &mut mpsc::Receiver<StatusEvent>,
    cond: impl Fn(&InstanceStatus) -> bool,
) -> InstanceStatus {
    loop {
        match next_event(rx).await {
            StatusEvent::Changed(status) if cond(&status) => return status,
            StatusEvent::Changed(_) => {}
            StatusEvent::Gone(pod) => panic!("unexpected Gone for {pod}"),
        }
    }
}

fn phase(p: InstancePhase) -> impl Fn(&InstanceStatus) -> bool {
    move |s| s.phase == p
}

fn exit_code(state: &ContainerState) -> Option<i32> {
    match state {
        ContainerState::Terminated { exit_code, .. } => Some(*exit_code),
        _ => None,
    }
}

fn reason(state: &ContainerState) -> &str {
    match state {
        ContainerState::Terminated { reason, .. } | ContainerState::Waiting { reason, .. } => {
            reason
        }
        ContainerState::Running { .. } => "Running",
    }
}

#[tokio::test(start_paused = true)]
async fn create_is_idempotent_by_uid() {
    let (p, mut rx) = provider(MockConfig::default());
    let spec = pod("u1", &[], &["c"]);
    p.create(&spec).await.unwrap();
    let first = wait_for(&mut rx, phase(InstancePhase::Running)).await;
    p.create(&spec).await.unwrap();
    let list = p.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0], first);
    assert!(rx.try_recv().is_err(), "second create pushed an event");
}

#[tokio::test(start_paused = true)]
async fn pending_running_succeeded_keeps_exit_code() {
    let config = MockConfig {
        start_latency_ms: 500,
        run_ms: Some(2000),
        ..Default::default()
    };
    let (p, mut rx) = provider(config);
    p.create(&pod("u1", &[], &["c"])).await.unwrap();

    let pending = wait_for(&mut rx, |_| true).await;
    assert_eq!(pending.phase, InstancePhase::Pending);
    assert_eq!(pending.pod_ip, None);
    assert_eq!(
        pending.containers[0].state,
        ContainerState::waiting("ContainerCreating")
    );

    let running = wait_for(&mut rx, phase(InstancePhase::Running)).await;
    let c = &running.containers[0];
    assert!(matches!(c.state, ContainerState::Running { .. }));
    assert!(c.ready);
    assert!(c.container_id.as_ref().is_some_and(|id| id.len() == 64));
    assert_eq!(running.pod_ip.as_deref(), Some("10.250.0.1"));

    let done = wait_for(&mut rx, phase(InstancePhase::Succeeded)).await;
    let c = &done.containers[0];
    assert_eq!(exit_code(&c.state), Some(0));
    assert_eq!(reason(&c.state), "Completed");
    assert!(!c.ready);
    let ContainerState::Terminated {
        started_at: Some(started),
        finished_at,
        ..
    } = c.state
    else {
        panic!("{:?}", c.state)
    };
    assert_eq!(finished_at.duration_since(started).as_millis(), 2000);
    // The terminal status stays as it is.
    assert_eq!(
        cloudsim::test_support::status_of(&p, &done.pod)
            .await
            .unwrap(),
        Some(done)
    );
}

#[tokio::test(start_paused = true)]
async fn nonzero_exit_fails_the_pod() {
    let (p, mut rx) = provider(MockConfig::default());
    let spec = pod(
        "u1",
        &[(annotations::RUN_MS, "10"), (annotations::EXIT_CODE, "3")],
        &["c"],
    );
    p.create(&spec).await.unwrap();
    let done = wait_for(&mut rx, phase(InstancePhase::Failed)).await;
    assert_eq!(exit_code(&done.containers[0].state), Some(3));
    assert_eq!(reason(&done.containers[0].state), "Error");
}

#[tokio::test(start_paused = true)]
async fn per_container_exit_code() {
    let (p, mut rx) = provider(MockConfig::default());
    let spec = pod(
        "u1",
        &[
            (annotations::RUN_MS, "10"),
            ("mock.vk.io/exit-code.b", "5"),
            ("mock.vk.io/run-ms.b", "30"),
        ],
        &["a", "b"],
    );
    p.create(&spec).await.unwrap();
    // a finishes first and is reported terminated while b still runs.
    let partial = wait_for(&mut rx, |s| exit_code(&s.containers[0].state).is_some()).await;
    assert_eq!(partial.phase, InstancePhase::Running);
    assert!(matches!(
        partial.containers[1].state,
        ContainerState::Running { .. }
    ));
    let done = wait_for(&mut rx, phase(InstancePhase::Failed)).await;
    assert_eq!(exit_code(&done.containers[0].state), Some(0));
    assert_eq!(exit_code(&done.containers[1].state), Some(5));
}

#[tokio::test(start_paused = true)]
async fn on_failure_restarts_failed_containers_only() {
    let config = MockConfig {
        restart_backoff_ms: 100,
        ..Default::default()
    };
    let (p, mut rx) = provider(config);
    let mut spec = pod(
        "u1",
        &[
            (annotations::RUN_MS, "10"),
            ("mock.vk.io/exit-code.bad", "1"),
        ],
        &["good", "bad"],
    );
    spec.restart_policy = RestartPolicy::OnFailure;
    p.create(&spec).await.unwrap();

    let backoff = wait_for(&mut rx, |s| {
        reason(&s.containers[1].state) == "CrashLoopBackOff"
    })
    .await;
    assert_eq!(
        backoff.containers[1]
            .last_state
            .as_ref()
            .and_then(exit_code),
        Some(1)
    );
    let restarted = wait_for(&mut rx, |s| s.containers[1].restart_count == 2).await;
    let bad = &restarted.containers[1];
    assert!(matches!(bad.state, ContainerState::Running { .. }));
    assert_eq!(bad.last_state.as_ref().and_then(exit_code), Some(1));
    assert_eq!(restarted.phase, InstancePhase::Running);
    // The container that succeeded stays terminated with its exit code.
    let good = &restarted.containers[0];
    assert_eq!(exit_code(&good.state), Some(0));
    assert_eq!(good.restart_count, 0);
}

#[tokio::test(start_paused = true)]
async fn on_failure_succeeds_and_always_restarts_on_success() {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod("u1", &[(annotations::RUN_MS, "10")], &["c"]);
    spec.restart_policy = RestartPolicy::OnFailure;
    p.create(&spec).await.unwrap();
    let done = wait_for(&mut rx, phase(InstancePhase::Succeeded)).await;
    assert_eq!(done.containers[0].restart_count, 0);

    let mut spec = pod("u2", &[(annotations::RUN_MS, "10")], &["c"]);
    spec.restart_policy = RestartPolicy::Always;
    p.create(&spec).await.unwrap();
    let again = wait_for(&mut rx, |s| s.containers[0].restart_count == 1).await;
    assert_eq!(again.phase, InstancePhase::Running);
    assert_eq!(
        again.containers[0].last_state.as_ref().and_then(exit_code),
        Some(0)
    );
}

#[tokio::test(start_paused = true)]
async fn init_containers_run_first_in_order() {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod("u1", &[("mock.vk.io/run-ms.init1", "50")], &["app"]);
    spec.init_containers = vec![container("init1"), container("init2")];
    p.create(&spec).await.unwrap();
    let first = wait_for(&mut rx, |_| true).await;
    assert_eq!(
        first.containers[0].state,
        ContainerState::waiting("PodInitializing")
    );
    let init1 = wait_for(&mut rx, |s| {
        matches!(s.init_containers[0].state, ContainerState::Running { .. })
    })
    .await;
    assert!(matches!(
        init1.init_containers[1].state,
        ContainerState::Waiting { .. }
    ));
    let running = wait_for(&mut rx, phase(InstancePhase::Running)).await;
    for init in &running.init_containers {
        assert_eq!(exit_code(&init.state), Some(0));
        assert!(init.ready);
    }
    assert!(matches!(
        running.containers[0].state,
        ContainerState::Running { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn init_failure_with_never_fails_the_pod() {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod("u1", &[("mock.vk.io/exit-code.init", "2")], &["app"]);
    spec.init_containers = vec![container("init")];
    p.create(&spec).await.unwrap();
    let done = wait_for(&mut rx, phase(InstancePhase::Failed)).await;
    assert_eq!(exit_code(&done.init_containers[0].state), Some(2));
    assert_eq!(
        done.containers[0].state,
        ContainerState::waiting("PodInitializing")
    );
    assert!(done.containers[0].container_id.is_none());
}

#[tokio::test(start_paused = true)]
async fn init_failure_with_on_failure_restarts_the_init_container() {
    let config = MockConfig {
        restart_backoff_ms: 10,
        ..Default::default()
    };
    let (p, mut rx) = provider(config);
    let mut spec = pod("u1", &[("mock.vk.io/exit-code.init", "2")], &["app"]);
    spec.restart_policy = RestartPolicy::OnFailure;
    spec.init_containers = vec![container("init")];
    p.create(&spec).await.unwrap();
    let again = wait_for(&mut rx, |s| s.init_containers[0].restart_count == 2).await;
    assert_eq!(again.phase, InstancePhase::Pending);
    assert_eq!(
        again.init_containers[0]
            .last_state
            .as_ref()
            .and_then(exit_code),
        Some(2)
    );
}

#[tokio::test(start_paused = true)]
async fn sidecar_runs_beside_the_app_and_stops_with_the_pod() {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod("u1", &[(annotations::RUN_MS, "100")], &["app"]);
    let mut sidecar = container("proxy");
    sidecar.restart_policy = Some(RestartPolicy::Always);
    spec.init_containers = vec![sidecar];
    p.create(&spec).await.unwrap();
    let running = wait_for(&mut rx, phase(InstancePhase::Running)).await;
    assert!(matches!(
        running.init_containers[0].state,
        ContainerState::Running { .. }
    ));
    assert!(running.init_containers[0].ready);
    let done = wait_for(&mut rx, phase(InstancePhase::Succeeded)).await;
    // The engine kills what still runs when the group ends (128 + SIGKILL).
    assert_eq!(exit_code(&done.init_containers[0].state), Some(137));
    assert_eq!(exit_code(&done.containers[0].state), Some(0));
}

#[tokio::test(start_paused = true)]
async fn delete_stops_containers_and_pushes_gone() {
    let (p, mut rx) = provider(MockConfig::default());
    let spec = pod("u1", &[], &["c"]);
    p.create(&spec).await.unwrap();
    wait_for(&mut rx, phase(InstancePhase::Running)).await;
    p.delete(&spec.pod, Duration::from_secs(30)).await.unwrap();
    let StatusEvent::Changed(last) = next_event(&mut rx).await else {
        panic!("expected the final status before Gone")
    };
    assert_eq!(exit_code(&last.containers[0].state), Some(STOP_EXIT_CODE));
    assert_eq!(last.phase, InstancePhase::Failed);
    assert_eq!(
        next_event(&mut rx).await,
        StatusEvent::Gone(spec.pod.clone())
    );
    assert!(p.list().await.unwrap().is_empty());
    assert_eq!(
        cloudsim::test_support::status_of(&p, &spec.pod)
            .await
            .unwrap(),
        None
    );

    // Idempotent, and nothing is left running: no further events.
    p.delete(&spec.pod, Duration::ZERO).await.unwrap();
    p.delete(&pod("nope", &[], &[]).pod, Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(rx.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn transient_create_errors_then_success() {
    let (p, mut rx) = provider(MockConfig::default());
    let spec = pod("u1", &[(annotations::CREATE_ERROR, "transient:2")], &["c"]);
    for _ in 0..2 {
        let err = p.create(&spec).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
    assert!(p.list().await.unwrap().is_empty());
    p.create(&spec).await.unwrap();
    wait_for(&mut rx, phase(InstancePhase::Running)).await;
}

#[tokio::test(start_paused = true)]
async fn invalid_create_error_and_bad_annotations() {
    let (p, _rx) = provider(MockConfig::default());
    let spec = pod("u1", &[(annotations::CREATE_ERROR, "invalid")], &["c"]);
    for _ in 0..3 {
        match p.create(&spec).await {
            Err(ProviderError::InvalidSpec { reason, .. }) => assert_eq!(reason, "MockInvalidSpec"),
            other => panic!("{other:?}"),
        }
    }
    let spec = pod("u2", &[("mock.vk.io/exit-code.c", "boom")], &["c"]);
    match p.create(&spec).await {
        Err(ProviderError::InvalidSpec { message, .. }) => {
            assert!(message.contains("mock.vk.io/exit-code.c"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(p.list().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn update_status_source_capacity_ping_stats() {
    let dir = std::env::temp_dir().join(format!("mock-ping-{}", std::process::id()));
    let config = MockConfig {
        ping_fail_file: Some(dir.clone()),
        ..Default::default()
    };
    let (p, mut rx) = provider(config);
    let StatusSource::Push(mut second) = p.status_source() else {
        panic!("the mock pushes")
    };
    assert_eq!(second.recv().await, None);
    assert_eq!(p.capacity().pods, 1000);
    assert_eq!(p.name(), "mock");

    p.ping().await.unwrap();
    std::fs::write(&dir, b"").unwrap();
    let err = p.ping().await.unwrap_err();
    std::fs::remove_file(&dir).unwrap();
    assert!(err.to_string().contains("injected ping failure"), "{err}");

    let mut spec = pod("u1", &[], &["c"]);
    p.create(&spec).await.unwrap();
    wait_for(&mut rx, phase(InstancePhase::Running)).await;
    spec.containers[0].image = "busybox:2".into();
    p.update(&spec).await.unwrap();
    let updated = wait_for(&mut rx, |_| true).await;
    assert_eq!(updated.containers[0].image, "busybox:2");
    let unknown = p.update(&pod("nope", &[], &["c"])).await.unwrap_err();
    assert!(matches!(unknown, ProviderError::NotFound(_)));

    tokio::time::sleep(Duration::from_secs(10)).await;
    let stats = p.stats().await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].pod.as_ref(), Some(&spec.pod));
    let c = &stats[0].containers[0];
    assert_eq!(c.name, "c");
    assert!(c.cpu_usage_nano_cores > 0);
    assert_eq!(
        c.cpu_usage_core_nano_seconds,
        c.cpu_usage_nano_cores * 10,
        "10 s of uptime"
    );
    assert!(c.memory_working_set_bytes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_on_a_multi_thread_runtime() {
    let config = MockConfig {
        log_interval_ms: 10,
        ..Default::default()
    };
    let (p, mut rx) = provider(config);
    p.create(&pod("u1", &[(annotations::RUN_MS, "55")], &["c"]))
        .await
        .unwrap();
    let done = wait_for(&mut rx, phase(InstancePhase::Succeeded)).await;
    assert_eq!(exit_code(&done.containers[0].state), Some(0));
    let stream = p
        .logs(&done.pod, "c", &LogOptions::default())
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(stream).await.unwrap();
    let text = String::from_utf8(chunks.concat()).unwrap();
    // The engine's timer: a line per interval, then the exit.
    assert!(
        text.contains("c: line 5\n") && text.ends_with("c: exiting with code 0\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn state_file_keeps_an_ended_instance_ended_across_a_restart() {
    let path = std::env::temp_dir().join(format!("mock-state-ended-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = MockConfig {
        state_file: Some(path.clone()),
        ..MockConfig::default()
    };
    let (first, mut rx) = provider(config.clone());
    let done = pod(
        "done",
        &[(annotations::RUN_MS, "50"), (annotations::EXIT_CODE, "3")],
        &["main"],
    );
    first.create(&done).await.unwrap();
    let ended = wait_for(&mut rx, phase(InstancePhase::Failed)).await;
    assert_eq!(exit_code(&ended.containers[0].state), Some(3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(first);

    // Before, the journal held its last Running state: the new process ran it again.
    let (second, _rx) = provider(config);
    let listed = second.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].phase, InstancePhase::Failed);
    assert_eq!(listed[0].containers, ended.containers);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = second.list().await.unwrap().remove(0);
    assert_eq!(later.phase, InstancePhase::Failed, "it did not run again");
    assert_eq!(later.containers, ended.containers);
    assert_eq!(crate::Persisted::load(&path).creates["done"], 1);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(start_paused = true)]
async fn state_file_lets_a_new_process_resume_instances_without_recreating_them() {
    let path = std::env::temp_dir().join(format!("mock-state-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = MockConfig {
        state_file: Some(path.clone()),
        ..MockConfig::default()
    };
    let (first, _rx) = provider(config.clone());
    first.create(&pod("keep", &[], &["main"])).await.unwrap();
    first.create(&pod("gone", &[], &["main"])).await.unwrap();
    first
        .delete(&pod("gone", &[], &["main"]).pod, Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = first.list().await.unwrap();
    assert_eq!(before[0].phase, InstancePhase::Running);
    drop(first);

    let (second, _rx) = provider(config);
    let listed = second.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].pod.uid, "keep");
    // It goes on running as it was: same containers, same start times, no restart.
    assert_eq!(listed[0].phase, InstancePhase::Running);
    assert_eq!(listed[0].containers, before[0].containers);
    // Creating it again (vk re-running its reconcile) is idempotent and not counted.
    second.create(&pod("keep", &[], &["main"])).await.unwrap();
    let saved = crate::Persisted::load(&path);
    assert_eq!(saved.creates["keep"], 1);
    assert_eq!(saved.creates["gone"], 1);
    assert!(!saved.instances.contains_key("gone"));
    assert!(saved.instances.contains_key("keep"));
    let _ = std::fs::remove_file(&path);
}
