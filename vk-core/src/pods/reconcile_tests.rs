//! The reconcile against the fake API server of [`crate::pods::test_api`] and a scripted
//! provider: instance updates (new generation, edited mounted objects), status writes,
//! deletion, the active deadline, and the metrics and backoff around the reconcile. The
//! decision alone is tested in `decide_tests.rs`.

use std::sync::atomic::Ordering;

use kube::runtime::reflector;
use kube::runtime::watcher::Event as WatchEvent;
use serde_json::{Value, json};

use std::sync::Arc;
use std::time::Duration;

use crate::pods::queue::Action;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;

use crate::pods::PodControllerConfig;
use crate::pods::context::PodContext;
use crate::pods::decide::INTERIM_DELAY;
use crate::pods::error::PodError;
use crate::pods::events::EventRecorder;
use crate::pods::measure::{error_policy, reconcile};
use crate::pods::pod_api::pod_ref;
use crate::pods::references::ObjectKind;
use crate::pods::resolve::ObjectSource as _;
use crate::pods::resolve::ResolveError;
use crate::pods::test_api::FakeApi;
use crate::pods::watched::{ObjectChange, WatchedNamespaces};
use crate::provider::test_support::ScriptedProvider;
use crate::provider::{InstancePhase, InstanceStatus, StatusEvent};
use crate::provider::{ResolvedPod, VolumeSource};

/// A context over the fake API, its pod store holding `pods`.
fn context(api: &FakeApi, provider: Arc<ScriptedProvider>, pods: &[&Pod]) -> Arc<PodContext> {
    let client = api.client();
    let (store, mut writer) = reflector::store::<Pod>();
    writer.apply_watcher_event(&WatchEvent::Init);
    for pod in pods {
        writer.apply_watcher_event(&WatchEvent::InitApply((*pod).clone()));
    }
    writer.apply_watcher_event(&WatchEvent::InitDone);
    let events = EventRecorder::spawn(
        client.clone(),
        crate::pods::events::Reporter {
            controller: "vk-test".into(),
            instance: "vk-test".into(),
        },
    );
    let (changes, _) = mpsc::unbounded_channel();
    Arc::new(PodContext::new(
        client.clone(),
        PodControllerConfig::new("vk-test", "10.0.0.1"),
        provider,
        events,
        store,
        WatchedNamespaces::new(client, changes),
    ))
}

fn running(ctx: &PodContext, pod: &Pod, phase: InstancePhase) {
    ctx.apply_status_event(StatusEvent::Changed(InstanceStatus {
        billing: None,
        pod: pod_ref(pod),
        phase,
        reason: None,
        message: None,
        pod_ip: Some("10.250.0.9".into()),
        created_at: None,
        init_containers: vec![],
        containers: vec![],
        events: vec![],
    }));
}

fn build_pod(extra_spec: Value, status: Value, generation: i64) -> Pod {
    let mut spec = json!({
        "containers": [{"name": "build", "image": "golang:1.22"}],
        "terminationGracePeriodSeconds": 5,
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": "build", "namespace": "ci", "uid": "uid-1", "generation": generation},
        "spec": spec,
        "status": status,
    }))
    .unwrap()
}

fn running_status() -> Value {
    json!({"phase": "Running", "startTime": Timestamp::now().to_string()})
}

#[tokio::test]
async fn a_failed_update_of_a_new_generation_is_retried() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let first = build_pod(json!({}), running_status(), 1);
    let ctx = context(&api, provider.clone(), &[&first]);
    running(&ctx, &first, InstancePhase::Running);
    reconcile(Arc::new(first), ctx.clone()).await.unwrap();
    assert!(provider.calls().is_empty(), "{:?}", provider.calls());

    let mut second = build_pod(json!({}), running_status(), 2);
    second.spec.as_mut().unwrap().containers[0].image = Some("golang:1.23".into());
    let second = Arc::new(second);
    provider.failing_updates.store(1, Ordering::SeqCst);
    assert!(reconcile(second.clone(), ctx.clone()).await.is_err());
    reconcile(second.clone(), ctx.clone()).await.unwrap();
    reconcile(second.clone(), ctx.clone()).await.unwrap();
    assert_eq!(
        provider.calls(),
        ["update ci/build", "update ci/build"],
        "retried once after the failure, then done"
    );
    assert_eq!(provider.updates()[0].containers[0].image, "golang:1.23");
}

