//! CloudWatch Logs and the front door over HTTP: awslogs streams read with GetLogEvents'
//! tokens to their end, a missing log group failing a task's start, FilterLogEvents and
//! DescribeLogStreams, streams outliving their tasks; signatures that fail each way;
//! injected throttling.

use std::time::Duration;

use serde_json::{Value, json};

use super::tests::{
    Keys, call_as, cloud, cloud_with, definition, ecs, http, keys, run_request, signed_head,
    wait_task,
};

async fn logs(cloud: &super::EcsCloud, action: &str, body: Value) -> (u16, Value) {
    call_as(cloud, &keys(), "logs", action, body).await
}

#[tokio::test]
async fn container_output_is_read_with_forward_tokens_without_repeats_or_gaps() {
    // This reader polls faster than GetLogEvents' 25 calls a second; the container starts
    // a moment after RunTask.
    let cloud = cloud_with(|c| {
        c.rates.logs_api = super::config::Rate {
            burst: 1000,
            per_second: 1000.0,
        };
        c.provision_latency_ms = 300;
    })
    .await;
    let (status, _) = logs(
        &cloud,
        "CreateLogGroup",
        json!({"logGroupName": "/ecs/web"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, again) = logs(
        &cloud,
        "CreateLogGroup",
        json!({"logGroupName": "/ecs/web"}),
    )
    .await;
    assert_eq!(again["__type"], "ResourceAlreadyExistsException");
    let env: &[(&str, &str)] = &[
        ("MOCKCLOUD_RUN_MS", "600"),
        ("MOCKCLOUD_LOG_INTERVAL_MS", "20"),
    ];
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition("web", &[("app", env, true)], Some("/ecs/web")),
    )
    .await;
    let task = ecs(&cloud, "RunTask", run_request("web")).await;
    let arn = task["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let id = arn.rsplit('/').next().unwrap().to_string();
    let stream = format!("web/app/{id}");
    // The stream appears when the container starts.
    let (status, early) = logs(
        &cloud,
        "GetLogEvents",
        json!({"logGroupName": "/ecs/web", "logStreamName": stream}),
    )
    .await;
    assert_eq!(
        (status, early["__type"].clone()),
        (400, json!("ResourceNotFoundException"))
    );
    let (_, listed) = logs(
        &cloud,
        "DescribeLogStreams",
        json!({"logGroupName": "/ecs/web"}),
    )
    .await;
    assert_eq!(listed["logStreams"], json!([]));
    wait_task(&cloud, &arn, |t| {
        t["containers"][0]["lastStatus"] != "PENDING"
    })
    .await;

    // Follow the stream while it grows, then until a token comes back unchanged.
    let mut seen: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    let mut last_ts = 0;
    let mut stopped = false;
    for _ in 0..400 {
        let mut req = json!({"logGroupName": "/ecs/web", "logStreamName": stream, "startFromHead": true, "limit": 7});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let (status, page) = logs(&cloud, "GetLogEvents", req).await;
        if token.is_none() && page["__type"] == "ResourceNotFoundException" {
            // The face shows the stream a moment after the container started.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            let ts = e["timestamp"].as_i64().unwrap();
            assert!(
                ts >= last_ts && ts > 1_600_000_000_000,
                "milliseconds, in order"
            );
            last_ts = ts;
            seen.push(e["message"].as_str().unwrap().to_string());
        }
        let next = page["nextForwardToken"].as_str().unwrap().to_string();
        if stopped && token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
        if !stopped {
            let t = ecs(&cloud, "DescribeTasks", json!({"tasks": [arn]})).await;
            stopped = t["tasks"][0]["lastStatus"] == "STOPPED";
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stopped);
    assert!(seen.len() > 10, "{seen:?}");
    assert!(seen[0].contains("started"), "{seen:?}");
    assert!(
        seen.last().unwrap().contains("exiting with code 0"),
        "{seen:?}"
    );
    let lines: Vec<u64> = seen
        .iter()
        .filter_map(|l| l.strip_prefix("app: line ").and_then(|n| n.parse().ok()))
        .collect();
    assert_eq!(
        lines,
        (1..=lines.len() as u64).collect::<Vec<_>>(),
        "no repeats, no gaps"
    );

    // Without a token: the newest events; backward from there the ones before.
    let (_, tail) = logs(
        &cloud,
        "GetLogEvents",
        json!({"logGroupName": "/ecs/web", "logStreamName": stream, "limit": 2}),
    )
    .await;
    let tail_messages: Vec<&str> = tail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(tail_messages, seen[seen.len() - 2..]);
    let back = tail["nextBackwardToken"].as_str().unwrap();
    let (_, before) = logs(
        &cloud,
        "GetLogEvents",
        json!({"logGroupName": "/ecs/web", "logStreamName": stream, "limit": 2, "nextToken": back}),
    )
    .await;
    assert_eq!(
        before["events"][1]["message"],
        seen[seen.len() - 3].as_str()
    );

    let (_, streams) = logs(
        &cloud,
        "DescribeLogStreams",
        json!({"logGroupName": "/ecs/web", "logStreamNamePrefix": "web/"}),
    )
    .await;
    assert_eq!(streams["logStreams"][0]["logStreamName"], stream.as_str());
    let (_, found) = logs(
        &cloud,
        "FilterLogEvents",
        json!({"logGroupName": "/ecs/web", "filterPattern": "exiting"}),
    )
    .await;
    assert_eq!(found["events"].as_array().unwrap().len(), 1);
    assert_eq!(found["events"][0]["logStreamName"], stream.as_str());
    let (_, missing) = logs(
        &cloud,
        "GetLogEvents",
        json!({"logGroupName": "/ecs/web", "logStreamName": "nope"}),
    )
    .await;
    assert_eq!(missing["__type"], "ResourceNotFoundException");
    let (_, bad) = logs(
        &cloud,
        "GetLogEvents",
        json!({"logGroupName": "/ecs/web", "logStreamName": stream, "nextToken": "junk"}),
    )
    .await;
    assert_eq!(bad["__type"], "InvalidParameterException");
    let (_, made) = logs(
        &cloud,
        "CreateLogStream",
        json!({"logGroupName": "/ecs/none", "logStreamName": "s"}),
    )
    .await;
    assert_eq!(made["__type"], "ResourceNotFoundException");
}

#[tokio::test]
async fn stopped_tasks_are_forgotten_after_their_retention_but_their_logs_stay() {
    let cloud = cloud_with(|c| c.stopped_retention_secs = 0).await;
    let (status, _) = logs(
        &cloud,
        "CreateLogGroup",
        json!({"logGroupName": "/ecs/short"}),
    )
    .await;
    assert_eq!(status, 200);
    let env: &[(&str, &str)] = &[("MOCKCLOUD_RUN_MS", "50")];
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition("short", &[("app", env, true)], Some("/ecs/short")),
    )
    .await;
    let task = ecs(&cloud, "RunTask", run_request("short")).await;
    let arn = task["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let id = arn.rsplit('/').next().unwrap().to_string();
    let mut gone = false;
    for _ in 0..200 {
        let answer = ecs(&cloud, "DescribeTasks", json!({"tasks": [arn]})).await;
        if answer["failures"][0]["reason"] == "MISSING" {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the stopped task was forgotten");
    let (_, events) = logs(&cloud, "GetLogEvents", json!({"logGroupName": "/ecs/short", "logStreamName": format!("web/app/{id}"), "startFromHead": true})).await;
    assert!(!events["events"].as_array().unwrap().is_empty(), "{events}");
}

#[tokio::test]
async fn a_missing_log_group_fails_the_start_unless_it_may_be_created() {
    let cloud = cloud().await;
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition("nolog", &[("app", &[], true)], Some("/ecs/absent")),
    )
    .await;
    let task = ecs(&cloud, "RunTask", run_request("nolog")).await;
    let arn = task["tasks"][0]["taskArn"].as_str().unwrap();
    let stopped = wait_task(&cloud, arn, |t| t["lastStatus"] == "STOPPED").await;
    assert_eq!(stopped["stopCode"], "TaskFailedToStart");
    assert!(
        stopped["stoppedReason"]
            .as_str()
            .unwrap()
            .contains("log group does not exist")
    );
    assert!(
        stopped["containers"][0].get("exitCode").is_none(),
        "{stopped}"
    );

    let mut def = definition("mklog", &[("app", &[], true)], Some("/ecs/made"));
    def["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-create-group"] =
        json!("true");
    ecs(&cloud, "RegisterTaskDefinition", def).await;
    let task = ecs(&cloud, "RunTask", run_request("mklog")).await;
    let arn = task["tasks"][0]["taskArn"].as_str().unwrap();
    wait_task(&cloud, arn, |t| t["lastStatus"] == "RUNNING").await;
    let (_, groups) = logs(
        &cloud,
        "DescribeLogGroups",
        json!({"logGroupNamePrefix": "/ecs/"}),
    )
    .await;
    assert_eq!(groups["logGroups"][0]["logGroupName"], "/ecs/made");
}

#[tokio::test]
async fn the_front_door_refuses_bad_signatures_and_throttles_on_demand() {
    let cloud = cloud().await;
    let wrong = Keys {
        secret: "wrong".into(),
        ..keys()
    };
    let (_, answer) = call_as(&cloud, &wrong, "ecs", "ListTasks", json!({})).await;
    assert_eq!(answer["__type"], "InvalidSignatureException");
    let unknown = Keys {
        id: "AKIDNOBODY".into(),
        ..keys()
    };
    let (_, answer) = call_as(&cloud, &unknown, "ecs", "ListTasks", json!({})).await;
    assert_eq!(answer["__type"], "UnrecognizedClientException");
    let body = "{}";
    let head = vec![
        ("host".to_string(), cloud.addr().to_string()),
        (
            "x-amz-target".to_string(),
            "AmazonEC2ContainerServiceV20141113.ListTasks".to_string(),
        ),
    ];
    let (status, answer) = http(&cloud, &head, body).await;
    assert_eq!(status, 400);
    assert!(
        answer.contains("MissingAuthenticationTokenException"),
        "{answer}"
    );
    let head = vec![
        ("host".to_string(), cloud.addr().to_string()),
        (
            "x-amz-target".to_string(),
            "DynamoDB_20120810.GetItem".to_string(),
        ),
    ];
    let (_, answer) = http(&cloud, &head, body).await;
    assert!(answer.contains("UnknownOperationException"), "{answer}");
    // A signature for Logs does not open ECS.
    let target = "AmazonEC2ContainerServiceV20141113.ListTasks";
    let mut head = signed_head(&cloud, &keys(), "logs", Some(target), body);
    head.retain(|(k, _)| k != "x-amz-target");
    head.push(("x-amz-target".into(), target.into()));
    let (_, answer) = http(&cloud, &head, body).await;
    assert!(answer.contains("InvalidSignatureException"), "{answer}");

    cloud
        .engine()
        .faults()
        .set(crate::engine::faults::FaultConfig {
            throttle_calls: 1,
            ..Default::default()
        });
    let (status, answer) = call_as(&cloud, &keys(), "logs", "DescribeLogGroups", json!({})).await;
    assert_eq!(
        (status, answer["__type"].clone()),
        (400, json!("ThrottlingException"))
    );
    let (status, _) = call_as(&cloud, &keys(), "logs", "DescribeLogGroups", json!({})).await;
    assert_eq!(status, 200);
}
