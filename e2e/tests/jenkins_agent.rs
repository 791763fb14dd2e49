//! The agent pod the Jenkins kubernetes-plugin generates (`manifests/examples/jenkins-agent-pod.yaml`,
//! unchanged but pinned to the test's node) on an eci node backed by the mock cloud's `process`
//! executor, driven as the plugin drives it: the build containers wait on `cat` with a terminal,
//! each step is `sh` exec'd with the script on stdin (no terminal), a durable-task step runs in
//! the background under nohup and the agent reads its result from the shared workspace. The
//! steps go through kubectl, the Python client, and fabric8 (the plugin's own exec client).

use std::process::Output;
use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::jenkins::{POD, WORKSPACE, step, text};
use e2e::{cluster, kubectl_command, output_with_input, repo_root, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;

/// The node, the registry secret, and the agent pod Ready (what the plugin waits for).
async fn agent_pod(prefix: &str) -> TestBed {
    let s = Options::eci(prefix, "process", &[])
        .serving_cert()
        .start()
        .await;
    s.create_example_pod("jenkins-agent-pod.yaml").await;
    wait_for(
        "the agent pod to be Ready",
        Duration::from_secs(120),
        || async {
            s.pods
                .get(POD)
                .await
                .ok()
                .is_some_and(|p| condition(&p, "Ready"))
        },
    )
    .await;
    s
}

fn condition(pod: &Pod, type_: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Both `cat` containers Running with no restart.
async fn build_containers_running(s: &TestBed) {
    let pod = s.pods.get(POD).await.unwrap();
    let statuses = pod.status.unwrap().container_statuses.unwrap();
    for name in ["golang", "kaniko", "jnlp"] {
        let c = statuses.iter().find(|c| c.name == name).unwrap();
        let state = c.state.as_ref().unwrap();
        assert!(state.running.is_some(), "{name} is not running: {state:?}");
        assert_eq!(c.restart_count, 0, "{name} restarted");
    }
}

#[tokio::test]
async fn the_plugins_steps_run_in_the_cat_containers_as_under_a_kubelet() {
    let s = agent_pod("vk-jenkins").await;
    // The serving certificate may take a moment to reach vk.
    wait_for("exec to work", Duration::from_secs(30), || async {
        step(&s, "golang", "true").status.success()
    })
    .await;

    // 1. golang writes into the workspace.
    let out = step(&s, "golang", "echo from-golang > shared.txt");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 2. kaniko reads it through the shared emptyDir.
    let out = step(&s, "kaniko", "cat shared.txt");
    assert_eq!(text(&out.stdout), "from-golang\n", "{}", text(&out.stderr));
    assert!(out.status.success());
    // 3. A failing step's exit code comes back.
    let out = step(&s, "golang", "echo failing; exit 7");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "failing\n");
    // 4. A background job outlives its exec; the jnlp container sees its result.
    let out = step(&s, "golang", "(sleep 2; echo done > f) >&- 2>&- &");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ns = s.ns.name.clone();
    wait_for("the background job's file", Duration::from_secs(30), || {
        let ns = ns.clone();
        async move {
            let out = kubectl_command(&[
                "-n",
                &ns,
                "exec",
                POD,
                "-c",
                "jnlp",
                "--",
                "cat",
                &format!("{WORKSPACE}/f"),
            ])
            .output()
            .unwrap();
            text(&out.stdout) == "done\n"
        }
    })
    .await;
    // 5. The exports and the working directory hold, and there is no terminal.
    let out = step(
        &s,
        "kaniko",
        "echo \"$POD_CONTAINER in $(pwd)\"; test -t 0 || echo no-terminal; ls /kaniko/.docker",
    );
    assert_eq!(
        text(&out.stdout),
        format!("kaniko in {WORKSPACE}\nno-terminal\nconfig.json\n"),
        "{}",
        text(&out.stderr)
    );

    // A whole durable-task step (e2e/jenkins-sh): launched in the background under nohup, its
    // log and exit code read from the workspace by the agent's side.
    let c = cluster();
    let mut sh = std::process::Command::new(repo_root().join("e2e/jenkins-sh"));
    sh.args([POD, "golang", "-n", &s.ns.name, "--timeout", "120"])
        .env("KUBECTL", &c.kubectl)
        .env("KUBECONFIG", &c.kubeconfig);
    let out = output_with_input(sh, Some("echo step-ran in $(pwd)\nexit 3\n"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let log = text(&out.stdout);
    assert!(
        log.contains("step-ran in /home/jenkins/agent/workspace/demo"),
        "{log}"
    );
    // The agent stand-in saw it too, through the workspace.
    wait_for("the agent's line", Duration::from_secs(30), || async {
        let out = kubectl_command(&["-n", &s.ns.name, "logs", POD, "-c", "jnlp"])
            .output()
            .unwrap();
        text(&out.stdout).contains("ended with exit code 3")
    })
    .await;

    build_containers_running(&s).await;
    s.pods.delete(POD, &DeleteParams::default()).await.unwrap();
    wait_for(
        "the pod to leave the API",
        Duration::from_secs(60),
        || async { s.pods.get_opt(POD).await.unwrap().is_none() },
    )
    .await;
    assert!(s.cloud().groups(&s.vk.node).await.unwrap().is_empty());
    // What vk recorded about the agent's start and, once the plugin deleted it, its cost.
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(s.client.clone(), &s.ns.name);
    let recorded = e2e::pods::wait_events(&events, POD, &["StartTimeline", "Cost"]).await;
    let note = |reason: &str| {
        recorded
            .iter()
            .find(|e| e.reason.as_deref() == Some(reason))
            .and_then(|e| e.message.clone())
            .unwrap_or_default()
    };
    assert!(
        note("StartTimeline").contains("accepted by eci in"),
        "{}",
        note("StartTimeline")
    );
    assert!(note("Cost").starts_with("Billed "), "{}", note("Cost"));
}

/// The same exec with the official Python client (`kubernetes` from PyPI, its stream exec over
/// WebSocket `v4.channel.k8s.io`): stdout, stdin and the exit code.
#[tokio::test]
async fn the_python_clients_stream_exec_runs_a_step() {
    let s = agent_pod("vk-jenkins-py").await;
    let python = e2e::python::venv("kubernetes-client", &[e2e::python::KUBERNETES_CLIENT]);
    let script = r#"
import sys
from kubernetes import client, config
from kubernetes.stream import stream
config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
resp = stream(api.connect_get_namespaced_pod_exec, sys.argv[3], sys.argv[2],
              container=sys.argv[4], command=["sh"], stdin=True, stdout=True,
              stderr=True, tty=False, _preload_content=False)
resp.write_stdin(sys.stdin.read())
out = ""
while resp.is_open():
    resp.update(timeout=1)
    if resp.peek_stdout():
        out += resp.read_stdout()
    if resp.peek_stderr():
        sys.stderr.write(resp.read_stderr())
print(out, end="")
sys.exit(resp.returncode)
"#;
    let c = cluster();
    let run = |container: &str, input: &str| {
        let mut cmd = std::process::Command::new(&python);
        cmd.arg("-c")
            .arg(script)
            .arg(&c.kubeconfig)
            .arg(&s.ns.name)
            .arg(POD)
            .arg(container);
        output_with_input(cmd, Some(input))
    };
    let mut out = run("golang", "true\nexit\n");
    for _ in 0..30 {
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        out = run("golang", "true\nexit\n");
    }
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        "golang",
        &format!("cd \"{WORKSPACE}\"\necho from-python > py.txt\necho $(pwd)\nexit 5\n"),
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{WORKSPACE}\n"));
    let out = run("kaniko", "cat /home/jenkins/agent/py.txt\nexit\n");
    assert_eq!(text(&out.stdout), "from-python\n", "{}", text(&out.stderr));
    build_containers_running(&s).await;
}

/// One step through fabric8 7.3.1 over OkHttp, the client the plugin execs with
/// (`e2e/fabric8`): `sh` with stdin and no terminal over WebSocket `v4.channel.k8s.io`, then
/// the plugin's lines on its stdin: `cd`, the exports, the argv double-quoted, `exit`.
fn fabric8_step(s: &TestBed, container: &str, command: &str) -> Output {
    fabric8_step_env(s, container, &[], command)
}

/// [`fabric8_step`] with more `export K='v'` lines, as the plugin writes the build's env.
fn fabric8_step_env(
    s: &TestBed,
    container: &str,
    env: &[(String, String)],
    command: &str,
) -> Output {
    let c = cluster();
    let mut input = format!("cd \"{WORKSPACE}\"\nexport POD_CONTAINER='{container}'\n");
    for (k, v) in env {
        input.push_str(&format!("export {k}='{}'\n", v.replace('\'', "'\\''")));
    }
    for a in ["sh", "-c", command] {
        input.push_str(&format!("\"{}\" ", a.replace('"', "\\\"")));
    }
    input.push_str("\nexit\n");
    let mut cmd = e2e::fabric8::step_exec();
    cmd.arg(&c.kubeconfig)
        .args([&s.ns.name, POD, container, "60"]);
    output_with_input(cmd, Some(&input))
}

#[tokio::test]
async fn the_plugins_own_client_fabric8_runs_steps() {
    // Built (or found in the cache) before the pod, so a slow first build costs no pod time.
    drop(e2e::fabric8::step_exec());
    let s = agent_pod("vk-jenkins-f8").await;
    let mut out = fabric8_step(&s, "golang", "true");
    for _ in 0..30 {
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        out = fabric8_step(&s, "golang", "true");
    }
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Output and exit 0; the file lands in the shared workspace.
    let out = fabric8_step(&s, "golang", "echo from-fabric8 | tee f8.txt");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from-fabric8\n");
    // The other build container reads it.
    let out = fabric8_step(&s, "kaniko", "cat f8.txt; pwd");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("from-fabric8\n{WORKSPACE}\n"));
    // A failing step: its code from the channel-3 status, its stderr on channel 2.
    let out = fabric8_step(&s, "kaniko", "echo failing; echo to-stderr >&2; exit 7");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "failing\n");
    assert!(
        text(&out.stderr).contains("to-stderr"),
        "{}",
        text(&out.stderr)
    );
    // A background job outlives its exec; jnlp reads its file later.
    let out = fabric8_step(&s, "golang", "(sleep 2; echo done > f8-bg) >&- 2>&- &");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_for(
        "the background job's file",
        Duration::from_secs(30),
        || async {
            let out = fabric8_step(&s, "jnlp", "cat f8-bg");
            text(&out.stdout) == "done\n"
        },
    )
    .await;
    // More stdin than the plugin's 16 KiB input pipe holds (a big env), and 1 MiB of output.
    let env: Vec<(String, String)> = (0..400)
        .map(|i| {
            (
                format!("BUILD_VAR_{i}"),
                format!("value {i} {}", "x".repeat(64)),
            )
        })
        .collect();
    let out = fabric8_step_env(&s, "golang", &env, "echo $BUILD_VAR_399 | cut -c1-9");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "value 399\n");
    let out = fabric8_step(&s, "golang", "yes a | head -c 1048576");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 1 << 20);
    assert!(out.stdout.chunks(2).all(|c| c == b"a\n"));
    build_containers_running(&s).await;
}
