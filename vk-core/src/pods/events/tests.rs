//! The event publisher's bookkeeping (series, similar notes, the per-object rate limit) and
//! its calls against the fake API server.

use std::time::Duration;

use backon::BackoffBuilder as _;

use k8s_openapi::api::events::v1::EventSeries;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::series::{EVICT_TO, MAX_SERIES};
use super::*;
use crate::pods::test_api::FakeApi;

fn reporter() -> Reporter {
    Reporter {
        controller: "vk-test".into(),
        instance: "node-1".into(),
    }
}

fn pod_ref(name: &str, field_path: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some("ci".into()),
        name: Some(name.into()),
        uid: Some(format!("uid-{name}")),
        field_path: field_path.map(str::to_string),
        ..Default::default()
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn occurrence(name: &str, reason: &str, note: &str, seconds: i64) -> Occurrence {
    Occurrence {
        regarding: pod_ref(name, None),
        type_: EventType::Normal,
        reason: reason.into(),
        note: note.into(),
        at: at(seconds),
    }
}

fn created(calls: &[Call]) -> Vec<ApiEvent> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Create(e) => Some((**e).clone()),
            Call::Patch { .. } => None,
        })
        .collect()
}

#[test]
fn an_event_is_created_with_the_reporter_and_the_object() {
    let mut agg = Aggregator::new(reporter());
    agg.observe(Occurrence {
        regarding: pod_ref("build", Some("spec.containers{main}")),
        type_: EventType::Warning,
        reason: "ProviderCreateFailed".into(),
        note: "x".repeat(3000),
        at: at(0),
    });
    let calls = agg.drain_calls();
    let events = created(&calls);
    assert_eq!(events.len(), 1, "{calls:?}");
    let e = &events[0];
    assert_eq!(e.reason.as_deref(), Some("ProviderCreateFailed"));
    assert_eq!(e.action.as_deref(), Some("ProviderCreateFailed"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reporting_controller.as_deref(), Some("vk-test"));
    assert_eq!(e.reporting_instance.as_deref(), Some("node-1"));
    assert_eq!(e.metadata.namespace.as_deref(), Some("ci"));
    assert!(e.metadata.name.as_deref().unwrap().starts_with("build."));
    assert_eq!(
        e.regarding.as_ref().unwrap().field_path.as_deref(),
        Some("spec.containers{main}")
    );
    assert_eq!(
        e.note.as_ref().unwrap().len(),
        1024,
        "notes are cut to what the API takes"
    );
    assert!(e.series.is_none());
    assert_eq!(e.event_time, Some(MicroTime(at(0))));
}

#[test]
fn the_same_event_again_patches_the_series_of_the_first() {
    let mut agg = Aggregator::new(reporter());
    agg.observe(occurrence("build", "Started", "Started container main", 0));
    let first = agg.drain_calls();
    assert_eq!(created(&first).len(), 1);
    let name = created(&first)[0].metadata.name.clone().unwrap();

    agg.observe(occurrence("build", "Started", "Started container main", 5));
    agg.observe(occurrence("build", "Started", "Started container main", 7));
    let calls = agg.drain_calls();
    assert_eq!(
        calls,
        [Call::Patch {
            namespace: "ci".into(),
            name,
            series: EventSeries {
                count: 3,
                last_observed_time: MicroTime(at(7)),
            },
        }],
        "two occurrences queued together make one patch"
    );

    // Another object, another reason, or another note: separate events.
    agg.observe(occurrence("other", "Started", "Started container main", 8));
    agg.observe(occurrence("build", "Killing", "Stopping", 8));
    agg.observe(occurrence(
        "build",
        "Started",
        "Started container sidecar",
        8,
    ));
    assert_eq!(created(&agg.drain_calls()).len(), 3);

    // Past the window, the same event starts a new one.
    let later = SERIES_WINDOW.as_secs() as i64 + 10;
    agg.observe(occurrence(
        "build",
        "Started",
        "Started container main",
        later,
    ));
    let calls = agg.drain_calls();
    assert_eq!(created(&calls).len(), 1, "{calls:?}");
}

#[test]
fn occurrences_during_a_create_wait_for_it_and_then_patch() {
    let mut agg = Aggregator::new(reporter());
    agg.observe(occurrence("build", "BackOff", "Back-off restarting", 0));
    let (key, call, _) = agg.next_call().unwrap();
    assert!(matches!(call, Call::Create(_)));
    agg.observe(occurrence("build", "BackOff", "Back-off restarting", 1));
    assert!(
        agg.next_call().is_none(),
        "nothing is sent for a series whose create is still in flight"
    );
    agg.finished(&key, Ok(()));
    let (key, call, _) = agg.next_call().unwrap();
    let Call::Patch { series, .. } = call else {
        panic!("expected a patch, got {call:?}");
    };
    assert_eq!(series.count, 2);

    // The event expired from the API meanwhile: it is created again with its count.
    agg.observe(occurrence("build", "BackOff", "Back-off restarting", 2));
    agg.finished(&key, Err(true));
    let (_, call, _) = agg.next_call().unwrap();
    let Call::Create(event) = call else {
        panic!("expected a create, got {call:?}");
    };
    assert_eq!(event.series.unwrap().count, 3);
}

#[test]
fn many_different_notes_for_one_reason_are_combined() {
    let mut agg = Aggregator::new(reporter());
    for i in 0..SIMILAR_LIMIT {
        agg.observe(occurrence(
            "build",
            "Failed",
            &format!("error {i}"),
            i as i64,
        ));
    }
    assert_eq!(created(&agg.drain_calls()).len(), SIMILAR_LIMIT);
    agg.observe(occurrence("build", "Failed", "error 100", 20));
    agg.observe(occurrence("build", "Failed", "error 101", 21));
    agg.observe(occurrence("build", "Failed", "error 102", 22));
    let calls = agg.drain_calls();
    let events = created(&calls);
    assert_eq!(events.len(), 1, "{calls:?}");
    assert_eq!(
        events[0].note.as_deref(),
        Some("(combined from similar events): error 100")
    );
    assert_eq!(events[0].series.as_ref().unwrap().count, 3);
    // A note seen before still counts into its own series.
    agg.observe(occurrence("build", "Failed", "error 1", 23));
    assert!(matches!(agg.drain_calls().as_slice(), [Call::Patch { .. }]));
}

#[test]
fn an_object_gets_a_burst_of_events_then_one_per_refill() {
    let mut agg = Aggregator::new(reporter());
    let burst = SPAM_BURST as usize;
    for i in 0..burst + 5 {
        agg.observe(occurrence("noisy", &format!("Reason{i}"), "n", 0));
    }
    assert_eq!(created(&agg.drain_calls()).len(), burst);
    assert_eq!(agg.spam_dropped, 5);
    // Another object is not limited by the first.
    agg.observe(occurrence("quiet", "Started", "n", 0));
    assert_eq!(created(&agg.drain_calls()).len(), 1);
    // One token comes back per refill period.
    let refill = SPAM_REFILL.as_secs() as i64;
    agg.observe(occurrence("noisy", "Later1", "n", refill));
    agg.observe(occurrence("noisy", "Later2", "n", refill));
    assert_eq!(created(&agg.drain_calls()).len(), 1);
    assert_eq!(agg.spam_dropped, 6);
}

#[tokio::test]
async fn recording_never_waits_and_the_publisher_creates_then_patches() {
    let api = FakeApi::start().await;
    let recorder = EventRecorder::spawn(api.client(), reporter());
    let pod = pod_ref("build", Some("spec.containers{main}"));
    for _ in 0..3 {
        recorder.record(
            pod.clone(),
            EventType::Normal,
            "Started",
            "Started container main".into(),
        );
    }
    recorder.record(
        pod_ref("build", None),
        EventType::Normal,
        "ProviderCreated",
        "Created".into(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let count = |b: &serde_json::Value| b.pointer("/series/count").and_then(|c| c.as_i64());
    loop {
        let events = api.event_requests();
        let done = events
            .iter()
            .any(|(m, b)| m == "POST" && b["reason"] == "ProviderCreated")
            && events.iter().any(|(_, b)| count(b) == Some(3));
        if done {
            let first_create = events
                .iter()
                .position(|(m, b)| m == "POST" && b["reason"] == "Started")
                .unwrap();
            assert!(
                events[..first_create].iter().all(|(m, _)| m == "POST"),
                "a series is never patched before it was created: {events:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events not published: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(recorder.dropped(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_instead_of_blocking() {
    // Nothing listens there: the publisher's calls fail slowly while the queue fills.
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let recorder = EventRecorder::spawn(client, reporter());
    for i in 0..QUEUE_CAPACITY * 3 {
        recorder.record(
            pod_ref(&format!("p{i}"), None),
            EventType::Normal,
            "Started",
            "n".into(),
        );
    }
    assert!(recorder.dropped() > 0);
}

#[tokio::test(start_paused = true)]
async fn events_wait_while_status_writes_are_in_flight_but_not_longer_than_the_hold() {
    let priority = Priority::default();
    // Idle: no wait.
    let start = tokio::time::Instant::now();
    priority.until_quiet(start + HOLD_MAX).await;
    assert_eq!(start.elapsed(), Duration::ZERO);

    // A write in flight: the event waits for it, then for QUIET after it ended.
    let urgent = priority.urgent();
    let waiter = {
        let priority = priority.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            priority.until_quiet(start + HOLD_MAX).await;
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    drop(urgent);
    let waited = waiter.await.unwrap();
    assert!(waited >= Duration::from_millis(300) + QUIET, "{waited:?}");
    assert!(waited < HOLD_MAX, "{waited:?}");

    // Writes that never stop: the event goes out at its deadline.
    let _busy = priority.urgent();
    let start = tokio::time::Instant::now();
    priority.until_quiet(start + HOLD_MAX).await;
    assert_eq!(start.elapsed(), HOLD_MAX);
}

fn api_error(code: u16) -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        code,
        ..Default::default()
    }))
}

#[test]
fn a_failed_call_is_tried_twice_more_half_a_second_then_a_second_later() {
    let delays: Vec<Duration> = call_retries().build().collect();
    assert_eq!(
        delays,
        vec![Duration::from_millis(500), Duration::from_secs(1)]
    );
}

#[test]
fn only_throttling_server_and_network_failures_are_retried() {
    for code in [429, 500, 503] {
        assert!(retryable(&api_error(code)), "{code}");
    }
    for code in [400, 403, 404, 409, 422] {
        assert!(!retryable(&api_error(code)), "{code}");
    }
    let down = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "down");
    assert!(retryable(&kube::Error::ReadEvents(down)));
}

#[test]
fn a_burst_of_pods_keeps_every_map_bounded_and_evicts_in_batches() {
    let mut agg = Aggregator::new(reporter());
    // 10 000 pods, three events each, within a minute: every series is in its window.
    for i in 0..10_000 {
        let name = format!("build-{i}");
        for reason in ["ProviderCreated", "Started", "StartTimeline"] {
            agg.observe(occurrence(&name, reason, "note", i64::from(i) / 200));
        }
        // The publisher writes as it goes.
        agg.drain_calls();
    }
    let (series, similar, buckets) = agg.sizes();
    assert!(series <= MAX_SERIES, "{series}");
    assert!(similar <= MAX_SERIES, "{similar}");
    assert!(buckets <= MAX_SERIES, "{buckets}");
    // Evicted in batches down to EVICT_TO, not one entry per event at the cap.
    assert!(series >= EVICT_TO, "{series}");
    // The newest pod's events are still known: its event again patches the series.
    agg.observe(occurrence("build-9999", "Started", "note", 60));
    let calls = agg.drain_calls();
    assert!(
        calls.iter().all(|c| matches!(c, Call::Patch { .. })),
        "{calls:?}"
    );
}

#[test]
fn a_refilled_bucket_is_forgotten() {
    let mut agg = Aggregator::new(reporter());
    for i in 0..(MAX_SERIES as i64 + 1) {
        agg.observe(occurrence(&format!("old-{i}"), "Started", "note", 0));
        agg.drain_calls();
    }
    // Long after: every old bucket has refilled, and is dropped at the next eviction.
    let later = 100 * 3600;
    // One a second: the newest is the last one an eviction by age would take (with equal
    // times it took any, by the map's order).
    for i in 0..(MAX_SERIES as i64 + 1) {
        agg.observe(occurrence(
            &format!("new-{i}"),
            "Started",
            "note",
            later + i,
        ));
        agg.drain_calls();
    }
    assert!((0..=MAX_SERIES).all(|i| !agg.has_bucket(&format!("old-{i}"))));
    assert!(agg.has_bucket(&format!("new-{MAX_SERIES}")));
}
