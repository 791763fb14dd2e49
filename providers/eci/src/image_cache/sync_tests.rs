//! [`super`] against a scripted ECI endpoint on 127.0.0.1: each call's action and parameters are
//! recorded, and answered by the script as ECI answers (the wire format of `wire::api`).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;
use crate::client::{ClientConfig, RetryPolicy};
use crate::image_cache::crd::ImageCacheSpec;
use crate::wire::params::Params;

type Script = Arc<dyn Fn(&str, &Params) -> (u16, Value) + Send + Sync>;

#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(String, Params)>>>);

impl Calls {
    fn actions(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }

    fn last(&self, action: &str) -> Params {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(a, _)| a == action)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("no {action} call"))
    }
}

async fn endpoint(script: Script, calls: Calls) -> EciClient {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let script = script.clone();
                        let calls = calls.clone();
                        async move {
                            let header_action = req
                                .headers()
                                .get("x-acs-action")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let query = req.uri().query().unwrap_or_default().to_string();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mut params = Params::new();
                            params.extend_from_form(&query).unwrap();
                            params
                                .extend_from_form(std::str::from_utf8(&body).unwrap())
                                .unwrap();
                            let action = header_action
                                .or_else(|| params.get("Action").map(str::to_string))
                                .unwrap_or_default();
                            calls
                                .0
                                .lock()
                                .unwrap()
                                .push((action.clone(), params.clone()));
                            let (status, body) = script(&action, &params);
                            let mut answer =
                                Response::new(Full::new(Bytes::from(body.to_string())));
                            *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(answer)
                        }
                    });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    let mut config = ClientConfig::new(&format!("http://{addr}"), "cn-hangzhou", "id", "secret");
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay_ms: 1,
        max_delay_ms: 2,
    };
    EciClient::new(config).unwrap()
}

fn object(generation: i64, status: Option<ImageCacheStatus>) -> ImageCache {
    let mut ic = ImageCache::new(
        "web.cache",
        ImageCacheSpec {
            images: vec!["nginx:1.25".into(), "busybox:1.36".into()],
            image_cache_size: Some(40),
            retention_days: Some(7),
            ..Default::default()
        },
    );
    ic.metadata = ObjectMeta {
        name: Some("web.cache".into()),
        uid: Some("3f2a-uid".into()),
        generation: Some(generation),
        ..Default::default()
    };
    ic.status = status;
    ic
}

fn cache(id: &str, status: &str, images: &[&str]) -> Value {
    json!({
        "ImageCacheId": id, "ImageCacheName": "web-cache", "Status": status,
        "Progress": if status == "Ready" { "100%" } else { "40%" },
        "Images": images, "ImageCacheSize": 40, "RetentionDays": 7,
        "CreationTime": "2025-01-01T00:00:00Z", "ExpireDateTime": "2025-01-08T00:00:00Z",
        "Events": [{"Type": "Warning", "Reason": "PullFailed", "Message": "pull access denied", "Count": 1}]
    })
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"Code": "InvalidImageCache.NotFound", "Message": "The specified image cache does not exist."}),
    )
}

#[tokio::test]
async fn a_new_object_creates_one_cache_tagged_with_its_uid_as_client_token() {
    let calls = Calls::default();
    let client = endpoint(
        Arc::new(|action, _| match action {
            "CreateImageCache" => (
                200,
                json!({"RequestId": "r", "ImageCacheId": "imc-1", "ContainerGroupId": "eci-tmp"}),
            ),
            _ => (400, json!({"Code": "Unexpected"})),
        }),
        calls.clone(),
    )
    .await;
    let placement = CachePlacement {
        security_group_id: Some("sg-1".into()),
        vswitch_id: Some("vsw-1".into()),
    };
    let step = apply(&client, &placement, &object(1, None), Vec::new())
        .await
        .unwrap();
    assert_eq!(calls.actions(), vec!["CreateImageCache"]);
    let p = calls.last("CreateImageCache");
    assert_eq!(p.get("ClientToken"), Some("3f2a-uid"));
    assert_eq!(p.get("ImageCacheName"), Some("web-cache"));
    assert_eq!(p.get("Image.1"), Some("nginx:1.25"));
    assert_eq!(p.get("Image.2"), Some("busybox:1.36"));
    assert_eq!(p.get("ImageCacheSize"), Some("40"));
    assert_eq!(p.get("RetentionDays"), Some("7"));
    assert_eq!(p.get("SecurityGroupId"), Some("sg-1"));
    assert_eq!(p.get("VSwitchId"), Some("vsw-1"));
    let tags = crate::wire::request::decode_tags(&p, "Tag").unwrap();
    assert!(
        tags.iter()
            .any(|t| t.key == TAG_UID && t.value == "3f2a-uid")
    );
    assert!(
        tags.iter()
            .any(|t| t.key == TAG_OBJECT && t.value == "web.cache")
    );
    assert_eq!(step.status.image_cache_id.as_deref(), Some("imc-1"));
    assert_eq!(step.status.phase.as_deref(), Some("Preparing"));
    assert_eq!(step.status.observed_generation, Some(1));
    assert_eq!(step.notes[0].reason, reasons::CREATING);
    assert_eq!(step.requeue, Duration::from_secs(2));
}

