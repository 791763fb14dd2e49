//! Conformance of the ECS face's exec with AWS's own clients, no Kubernetes cluster needed:
//! boto3 runs a task with execute command enabled and calls ExecuteCommand (its refusals
//! too), then AWS's `session-manager-plugin` (built from its Go module by
//! `e2e/ssm-plugin/build.sh`, pinned and cached) opens the session exactly as
//! `aws ecs execute-command` starts it: `session-manager-plugin '<session json>' <region>
//! StartSession '' '<{"Target": …}>' <endpoint>`. It connects to the face's data channel,
//! answers the handshake, types what it reads on stdin, shows the terminal, sends its size,
//! and ends when the shell exits (`channel_closed`).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::cloud::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, MockCloud};
use e2e::repo_root;

const SDKS: &[&str] = &["boto3==1.44.5"];
const SCRIPT: &str = include_str!("../conformance/ecs_exec.py");

fn plugin() -> PathBuf {
    let out = Command::new(repo_root().join("e2e/ssm-plugin/build.sh"))
        .output()
        .expect("running e2e/ssm-plugin/build.sh");
    assert!(
        out.status.success(),
        "building session-manager-plugin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("the binary's path").trim())
}

#[test]
fn aws_session_manager_plugin_execs_into_a_task_of_the_ecs_face() {
    let plugin = plugin();
    let python = e2e::python::venv("aws-boto3", SDKS);
    let cloud = MockCloud::start("process", &["--face", "ecs", "--region-id", "us-east-1"]);
    let out = Command::new(&python)
        .args([
            "-c",
            SCRIPT,
            &cloud.endpoint,
            ACCESS_KEY_ID,
            ACCESS_KEY_SECRET,
        ])
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
        .collect();
    assert_eq!(
        passed,
        [
            "run_task with enableExecuteCommand",
            "execute_command refusals",
            "execute_command"
        ],
        "{stdout}\n{stderr}"
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {stdout}"))
            .to_string()
    };
    let session = line("SESSION ");
    let target = serde_json::json!({ "Target": line("TARGET ") }).to_string();

    // As the AWS CLI runs it. Its own log and config stay in a home of their own.
    let home = std::env::temp_dir().join(e2e::unique("ssm-plugin-home"));
    std::fs::create_dir_all(&home).unwrap();
    let mut child = Command::new(&plugin)
        .args([
            session.as_str(),
            "us-east-1",
            "StartSession",
            "",
            target.as_str(),
            cloud.endpoint.as_str(),
        ])
        .env("HOME", &home)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", ACCESS_KEY_SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting session-manager-plugin");
    // stdin stays open until the plugin ends: at its end of input the plugin stops at once.
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"stty size; echo \"conformance-$((6*7))\"; exit 7\n")
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "the plugin did not end within 60 s: {}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let shown = reader.join().unwrap();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let _ = std::fs::remove_dir_all(&home);
    let session_id = serde_json::from_str::<serde_json::Value>(&session).unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        status.success(),
        "the plugin ends with 0 whatever the shell's status: {status}\n{shown}\n{err}"
    );
    assert!(
        shown.contains(&format!("Starting session with SessionId: {session_id}")),
        "{shown}\n{err}"
    );
    assert!(
        shown.contains("conformance-42"),
        "the shell ran what was typed: {shown}\n{err}"
    );
    assert!(
        shown.contains("100 300"),
        "the plugin's terminal size (300x100 when its stdout is no terminal) reached the shell: {shown}\n{err}"
    );
    assert!(
        shown.contains(&format!("Exiting session with sessionId: {session_id}")),
        "the session ends with channel_closed when the shell exits: {shown}\n{err}"
    );
}
