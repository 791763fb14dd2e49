//! The image cache actions through the dispatcher, on tokio's paused clock: the statuses a
//! cache goes through, ECI's parameter errors, a failed cache's event, the quota, ClientToken
//! idempotency, update and delete rules, expiry, and how a create picks its cache
//! (`ImageSnapshotId`, `AutoMatchImageCache`, `AutoCreateImageCache`). Also: the billed
//! spec `DescribeContainerGroups` renders reads into the client's wire type.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::api::dispatch;
use super::config::MockCloudConfig;
use super::error::ApiError;
use super::face::Face;
use crate::engine::catalog::{ImageEntry, Layer};
use crate::engine::executor::simulate::SimulateExecutor;
use eci::wire::params::Params;

fn face_with(config: MockCloudConfig) -> Face {
    Face::new(config, Arc::new(SimulateExecutor::new(Default::default())))
}

fn face() -> Face {
    let mut config = MockCloudConfig {
        latency_jitter_ms: 0,
        ..Default::default()
    };
    // Over 20 GiB unpacked: no default-sized cache holds it.
    config.catalog.images.insert(
        "huge".into(),
        ImageEntry {
            layers: vec![Layer {
                id: "huge:1".into(),
                size_mb: 10_000.0,
            }],
            ..Default::default()
        },
    );
    face_with(config)
}

async fn call(f: &Face, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
    let mut p = Params::new();
    p.push("RegionId", "cn-hangzhou");
    for (k, v) in pairs {
        p.push(*k, *v);
    }
    let body = dispatch(f, action, &p, "localhost").await?;
    Ok(serde_json::from_str(&body).unwrap())
}

async fn create_cache(f: &Face, name: &str, images: &[&str], extra: &[(&str, &str)]) -> String {
    let keys: Vec<String> = (1..=images.len()).map(|i| format!("Image.{i}")).collect();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("ImageCacheName", name),
        ("SecurityGroupId", "sg-1"),
        ("VSwitchId", "vsw-1"),
    ];
    pairs.extend(keys.iter().map(String::as_str).zip(images.iter().copied()));
    pairs.extend_from_slice(extra);
    let body = call(f, "CreateImageCache", &pairs).await.unwrap();
    body["ImageCacheId"].as_str().unwrap().to_string()
}

async fn cache(f: &Face, id: &str) -> Value {
    let body = call(f, "DescribeImageCaches", &[("ImageCacheId", id)])
        .await
        .unwrap();
    body["ImageCaches"][0].clone()
}

/// Past the instant model's Preparing and Creating.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

async fn create_group(f: &Face, images: &[&str], extra: &[(&str, &str)]) -> String {
    let names: Vec<String> = (1..=images.len())
        .flat_map(|i| {
            [
                format!("Container.{i}.Name"),
                format!("Container.{i}.Image"),
                format!("c{i}"),
            ]
        })
        .collect();
    let mut pairs: Vec<(&str, &str)> = vec![("ContainerGroupName", "pod")];
    for (i, image) in images.iter().enumerate() {
        pairs.push((names[3 * i].as_str(), names[3 * i + 2].as_str()));
        pairs.push((names[3 * i + 1].as_str(), image));
    }
    pairs.extend_from_slice(extra);
    let body = call(f, "CreateContainerGroup", &pairs).await.unwrap();
    body["ContainerGroupId"].as_str().unwrap().to_string()
}

