//! `/containerLogs`: options reach the provider, the body streams, limits and disconnects end
//! the provider's stream, and failures answer like the kubelet.

use std::time::Duration;

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};

use super::{Harness, build_ref, status_of};
use crate::provider::{LogOptions, ProviderError};

const APP_LOGS: &str = "/containerLogs/ci/build/app";

#[tokio::test]
async fn logs_stream_the_providers_lines() {
    let h = Harness::open().await;
    let reply = h.get(APP_LOGS).await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("text/plain"));
    assert_eq!(
        reply.text().await,
        "line 1\nline 2\nline 3\nline 4\nline 5\n"
    );
    let (pod, container, opts) = h.provider.last_call();
    assert_eq!(pod, build_ref());
    assert_eq!(container, "app");
    assert_eq!(opts, LogOptions::default());
    h.stop().await;
}

#[tokio::test]
async fn tail_and_timestamps_reach_the_provider() {
    let h = Harness::open().await;
    let reply = h
        .get(&format!("{APP_LOGS}?tailLines=2&timestamps=true"))
        .await;
    assert_eq!(
        reply.text().await,
        "2024-05-01T10:00:04Z line 4\n2024-05-01T10:00:05Z line 5\n"
    );
    let opts = h.provider.last_call().2;
    assert_eq!((opts.tail_lines, opts.timestamps), (Some(2), true));
    assert!(!opts.follow && !opts.previous);
    h.stop().await;
}

#[tokio::test]
async fn since_time_and_since_seconds_become_one_instant() {
    let h = Harness::open().await;
    let reply = h
        .get(&format!("{APP_LOGS}?sinceTime=2024-05-01T10%3A00%3A04Z"))
        .await;
    assert_eq!(reply.text().await, "line 4\nline 5\n");
    assert_eq!(
        h.provider.last_call().2.since,
        Some("2024-05-01T10:00:04Z".parse().unwrap())
    );

    let before = Timestamp::now();
    let reply = h.get(&format!("{APP_LOGS}?sinceSeconds=30")).await;
    assert_eq!(reply.status, 200);
    reply.text().await;
    let since = h.provider.last_call().2.since.unwrap();
    let thirty = SignedDuration::from_secs(30);
    assert!(since >= before.checked_sub(thirty).unwrap());
    assert!(since <= Timestamp::now().checked_sub(thirty).unwrap());
    h.stop().await;
}

#[tokio::test]
async fn limit_bytes_is_enforced_even_when_the_provider_ignores_it() {
    let h = Harness::open().await;
    let reply = h.get(&format!("{APP_LOGS}?limitBytes=10")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text().await, "line 1\nlin");
    assert_eq!(h.provider.last_call().2.limit_bytes, Some(10));
    h.stop().await;
}

#[tokio::test]
async fn init_containers_have_logs_too() {
    let h = Harness::open().await;
    let reply = h.get("/containerLogs/ci/build/setup").await;
    assert_eq!(reply.status, 200);
    assert_eq!(h.provider.last_call().1, "setup");
    h.stop().await;
}

#[tokio::test]
async fn follow_streams_lines_as_they_are_written() {
    let h = Harness::open().await;
    let feed = h.provider.follow();
    let mut reply = h.get(&format!("{APP_LOGS}?follow=true")).await;
    assert_eq!(reply.status, 200);

    feed.send(Bytes::from("first\n")).await.unwrap();
    assert_eq!(reply.chunk().await.unwrap(), "first\n");
    // Still open: nothing more until the provider writes.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), reply.chunk())
            .await
            .is_err()
    );
    feed.send(Bytes::from("second\n")).await.unwrap();
    assert_eq!(reply.chunk().await.unwrap(), "second\n");

    drop(feed);
    assert_eq!(
        reply.chunk().await,
        None,
        "body ends with the provider stream"
    );
    assert!(h.provider.last_call().2.follow);
    h.stop().await;
}

