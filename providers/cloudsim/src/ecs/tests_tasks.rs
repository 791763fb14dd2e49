//! RunTask's client token, StopTask, ListTasks' paging, DescribeTasks' failures, tags,
//! ExecuteCommand's refusals, bad requests and RunTask's rates, over HTTP.

use serde_json::json;

use super::config::Rate;
use super::tests::{
    cloud, cloud_with, definition, ecs, ecs_err, http, keys, run_request, signed_head, wait_task,
};

#[tokio::test]
async fn run_stop_list_and_the_client_token() {
    let cloud = cloud().await;
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition(
            "svc",
            &[("app", &[("MOCKCLOUD_RUN_MS", "forever")], true)],
            None,
        ),
    )
    .await;
    let mut run = run_request("svc:1");
    run["clientToken"] = json!("pod-uid-1");
    let first = ecs(&cloud, "RunTask", run.clone()).await;
    let again = ecs(&cloud, "RunTask", run.clone()).await;
    let arn = first["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert_eq!(again["tasks"][0]["taskArn"], arn.as_str());
    run["startedBy"] = json!("someone else");
    ecs_err(&cloud, "RunTask", run, "InvalidParameterException").await;
    for _ in 0..2 {
        ecs(&cloud, "RunTask", run_request("svc")).await;
    }
    let page = ecs(
        &cloud,
        "ListTasks",
        json!({"family": "svc", "maxResults": 2}),
    )
    .await;
    assert_eq!(page["taskArns"].as_array().unwrap().len(), 2);
    let token = page["nextToken"].as_str().unwrap();
    let rest = ecs(
        &cloud,
        "ListTasks",
        json!({"family": "svc", "nextToken": token}),
    )
    .await;
    assert_eq!(rest["taskArns"].as_array().unwrap().len(), 1);
    assert!(rest.get("nextToken").is_none());

    wait_task(&cloud, &arn, |t| t["lastStatus"] == "RUNNING").await;
    let stopped = ecs(
        &cloud,
        "StopTask",
        json!({"task": arn, "reason": "pod deleted"}),
    )
    .await;
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    let task = wait_task(&cloud, &arn, |t| t["lastStatus"] == "STOPPED").await;
    assert_eq!(task["stopCode"], "UserInitiated");
    assert_eq!(task["stoppedReason"], "pod deleted");
    let running = ecs(&cloud, "ListTasks", json!({"family": "svc"})).await;
    assert_eq!(running["taskArns"].as_array().unwrap().len(), 2);

    let missing =
        "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef";
    let answer = ecs(&cloud, "DescribeTasks", json!({"tasks": [arn, missing]})).await;
    assert_eq!(answer["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(answer["failures"][0]["reason"], "MISSING");
    assert_eq!(answer["failures"][0]["arn"], missing);
    ecs_err(
        &cloud,
        "StopTask",
        json!({"task": missing}),
        "InvalidParameterException",
    )
    .await;
    ecs_err(
        &cloud,
        "DescribeTasks",
        json!({"tasks": []}),
        "InvalidParameterException",
    )
    .await;
    ecs_err(
        &cloud,
        "ListTasks",
        json!({"cluster": "nope"}),
        "ClusterNotFoundException",
    )
    .await;
    let message = ecs_err(
        &cloud,
        "RunTask",
        json!({"taskDefinition": "svc", "launchType": "FARGATE"}),
        "InvalidParameterException",
    )
    .await;
    assert!(message.contains("Network Configuration"), "{message}");
    let mut bad = run_request("svc");
    bad["overrides"] = json!({"containerOverrides": [{"name": "nope", "command": ["x"]}]});
    let message = ecs_err(&cloud, "RunTask", bad, "InvalidParameterException").await;
    assert!(message.contains("nope"), "{message}");
    let mut ec2 = run_request("svc");
    ec2["launchType"] = json!("EC2");
    let answer = ecs(&cloud, "RunTask", ec2).await;
    assert!(answer["tasks"].as_array().unwrap().is_empty());
    assert_eq!(
        answer["failures"][0]["reason"],
        "No Container Instances were found in your cluster."
    );
}

#[tokio::test]
async fn tags_and_execute_command() {
    let cloud = cloud().await;
    let def = ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition("t", &[("app", &[], true)], None),
    )
    .await;
    let def_arn = def["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let task = ecs(&cloud, "RunTask", run_request("t")).await;
    let arn = task["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    for resource in [&def_arn, &arn] {
        ecs(&cloud, "TagResource", json!({"resourceArn": resource, "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]})).await;
        ecs(
            &cloud,
            "UntagResource",
            json!({"resourceArn": resource, "tagKeys": ["a"]}),
        )
        .await;
        let tags = ecs(
            &cloud,
            "ListTagsForResource",
            json!({"resourceArn": resource}),
        )
        .await;
        assert_eq!(tags["tags"], json!([{"key": "b", "value": "2"}]));
    }
    ecs_err(
        &cloud,
        "ListTagsForResource",
        json!({"resourceArn": "arn:aws:ecs:us-east-1:123456789012:task/default/zzz"}),
        "InvalidParameterException",
    )
    .await;
    let message = ecs_err(
        &cloud,
        "ExecuteCommand",
        json!({"task": arn, "command": "sh", "interactive": true}),
        "InvalidParameterException",
    )
    .await;
    assert!(message.contains("not enabled"), "{message}");
    let mut run = run_request("t");
    run["enableExecuteCommand"] = json!(true);
    let task = ecs(&cloud, "RunTask", run).await;
    let arn = task["tasks"][0]["taskArn"].as_str().unwrap();
    let message = ecs_err(
        &cloud,
        "ExecuteCommand",
        json!({"task": arn, "command": "sh", "interactive": false}),
        "InvalidParameterException",
    )
    .await;
    assert!(
        message.contains("Interactive is the only mode"),
        "{message}"
    );
    ecs_err(&cloud, "Frobnicate", json!({}), "UnknownOperationException").await;
    let (status, answer) = {
        let head = signed_head(
            &cloud,
            &keys(),
            "ecs",
            Some("AmazonEC2ContainerServiceV20141113.RunTask"),
            "{not json",
        );
        http(&cloud, &head, "{not json").await
    };
    assert_eq!(status, 400);
    assert!(answer.contains("SerializationException"), "{answer}");
    let message = ecs_err(
        &cloud,
        "RunTask",
        json!({"taskDefinition": "t", "count": "two"}),
        "SerializationException",
    )
    .await;
    assert!(message.starts_with("count: "), "{message}");
}

#[tokio::test]
async fn run_task_is_throttled_beyond_its_rate() {
    let cloud = cloud_with(|c| {
        c.rates.run_task = Rate {
            burst: 2,
            per_second: 0.0,
        }
    })
    .await;
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition("r", &[("app", &[], true)], None),
    )
    .await;
    ecs(&cloud, "RunTask", run_request("r")).await;
    ecs(&cloud, "RunTask", run_request("r")).await;
    let message = ecs_err(&cloud, "RunTask", run_request("r"), "ThrottlingException").await;
    assert_eq!(message, "Rate exceeded");
    // Other calls have their own bucket.
    ecs(&cloud, "ListTasks", json!({})).await;
    let cloud = cloud_with(|c| {
        c.rates.task_launch = Rate {
            burst: 3,
            per_second: 0.0,
        }
    })
    .await;
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        definition("r", &[("app", &[], true)], None),
    )
    .await;
    let mut four = run_request("r");
    four["count"] = json!(4);
    ecs_err(&cloud, "RunTask", four, "ThrottlingException").await;
}

#[tokio::test]
async fn containers_depended_on_with_success_run_first_and_fail_the_start() {
    let cloud = cloud().await;
    let mut def = definition(
        "steps",
        &[
            ("files", &[("MOCKCLOUD_RUN_MS", "50")], false),
            ("app", &[("MOCKCLOUD_RUN_MS", "forever")], true),
        ],
        None,
    );
    def["containerDefinitions"][1]["dependsOn"] =
        json!([{"containerName": "files", "condition": "SUCCESS"}]);
    def["ephemeralStorage"] = json!({"sizeInGiB": 30});
    let registered = ecs(&cloud, "RegisterTaskDefinition", def.clone()).await;
    assert_eq!(
        registered["taskDefinition"]["ephemeralStorage"]["sizeInGiB"],
        30
    );
    let run = ecs(&cloud, "RunTask", run_request("steps:1")).await;
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let task = wait_task(&cloud, &arn, |t| t["lastStatus"] == "RUNNING").await;
    assert_eq!(task["containers"][0]["name"], "files");
    assert_eq!(task["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(task["containers"][0]["exitCode"], 0);
    assert_eq!(task["containers"][1]["lastStatus"], "RUNNING");

    // A failing first step: the dependent never starts, the task fails to start.
    def["family"] = json!("bad-steps");
    def["containerDefinitions"][0]["environment"] = json!([
        {"name": "MOCKCLOUD_RUN_MS", "value": "10"}, {"name": "MOCKCLOUD_EXIT_CODE", "value": "3"}]);
    ecs(&cloud, "RegisterTaskDefinition", def.clone()).await;
    let run = ecs(&cloud, "RunTask", run_request("bad-steps:1")).await;
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let task = wait_task(&cloud, &arn, |t| t["lastStatus"] == "STOPPED").await;
    assert_eq!(task["stopCode"], "TaskFailedToStart");
    assert!(
        task["stoppedReason"].as_str().unwrap().contains("files"),
        "{task}"
    );
    assert_eq!(task["containers"][0]["exitCode"], 3);
    assert!(task["containers"][1].get("exitCode").is_none(), "{task}");

    // Bad dependencies are refused at registration.
    def["family"] = json!("loops");
    def["containerDefinitions"][1]["dependsOn"] =
        json!([{"containerName": "nope", "condition": "SUCCESS"}]);
    ecs_err(
        &cloud,
        "RegisterTaskDefinition",
        def.clone(),
        "ClientException",
    )
    .await;
    def["containerDefinitions"][0]["essential"] = json!(true);
    def["containerDefinitions"][1]["dependsOn"] =
        json!([{"containerName": "files", "condition": "SUCCESS"}]);
    ecs_err(
        &cloud,
        "RegisterTaskDefinition",
        def.clone(),
        "ClientException",
    )
    .await;
    def["containerDefinitions"][0]["essential"] = json!(false);
    def["ephemeralStorage"] = json!({"sizeInGiB": 500});
    ecs_err(&cloud, "RegisterTaskDefinition", def, "ClientException").await;
}
