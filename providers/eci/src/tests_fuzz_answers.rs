//! The eci provider's reading of the service's answers, fuzzed: real answers taken from the
//! simulator (a running group with an init container, events and an address; a log; an exec
//! session) are mutated at random (values swapped for other types, nulls, huge or negative
//! numbers, broken times, unknown states, keys dropped, arrays emptied or doubled, bodies cut
//! short or replaced by junk, error bodies with odd codes and statuses) and served by a hostile
//! HTTP server. `list`, `logs` and the exec call answer a result or an error with a reason,
//! never a panic or a hang.
//!
//! `cargo test` runs a few thousand answers from a fixed seed; `VK_FUZZ_SECONDS=600` runs for
//! that long (see [`vk_core::fuzz`]).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt as _;
use http_body_util::Full;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use vk_core::fuzz::{Budget, Rng};
use vk_core::provider::{LogOptions, PodRef, Provider, RestartPolicy};

use crate::client::RetryPolicy;
use crate::tests_support::*;
use crate::wire::query::DescribeContainerLog;
use crate::wire::request::{DescribeContainerGroups, ExecContainerCommand};
use crate::{EciConfig, EciProvider};

/// What the hostile server answers next: a status and a body.
type Slot = Arc<Mutex<(u16, Vec<u8>)>>;

async fn hostile_server(slot: Slot) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let slot = slot.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<_>| {
                    let (status, body) = slot.lock().unwrap().clone();
                    async move {
                        let mut answer = Response::new(Full::new(Bytes::from(body)));
                        *answer.status_mut() =
                            hyper::StatusCode::from_u16(status).unwrap_or_default();
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
    format!("http://{addr}")
}

/// Answers of the real face to mutate: a page of groups, a log, an exec session.
async fn samples() -> Vec<Value> {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "fuzz");
    let mut init = sim_container("setup", "10", 0);
    init.name = "setup".into();
    let mut pod = pod(
        "uid-fuzz",
        RestartPolicy::Always,
        vec![
            sim_container("app", "forever", 0),
            sim_container("side", "50", 3),
        ],
    );
    pod.init_containers = vec![init];
    provider.create(&pod).await.expect("create");
    wait_for(&provider, "uid-fuzz", "Running", |s| {
        s.phase == vk_core::provider::InstancePhase::Running
    })
    .await;
    let page = provider
        .client()
        .send(&DescribeContainerGroups {
            region_id: "cn-hangzhou".into(),
            ..Default::default()
        })
        .await
        .expect("DescribeContainerGroups");
    let id = page.container_groups[0].container_group_id.clone();
    let log = provider
        .client()
        .send(&DescribeContainerLog {
            region_id: "cn-hangzhou".into(),
            container_group_id: id.clone(),
            container_name: "app".into(),
            ..Default::default()
        })
        .await
        .expect("DescribeContainerLog");
    let exec = provider
        .client()
        .send(&ExecContainerCommand {
            region_id: "cn-hangzhou".into(),
            container_group_id: id,
            container_name: "app".into(),
            command: vec!["sh".into()],
            tty: true,
            stdin: true,
            ..Default::default()
        })
        .await
        .expect("ExecContainerCommand");
    vec![
        serde_json::to_value(&page).unwrap(),
        serde_json::to_value(&log).unwrap(),
        serde_json::to_value(&exec).unwrap(),
    ]
}

fn junk_value(rng: &mut Rng) -> Value {
    match rng.below(16) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(i64::MIN),
        3 => json!(u64::MAX),
        4 => json!(1e308),
        5 => json!(""),
        6 => json!("x".repeat(1 + rng.below(100_000))),
        7 => json!("2026-13-45T99:99:99Z"),
        8 => json!("Unknownstate"),
        9 => json!([]),
        10 => json!({}),
        11 => json!(true),
        12 => json!("1970-01-01T00:00:00Z"),
        13 => json!("\u{0}\u{202e}é"),
        14 => json!(2147483648i64),
        _ => json!([[[[]]]]),
    }
}

