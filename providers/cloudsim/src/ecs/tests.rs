//! The ECS face over HTTP, as an SDK calls it: signed JSON 1.1 requests on a real socket,
//! every action and its errors. The signer is the face's own (`sigv4::signature`), which its
//! tests check against botocore's signatures.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::config::EcsConfig;
use super::server::EcsCloud;
use super::sigv4::{self, Authorization, Signed};

pub const KEY: &str = "AKIDTEST";
pub const SECRET: &str = "test-secret";

/// Who signs, with what.
#[derive(Clone)]
pub struct Keys {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

pub fn keys() -> Keys {
    Keys {
        id: KEY.into(),
        secret: SECRET.into(),
        token: None,
    }
}

/// A fast cloud: no latencies, STOPPED as soon as the containers ended.
pub async fn cloud_with(f: impl FnOnce(&mut EcsConfig)) -> EcsCloud {
    let mut config = EcsConfig::with_key(KEY, SECRET);
    config.schedule_latency_ms = 0;
    config.provision_latency_ms = 0;
    config.latency_jitter_ms = 0;
    config.activating_ms = 0;
    config.stop_latency_ms = 0;
    f(&mut config);
    EcsCloud::start(config, "127.0.0.1:0").await.unwrap()
}

pub async fn cloud() -> EcsCloud {
    cloud_with(|_| {}).await
}

/// One HTTP request (`Connection: close`); the status and the body.
pub async fn http(cloud: &EcsCloud, head: &[(String, String)], body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(cloud.addr()).await.unwrap();
    let mut req = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in head {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The headers of a signed request, for `service`, with `target` (none: STS).
pub fn signed_head(
    cloud: &EcsCloud,
    keys: &Keys,
    service: &str,
    target: Option<&str>,
    body: &str,
) -> Vec<(String, String)> {
    let date = sigv4::amz_date_of(jiff::Timestamp::now());
    let content_type = if target.is_some() {
        "application/x-amz-json-1.1"
    } else {
        "application/x-www-form-urlencoded; charset=utf-8"
    };
    let mut head = vec![
        ("host".to_string(), cloud.addr().to_string()),
        ("content-type".to_string(), content_type.to_string()),
        ("x-amz-date".to_string(), date.clone()),
    ];
    if let Some(t) = &keys.token {
        head.push(("x-amz-security-token".into(), t.clone()));
    }
    if let Some(t) = target {
        head.push(("x-amz-target".into(), t.into()));
    }
    let mut map = hyper::HeaderMap::new();
    for (k, v) in &head {
        map.insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let auth = Authorization {
        access_key: keys.id.clone(),
        date: date[..8].to_string(),
        region: "us-east-1".into(),
        service: service.into(),
        signed_headers: head
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        signature: String::new(),
    };
    let req = Signed {
        method: "POST",
        path: "/",
        query: "",
        headers: &map,
        body: body.as_bytes(),
    };
    let signature = sigv4::signature(&req, &auth, &date, &keys.secret);
    head.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
            keys.id,
            &date[..8],
            auth.signed_headers.join(";")
        ),
    ));
    head
}

/// A signed JSON call of `api` (`ecs` or `logs`): the status and the answer.
pub async fn call_as(
    cloud: &EcsCloud,
    keys: &Keys,
    api: &str,
    action: &str,
    body: Value,
) -> (u16, Value) {
    let target = match api {
        "ecs" => format!("AmazonEC2ContainerServiceV20141113.{action}"),
        _ => format!("Logs_20140328.{action}"),
    };
    let body = body.to_string();
    let head = signed_head(cloud, keys, api, Some(&target), &body);
    let (status, text) = http(cloud, &head, &body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// An ECS call that must succeed.
pub async fn ecs(cloud: &EcsCloud, action: &str, body: Value) -> Value {
    let (status, answer) = call_as(cloud, &keys(), "ecs", action, body).await;
    assert_eq!(status, 200, "{action}: {answer}");
    answer
}

/// An ECS call that must fail with `code`; its message.
pub async fn ecs_err(cloud: &EcsCloud, action: &str, body: Value, code: &str) -> String {
    let (status, answer) = call_as(cloud, &keys(), "ecs", action, body).await;
    assert_eq!(answer["__type"], code, "{action}: {answer}");
    assert_eq!(status, 400, "{action}: {answer}");
    answer["message"].as_str().unwrap_or_default().to_string()
}

/// A container of a test definition: name, environment, essential.
pub type TestContainer<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

/// A Fargate definition of `containers` (name, env, essential), logging to `log_group`.
pub fn definition(
    family: &str,
    containers: &[TestContainer<'_>],
    log_group: Option<&str>,
) -> Value {
    let defs: Vec<Value> = containers
        .iter()
        .map(|(name, env, essential)| {
            let mut c = json!({
                "name": name, "image": "busybox", "essential": essential,
                "environment": env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            });
            if let Some(g) = log_group {
                c["logConfiguration"] = json!({"logDriver": "awslogs", "options": {
                    "awslogs-group": g, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}});
            }
            c
        })
        .collect();
    json!({"family": family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
           "cpu": "256", "memory": "512", "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
           "containerDefinitions": defs})
}

pub fn run_request(taskdef: &str) -> Value {
    json!({"cluster": "default", "taskDefinition": taskdef, "launchType": "FARGATE",
           "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}})
}

/// Describe `arn` until `done` holds (5 s at most).
pub async fn wait_task(cloud: &EcsCloud, arn: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..250 {
        let answer = ecs(cloud, "DescribeTasks", json!({"tasks": [arn]})).await;
        let task = &answer["tasks"][0];
        if done(task) {
            return task.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {arn} never got there");
}

#[tokio::test]
async fn task_definitions_have_revisions_sizes_and_states() {
    let cloud = cloud().await;
    let first = ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition("web", &[("app", &[], true)], None),
    )
    .await;
    assert_eq!(first["taskDefinition"]["revision"], 1);
    assert_eq!(first["taskDefinition"]["status"], "ACTIVE");
    let mut bigger = definition("web", &[("app", &[], true)], None);
    bigger["cpu"] = json!("1 vCPU");
    bigger["memory"] = json!("2 GB");
    let second = ecs(&cloud, "RegisterTaskDefinition", bigger).await;
    assert_eq!(second["taskDefinition"]["cpu"], "1024");
    assert_eq!(
        second["taskDefinition"]["taskDefinitionArn"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"
    );

    let mut bad = definition("web", &[("app", &[], true)], None);
    bad["memory"] = json!("4096");
    let message = ecs_err(&cloud, "RegisterTaskDefinition", bad, "ClientException").await;
    assert!(message.contains("256 CPU, 4096 memory"), "{message}");
    let mut bad = definition("web", &[("app", &[], true)], Some("g"));
    bad["containerDefinitions"][0]["logConfiguration"]["options"]
        .as_object_mut()
        .unwrap()
        .remove("awslogs-stream-prefix");
    let message = ecs_err(&cloud, "RegisterTaskDefinition", bad, "ClientException").await;
    assert!(message.contains("awslogs-stream-prefix"), "{message}");
    let mut bad = definition("web", &[("app", &[], true)], None);
    bad["networkMode"] = json!("bridge");
    ecs_err(&cloud, "RegisterTaskDefinition", bad, "ClientException").await;

    let latest = ecs(
        &cloud,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web"}),
    )
    .await;
    assert_eq!(latest["taskDefinition"]["revision"], 2);
    let gone = ecs(
        &cloud,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:2"}),
    )
    .await;
    assert_eq!(gone["taskDefinition"]["status"], "INACTIVE");
    let latest = ecs(
        &cloud,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web"}),
    )
    .await;
    assert_eq!(latest["taskDefinition"]["revision"], 1);
    let listed = ecs(&cloud, "ListTaskDefinitions", json!({"maxResults": 1})).await;
    assert_eq!(listed["taskDefinitionArns"].as_array().unwrap().len(), 1);
    assert!(listed.get("nextToken").is_none());
    let inactive = ecs(&cloud, "ListTaskDefinitions", json!({"status": "INACTIVE"})).await;
    assert_eq!(
        inactive["taskDefinitionArns"][0],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"
    );
    let message = ecs_err(&cloud, "RunTask", run_request("web:2"), "ClientException").await;
    assert!(message.contains("inactive"), "{message}");
    ecs_err(
        &cloud,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "nope:1"}),
        "ClientException",
    )
    .await;
}

#[tokio::test]
async fn a_task_runs_and_stops_when_its_essential_container_exits() {
    let cloud = cloud().await;
    let def = definition(
        "job",
        &[
            (
                "main",
                &[("MOCKCLOUD_RUN_MS", "300"), ("MOCKCLOUD_EXIT_CODE", "3")],
                true,
            ),
            ("side", &[("MOCKCLOUD_RUN_MS", "forever")], false),
        ],
        None,
    );
    ecs(&cloud, "RegisterTaskDefinition", def).await;
    let mut run = run_request("job");
    run["tags"] = json!([{"key": "pod", "value": "ns/a"}]);
    run["startedBy"] = json!("vk");
    let answer = ecs(&cloud, "RunTask", run).await;
    let task = &answer["tasks"][0];
    let arn = task["taskArn"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/default/"),
        "{arn}"
    );
    assert_eq!(task["desiredStatus"], "RUNNING");
    let running = wait_task(&cloud, &arn, |t| t["lastStatus"] == "RUNNING").await;
    let ip = running["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .unwrap()["value"]
        .clone();
    assert_eq!(
        running["containers"][0]["networkInterfaces"][0]["privateIpv4Address"],
        ip
    );
    let stopped = wait_task(&cloud, &arn, |t| t["lastStatus"] == "STOPPED").await;
    assert_eq!(stopped["stopCode"], "EssentialContainerExited");
    assert_eq!(stopped["desiredStatus"], "STOPPED");
    let exit = |name: &str| {
        stopped["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["exitCode"]
            .clone()
    };
    assert_eq!(exit("main"), 3);
    assert_eq!(
        exit("side"),
        137,
        "the non-essential container was killed: {stopped}"
    );
    let tagged = ecs(
        &cloud,
        "DescribeTasks",
        json!({"tasks": [arn], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(tagged["tasks"][0]["tags"][0]["value"], "ns/a");
    let listed = ecs(
        &cloud,
        "ListTasks",
        json!({"desiredStatus": "STOPPED", "startedBy": "vk"}),
    )
    .await;
    assert_eq!(listed["taskArns"][0], arn.as_str());
}