fn with_version(mut pod: Pod, version: &str) -> Arc<Pod> {
    pod.metadata.resource_version = Some(version.into());
    Arc::new(pod)
}

#[tokio::test]
async fn a_status_is_not_written_again_before_the_watch_brings_the_write() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = build_pod(json!({}), json!({"phase": "Pending"}), 1);
    let ctx = context(&api, provider.clone(), &[&pod]);
    running(&ctx, &pod, InstancePhase::Running);
    let stale = with_version(pod.clone(), "0");
    reconcile(stale.clone(), ctx.clone()).await.unwrap();
    assert_eq!(api.status_patches("build").len(), 1);
    assert_eq!(api.status_patches("build")[0]["status"]["phase"], "Running");
    // What the API answered to the write.
    let written = ctx.current(&stale).status.clone();
    assert_eq!(written.as_ref().unwrap().phase.as_deref(), Some("Running"));

    // The store still holds the copy from before the write (another change of the pod, or a
    // provider report, wakes it): nothing to write.
    reconcile(stale.clone(), ctx.clone()).await.unwrap();
    assert_eq!(api.status_patches("build").len(), 1, "written twice");

    // The watch brings the write: still nothing to write.
    let mut caught_up = pod.clone();
    caught_up.status = written;
    reconcile(with_version(caught_up, &api.version()), ctx.clone())
        .await
        .unwrap();
    assert_eq!(api.status_patches("build").len(), 1);

    // Someone else changed the status later: it is written again.
    reconcile(with_version(pod.clone(), "1000"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(api.status_patches("build").len(), 2);
}

#[tokio::test]
async fn an_instance_that_starts_at_once_gets_one_status_write() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = build_pod(json!({}), json!({"phase": "Pending"}), 1);
    let ctx = context(&api, provider.clone(), &[&pod]);
    let pod = with_version(pod, "1");
    let action = reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(provider.calls(), ["create ci/build"]);
    assert!(
        api.status_patches("build").is_empty(),
        "the interim status is held back"
    );
    assert_ne!(action, Action::await_change(), "woken when the hold ends");

    // The provider reports Running before the hold ends.
    running(&ctx, &pod, InstancePhase::Running);
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    let patches = api.status_patches("build");
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0]["status"]["phase"], "Running");
    assert_eq!(provider.calls(), ["create ci/build"]);
}

/// A context whose provider pushes its reports, and a pending pod not created yet.
async fn pushing_provider_and_pending_pod()
-> (FakeApi, Arc<ScriptedProvider>, Arc<PodContext>, Arc<Pod>) {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = build_pod(json!({}), json!({"phase": "Pending"}), 1);
    let ctx = context(&api, provider.clone(), &[&pod]);
    ctx.reports_pushed
        .store(true, std::sync::atomic::Ordering::Relaxed);
    (api, provider, ctx, with_version(pod, "1"))
}

#[tokio::test]
async fn a_pushing_providers_first_report_is_written_by_the_create_itself() {
    let (api, provider, ctx, pod) = pushing_provider_and_pending_pod().await;
    // The provider reports the instance Running a moment after its create returns.
    let reporter = {
        let (ctx, pod, provider) = (ctx.clone(), pod.clone(), provider.clone());
        tokio::spawn(async move {
            while provider.calls().is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            running(&ctx, &pod, InstancePhase::Running);
        })
    };
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    reporter.await.unwrap();
    let patches = api.status_patches("build");
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0]["status"]["phase"], "Running");
    assert_eq!(provider.calls(), ["create ci/build"]);
}