/// Replaces, drops or doubles one node somewhere in `value`.
fn mutate(rng: &mut Rng, value: &mut Value) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.below(4) > 0 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, junk_value(rng));
                }
                _ => mutate(rng, map.get_mut(&key).unwrap()),
            }
        }
        Value::Array(items) if !items.is_empty() && rng.below(4) > 0 => match rng.below(5) {
            0 => items.clear(),
            1 => {
                let again = items[0].clone();
                items.extend(std::iter::repeat_n(again, 1 + rng.below(50)));
            }
            _ => {
                let at = rng.below(items.len());
                mutate(rng, &mut items[at]);
            }
        },
        other => *other = junk_value(rng),
    }
}

/// A status and a body: a mutated answer, an error body, or junk.
fn answer(rng: &mut Rng, samples: &[Value]) -> (u16, Vec<u8>) {
    match rng.below(10) {
        0 => {
            let status = *rng.pick(&[400, 403, 404, 409, 429, 500, 503, 302, 204, 299]);
            let mut body = json!({"Code": "Throttling.User", "Message": "m", "RequestId": "r"});
            mutate(rng, &mut body);
            (status, body.to_string().into_bytes())
        }
        1 => {
            let len = rng.below(300);
            (200, rng.bytes(len))
        }
        _ => {
            let mut body = rng.pick(samples).clone();
            for _ in 0..1 + rng.below(4) {
                mutate(rng, &mut body);
            }
            let mut bytes = body.to_string().into_bytes();
            if rng.one_in(10) {
                bytes.truncate(rng.below(bytes.len()));
            }
            (200, bytes)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_answers_give_a_result_or_an_error_never_a_panic_or_a_hang() {
    let samples = samples().await;
    let slot: Slot = Arc::new(Mutex::new((200, Vec::new())));
    let endpoint = hostile_server(slot.clone()).await;
    let provider = EciProvider::new(EciConfig {
        endpoint,
        region_id: "cn-hangzhou".into(),
        access_key_id: KEY_ID.into(),
        access_key_secret: SECRET.into(),
        node_name: "fuzz".into(),
        request_timeout_ms: 5_000,
        retry: RetryPolicy {
            max_attempts: 1,
            base_delay_ms: 1,
            max_delay_ms: 1,
        },
        read_rate: crate::client::RateLimit {
            burst: 1_000_000,
            per_second: 1e9,
        },
        ..Default::default()
    })
    .expect("a provider for the hostile server");
    let pod = PodRef {
        namespace: "default".into(),
        name: "p".into(),
        uid: "uid-fuzz".into(),
    };
    let mut budget = Budget::from_env(1500);
    let mut rng = budget.rng();
    let (mut ok, mut errors, mut failures) = (0u64, 0u64, Vec::new());
    while budget.another() {
        let (status, body) = answer(&mut rng, &samples);
        *slot.lock().unwrap() = (status, body.clone());
        let call = rng.below(3);
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            match call {
                0 => provider.list().await.map(|_| ()),
                1 => match provider.logs(&pod, "app", &LogOptions::default()).await {
                    Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
                    Err(e) => Err(e),
                },
                _ => provider
                    .client()
                    .send(&ExecContainerCommand {
                        region_id: "cn-hangzhou".into(),
                        container_group_id: "eci-x".into(),
                        container_name: "app".into(),
                        command: vec!["sh".into()],
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| vk_core::provider::ProviderError::Transient(e.to_string())),
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) if !e.to_string().is_empty() => errors += 1,
            Ok(Err(_)) => failures.push(format!("call {call}: an error without a reason")),
            Err(_) => failures.push(format!(
                "call {call}: no result in 10 s for {status} {:.300}",
                String::from_utf8_lossy(&body)
            )),
        }
        if failures.len() >= 5 {
            break;
        }
    }
    eprintln!(
        "[fuzz] eci answers: {} calls ({ok} results, {errors} errors), seed {}, {} failures",
        budget.done(),
        budget.seed,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "seed {}:\n{}",
        budget.seed,
        failures.join("\n")
    );
}
