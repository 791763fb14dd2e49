//! The ECS face fuzzed over HTTP: valid signed requests of every action (and unknown ones),
//! their JSON bodies mutated at random (a value replaced by junk of any JSON type, a key
//! dropped or added, the body not JSON at all). Whatever comes in, the answer is a success
//! that is JSON or the JSON error shape with a 4xx; never a panic and never a 5xx.
//!
//! `cargo test` runs 1 500 calls from a fixed seed; `VK_FUZZ_SECONDS=600` runs that long
//! from a seed of the clock (printed; `VK_FUZZ_SEED` replays one).

use serde_json::{Value, json};

use super::config::Rate;
use super::tests::{call_as, cloud_with, definition, ecs, keys, run_request};
use vk_core::fuzz::{Budget, Rng};

fn junk(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(i64::MAX),
        4 => json!(1e308),
        5 => json!(3.5),
        6 => json!(""),
        7 => json!("x".repeat(1 + rng.below(100_000))),
        8 => json!([]),
        9 => json!({}),
        10 => json!("\u{0}\u{7}\n:*/"),
        11 => json!([{"a": [1, {"b": null}]}]),
        12 => json!(format!("-{}", rng.next_u64())),
        _ => json!(*rng.pick(&[
            "FARGATE",
            "EC2",
            "ACTIVE",
            "STOPPED",
            "f/99999999999999999999/s",
            "b/-1/s",
            "web:0",
            "web:-1",
            "arn:aws:ecs:us-east-1:123456789012:task/default/x"
        ])),
    }
}