fn events(f: &Face, id: &str) -> Vec<(String, String)> {
    f.engine()
        .state()
        .get(id)
        .unwrap()
        .events
        .iter()
        .map(|e| (e.reason.clone(), e.message.clone()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_cache_goes_preparing_creating_ready() {
    let f = face();
    let body = call(
        &f,
        "CreateImageCache",
        &[
            ("ImageCacheName", "build-tools"),
            ("Image.1", "golang:1.22"),
            ("Image.2", "jenkins/inbound-agent"),
            ("SecurityGroupId", "sg-1"),
            ("VSwitchId", "vsw-1"),
        ],
    )
    .await
    .unwrap();
    let id = body["ImageCacheId"].as_str().unwrap();
    assert!(id.starts_with("imc-"));
    let group = body["ContainerGroupId"].as_str().unwrap();
    assert!(group.starts_with("eci-"));
    let c = cache(&f, id).await;
    assert_eq!(c["Status"], "Preparing");
    assert_eq!(c["Progress"], "0%");
    assert_eq!(c["ContainerGroupId"], group);
    assert_eq!(c["ImageCacheSize"], 20);
    assert_eq!(c["RetentionDays"], 0);
    assert_eq!(c["ExpireDateTime"], "");
    assert!(c["SnapshotId"].as_str().unwrap().starts_with("s-"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache(&f, id).await["Status"], "Creating");
    settle().await;
    let c = cache(&f, id).await;
    assert_eq!(c["Status"], "Ready");
    assert_eq!(c["Progress"], "100%");
    let reasons: Vec<&str> = c["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["Preparing", "Creating", "Ready"]);
    // It reads into the client's wire type.
    let body = call(&f, "DescribeImageCaches", &[]).await.unwrap();
    let answer: eci::wire::api::DescribeImageCachesResponse = serde_json::from_value(body).unwrap();
    assert_eq!(answer.total_count, 1);
    assert_eq!(answer.image_caches[0].images.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn parameters_are_checked_as_eci_does() {
    let f = face();
    let err = call(&f, "CreateImageCache", &[("Image.1", "busybox")])
        .await
        .unwrap_err();
    assert_eq!((err.code, err.status), ("MissingParameter", 400));
    let err = call(
        &f,
        "CreateImageCache",
        &[("ImageCacheName", "Bad_Name"), ("Image.1", "busybox")],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    let err = call(&f, "CreateImageCache", &[("ImageCacheName", "c1")])
        .await
        .unwrap_err();
    assert_eq!(err.code, "MissingParameter");
    let err = call(
        &f,
        "CreateImageCache",
        &[
            ("ImageCacheName", "c1"),
            ("Image.1", "busybox"),
            ("ImageCacheSize", "10"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    let err = call(
        &f,
        "UpdateImageCache",
        &[("ImageCacheId", "imc-none"), ("ImageCacheName", "x1")],
    )
    .await
    .unwrap_err();
    assert_eq!((err.code, err.status), ("InvalidImageCache.NotFound", 404));
    let err = call(&f, "DeleteImageCache", &[("ImageCacheId", "imc-none")])
        .await
        .unwrap_err();
    assert_eq!(err.status, 404);
    let err = call(&f, "DescribeImageCaches", &[("Limit", "0")])
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
}

#[tokio::test(start_paused = true)]
async fn too_big_or_unknown_images_fail_with_an_event() {
    let f = face();
    let big = create_cache(&f, "big", &["huge"], &[]).await;
    let unknown = create_cache(&f, "unknown", &["nope.example.com/x:1"], &[]).await;
    let roomy = create_cache(&f, "roomy", &["huge"], &[("ImageCacheSize", "40")]).await;
    settle().await;
    let c = cache(&f, &big).await;
    assert_eq!(c["Status"], "Failed");
    let last = c["Events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["Type"], "Warning");
    assert!(
        last["Message"]
            .as_str()
            .unwrap()
            .contains("ImageCacheSize of 20 GiB"),
        "{last}"
    );
    let c = cache(&f, &unknown).await;
    assert_eq!(c["Status"], "Failed");
    let last = c["Events"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["Message"].as_str().unwrap().contains("not found"),
        "{last}"
    );
    assert_eq!(cache(&f, &roomy).await["Status"], "Ready");
}

#[tokio::test(start_paused = true)]
async fn the_quota_and_client_tokens_hold() {
    let mut config = MockCloudConfig::default();
    config.image_cache.quota = 2;
    let f = face_with(config);
    let token = [("ClientToken", "tok-1")];
    let first = create_cache(&f, "one", &["busybox"], &token).await;
    let again = create_cache(&f, "one", &["busybox"], &token).await;
    assert_eq!(first, again, "the same token answers the same cache");
    let err = call(
        &f,
        "CreateImageCache",
        &[
            ("ImageCacheName", "other"),
            ("Image.1", "busybox"),
            ("ClientToken", "tok-1"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "IdempotentParameterMismatch");
    create_cache(&f, "two", &["alpine"], &[]).await;
    let err = call(
        &f,
        "CreateImageCache",
        &[("ImageCacheName", "three"), ("Image.1", "alpine")],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "QuotaExceeded.ImageCache");
    let body = call(&f, "DescribeImageCaches", &[]).await.unwrap();
    assert_eq!(body["TotalCount"], 2);
}

#[tokio::test(start_paused = true)]
async fn updates_only_from_ready_or_update_failed() {
    let f = face();
    let id = create_cache(&f, "tools", &["busybox"], &[]).await;
    let err = call(
        &f,
        "UpdateImageCache",
        &[("ImageCacheId", &id), ("Image.1", "alpine")],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "IncorrectStatus");
    settle().await;
    call(
        &f,
        "UpdateImageCache",
        &[("ImageCacheId", &id), ("Image.1", "huge")],
    )
    .await
    .unwrap();
    assert_eq!(cache(&f, &id).await["Status"], "Updating");
    settle().await;
    assert_eq!(cache(&f, &id).await["Status"], "UpdateFailed");
    call(
        &f,
        "UpdateImageCache",
        &[
            ("ImageCacheId", &id),
            ("Image.1", "alpine"),
            ("ImageCacheName", "tools-2"),
        ],
    )
    .await
    .unwrap();
    settle().await;
    let c = cache(&f, &id).await;
    assert_eq!(c["Status"], "Ready");
    assert_eq!(c["ImageCacheName"], "tools-2");
    assert_eq!(c["Images"], serde_json::json!(["alpine"]));
}

#[tokio::test(start_paused = true)]
async fn caches_are_deleted_or_expire() {
    let f = face();
    let gone = create_cache(&f, "gone", &["busybox"], &[]).await;
    let brief = create_cache(&f, "brief", &["busybox"], &[("RetentionDays", "1")]).await;
    assert_ne!(cache(&f, &brief).await["ExpireDateTime"], "");
    call(&f, "DeleteImageCache", &[("ImageCacheId", &gone)])
        .await
        .unwrap();
    assert_eq!(cache(&f, &gone).await, Value::Null);
    tokio::time::sleep(Duration::from_secs(24 * 3600 - 60)).await;
    assert_eq!(cache(&f, &brief).await["Status"], "Ready");
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(cache(&f, &brief).await, Value::Null, "expired caches go");
}

#[tokio::test(start_paused = true)]
async fn auto_match_picks_the_cache_holding_most_images_then_the_newest() {
    let f = face();
    let go = create_cache(&f, "go", &["golang:1.22"], &[]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let both = create_cache(
        &f,
        "both",
        &["golang:1.22", "jenkins/inbound-agent:latest"],
        &[],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let go_newer = create_cache(&f, "go-newer", &["docker.io/library/golang:1.22"], &[]).await;
    settle().await;
    let auto = [("AutoMatchImageCache", "true")];

    let g = create_group(&f, &["golang:1.22", "jenkins/inbound-agent"], &auto).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hit = format!(
        "Successfully hit image cache {both}, eci will be scheduled with this image cache."
    );
    assert!(
        events(&f, &g).contains(&("SuccessfulHitImageCache".into(), hit)),
        "{:?}",
        events(&f, &g)
    );
    assert_ne!(cache(&f, &both).await["LastMatchedTime"], "");
    assert_eq!(cache(&f, &go).await["LastMatchedTime"], "");

    // One image each: a tie, the newest wins; `library/golang:1.22` is the same reference.
    let g = create_group(&f, &["library/golang:1.22"], &auto).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        events(&f, &g)
            .iter()
            .any(|(r, m)| r == "SuccessfulHitImageCache" && m.contains(&go_newer))
    );

    // `golang` is `golang:latest`: no cache holds it.
    let g = create_group(&f, &["golang"], &auto).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let e = events(&f, &g);
    assert!(e.iter().any(|(r, _)| r == "ImageCacheMissed"), "{e:?}");
    assert!(!e.iter().any(|(r, _)| r == "ImageCacheAutoCreated"));
    // Without any flag, no cache is looked at.
    let g = create_group(&f, &["golang:1.22"], &[]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!events(&f, &g).iter().any(|(r, _)| r.contains("ImageCache")));
}

#[tokio::test(start_paused = true)]
async fn image_snapshot_id_names_a_ready_cache() {
    let f = face();
    let group = [
        ("ContainerGroupName", "pod"),
        ("Container.1.Name", "c"),
        ("Container.1.Image", "busybox"),
    ];
    let with = |id: &'static str| {
        let mut p = group.to_vec();
        p.push(("ImageSnapshotId", id));
        p
    };
    let err = call(&f, "CreateContainerGroup", &with("imc-missing"))
        .await
        .unwrap_err();
    assert_eq!((err.code, err.status), ("InvalidImageCache.NotFound", 404));
    let err = call(&f, "CreateContainerGroup", &with("s-123"))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    let id = create_cache(&f, "bb", &["busybox"], &[]).await;
    let id: &'static str = Box::leak(id.into_boxed_str());
    let err = call(&f, "CreateContainerGroup", &with(id))
        .await
        .unwrap_err();
    assert_eq!(err.code, "IncorrectStatus", "still Preparing");
    // DryRun checks it too.
    let mut dry = with(id);
    dry.push(("DryRun", "true"));
    assert_eq!(
        call(&f, "CreateContainerGroup", &dry)
            .await
            .unwrap_err()
            .code,
        "IncorrectStatus"
    );
    settle().await;
    let body = call(&f, "CreateContainerGroup", &with(id)).await.unwrap();
    let g = body["ContainerGroupId"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        events(&f, &g)
            .iter()
            .any(|(r, m)| r == "SuccessfulHitImageCache" && m.contains(id))
    );
    assert_ne!(cache(&f, id).await["LastMatchedTime"], "");
}

#[tokio::test(start_paused = true)]
async fn auto_create_makes_a_cache_of_the_groups_images_on_a_miss() {
    let f = face();
    let auto = [("AutoCreateImageCache", "true")];
    let g = create_group(&f, &["golang:1.22", "jenkins/inbound-agent"], &auto).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let e = events(&f, &g);
    assert!(e.iter().any(|(r, _)| r == "ImageCacheMissed"), "{e:?}");
    let (_, message) = e
        .iter()
        .find(|(r, _)| r == "ImageCacheAutoCreated")
        .expect("auto created");
    let body = call(&f, "DescribeImageCaches", &[]).await.unwrap();
    assert_eq!(body["TotalCount"], 1);
    let c = &body["ImageCaches"][0];
    assert_eq!(
        *message,
        format!(
            "Image cache {} is auto created",
            c["ImageCacheId"].as_str().unwrap()
        )
    );
    assert_eq!(
        c["Images"],
        serde_json::json!(["golang:1.22", "jenkins/inbound-agent"])
    );
    assert_eq!(c["Status"], "Ready");
    // The next group with the same images hits it.
    let g = create_group(
        &f,
        &["golang:1.22", "jenkins/inbound-agent"],
        &[
            ("AutoMatchImageCache", "true"),
            ("AutoCreateImageCache", "true"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        events(&f, &g)
            .iter()
            .any(|(r, _)| r == "SuccessfulHitImageCache")
    );
    let body = call(&f, "DescribeImageCaches", &[]).await.unwrap();
    assert_eq!(body["TotalCount"], 1, "no second cache");
}

#[tokio::test(start_paused = true)]
async fn the_billed_spec_reads_into_the_clients_wire_type() {
    let f = face();
    let g = create_group(
        &f,
        &["busybox"],
        &[
            ("InstanceType", "ecs.c6.large"),
            ("SpotStrategy", "SpotWithPriceLimit"),
            ("SpotPriceLimit", "0.25"),
            ("EphemeralStorage", "50"),
        ],
    )
    .await;
    let ids = format!("[\"{g}\"]");
    let body = call(
        &f,
        "DescribeContainerGroups",
        &[("ContainerGroupIds", &ids)],
    )
    .await
    .unwrap();
    let answer: eci::wire::api::DescribeContainerGroupsResponse =
        serde_json::from_value(body).unwrap();
    let group = &answer.container_groups[0];
    assert_eq!(group.instance_type, "ecs.c6.large");
    assert_eq!(group.spot_strategy, "SpotWithPriceLimit");
    assert_eq!(group.spot_price_limit, 0.25);
    assert_eq!(group.ephemeral_storage, 50);
    assert!(group.cpu > 0.0 && group.memory > 0.0);
}

#[tokio::test(start_paused = true)]
async fn caches_survive_the_state_file() {
    let dir = std::env::temp_dir().join(format!("imc-state-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let config = MockCloudConfig {
        state_file: Some(file.clone()),
        ..Default::default()
    };
    let first = face_with(config.clone());
    let id = create_cache(&first, "kept", &["busybox"], &[]).await;
    settle().await;
    first.save_state();
    let second = face_with(config);
    second.restore_state().unwrap();
    let c = cache(&second, &id).await;
    assert_eq!(c["Status"], "Ready");
    assert_eq!(c["ImageCacheName"], "kept");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_engines_event_reasons_are_ecis() {
    use crate::engine::latency::reasons;
    use eci::wire::api::image_event;
    assert_eq!(reasons::PULLING, image_event::PULLING);
    assert_eq!(reasons::PULLED, image_event::PULLED);
    assert_eq!(reasons::HIT_IMAGE_CACHE, image_event::HIT_IMAGE_CACHE);
    assert_eq!(reasons::MISSED_IMAGE_CACHE, image_event::MISSED_IMAGE_CACHE);
    assert_eq!(
        reasons::AUTO_CREATED_IMAGE_CACHE,
        image_event::AUTO_CREATED_IMAGE_CACHE
    );
}
