//! Component tests: authentication, throttling, injected faults and the client's retries,
//! against the mock cloud over HTTP.

use std::time::Duration;

use vk_core::provider::{InstancePhase, Provider, ProviderError, RestartPolicy};

use crate::client::{ClientConfig, EciClient, EciError, RateLimit, RetryPolicy};
use crate::tests_support::*;
use crate::wire::params::Params;
use crate::wire::request::DescribeContainerGroups;
use crate::wire::sign;
use cloudsim::engine::faults::FaultConfig;

fn api_error(e: &EciError) -> (u16, &str) {
    match e {
        EciError::Api { status, code, .. } => (*status, code.as_str()),
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn every_call_is_authenticated() {
    let cloud = cloud(|_| {}).await;
    let client = |id: &str, secret: &str| {
        EciClient::new(ClientConfig::new(
            &cloud.endpoint(),
            "cn-hangzhou",
            id,
            secret,
        ))
        .expect("client")
    };
    let describe = DescribeContainerGroups::default();

    let err = client(KEY_ID, "wrong").send(&describe).await.unwrap_err();
    assert_eq!(api_error(&err), (400, "SignatureDoesNotMatch"));
    assert!(!err.is_retryable());
    let err = client("nobody", SECRET).send(&describe).await.unwrap_err();
    assert_eq!(api_error(&err), (404, "InvalidAccessKeyId.NotFound"));
    assert!(matches!(
        ProviderError::from(err).plain(),
        ProviderError::Transient(_)
    ));
    client(KEY_ID, SECRET)
        .send(&describe)
        .await
        .expect("signed");

    // A replayed request (same nonce) and a stale timestamp are refused too.
    let mut p = Params::new();
    for (k, v) in [
        ("Action", "DescribeContainerGroups"),
        ("Version", "2018-08-08"),
        ("Format", "JSON"),
        ("AccessKeyId", KEY_ID),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "fixed-nonce"),
        ("RegionId", "cn-hangzhou"),
    ] {
        p.push(k, v);
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    p.push("Timestamp", now);
    let signature = sign::sign("GET", p.iter(), SECRET);
    p.push("Signature", signature);
    let url = format!("http://{}/?{}", cloud.addr(), p.to_form());
    let addr = cloud.addr();
    let get = |url: String| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut send, conn) = hyper::client::conn::http1::handshake::<
            _,
            http_body_util::Empty<bytes::Bytes>,
        >(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("handshake");
        tokio::spawn(conn);
        let req = hyper::Request::get(url)
            .header("host", "localhost")
            .body(Default::default())
            .expect("request");
        let res = send.send_request(req).await.expect("answer");
        let status = res.status().as_u16();
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let (status, body) = get(url.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"RequestId\""), "{body}");
    let (status, body) = get(url).await;
    assert_eq!(status, 400);
    assert!(body.contains("SignatureNonceUsed"), "{body}");

    p.set("SignatureNonce", "other-nonce");
    p.set("Timestamp", "2016-02-23T12:46:24Z");
    p.set("Signature", sign::sign("GET", p.iter(), SECRET));
    let (status, body) = get(format!("http://{}/?{}", cloud.addr(), p.to_form())).await;
    assert_eq!(status, 400);
    assert!(body.contains("InvalidTimeStamp.Expired"), "{body}");

    p.set("SignatureNonce", "third-nonce");
    p.set(
        "Timestamp",
        jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    p.set("Action", "NoSuchAction");
    p.set("Signature", sign::sign("GET", p.iter(), SECRET));
    let (status, body) = get(format!("http://{}/?{}", cloud.addr(), p.to_form())).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("InvalidAction.NotFound"), "{body}");
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    // A tight quota: 2 at once, 10/s; the client's own bucket is too generous on purpose.
    let cloud = cloud(|c| {
        c.quota.burst = 2;
        c.quota.per_second = 10.0;
    })
    .await;
    let mut config = config(&cloud, "node-a");
    config.write_rate = RateLimit {
        burst: 100,
        per_second: 1000.0,
    };
    config.retry = RetryPolicy {
        max_attempts: 20,
        base_delay_ms: 20,
        max_delay_ms: 200,
    };
    let provider = super::EciProvider::new(config).expect("provider");
    let creates = (0..6).map(|i| {
        let p = pod(
            &format!("t-{i}"),
            RestartPolicy::Always,
            vec![sim_container("app", "forever", 0)],
        );
        let provider = &provider;
        async move { provider.create(&p).await }
    });
    for result in futures::future::join_all(creates).await {
        result.expect("create succeeds after throttling");
    }
    assert_eq!(cloud.engine().len(), 6);
    let refused = cloud.creates().refused_by_quota;
    assert!(
        refused > 0,
        "the quota refused some of the client's over-generous creates"
    );

    // A burst of injected throttling on reads too.
    cloud.engine().faults().set(FaultConfig {
        throttle_calls: 3,
        ..Default::default()
    });
    assert_eq!(provider.list().await.expect("list").len(), 6);
    assert_eq!(cloud.engine().faults().get().throttle_calls, 0);
    assert_eq!(
        cloud.creates().refused_by_quota,
        refused,
        "injected throttling is not the quota's"
    );

    // Without retries the throttling shows, as a transient error.
    let mut once = ClientConfig::new(&cloud.endpoint(), "cn-hangzhou", KEY_ID, SECRET);
    once.retry.max_attempts = 1;
    let client = EciClient::new(once).expect("client");
    cloud.engine().faults().set(FaultConfig {
        throttle_calls: 1,
        ..Default::default()
    });
    let err = client
        .send(&DescribeContainerGroups::default())
        .await
        .unwrap_err();
    assert_eq!(api_error(&err), (400, "Throttling.User"));
    assert!(ProviderError::from(err).is_transient());
}

/// A throttled service is up: the ping must not turn the node NotReady (which stops
/// scheduling and, after the grace period, evicts the node's running pods). A wrong secret
/// still fails it.
#[tokio::test]
async fn a_throttled_service_still_answers_the_ping() {
    let cloud = cloud(|_| {}).await;
    let mut config = config(&cloud, "node-a");
    config.retry.max_attempts = 2;
    let provider = super::EciProvider::new(config.clone()).expect("provider");
    cloud.engine().faults().set(FaultConfig {
        throttle_calls: 10,
        ..Default::default()
    });
    provider.ping().await.expect("throttled, but reachable");
    assert!(cloud.engine().faults().get().throttle_calls < 10);

    config.access_key_secret = "wrong".into();
    let unauthenticated = super::EciProvider::new(config).expect("provider");
    assert!(matches!(
        unauthenticated.ping().await.map_err(|e| e.class()),
        Err(vk_core::provider::ErrorClass::Transient)
    ));
}

#[tokio::test]
async fn a_flaky_api_still_gets_everything_done_once() {
    let cloud = cloud(|c| {
        c.faults.error_rate = 0.3;
        c.faults.latency_ms = 2;
    })
    .await;
    let provider = provider(&cloud, "node-a");
    for i in 0..10 {
        let p = pod(
            &format!("f-{i}"),
            RestartPolicy::Never,
            vec![sim_container("app", "50", 0)],
        );
        provider.create(&p).await.expect("create despite 5xx");
    }
    // Answers lost after the create ran were retried with the same ClientToken: no duplicates.
    assert_eq!(cloud.engine().len(), 10);
    wait_for(&provider, "f-9", "Succeeded", |s| {
        s.phase == InstancePhase::Succeeded
    })
    .await;
    assert_eq!(provider.list().await.expect("list").len(), 10);
    for i in 0..10 {
        let p = pod(&format!("f-{i}"), RestartPolicy::Never, vec![]);
        provider
            .delete(&p.pod, Duration::ZERO)
            .await
            .expect("delete despite 5xx");
    }
    assert!(cloud.engine().is_empty());
}

#[tokio::test]
async fn injected_group_faults_show_in_the_status() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-a");
    let running = |uid: &str| {
        pod(
            uid,
            RestartPolicy::Always,
            vec![sim_container("app", "forever", 0)],
        )
    };

    cloud.engine().faults().set(FaultConfig {
        stuck_pending: true,
        ..Default::default()
    });
    provider.create(&running("stuck")).await.expect("create");
    let pending = wait_for(&provider, "stuck", "Pending", |s| {
        s.phase == InstancePhase::Pending
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = cloudsim::test_support::status_of(&provider, &pending.pod)
        .await
        .expect("status")
        .expect("exists");
    assert_eq!(still.phase, InstancePhase::Pending);
    cloud.engine().faults().set(FaultConfig::default());
    wait_for(&provider, "stuck", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;

    provider.create(&running("gone")).await.expect("create");
    provider.create(&running("old")).await.expect("create");
    let groups = provider
        .client()
        .send(&DescribeContainerGroups::default())
        .await
        .expect("describe")
        .container_groups;
    let id_of = |uid: &str| {
        groups
            .iter()
            .find(|g| g.tag(crate::pod::tags::POD_UID) == Some(uid))
            .map(|g| g.container_group_id.clone())
            .expect("group")
    };
    let (vanish, expire) = cloud.engine().faults().set(FaultConfig {
        vanish: vec![id_of("gone")],
        expire: vec![id_of("old")],
        ..Default::default()
    });
    cloud.engine().vanish(&vanish);
    cloud.engine().expire(&expire);
    let list = provider.list().await.expect("list");
    assert!(list.iter().all(|s| s.pod.uid != "gone"));
    let expired = list
        .iter()
        .find(|s| s.pod.uid == "old")
        .expect("still listed");
    assert_eq!(expired.phase, InstancePhase::Failed);
    assert_eq!(expired.reason.as_deref(), Some("Expired"));

    cloud.engine().faults().set(FaultConfig {
        schedule_fail_rate: 1.0,
        ..Default::default()
    });
    provider
        .create(&running("unschedulable"))
        .await
        .expect("create");
    let failed = wait_for(&provider, "unschedulable", "ScheduleFailed", |s| {
        s.phase == InstancePhase::Failed
    })
    .await;
    assert_eq!(failed.reason.as_deref(), Some("ScheduleFailed"));

    // The API down: calls fail as transient network errors, the ping too.
    let mut config = config(&cloud, "node-a");
    config.retry.max_attempts = 2;
    let impatient = super::EciProvider::new(config).expect("provider");
    cloud.engine().faults().set(FaultConfig {
        api_down: true,
        ..Default::default()
    });
    assert!(matches!(
        impatient.ping().await.map_err(|e| e.class()),
        Err(vk_core::provider::ErrorClass::Transient)
    ));
    cloud.engine().faults().set(FaultConfig::default());
    impatient.ping().await.expect("back up");
}

#[tokio::test]
async fn pods_the_service_refuses_are_invalid_specs() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-a");
    let mut p = pod(
        "big",
        RestartPolicy::Never,
        vec![sim_container("app", "10", 0)],
    );
    p.containers[0].resources.cpu_request_millis = Some(128_000);
    let err = provider.create(&p).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidSpec { ref reason, .. } if reason == "TooLarge"),
        "{err}"
    );
    // The service's own validation comes back as InvalidParameter.
    let mut req = crate::pod::create_request(
        &pod(
            "dup",
            RestartPolicy::Never,
            vec![sim_container("app", "10", 0)],
        ),
        "n",
        &Default::default(),
    )
    .expect("request");
    req.containers.push(req.containers[0].clone());
    let err = provider.client().send(&req).await.unwrap_err();
    assert_eq!(api_error(&err), (400, "InvalidParameter"));
    assert!(matches!(
        ProviderError::from(err).plain(),
        ProviderError::InvalidSpec { .. }
    ));
}

