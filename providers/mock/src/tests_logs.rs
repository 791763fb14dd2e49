//! Log tests of the mock provider, on tokio's paused clock.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt as _;
use jiff::Timestamp;
use vk_core::provider::{
    ContainerState, InstancePhase, LogOptions, LogStream, Provider, ProviderError, RestartPolicy,
};

use super::*;
use crate::tests::{pod, provider, wait_for};

async fn text(stream: LogStream) -> String {
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    String::from_utf8(chunks.concat()).unwrap()
}

fn config() -> MockConfig {
    MockConfig {
        log_interval_ms: 100,
        restart_backoff_ms: 1000,
        ..Default::default()
    }
}

fn opts() -> LogOptions {
    LogOptions::default()
}

#[tokio::test(start_paused = true)]
async fn tail_since_limit_timestamps() {
    let (p, mut rx) = provider(config());
    let spec = pod("u1", &[], &["c"]);
    p.create(&spec).await.unwrap();
    let running = wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    let ContainerState::Running { started_at } = running.containers[0].state else {
        panic!("not running")
    };
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let r = &spec.pod;

    let all = text(p.logs(r, "c", &opts()).await.unwrap()).await;
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 11, "{all}");
    assert_eq!(lines[0], "c: started (run 1, simulated)");
    assert_eq!(lines[1], "c: line 1");
    assert_eq!(lines[10], "c: line 10");

    let tail = LogOptions {
        tail_lines: Some(2),
        ..opts()
    };
    assert_eq!(
        text(p.logs(r, "c", &tail).await.unwrap()).await,
        "c: line 9\nc: line 10\n"
    );

    let since = LogOptions {
        since: started_at.checked_add(Duration::from_millis(500)).ok(),
        ..opts()
    };
    let recent = text(p.logs(r, "c", &since).await.unwrap()).await;
    assert!(recent.starts_with("c: line 5\n"), "{recent}");
    assert_eq!(recent.lines().count(), 6);

    let limit = LogOptions {
        limit_bytes: Some(10),
        ..opts()
    };
    assert_eq!(text(p.logs(r, "c", &limit).await.unwrap()).await, all[..10]);

    let stamped = LogOptions {
        timestamps: true,
        tail_lines: Some(10),
        ..opts()
    };
    let stamped = text(p.logs(r, "c", &stamped).await.unwrap()).await;
    let first = stamped.lines().next().unwrap();
    let (at, line) = first.split_once(' ').unwrap();
    assert_eq!(line, "c: line 1");
    let at: Timestamp = at.parse().unwrap();
    assert_eq!(at.duration_since(started_at).as_millis(), 100);
    assert!(first.starts_with(&started_at.to_string()[..10]));
}

#[tokio::test(start_paused = true)]
async fn follow_ends_when_the_container_ends() {
    let (p, _rx) = provider(config());
    let spec = pod("u1", &[(annotations::RUN_MS, "350")], &["c"]);
    p.create(&spec).await.unwrap();
    // Opened before the container starts: the follower waits for it.
    let follow = LogOptions {
        follow: true,
        ..opts()
    };
    let stream = p.logs(&spec.pod, "c", &follow).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), text(stream))
        .await
        .expect("follow did not end with the container");
    assert_eq!(
        got,
        "c: started (run 1, simulated)\nc: line 1\nc: line 2\nc: line 3\nc: exiting with code 0\n"
    );
}

#[tokio::test(start_paused = true)]
async fn follow_yields_new_lines_and_ends_on_delete() {
    let (p, mut rx) = provider(config());
    let spec = pod("u1", &[], &["c"]);
    p.create(&spec).await.unwrap();
    wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    let follow = LogOptions {
        follow: true,
        tail_lines: Some(0),
        ..opts()
    };
    let mut stream = p.logs(&spec.pod, "c", &follow).await.unwrap();
    let next = futures::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next, "c: line 1\n");
    tokio::time::sleep(Duration::from_millis(250)).await;
    p.delete(&spec.pod, Duration::ZERO).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(60), text(stream))
        .await
        .expect("follow did not end with the instance");
    assert_eq!(rest, "c: line 2\nc: line 3\n");
}

#[tokio::test(start_paused = true)]
async fn previous_logs() {
    let (p, mut rx) = provider(config());
    let spec = pod("u1", &[], &["c"]);
    p.create(&spec).await.unwrap();
    wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    let previous = LogOptions {
        previous: true,
        ..opts()
    };
    match p.logs(&spec.pod, "c", &previous).await {
        Err(ProviderError::NotFound(msg)) => assert_eq!(
            msg,
            "previous terminated container \"c\" in pod \"pod-u1\" not found"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("previous logs without a restart"),
    }

    let mut spec = pod(
        "u2",
        &[(annotations::RUN_MS, "250"), (annotations::EXIT_CODE, "1")],
        &["c"],
    );
    spec.restart_policy = RestartPolicy::OnFailure;
    p.create(&spec).await.unwrap();
    wait_for(&mut rx, |s| {
        s.pod.uid == "u2" && s.containers[0].restart_count == 1
    })
    .await;
    let before = text(p.logs(&spec.pod, "c", &previous).await.unwrap()).await;
    assert_eq!(
        before,
        "c: started (run 1, simulated)\nc: line 1\nc: line 2\nc: exiting with code 1\n"
    );
    let now = text(p.logs(&spec.pod, "c", &opts()).await.unwrap()).await;
    assert_eq!(now, "c: started (run 2, simulated)\n");
}

#[tokio::test(start_paused = true)]
async fn unknown_pod_or_container_is_not_found() {
    let (p, _rx) = provider(config());
    let spec = pod("u1", &[], &["c"]);
    let unknown_pod = p.logs(&spec.pod, "c", &opts()).await.err();
    assert!(matches!(unknown_pod, Some(ProviderError::NotFound(_))));
    p.create(&spec).await.unwrap();
    match p.logs(&spec.pod, "nope", &opts()).await {
        Err(ProviderError::NotFound(msg)) => {
            assert_eq!(msg, "container \"nope\" in pod \"pod-u1\" not found")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("logs of an unknown container"),
    }
}