#[tokio::test]
async fn a_pushing_provider_that_stays_silent_holds_the_create_no_longer_than_the_wait() {
    let (api, provider, ctx, pod) = pushing_provider_and_pending_pod().await;
    let action = reconcile(pod.clone(), ctx.clone()).await.unwrap();
    // No report: the interim status is held back as for any provider, and the pod is woken
    // when the hold ends.
    assert!(api.status_patches("build").is_empty());
    assert_ne!(action, Action::await_change());
    assert_eq!(provider.calls(), ["create ci/build"]);
}

#[tokio::test]
async fn a_created_instance_is_not_created_again_before_the_provider_reports_it() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = build_pod(json!({}), json!({"phase": "Pending"}), 1);
    let ctx = context(&api, provider.clone(), &[&pod]);
    let pod = with_version(pod, "1");
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert!(api.status_patches("build").is_empty());

    // A slow (or polling) provider: once the hold ends, the pod shows ContainerCreating.
    tokio::time::sleep(INTERIM_DELAY + Duration::from_millis(50)).await;
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    let patches = api.status_patches("build");
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(
        patches[0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    assert_eq!(
        provider.calls(),
        ["create ci/build"],
        "created once while the provider had no time to report it"
    );

    // Gone before it ever ran: created again at once.
    ctx.apply_status_event(StatusEvent::Gone(pod_ref(&pod)));
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(provider.calls(), ["create ci/build", "create ci/build"]);
}

fn file_content(pod: &ResolvedPod, volume: &str, path: &str) -> String {
    let v = pod.volumes.iter().find(|v| v.name == volume).unwrap();
    let VolumeSource::Files(files) = &v.source else {
        panic!("{volume} is not a file volume")
    };
    let f = files.iter().find(|f| f.path == path).unwrap();
    String::from_utf8(f.content.clone()).unwrap()
}

fn config_map(name: &str, key: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ci"},
        "data": {key: value},
    })
}

#[tokio::test]
async fn an_edited_mounted_config_map_is_pushed_and_an_env_one_is_not() {
    let api = FakeApi::start().await;
    api.put("configmaps", config_map("settings", "settings.xml", "v1"));
    api.put("configmaps", config_map("flags", "GOFLAGS", "-mod=mod"));
    let provider = Arc::new(ScriptedProvider::default());
    let pod = build_pod(
        json!({
            "containers": [{
                "name": "build", "image": "golang:1.22",
                "env": [{"name": "GOFLAGS", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "GOFLAGS"}}}],
                "volumeMounts": [{"name": "m2", "mountPath": "/root/.m2"}],
            }],
            "volumes": [{"name": "m2", "configMap": {"name": "settings"}}],
        }),
        running_status(),
        1,
    );
    let ctx = context(&api, provider.clone(), &[&pod]);
    running(&ctx, &pod, InstancePhase::Running);
    let pod = Arc::new(pod);
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert!(provider.calls().is_empty());

    let change = |kind, name: &str| ObjectChange {
        kind,
        namespace: "ci".into(),
        name: name.into(),
    };
    // An env-only reference wakes the pod but changes nothing in a running instance.
    api.put("configmaps", config_map("flags", "GOFLAGS", "-mod=vendor"));
    let woken = ctx.pods_reading(&change(ObjectKind::ConfigMap, "flags"));
    assert_eq!(woken, [pod_ref(&pod)]);
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert!(provider.calls().is_empty(), "{:?}", provider.calls());

    // A mounted one is resolved again and sent, once.
    api.put("configmaps", config_map("settings", "settings.xml", "v2"));
    let woken = ctx.pods_reading(&change(ObjectKind::ConfigMap, "settings"));
    assert_eq!(woken, [pod_ref(&pod)]);
    // Read through the namespace cache; wait until it has the edit, as a woken pod would.
    let watched = &ctx.watched;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while watched
        .config_map("ci", "settings")
        .await
        .unwrap()
        .and_then(|cm| cm.data)
        .is_none_or(|d| d["settings.xml"] != "v2")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache never saw v2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(provider.calls(), ["update ci/build"]);
    assert_eq!(
        file_content(&provider.updates()[0], "m2", "settings.xml"),
        "v2"
    );

    // Unrelated objects and other namespaces wake nothing.
    assert!(
        ctx.pods_reading(&change(ObjectKind::Secret, "settings"))
            .is_empty()
    );
    let mut elsewhere = change(ObjectKind::ConfigMap, "settings");
    elsewhere.namespace = "other".into();
    assert!(ctx.pods_reading(&elsewhere).is_empty());
}