/// Every path to a value in `v`.
fn paths(v: &Value, here: Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let mut p = here.clone();
                p.push(json!(k));
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = here.clone();
                p.push(json!(i));
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    let mut cur = v;
    for step in path {
        cur = match step {
            Value::String(k) => cur.get_mut(k.as_str())?,
            Value::Number(i) => cur.get_mut(i.as_u64()? as usize)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The body mutated 1 to 4 times; `None`: not JSON at all.
fn mutate(rng: &mut Rng, mut body: Value) -> Option<Value> {
    if rng.below(20) == 0 {
        return None;
    }
    for _ in 0..1 + rng.below(4) {
        let mut all = Vec::new();
        paths(&body, Vec::new(), &mut all);
        let path = rng.pick(&all).clone();
        match rng.below(5) {
            0 if !path.is_empty() => {
                let (last, parent) = path.split_last().unwrap_or((&Value::Null, &[]));
                match (at(&mut body, parent), last) {
                    (Some(Value::Object(m)), Value::String(k)) => {
                        m.remove(k);
                    }
                    (Some(Value::Array(a)), Value::Number(i)) => {
                        let i = i.as_u64().unwrap_or(0) as usize;
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            1 => {
                if let Some(Value::Object(m)) = at(&mut body, &path) {
                    m.insert("unknownField".into(), junk(rng));
                }
            }
            _ => {
                let value = junk(rng);
                if let Some(slot) = at(&mut body, &path) {
                    *slot = value;
                }
            }
        }
    }
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_error_shape_never_a_panic_or_a_5xx() {
    let fast = Rate {
        burst: 1_000_000,
        per_second: 1_000_000.0,
    };
    let cloud = cloud_with(|c| {
        c.rates.run_task = fast;
        c.rates.task_launch = fast;
        c.rates.ecs_api = fast;
        c.rates.logs_api = fast;
    })
    .await;
    let env: &[(&str, &str)] = &[("MOCKCLOUD_RUN_MS", "200")];
    let def = definition(
        "fz",
        &[("app", env, true), ("side", &[], false)],
        Some("/fz"),
    );
    let mut create = def.clone();
    create["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-create-group"] =
        json!("true");
    ecs(&cloud, "RegisterTaskDefinition", create.clone()).await;
    let task = ecs(&cloud, "RunTask", run_request("fz")).await;
    let arn = task["tasks"][0]["taskArn"].clone();
    let stream = format!(
        "web/app/{}",
        arn.as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
    );
    let mut run = run_request("fz");
    run["clientToken"] = json!("tok");
    run["count"] = json!(2);
    run["overrides"] = json!({"containerOverrides": [{"name": "app", "command": ["x"], "environment": [{"name": "A", "value": "1"}]}], "cpu": "512", "memory": "1024"});
    run["tags"] = json!([{"key": "k", "value": "v"}]);
    let valid: Vec<(&str, &str, Value)> = vec![
        ("ecs", "RegisterTaskDefinition", create),
        (
            "ecs",
            "DescribeTaskDefinition",
            json!({"taskDefinition": "fz:1", "include": ["TAGS"]}),
        ),
        (
            "ecs",
            "DeregisterTaskDefinition",
            json!({"taskDefinition": "fz:2"}),
        ),
        (
            "ecs",
            "ListTaskDefinitions",
            json!({"familyPrefix": "fz", "status": "ACTIVE", "sort": "DESC", "maxResults": 2}),
        ),
        ("ecs", "RunTask", run),
        (
            "ecs",
            "DescribeTasks",
            json!({"cluster": "default", "tasks": [arn, "nope"], "include": ["TAGS"]}),
        ),
        (
            "ecs",
            "StopTask",
            json!({"cluster": "default", "task": arn, "reason": "fuzz"}),
        ),
        (
            "ecs",
            "ListTasks",
            json!({"cluster": "default", "family": "fz", "desiredStatus": "STOPPED", "maxResults": 1, "startedBy": "x"}),
        ),
        (
            "ecs",
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"key": "a", "value": "b"}]}),
        ),
        (
            "ecs",
            "UntagResource",
            json!({"resourceArn": arn, "tagKeys": ["a"]}),
        ),
        ("ecs", "ListTagsForResource", json!({"resourceArn": arn})),
        (
            "ecs",
            "ExecuteCommand",
            json!({"cluster": "default", "task": arn, "container": "app", "command": "sh", "interactive": true}),
        ),
        ("ecs", "NoSuchAction", json!({})),
        (
            "logs",
            "CreateLogGroup",
            json!({"logGroupName": "/fz/other"}),
        ),
        (
            "logs",
            "CreateLogStream",
            json!({"logGroupName": "/fz", "logStreamName": "s"}),
        ),
        (
            "logs",
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": "/fz", "limit": 5}),
        ),
        (
            "logs",
            "DescribeLogStreams",
            json!({"logGroupName": "/fz", "orderBy": "LastEventTime", "descending": true, "limit": 5}),
        ),
        (
            "logs",
            "GetLogEvents",
            json!({"logGroupName": "/fz", "logStreamName": stream, "startFromHead": true, "limit": 3, "startTime": 0, "endTime": i64::MAX, "nextToken": "f/00000000000000000001/s"}),
        ),
        (
            "logs",
            "FilterLogEvents",
            json!({"logGroupName": "/fz", "logStreamNamePrefix": "web/", "filterPattern": "line", "limit": 3, "startTime": 0}),
        ),
        ("logs", "PutRetentionPolicy", json!({})),
    ];
    let mut budget = Budget::from_env(1500);
    let seed = budget.seed;
    let mut rng = budget.rng();
    let mut failures = Vec::new();
    while budget.another() {
        let (api, action, body) = rng.pick(&valid).clone();
        let sent = mutate(&mut rng, body);
        let (status, answer) = match &sent {
            Some(body) => call_as(&cloud, &keys(), api, action, body.clone()).await,
            None => {
                let text = "{not json";
                let target = format!("AmazonEC2ContainerServiceV20141113.{action}");
                let head = super::tests::signed_head(&cloud, &keys(), "ecs", Some(&target), text);
                let (status, body) = super::tests::http(&cloud, &head, text).await;
                (
                    status,
                    serde_json::from_str(&body).unwrap_or(Value::String(body)),
                )
            }
        };
        let shaped = answer["__type"].is_string() && answer["message"].is_string();
        let fine = match status {
            200 => answer.is_object(),
            400..=499 => shaped,
            _ => false,
        };
        if !fine {
            let sent = sent.map(|b| b.to_string()).unwrap_or_default();
            failures.push(format!("{action} {sent:.400}: {status} {answer:.300}"));
        }
        if failures.len() >= 10 {
            break;
        }
    }
    eprintln!(
        "[fuzz] the ECS face: {} calls, seed {seed}, {} tasks made, {} bad answers",
        budget.done(),
        cloud.engine().len(),
        failures.len()
    );
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}
