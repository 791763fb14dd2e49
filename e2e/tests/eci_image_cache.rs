//! Image caches on an eci node against the mock cloud: an `ImageCache` object (ACK's
//! `eci.alibabacloud.com/v1`) becomes a cloud cache whose status the object follows to Ready;
//! a pod naming it (`k8s.aliyun.com/eci-image-snapshot-id`) or matching it automatically gets
//! `SuccessfulHitImageCache`; a pod with an uncached image pulls it (`Pulling`/`Pulled`); an
//! `eci-*` annotation vk does not read is a Warning, a bad value refuses the pod; deleting the
//! object deletes the cloud's cache.
//!
//! One test: every eci vk in this binary would run an ImageCache controller over the same
//! cluster-wide objects (each against its own mock cloud), so the steps share one node.

use std::time::Duration;

use e2e::cloud::{ACCESS_KEY_ID, ACCESS_KEY_SECRET};
use e2e::harness::Options;
use e2e::pods::{pod_for_node, wait_events, wait_phase};
use e2e::{kubectl_ok, repo_root, wait_for};
use eci::image_cache::{ImageCache, ImageCacheSpec};
use eci::{EciClient, RetryPolicy};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, PostParams};

fn cloud_client(endpoint: &str) -> EciClient {
    let mut config =
        eci::ClientConfig::new(endpoint, "cn-hangzhou", ACCESS_KEY_ID, ACCESS_KEY_SECRET);
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 50,
        max_delay_ms: 500,
    };
    EciClient::new(config).expect("a client for the mock cloud")
}

fn reasons(events: &[Event]) -> Vec<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}