#[tokio::test]
async fn every_call_is_counted_by_action_and_outcome_with_its_latency() {
    let cloud = cloud(|_| {}).await;
    let metrics = vk_core::metrics::Metrics::new();
    let client = |endpoint: &str, secret: &str| {
        let mut config = ClientConfig::new(endpoint, "cn-hangzhou", KEY_ID, secret);
        config.retry.max_attempts = 1;
        config.metrics = metrics.provider();
        EciClient::new(config).expect("client")
    };
    let describe = DescribeContainerGroups::default();
    let good = client(&cloud.endpoint(), SECRET);
    good.send(&describe).await.unwrap();
    cloud.engine().faults().set(FaultConfig {
        throttle_calls: 1,
        ..Default::default()
    });
    good.send(&describe).await.unwrap_err();
    client(&cloud.endpoint(), "wrong")
        .send(&describe)
        .await
        .unwrap_err();
    cloud.engine().faults().set(FaultConfig {
        error_rate: 1.0,
        ..Default::default()
    });
    let err = good
        .send(&crate::wire::action::DescribeContainerGroupStatus(
            describe.clone(),
        ))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // Nothing listens there: no answer at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    client(&nowhere, SECRET).send(&describe).await.unwrap_err();

    let text = metrics.encode();
    let calls = |outcome: &str, action: &str| {
        format!("vk_provider_calls_total{{action=\"{action}\",outcome=\"{outcome}\"}} 1")
    };
    for line in [
        calls("ok", "DescribeContainerGroups"),
        calls("throttled", "DescribeContainerGroups"),
        calls("client_error", "DescribeContainerGroups"),
        calls("network", "DescribeContainerGroups"),
        "vk_provider_call_seconds_count{action=\"DescribeContainerGroups\"} 4".into(),
        "vk_provider_call_seconds_count{action=\"DescribeContainerGroupStatus\"} 1".into(),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    let server_error = calls("server_error", "DescribeContainerGroupStatus");
    assert!(text.contains(&server_error), "{text}");
}