#[tokio::test]
async fn an_exceeded_deadline_stops_the_instance_and_fails_the_pod() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let long_ago = Timestamp::now()
        .checked_sub(Duration::from_secs(600))
        .unwrap();
    let pod = build_pod(
        json!({"activeDeadlineSeconds": 60}),
        json!({"phase": "Running", "startTime": long_ago.to_string()}),
        1,
    );
    let ctx = context(&api, provider.clone(), &[&pod]);
    running(&ctx, &pod, InstancePhase::Running);
    let action = reconcile(Arc::new(pod), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(provider.calls(), ["delete ci/build grace=5s"]);
    let patch = api.status_patches("build").pop().expect("a status patch");
    assert_eq!(patch["status"]["phase"], "Failed");
    assert_eq!(patch["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        patch["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
}

#[tokio::test]
async fn an_instance_that_ended_before_the_check_is_mirrored_not_stopped() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let long_ago = Timestamp::now()
        .checked_sub(Duration::from_secs(600))
        .unwrap();
    let pod = build_pod(
        json!({"activeDeadlineSeconds": 60}),
        json!({"phase": "Running", "startTime": long_ago.to_string()}),
        1,
    );
    let ctx = context(&api, provider.clone(), &[&pod]);
    running(&ctx, &pod, InstancePhase::Succeeded);
    reconcile(Arc::new(pod), ctx.clone()).await.unwrap();
    assert!(provider.calls().is_empty(), "{:?}", provider.calls());
    let patch = api.status_patches("build").pop().expect("a status patch");
    assert_eq!(patch["status"]["phase"], "Succeeded");
}

#[tokio::test]
async fn provider_probe_events_become_pod_events_once() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = build_pod(json!({}), running_status(), 1);
    let ctx = context(&api, provider, &[&pod]);
    let report = |count: u32| {
        let at = Timestamp::now();
        ctx.apply_status_event(StatusEvent::Changed(InstanceStatus {
            billing: None,
            pod: pod_ref(&pod),
            phase: InstancePhase::Running,
            reason: None,
            message: None,
            pod_ip: Some("10.250.0.9".into()),
            created_at: None,
            init_containers: vec![],
            containers: vec![],
            events: vec![crate::provider::InstanceEvent {
                container: Some("build".into()),
                warning: true,
                reason: "Unhealthy".into(),
                message: "Liveness probe failed: no".into(),
                count,
                first_seen: at,
                last_seen: at,
            }],
        }));
    };
    report(1);
    reconcile(Arc::new(pod.clone()), ctx.clone()).await.unwrap();
    // The same report again records nothing new.
    reconcile(Arc::new(pod.clone()), ctx.clone()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let unhealthy = loop {
        let events = api.event_requests();
        let found: Vec<Value> = events
            .into_iter()
            .filter(|(_, b)| b["reason"] == "Unhealthy")
            .map(|(_, b)| b)
            .collect();
        if !found.is_empty() {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no Unhealthy event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Published after the quiet time: a repeat would have come with it.
    tokio::time::sleep(crate::pods::events::HOLD_MAX).await;
    let all: Vec<Value> = api
        .event_requests()
        .into_iter()
        .filter(|(_, b)| b["reason"] == "Unhealthy")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(unhealthy[0]["type"], "Warning");
    assert_eq!(unhealthy[0]["note"], "Liveness probe failed: no");
    assert_eq!(
        unhealthy[0]["regarding"]["fieldPath"],
        "spec.containers{build}"
    );
}

fn deleted_pod(grace_left: Duration) -> Pod {
    let mut pod = build_pod(json!({}), running_status(), 1);
    let at = Timestamp::now().checked_add(grace_left).unwrap();
    pod.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at));
    pod.metadata.deletion_grace_period_seconds = Some(30);
    pod
}

fn pod_deletes(api: &FakeApi) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE /api/v1/namespaces/ci/pods/build"))
        .collect()
}