#[tokio::test]
async fn image_cache_objects_follow_the_cloud_and_pods_hit_them() {
    let crd = repo_root().join("manifests/crds/imagecache.yaml");
    kubectl_ok(&["apply", "-f", crd.to_str().unwrap()]);
    kubectl_ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=60s",
        "crd/imagecaches.eci.alibabacloud.com",
    ]);

    // The realistic model: pulls take their time and say so (`Pulling`, then `Pulled`); the
    // instant one reports one `Pulled` for the whole group.
    let s = Options::eci("vk-imc", "simulate", &["--latency-model", "realistic"])
        .start()
        .await;
    let cloud = cloud_client(&s.cloud().endpoint);
    let caches: Api<ImageCache> = Api::all(s.client.clone());
    let name = format!("{}-web", s.vk.node);
    // Unique per run (so no earlier cache matches), resolved by the mock cloud's image catalog
    // by its last path element.
    let image = format!("registry.example.com/{}/busybox:1.36", s.vk.node);

    // 1. The object becomes a cloud cache; its status follows the cloud's to Ready.
    let object = ImageCache::new(
        &name,
        ImageCacheSpec {
            images: vec![image.clone()],
            image_cache_size: Some(20),
            retention_days: Some(1),
            ..Default::default()
        },
    );
    caches
        .create(&PostParams::default(), &object)
        .await
        .expect("create the ImageCache");
    let mut seen_phases = Vec::new();
    let mut ready = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while tokio::time::Instant::now() < deadline {
        let now = caches.get(&name).await.unwrap();
        let status = now.status.clone().unwrap_or_default();
        if let Some(phase) = status.phase.clone()
            && seen_phases.last() != Some(&phase)
        {
            seen_phases.push(phase);
        }
        if status.phase.as_deref() == Some("Ready") {
            ready = Some(now);
            break;
        }
        assert_ne!(status.phase.as_deref(), Some("Failed"), "{status:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ready = ready.unwrap_or_else(|| {
        panic!("the ImageCache never became Ready; phases seen: {seen_phases:?}")
    });
    let status = ready.status.clone().unwrap();
    let id = status.image_cache_id.clone().expect("an image cache id");
    assert!(id.starts_with("imc-"), "{id}");
    assert_eq!(status.progress.as_deref(), Some("100%"));
    assert!(status.completion_time.is_some());
    assert_eq!(status.observed_generation, ready.metadata.generation);
    assert!(
        ready
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&eci::image_cache::controller::FINALIZER.to_string())
    );
    // The cloud holds it, named after the object and tagged with its uid.
    let in_cloud = eci::image_cache::cloud::by_id(&cloud, &id)
        .await
        .unwrap()
        .expect("the cloud's cache");
    assert_eq!(in_cloud.status, "Ready");
    assert_eq!(in_cloud.images, vec![image.clone()]);
    assert!(
        in_cloud
            .tags
            .iter()
            .any(|t| t.key == eci::image_cache::sync::TAG_UID
                && Some(&t.value) == ready.metadata.uid.as_ref())
    );
    let default_events: Api<Event> = Api::namespaced(s.client.clone(), "default");
    let object_events = wait_events(
        &default_events,
        &name,
        &["CreatingImageCache", "ImageCacheReady"],
    )
    .await;
    assert!(reasons(&object_events).contains(&"ImageCacheReady".to_string()));
    let printed = kubectl_ok(&["get", "imagecache", &name]);
    assert!(
        printed.contains(&id) && printed.contains("Ready"),
        "{printed}"
    );

    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    let with_image = |pod: &str, annotations: &[(&str, &str)], image: &str| {
        let mut p = pod_for_node(pod, &s.vk.node, &["main"], annotations);
        p.spec.as_mut().unwrap().containers[0].image = Some(image.to_string());
        p
    };

    // 2. A pod naming the cache starts from it.
    let hit = with_image(
        "hit",
        &[("k8s.aliyun.com/eci-image-snapshot-id", id.as_str())],
        &image,
    );
    s.pods.create(&PostParams::default(), &hit).await.unwrap();
    wait_phase(&s.pods, "hit", "Running", Duration::from_secs(180)).await;
    let hit_events = wait_events(&events, "hit", &["SuccessfulHitImageCache"]).await;
    let message = hit_events
        .iter()
        .find(|e| e.reason.as_deref() == Some("SuccessfulHitImageCache"))
        .and_then(|e| e.message.clone())
        .unwrap_or_default();
    assert!(message.contains(&id), "{message}");

    // 3. Automatic matching (on by default) finds it too.
    let matched = with_image("matched", &[], &image);
    s.pods
        .create(&PostParams::default(), &matched)
        .await
        .unwrap();
    wait_phase(&s.pods, "matched", "Running", Duration::from_secs(180)).await;
    wait_events(&events, "matched", &["SuccessfulHitImageCache"]).await;

    // 4. An image no cache holds is pulled; an eci-* annotation vk does not read is a Warning.
    let pulled = with_image(
        "pulled",
        &[("k8s.aliyun.com/eci-with-eip", "true")],
        &format!("registry.example.com/{}/alpine:3.20", s.vk.node),
    );
    s.pods
        .create(&PostParams::default(), &pulled)
        .await
        .unwrap();
    wait_phase(&s.pods, "pulled", "Running", Duration::from_secs(180)).await;
    let pulled_events = wait_events(
        &events,
        "pulled",
        &["Pulling", "Pulled", "AnnotationNotSupported"],
    )
    .await;
    let warning = pulled_events
        .iter()
        .find(|e| e.reason.as_deref() == Some("AnnotationNotSupported"))
        .unwrap();
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("k8s.aliyun.com/eci-with-eip")
    );
    assert!(
        !reasons(&pulled_events).contains(&"SuccessfulHitImageCache".to_string()),
        "{:?}",
        reasons(&pulled_events)
    );

    // 5. A value that cannot be read refuses the pod, naming the annotation.
    let bad = with_image(
        "bad",
        &[("k8s.aliyun.com/eci-spot-strategy", "Cheapest")],
        &image,
    );
    s.pods.create(&PostParams::default(), &bad).await.unwrap();
    let failed = wait_phase(&s.pods, "bad", "Failed", Duration::from_secs(60)).await;
    let status = failed.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("InvalidAnnotation"));
    assert!(
        status
            .message
            .unwrap_or_default()
            .contains("k8s.aliyun.com/eci-spot-strategy")
    );

    // 6. Deleting the object deletes the cloud's cache, then the object goes.
    for pod in ["hit", "matched", "pulled", "bad"] {
        let _ = s.pods.delete(pod, &DeleteParams::default()).await;
    }
    caches
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the ImageCache");
    wait_for("the ImageCache to go", Duration::from_secs(60), || async {
        caches.get_opt(&name).await.unwrap().is_none()
    })
    .await;
    assert!(
        eci::image_cache::cloud::by_id(&cloud, &id)
            .await
            .unwrap()
            .is_none(),
        "the cloud still has {id}"
    );
    wait_events(&default_events, &name, &["ImageCacheDeleted"]).await;
}
