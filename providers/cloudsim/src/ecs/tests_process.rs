//! Tasks whose containers are real processes (the `process` executor, bubblewrap sandboxes):
//! a command's output reaches CloudWatch Logs and its exit code DescribeTasks; StopTask sends
//! SIGTERM and kills after the container's stopTimeout. Needs bwrap, nsenter and setpriv.

use serde_json::{Value, json};

use super::server::EcsCloud;
use super::tests::{call_as, cloud_with, ecs, keys, run_request, wait_task};
use crate::engine::executor::ExecutorKind;

/// Removes the cloud's work directory when the test ends.
struct WorkDir(std::path::PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn process_cloud(test: &str) -> (EcsCloud, WorkDir) {
    let dir = std::env::temp_dir().join(format!("vk-ecs-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let work = dir.clone();
    let cloud = cloud_with(move |c| {
        c.executor = ExecutorKind::Process;
        c.process.work_dir = Some(work);
    })
    .await;
    (cloud, WorkDir(dir))
}

fn shell(family: &str, script: &str, stop_timeout: i32) -> Value {
    json!({"family": family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
           "cpu": "256", "memory": "512", "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
           "containerDefinitions": [{"name": "app", "image": "busybox", "stopTimeout": stop_timeout,
             "command": ["sh", "-c", script], "environment": [{"name": "WHO", "value": "fargate"}],
             "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/p",
               "awslogs-region": "us-east-1", "awslogs-stream-prefix": "p", "awslogs-create-group": "true"}}}]})
}

fn exit_code(task: &Value) -> Value {
    task["containers"][0]["exitCode"].clone()
}

#[tokio::test]
async fn a_real_command_logs_and_exits() {
    let (cloud, _dir) = process_cloud("exits").await;
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        shell("once", "echo hello from $WHO; exit 4", 30),
    )
    .await;
    let task = ecs(&cloud, "RunTask", run_request("once")).await;
    let arn = task["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let stopped = wait_task(&cloud, &arn, |t| t["lastStatus"] == "STOPPED").await;
    assert_eq!(exit_code(&stopped), 4, "{stopped}");
    assert_eq!(stopped["stopCode"], "EssentialContainerExited");
    let stream = format!("p/app/{}", arn.rsplit('/').next().unwrap());
    let (_, events) = call_as(
        &cloud,
        &keys(),
        "logs",
        "GetLogEvents",
        json!({"logGroupName": "/ecs/p", "logStreamName": stream, "startFromHead": true}),
    )
    .await;
    let messages: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"hello from fargate"), "{messages:?}");
}

#[tokio::test]
async fn stop_task_terms_then_kills_after_the_stop_timeout() {
    let (cloud, _dir) = process_cloud("stops").await;
    let polite = "trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 0.1; done";
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        shell("polite", polite, 10),
    )
    .await;
    let stubborn = "trap '' TERM; echo up; while true; do sleep 0.1; done";
    ecs(
        &cloud,
        "RegisterTaskDefinition",
        shell("stubborn", stubborn, 1),
    )
    .await;
    for (family, code) in [("polite", 0), ("stubborn", 137)] {
        let task = ecs(&cloud, "RunTask", run_request(family)).await;
        let arn = task["tasks"][0]["taskArn"].as_str().unwrap().to_string();
        let stream = format!("p/app/{}", arn.rsplit('/').next().unwrap());
        // Running, and its trap set (it said so).
        for _ in 0..250 {
            let (_, events) = call_as(
                &cloud,
                &keys(),
                "logs",
                "GetLogEvents",
                json!({"logGroupName": "/ecs/p", "logStreamName": stream, "startFromHead": true}),
            )
            .await;
            if events["events"].as_array().is_some_and(|e| !e.is_empty()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let started = std::time::Instant::now();
        ecs(&cloud, "StopTask", json!({"task": arn})).await;
        let stopped = wait_task(&cloud, &arn, |t| t["lastStatus"] == "STOPPED").await;
        assert_eq!(exit_code(&stopped), code, "{family}: {stopped}");
        assert_eq!(stopped["stopCode"], "UserInitiated");
        if code == 137 {
            assert!(
                started.elapsed() >= std::time::Duration::from_millis(900),
                "killed after its stopTimeout"
            );
        }
    }
}