#[tokio::test]
async fn a_deleted_pod_stops_its_instance_once_and_leaves_the_api_when_it_stopped() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = Arc::new(deleted_pod(Duration::from_secs(30)));
    let ctx = context(&api, provider.clone(), &[&pod]);
    running(&ctx, &pod, InstancePhase::Running);

    let action = reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(provider.calls(), ["delete ci/build grace=30s"]);
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(5)),
        "still stopping"
    );
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(provider.calls().len(), 1, "stopped once");
    assert!(pod_deletes(&api).is_empty());

    // The instance stopped: the pod object goes, with its UID as precondition.
    running(&ctx, &pod, InstancePhase::Succeeded);
    let action = reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(pod_deletes(&api).len(), 1, "{:?}", api.requests());
    assert_eq!(provider.calls().len(), 1);
}

#[tokio::test]
async fn a_deleted_pod_whose_grace_is_over_leaves_the_api_while_its_instance_runs() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let mut pod = deleted_pod(Duration::ZERO);
    pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap(),
    ));
    let pod = Arc::new(pod);
    let ctx = context(&api, provider.clone(), &[&pod]);
    running(&ctx, &pod, InstancePhase::Running);
    let action = reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(provider.calls(), ["delete ci/build grace=30s"]);
    assert_eq!(pod_deletes(&api).len(), 1);
}

#[tokio::test]
async fn creates_status_writes_and_start_up_are_measured_around_the_reconcile() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = with_version(build_pod(json!({}), json!({"phase": "Pending"}), 1), "1");
    let ctx = context(&api, provider.clone(), &[&pod]);
    ctx.seen(&pod);
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    running(&ctx, &pod, InstancePhase::Running);
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    let text = ctx.metrics.encode();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_string()
    };
    assert!(line("vk_provider_creates_total{result=\"ok\"}").ends_with(" 1"));
    assert!(line("vk_pod_status_writes_total{result=\"ok\"}").ends_with(" 1"));
    assert!(line("vk_pod_start_seconds_count").ends_with(" 1"));
    assert!(line("vk_pod_status_write_seconds_count").ends_with(" 1"));
}

#[tokio::test]
async fn failures_back_off_and_a_success_starts_the_count_again() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    let pod = Arc::new(build_pod(json!({}), running_status(), 1));
    let ctx = context(&api, provider, &[&pod]);
    let error = || PodError::Resolve(ResolveError::Invalid("bad".into()));
    for _ in 0..10 {
        let action = error_policy(pod.clone(), &error(), ctx.clone());
        assert_ne!(action, Action::await_change());
    }
    assert_eq!(ctx.records.read("uid-1", |r| r.unwrap().failures), 10);
    running(&ctx, &pod, InstancePhase::Running);
    reconcile(pod.clone(), ctx.clone()).await.unwrap();
    assert_eq!(ctx.records.read("uid-1", |r| r.unwrap().failures), 0);
}