#[tokio::test]
async fn status_follows_the_cloud_until_ready_and_then_settles() {
    let phase = Arc::new(Mutex::new("Creating"));
    let calls = Calls::default();
    let script_phase = phase.clone();
    let client = endpoint(
        Arc::new(move |action, p| match action {
            "DescribeImageCaches" => {
                assert_eq!(p.get("ImageCacheId"), Some("imc-1"));
                let status = *script_phase.lock().unwrap();
                (200, json!({"RequestId": "r", "TotalCount": 1, "ImageCaches": [cache("imc-1", status, &["nginx:1.25", "busybox:1.36"])]}))
            }
            _ => (400, json!({"Code": "Unexpected"})),
        }),
        calls.clone(),
    )
    .await;
    let started = ImageCacheStatus {
        image_cache_id: Some("imc-1".into()),
        phase: Some("Preparing".into()),
        observed_generation: Some(1),
        start_time: Some(jiff::Timestamp::now().to_string()),
        ..Default::default()
    };
    let step = apply(
        &client,
        &CachePlacement::default(),
        &object(1, Some(started)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(step.status.phase.as_deref(), Some("Creating"));
    assert_eq!(step.status.progress.as_deref(), Some("40%"));
    assert_eq!(
        step.status.expire_date_time.as_deref(),
        Some("2025-01-08T00:00:00Z")
    );
    assert!(step.notes.is_empty());
    assert!(step.requeue <= Duration::from_secs(10));

    *phase.lock().unwrap() = "Ready";
    let step = apply(
        &client,
        &CachePlacement::default(),
        &object(1, Some(step.status)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(step.status.phase.as_deref(), Some("Ready"));
    assert_eq!(step.status.progress.as_deref(), Some("100%"));
    assert!(step.status.completion_time.is_some());
    assert_eq!(step.status.image_cache_size, Some(40));
    assert_eq!(step.notes.len(), 1);
    assert_eq!(step.notes[0].reason, reasons::READY);
    assert!(!step.notes[0].warning);
    assert_eq!(step.requeue, SETTLED_RECHECK);
    // Ready again: no second event.
    let again = apply(
        &client,
        &CachePlacement::default(),
        &object(1, Some(step.status)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert!(again.notes.is_empty());
    assert!(!calls.actions().contains(&"CreateImageCache".to_string()));

    // Failed: a Warning naming the cloud's reason.
    *phase.lock().unwrap() = "Failed";
    let failed = apply(
        &client,
        &CachePlacement::default(),
        &object(1, Some(again.status)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(failed.status.reason.as_deref(), Some("PullFailed"));
    assert!(failed.notes[0].warning);
    assert!(failed.notes[0].message.contains("pull access denied"));
}

#[tokio::test]
async fn a_new_generation_updates_a_ready_cache() {
    let calls = Calls::default();
    let client = endpoint(
        Arc::new(|action, _| match action {
            "DescribeImageCaches" => (
                200,
                json!({"ImageCaches": [cache("imc-1", "Ready", &["nginx:1.25", "busybox:1.36"])]}),
            ),
            "UpdateImageCache" => (200, json!({"RequestId": "r"})),
            _ => (400, json!({"Code": "Unexpected"})),
        }),
        calls.clone(),
    )
    .await;
    let ready = ImageCacheStatus {
        image_cache_id: Some("imc-1".into()),
        phase: Some("Ready".into()),
        observed_generation: Some(1),
        ..Default::default()
    };
    // Same spec, new generation (a label edit): nothing is sent.
    let step = apply(
        &client,
        &CachePlacement::default(),
        &object(2, Some(ready.clone())),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(step.status.observed_generation, Some(2));
    assert_eq!(calls.actions(), vec!["DescribeImageCaches"]);

    let mut changed = object(3, Some(ready));
    changed.spec.images.push("redis:7".into());
    let step = apply(&client, &CachePlacement::default(), &changed, Vec::new())
        .await
        .unwrap();
    let p = calls.last("UpdateImageCache");
    assert_eq!(p.get("ImageCacheId"), Some("imc-1"));
    assert_eq!(p.get("Image.3"), Some("redis:7"));
    assert_eq!(step.status.phase.as_deref(), Some("Updating"));
    assert_eq!(step.status.observed_generation, Some(3));
    assert_eq!(step.notes.last().unwrap().reason, reasons::UPDATING);
}

#[tokio::test]
async fn a_cache_gone_from_the_cloud_is_failed_not_found_once() {
    let client = endpoint(Arc::new(|_, _| not_found()), Calls::default()).await;
    let known = ImageCacheStatus {
        image_cache_id: Some("imc-gone".into()),
        phase: Some("Ready".into()),
        observed_generation: Some(1),
        ..Default::default()
    };
    let step = apply(
        &client,
        &CachePlacement::default(),
        &object(1, Some(known)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(step.status.phase.as_deref(), Some("Failed"));
    assert_eq!(step.status.reason.as_deref(), Some("NotFound"));
    assert_eq!(step.notes.len(), 1);
    assert!(step.notes[0].warning);
    let again = apply(
        &client,
        &CachePlacement::default(),
        &object(1, Some(step.status)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert!(again.notes.is_empty());
    // An empty list is the same answer.
    let empty = endpoint(
        Arc::new(|_, _| (200, json!({"ImageCaches": []}))),
        Calls::default(),
    )
    .await;
    let known = ImageCacheStatus {
        image_cache_id: Some("imc-gone".into()),
        ..Default::default()
    };
    let step = apply(
        &empty,
        &CachePlacement::default(),
        &object(1, Some(known)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(step.status.reason.as_deref(), Some("NotFound"));
}

#[tokio::test]
async fn a_refused_create_and_a_bad_spec_fail_the_object_without_a_retry_storm() {
    let calls = Calls::default();
    let client = endpoint(
        Arc::new(|_, _| {
            (
                400,
                json!({"Code": "QuotaExceeded.ImageCache", "Message": "too many image caches"}),
            )
        }),
        calls.clone(),
    )
    .await;
    let step = apply(
        &client,
        &CachePlacement::default(),
        &object(1, None),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(step.status.phase.as_deref(), Some("Failed"));
    assert_eq!(
        step.status.reason.as_deref(),
        Some("QuotaExceeded.ImageCache")
    );
    assert_eq!(step.notes[0].reason, reasons::FAILED_CREATE);
    assert_eq!(step.requeue, SETTLED_RECHECK);
    let again = apply(
        &client,
        &CachePlacement::default(),
        &object(1, Some(step.status)),
        Vec::new(),
    )
    .await
    .unwrap();
    assert!(again.notes.is_empty(), "{:?}", again.notes);

    let before = calls.actions().len();
    let mut bad = object(1, None);
    bad.spec.image_cache_size = Some(10);
    let step = apply(&client, &CachePlacement::default(), &bad, Vec::new())
        .await
        .unwrap();
    assert_eq!(step.status.reason.as_deref(), Some(reasons::INVALID_SPEC));
    assert!(step.status.message.unwrap().contains("imageCacheSize"));
    assert_eq!(calls.actions().len(), before, "no call for a bad spec");
    bad.spec.image_cache_size = None;
    bad.spec.image_pull_secrets = vec!["regcred".into()];
    assert!(
        check_spec(&bad.spec)
            .unwrap_err()
            .contains("namespace:name")
    );
    bad.spec.image_pull_secrets.clear();
    bad.spec.images.clear();
    assert!(check_spec(&bad.spec).is_err());
}

#[tokio::test]
async fn throttling_is_returned_for_the_controller_to_retry() {
    let client = endpoint(
        Arc::new(|_, _| {
            (
                400,
                json!({"Code": "Throttling.User", "Message": "slow down"}),
            )
        }),
        Calls::default(),
    )
    .await;
    let err = apply(
        &client,
        &CachePlacement::default(),
        &object(1, None),
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(err.is_throttling());
}

#[tokio::test]
async fn cleanup_deletes_by_id_or_by_the_uid_tag_and_gone_is_fine() {
    let calls = Calls::default();
    let client = endpoint(
        Arc::new(|action, p| match action {
            "DeleteImageCache" if p.get("ImageCacheId") == Some("imc-gone") => not_found(),
            "DeleteImageCache" => (200, json!({"RequestId": "r"})),
            "DescribeImageCaches" => {
                assert_eq!(p.get("Tag.1.Key"), Some(TAG_UID));
                (200, json!({"ImageCaches": [{"ImageCacheId": "imc-7", "Tags": [{"Key": TAG_UID, "Value": "3f2a-uid"}]}]}))
            }
            _ => (400, json!({"Code": "Unexpected"})),
        }),
        calls.clone(),
    )
    .await;
    let with_id = object(
        1,
        Some(ImageCacheStatus {
            image_cache_id: Some("imc-1".into()),
            ..Default::default()
        }),
    );
    let notes = cleanup(&client, &with_id).await.unwrap();
    assert_eq!(
        calls.last("DeleteImageCache").get("ImageCacheId"),
        Some("imc-1")
    );
    assert_eq!(notes[0].reason, reasons::DELETED);
    let lost_status = object(1, None);
    cleanup(&client, &lost_status).await.unwrap();
    assert_eq!(
        calls.last("DeleteImageCache").get("ImageCacheId"),
        Some("imc-7")
    );
    let gone = object(
        1,
        Some(ImageCacheStatus {
            image_cache_id: Some("imc-gone".into()),
            ..Default::default()
        }),
    );
    cleanup(&client, &gone)
        .await
        .expect("a cache already gone is deleted");
}

#[tokio::test]
async fn describe_all_follows_next_token_and_stops_on_a_repeated_one() {
    let calls = Calls::default();
    let client = endpoint(
        Arc::new(|_, p| match p.get("NextToken") {
            None => (
                200,
                json!({"ImageCaches": [{"ImageCacheId": "imc-1"}], "NextToken": "t2"}),
            ),
            Some("t2") => (
                200,
                json!({"ImageCaches": [{"ImageCacheId": "imc-2"}], "NextToken": ""}),
            ),
            _ => (400, json!({"Code": "Unexpected"})),
        }),
        calls.clone(),
    )
    .await;
    let all = cloud::describe_all(&client, Default::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|c| c.image_cache_id.as_str())
            .collect::<Vec<_>>(),
        ["imc-1", "imc-2"]
    );
    assert_eq!(calls.last("DescribeImageCaches").get("Limit"), Some("50"));
    let looping = endpoint(
        Arc::new(|_, _| (200, json!({"ImageCaches": [], "NextToken": "same"}))),
        Calls::default(),
    )
    .await;
    assert!(
        cloud::describe_all(&looping, Default::default())
            .await
            .is_err()
    );
    let named = endpoint(
        Arc::new(|_, p| {
            assert_eq!(p.get("ImageCacheName"), Some("web-cache"));
            (200, json!({"ImageCaches": [{"ImageCacheId": "imc-1", "ImageCacheName": "web-cache"}, {"ImageCacheId": "imc-9", "ImageCacheName": "other"}]}))
        }),
        Calls::default(),
    )
    .await;
    let found = cloud::by_name(&named, "web-cache").await.unwrap();
    assert_eq!(found.len(), 1);
}

#[test]
fn names_and_poll_intervals() {
    assert_eq!(cache_name("web.cache"), "web-cache");
    assert_eq!(cache_name("a"), "vk-a");
    assert_eq!(poll_after(Duration::ZERO), Duration::from_secs(2));
    assert_eq!(poll_after(Duration::from_secs(60)), Duration::from_secs(10));
    assert_eq!(
        poll_after(Duration::from_secs(3600)),
        Duration::from_secs(30)
    );
    assert_eq!(pull_secret_ref("ns:reg"), Some(("ns", "reg")));
    assert_eq!(pull_secret_ref("reg"), None);
}
