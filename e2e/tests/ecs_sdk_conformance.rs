//! Conformance: AWS's own Python SDK (boto3, on botocore) with its default settings against
//! `vk-cloud serve --face ecs`: task definitions (register, describe, list, deregister),
//! RunTask with a clientToken twice (one task), DescribeTasks through the statuses to
//! STOPPED with exit codes, CloudWatch Logs read with forward tokens to the end, StopTask,
//! ListTasks paged, tags, STS web identity keys used for further calls, bad requests with
//! their codes, and throttling that botocore retries away or gives up on. Every JSON answer
//! must parse and name only fields botocore's service model knows. No Kubernetes cluster
//! needed.

use std::process::Command;

use e2e::cloud::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, MockCloud};

/// Pinned; boto3 brings botocore and its service models.
const SDKS: &[&str] = &["boto3==1.44.5"];

const SCRIPT: &str = include_str!("../conformance/ecs_sdk.py");

#[test]
fn boto3_drives_the_ecs_face() {
    let python = e2e::python::venv("aws-boto3", SDKS);
    let cloud = MockCloud::start("simulate", &["--face", "ecs", "--region-id", "us-east-1"]);
    let out = Command::new(&python)
        .args([
            "-c",
            SCRIPT,
            &cloud.endpoint,
            ACCESS_KEY_ID,
            ACCESS_KEY_SECRET,
        ])
        // botocore reads no config of the machine's: only what the script gives it.
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .expect("running the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let passed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .map(|l| l.split(':').next().unwrap_or(l))
        .collect();
    assert_eq!(
        passed,
        [
            "register_task_definition",
            "describe_task_definition",
            "list_task_definitions",
            "deregister_task_definition",
            "run_task (clientToken)",
            "describe_tasks until STOPPED",
            "get_log_events (tokens)",
            "describe_log_streams, filter_log_events",
            "list_tasks (paging)",
            "stop_task",
            "tag_resource, list_tags_for_resource, untag_resource",
            "assume_role_with_web_identity, then calls with its keys",
            "bad requests",
            "throttled, retried, answered",
            "throttled beyond the retries",
        ],
        "{stdout}\n{stderr}"
    );
}