#[tokio::test(start_paused = true)]
async fn loading_the_instances_retries_with_backoff_until_the_provider_answers() {
    use backon::BackoffBuilder as _;
    // backon's factor is an f32: compare whole milliseconds.
    let delays: Vec<u128> = crate::pods::context::load_retries()
        .build()
        .take(8)
        .map(|d| d.as_millis())
        .collect();
    assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    provider.failing_lists.store(3, Ordering::SeqCst);
    let ctx = context(&api, provider.clone(), &[]);
    let started = tokio::time::Instant::now();
    ctx.load_instances(&tokio_util::sync::CancellationToken::new())
        .await;
    assert_eq!(provider.lists.load(Ordering::SeqCst), 4);
    // 0.2 + 0.4 + 0.8 s, give or take the timer's millisecond ticks.
    let waited = started.elapsed().as_millis();
    assert!((1400..1410).contains(&waited), "{waited} ms");
}

#[tokio::test(start_paused = true)]
async fn loading_the_instances_stops_when_cancelled() {
    let api = FakeApi::start().await;
    let provider = Arc::new(ScriptedProvider::default());
    provider.failing_lists.store(u32::MAX, Ordering::SeqCst);
    let ctx = context(&api, provider.clone(), &[]);
    let cancel = tokio_util::sync::CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        stop.cancel();
    });
    tokio::time::timeout(Duration::from_secs(60), ctx.load_instances(&cancel))
        .await
        .expect("returns once cancelled");
    // Calls at 0, 0.2, 0.6, 1.4, 3.0, 6.2, 12.6 and 22.6 s; the next would be at 32.6 s.
    assert_eq!(provider.lists.load(Ordering::SeqCst), 8);
}

/// A pod named `name` with UID `uid`, bound to the test node.
fn pod_with_uid(name: &str, uid: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": uid},
        "spec": {"nodeName": "vk-test", "containers": [{"name": "build", "image": "golang:1.22"}]},
    }))
    .unwrap()
}

fn listed_instance(pod: &Pod) -> InstanceStatus {
    InstanceStatus {
        billing: None,
        pod: pod_ref(pod),
        phase: InstancePhase::Running,
        reason: None,
        message: None,
        pod_ip: None,
        created_at: None,
        init_containers: vec![],
        containers: vec![],
        events: vec![],
    }
}

#[tokio::test]
async fn the_orphan_sweep_deletes_instances_without_a_pod_but_not_one_seen_while_it_listed() {
    let api = FakeApi::start().await;
    let gone = pod_with_uid("gone", "uid-gone");
    let new = pod_with_uid("new", "uid-new");
    let provider = Arc::new(ScriptedProvider::default());
    *provider.listed.lock().unwrap() = vec![listed_instance(&gone), listed_instance(&new)];
    let client = api.client();
    let (store, mut writer) = reflector::store::<Pod>();
    writer.apply_watcher_event(&WatchEvent::Init);
    writer.apply_watcher_event(&WatchEvent::InitDone);
    // While the sweep lists, the watch brings pod `new` (whose instance the list holds).
    let seen = new.clone();
    *provider.while_listing.lock().unwrap() = Some(Box::new(move || {
        writer.apply_watcher_event(&WatchEvent::Apply(seen.clone()));
    }));
    let events = EventRecorder::spawn(
        client.clone(),
        crate::pods::events::Reporter {
            controller: "vk-test".into(),
            instance: "vk-test".into(),
        },
    );
    let (changes, _) = mpsc::unbounded_channel();
    let ctx = Arc::new(PodContext::new(
        client.clone(),
        PodControllerConfig::new("vk-test", "10.0.0.1"),
        provider.clone(),
        events,
        store,
        WatchedNamespaces::new(client, changes),
    ));
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let cancel = tokio_util::sync::CancellationToken::new();
    let sweep = tokio::spawn(ctx.sweep_orphans(synced_rx, cancel.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        provider.lists.load(Ordering::SeqCst),
        0,
        "the sweep waits for the watch's first list"
    );
    synced_tx.send_replace(true);
    for _ in 0..100 {
        if provider.calls().iter().any(|c| c.starts_with("delete")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    sweep.await.unwrap();
    assert_eq!(
        provider.calls(),
        vec!["delete ns/gone grace=0s".to_string()]
    );
}
