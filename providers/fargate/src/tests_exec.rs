//! Exec over the Session Manager data channel against the simulator's ECS face with the
//! `process` executor: containers are sandboxed processes (bubblewrap) with a real `/bin/sh`,
//! and ExecuteCommand's session is the face's agent. The client is [`crate::exec::run`].
//! Needs `bwrap` on the machine; without it the tests fail and say how to install it.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cloudsim::ecs::{EcsCloud, EcsConfig};
use cloudsim::engine::executor::ExecutorKind;
use cloudsim::engine::executor::process::check_bwrap;
use cloudsim::test_support::{exec_client, read_all};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use vk_core::provider::http::{Http, Tls};
use vk_core::provider::{ExecOutcome, Secret, TermSize};

use crate::credentials::AwsCredentials;
use crate::sign::{Scope, signed_headers};
use crate::wire::ecs_task::Session;

const KEY: &str = "AKIDEXEC";
const SECRET: &str = "exec-secret";

pub struct Cloud {
    pub cloud: EcsCloud,
    work: std::path::PathBuf,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

pub async fn process_cloud(name: &str) -> Cloud {
    if let Err(e) = check_bwrap(std::path::Path::new("bwrap")).await {
        panic!("{e}");
    }
    let work = std::env::temp_dir().join(format!("vk-fargate-exec-{name}-{}", std::process::id()));
    let mut config = EcsConfig::with_key(KEY, SECRET);
    config.schedule_latency_ms = 0;
    config.provision_latency_ms = 0;
    config.latency_jitter_ms = 0;
    config.activating_ms = 0;
    config.stop_latency_ms = 0;
    config.executor = ExecutorKind::Process;
    config.process.work_dir = Some(work.clone());
    let cloud = EcsCloud::start(config, "127.0.0.1:0")
        .await
        .expect("the ECS face starts");
    Cloud { cloud, work }
}

fn tls() -> Tls {
    Tls::from_pem(b"").unwrap_or_else(|_| Tls::new(None).expect("TLS roots"))
}

/// One signed ECS call: the answer's JSON, or the error's status and body.
pub async fn call(cloud: &EcsCloud, action: &str, body: Value) -> Result<Value, (u16, String)> {
    let url = format!("{}/", cloud.endpoint());
    let body = body.to_string();
    let target = format!("AmazonEC2ContainerServiceV20141113.{action}");
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let credentials = AwsCredentials {
        access_key_id: KEY.into(),
        secret_access_key: Secret::new(SECRET),
        session_token: None,
    };
    let scope = Scope {
        region: "us-east-1",
        service: "ecs",
    };
    let signed = signed_headers(
        "POST",
        &url,
        &headers,
        body.as_bytes(),
        &credentials,
        scope,
        SystemTime::now(),
    )
    .expect("signing");
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let answer = Http::new(&tls(), Duration::from_secs(10))
        .send(hyper::Method::POST, &url, &all, Some(Bytes::from(body)))
        .await
        .expect("the face answers");
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    if answer.status == 200 {
        Ok(serde_json::from_str(&text).expect("JSON"))
    } else {
        Err((answer.status, text))
    }
}

/// A running task of `containers` (name, command) with execute command enabled; its ARN.
pub async fn running_task(cloud: &EcsCloud, family: &str, containers: &[(&str, &str)]) -> String {
    let defs: Vec<Value> = containers
        .iter()
        .map(|(name, script)| {
            json!({"name": name, "image": "busybox:1.36", "essential": true,
                   "command": ["/bin/sh", "-c", script], "workingDirectory": "/work"})
        })
        .collect();
    call(
        cloud,
        "RegisterTaskDefinition",
        json!({"family": family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "512", "containerDefinitions": defs}),
    )
    .await
    .expect("register");
    let run = call(
        cloud,
        "RunTask",
        json!({"cluster": "default", "taskDefinition": family, "launchType": "FARGATE",
               "enableExecuteCommand": true,
               "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}),
    )
    .await
    .expect("run");
    let arn = run["tasks"][0]["taskArn"]
        .as_str()
        .expect("a task")
        .to_string();
    for _ in 0..500 {
        let d = call(cloud, "DescribeTasks", json!({"tasks": [arn]}))
            .await
            .unwrap();
        if d["tasks"][0]["lastStatus"] == "RUNNING" {
            return arn;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {arn} never ran");
}

/// ExecuteCommand of `/bin/sh` as the provider calls it; the session.
pub async fn open_session(cloud: &EcsCloud, arn: &str, container: &str) -> Session {
    let answer = call(
        cloud,
        "ExecuteCommand",
        json!({"cluster": "default", "task": arn, "container": container,
               "command": "/bin/sh", "interactive": true}),
    )
    .await
    .expect("ExecuteCommand");
    serde_json::from_value(answer["session"].clone()).expect("a session")
}

async fn exec(
    cloud: &EcsCloud,
    arn: &str,
    argv: &[&str],
    io: vk_core::provider::ExecIo,
) -> ExecOutcome {
    let session = open_session(cloud, arn, "app").await;
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    tokio::time::timeout(
        Duration::from_secs(60),
        crate::exec::run(
            &session,
            &tls(),
            &argv,
            Some("/work"),
            io,
            Duration::from_secs(20),
        ),
    )
    .await
    .expect("the exec ends")
}

#[tokio::test]
async fn exec_returns_exit_codes_separate_stderr_and_takes_stdin_to_its_end() {
    let c = process_cloud("codes").await;
    let arn = running_task(
        &c.cloud,
        "codes",
        &[("app", "mkdir -p /work; exec sleep 61.3")],
    )
    .await;

    let client = exec_client(Some(b"hello\nworld\n"), false);
    let outcome = exec(
        &c.cloud,
        &arn,
        &[
            "sh",
            "-c",
            "echo out; echo err >&2; cat; printf 'last' >&2; exit 7",
        ],
        client.io,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(7));
    assert_eq!(read_all(client.stdout).await, "out\nhello\nworld\n");
    assert_eq!(read_all(client.stderr).await, "err\nlast\n");

    let client = exec_client(None, false);
    let outcome = exec(
        &c.cloud,
        &arn,
        &["sh", "-c", "cat; pwd; echo \"it's $((6*7))\""],
        client.io,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(read_all(client.stdout).await, "/work\nit's 42\n");

    // A missing program: the shell's 127.
    let client = exec_client(None, false);
    let outcome = exec(&c.cloud, &arn, &["no-such-program"], client.io).await;
    assert_eq!(outcome, ExecOutcome::Exited(127));
    assert!(read_all(client.stderr).await.contains("not found"));
}

#[tokio::test]
async fn a_background_job_outlives_the_exec() {
    let c = process_cloud("bg").await;
    let arn = running_task(
        &c.cloud,
        "bg",
        &[("app", "mkdir -p /work; exec sleep 61.3")],
    )
    .await;
    let client = exec_client(None, false);
    let outcome = exec(
        &c.cloud,
        &arn,
        &[
            "sh",
            "-c",
            "(sleep 1; echo late > /work/bg.txt) & echo started",
        ],
        client.io,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(read_all(client.stdout).await, "started\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let client = exec_client(None, false);
    let outcome = exec(&c.cloud, &arn, &["cat", "/work/bg.txt"], client.io).await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert_eq!(read_all(client.stdout).await, "late\n");
}

#[tokio::test]
async fn a_tty_exec_follows_the_terminal_size_at_any_time() {
    let c = process_cloud("tty").await;
    let arn = running_task(
        &c.cloud,
        "tty",
        &[("app", "mkdir -p /work; exec sleep 61.3")],
    )
    .await;
    let mut client = exec_client(None, true);
    let (sizes, resize) = tokio::sync::mpsc::channel(4);
    client.io.resize = Some(resize);
    sizes
        .send(TermSize {
            width: 100,
            height: 40,
        })
        .await
        .unwrap();
    let (mut keys, stdin) = tokio::io::duplex(64);
    client.io.stdin = Some(Box::new(stdin));
    let mut stdout = client.stdout;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut resized = false;
        loop {
            let n = stdout.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return String::from_utf8_lossy(&seen).into_owned();
            }
            seen.extend_from_slice(&buf[..n]);
            if !resized && String::from_utf8_lossy(&seen).contains("40 100") {
                resized = true;
                sizes
                    .send(TermSize {
                        width: 120,
                        height: 50,
                    })
                    .await
                    .unwrap();
                use tokio::io::AsyncWriteExt as _;
                keys.write_all(b"go\n").await.unwrap();
            }
        }
    });
    let outcome = exec(
        &c.cloud,
        &arn,
        &[
            "sh",
            "-c",
            "test -t 0 && stty size && read x && sleep 0.3 && stty size; exit 3",
        ],
        client.io,
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(3));
    let out = reader.await.unwrap();
    assert!(out.contains("40 100") && out.contains("50 120"), "{out:?}");
}

#[tokio::test]
async fn a_mebibyte_of_stdout_arrives_whole_and_in_order() {
    let c = process_cloud("big").await;
    let arn = running_task(
        &c.cloud,
        "big",
        &[("app", "mkdir -p /work; exec sleep 61.3")],
    )
    .await;
    let client = exec_client(None, false);
    let reader = tokio::spawn(read_all(client.stdout));
    let outcome = exec(&c.cloud, &arn, &["seq", "1", "170000"], client.io).await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    let out = reader.await.unwrap();
    let expected: String = (1..=170000).map(|i| format!("{i}\n")).collect();
    assert!(expected.len() > 1 << 20);
    assert_eq!(out.len(), expected.len());
    assert!(out == expected, "the output differs from seq's");
}