#[tokio::test]
async fn client_disconnect_drops_the_provider_stream() {
    let h = Harness::open().await;
    let feed = h.provider.follow();
    let mut dropped = h.provider.dropped.subscribe();
    let mut reply = h.get(&format!("{APP_LOGS}?follow=1")).await;
    feed.send(Bytes::from("hello\n")).await.unwrap();
    assert_eq!(reply.chunk().await.unwrap(), "hello\n");
    assert!(!*dropped.borrow());

    drop(reply);
    tokio::time::timeout(Duration::from_secs(5), dropped.wait_for(|d| *d))
        .await
        .expect("provider stream not dropped after the client went away")
        .unwrap();
    assert!(feed.is_closed());
    h.stop().await;
}

#[tokio::test]
async fn limit_bytes_ends_a_follow_stream_at_once() {
    let h = Harness::open().await;
    let feed = h.provider.follow();
    let mut dropped = h.provider.dropped.subscribe();
    let mut reply = h.get(&format!("{APP_LOGS}?follow=true&limitBytes=4")).await;
    feed.send(Bytes::from("abcdef\n")).await.unwrap();
    assert_eq!(reply.chunk().await.unwrap(), "abcd");
    // The provider is still writing, but the limit is reached: the body ends now.
    assert_eq!(reply.chunk().await, None);
    tokio::time::timeout(Duration::from_secs(5), dropped.wait_for(|d| *d))
        .await
        .unwrap()
        .unwrap();
    h.stop().await;
}

#[tokio::test]
async fn bad_queries_are_400_status() {
    let h = Harness::open().await;
    for (query, message) in [
        (
            "sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ),
        (
            "limitBytes=0",
            "limitBytes: Invalid value: \"0\": must be greater than 0",
        ),
        (
            "tailLines=ten",
            "tailLines: Invalid value: \"ten\": must be an integer",
        ),
        (
            "sinceTime=noon",
            "sinceTime: Invalid value: \"noon\": must be an RFC 3339 timestamp",
        ),
    ] {
        let reply = h.get(&format!("{APP_LOGS}?{query}")).await;
        assert_eq!(
            status_of(reply).await,
            (400, "BadRequest".into(), message.into())
        );
    }
    assert!(h.provider.calls.lock().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn unknown_pod_or_container_is_404_status() {
    let h = Harness::open().await;
    let reply = h.get("/containerLogs/ci/nope/app").await;
    assert_eq!(
        status_of(reply).await,
        (404, "NotFound".into(), "pod \"nope\" does not exist".into())
    );
    // The pod exists only in another namespace.
    let reply = h.get("/containerLogs/default/build/app").await;
    assert_eq!(status_of(reply).await.0, 404);
    let reply = h.get("/containerLogs/ci/build/nope").await;
    assert_eq!(
        status_of(reply).await,
        (
            404,
            "NotFound".into(),
            "container \"nope\" not found in pod \"build\"".into()
        )
    );
    assert!(h.provider.calls.lock().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn provider_errors_answer_like_the_kubelet() {
    let h = Harness::open().await;
    let cases = [
        (
            ProviderError::NotFound("no previous instance".into()),
            "?previous=true",
            (
                400,
                "BadRequest",
                "previous terminated container \"app\" in pod \"build\" not found",
            ),
        ),
        (
            ProviderError::NotFound("instance gone".into()),
            "",
            (404, "NotFound", "instance gone"),
        ),
        (
            ProviderError::Unsupported("sinceTime on this cloud".into()),
            "",
            (400, "BadRequest", "sinceTime on this cloud"),
        ),
        (
            ProviderError::Transient("throttled".into()),
            "",
            (503, "ServiceUnavailable", "throttled"),
        ),
    ];
    for (err, query, (code, reason, message)) in cases {
        *h.provider.log_error.lock().unwrap() = Some(err);
        let reply = h.get(&format!("{APP_LOGS}{query}")).await;
        assert_eq!(
            status_of(reply).await,
            (code, reason.into(), message.into())
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn cancel_ends_open_follow_streams_after_the_grace_period() {
    let h = Harness::open().await;
    let feed = h.provider.follow();
    let mut dropped = h.provider.dropped.subscribe();
    let mut reply = h.get(&format!("{APP_LOGS}?follow=true")).await;
    feed.send(Bytes::from("running\n")).await.unwrap();
    assert_eq!(reply.chunk().await.unwrap(), "running\n");

    // `serve` returns although the provider would write forever.
    h.stop().await;
    tokio::time::timeout(Duration::from_secs(1), dropped.wait_for(|d| *d))
        .await
        .unwrap()
        .unwrap();
}
