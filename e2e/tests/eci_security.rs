//! A pod's security context, lifecycle hooks, termination message and
//! `shareProcessNamespace` on an `eci` virtual node, through the real API server, the eci
//! provider's CreateContainerGroup parameters and the mock cloud's `process` executor, which
//! runs the containers for real: the user `kubectl exec` sees, a read-only root beside a
//! writable emptyDir, the preStop hook's output in the log while the pod terminates, a
//! failing postStart restarting its container, the message file in `terminated.message`,
//! one container seeing the other's process, and a Warning event for a field ECI lacks.

use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{wait_container_terminated, wait_events};
use e2e::{kubectl, wait_for};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, PostParams};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// A pod for the test's node from the spec's JSON (containers, volumes, ...).
fn pod(node: &str, name: &str, spec: serde_json::Value) -> Pod {
    let mut value = serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists",
                             "effect": "NoSchedule"}],
        }
    });
    if let (Some(base), Some(extra)) = (value["spec"].as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(value).expect("a valid pod")
}

fn exec(s: &TestBed, pod: &str, container: &str, command: &[&str]) -> std::process::Output {
    let args = [
        &["-n", &s.ns.name, "exec", pod, "-c", container, "--"],
        command,
    ]
    .concat();
    kubectl(&args)
}

fn logs(s: &TestBed, pod: &str, container: &str) -> String {
    text(&kubectl(&["-n", &s.ns.name, "logs", pod, "-c", container]).stdout)
}

#[tokio::test]
async fn a_non_root_read_only_pod_runs_its_pre_stop_hook_before_it_goes() {
    let s = Options::eci("vk-eci-sec", "process", &[])
        .serving_cert()
        .start()
        .await;
    // The main process answers SIGTERM after a while, so the pod stays Terminating long
    // enough to read its log; the hook's line comes before it.
    let secure = pod(
        &s.vk.node,
        "secure",
        serde_json::json!({
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 60,
            "containers": [{
                "name": "app", "image": "busybox:1.36",
                "command": ["sh", "-c",
                    "trap 'echo got SIGTERM; sleep 20; exit 0' TERM; echo started; while true; do sleep 1; done"],
                "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": true},
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                "lifecycle": {"preStop": {"exec": {"command":
                    ["sh", "-c", "echo pre-stop ran as $(id -u)"]}}}
            }],
            "volumes": [{"name": "scratch", "emptyDir": {}}]
        }),
    );
    s.run_pod_within(&secure, Duration::from_secs(120)).await;

    let out = exec(&s, "secure", "app", &["id", "-u"]);
    assert_eq!(text(&out.stdout), "1000\n", "stderr: {}", text(&out.stderr));
    let out = exec(&s, "secure", "app", &["touch", "/written-to-root"]);
    assert_ne!(out.status.code(), Some(0), "writing / must fail");
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "stderr: {}",
        text(&out.stderr)
    );
    let out = exec(
        &s,
        "secure",
        "app",
        &["sh", "-c", "touch /scratch/ok && echo ok"],
    );
    assert_eq!(text(&out.stdout), "ok\n", "stderr: {}", text(&out.stderr));

    s.pods
        .delete("secure", &DeleteParams::default())
        .await
        .expect("delete");
    let mut seen = String::new();
    wait_for(
        "the preStop hook's output in the log",
        Duration::from_secs(60),
        || {
            seen = logs(&s, "secure", "app");
            let done = seen.contains("got SIGTERM");
            async move { done }
        },
    )
    .await;
    let hook = seen
        .find("pre-stop ran as 1000")
        .unwrap_or_else(|| panic!("{seen}"));
    let term = seen.find("got SIGTERM").unwrap_or_else(|| panic!("{seen}"));
    assert!(hook < term, "the hook runs before SIGTERM: {seen}");
    let still = s.pods.get_opt("secure").await.expect("get");
    assert!(
        still.is_some_and(|p| p.metadata.deletion_timestamp.is_some()),
        "the log was read while the pod was Terminating"
    );
    wait_for("the pod to go", Duration::from_secs(90), || async {
        s.pods.get_opt("secure").await.ok().flatten().is_none()
    })
    .await;
}

#[tokio::test]
async fn hooks_messages_shared_processes_and_unsupported_fields() {
    let s = Options::eci("vk-eci-sec2", "process", &[])
        .serving_cert()
        .start()
        .await;
    let node = s.vk.node.clone();
    let create = |p: Pod| {
        let pods = s.pods.clone();
        async move {
            pods.create(&PostParams::default(), &p)
                .await
                .expect("create")
        }
    };
    create(pod(
        &node,
        "hooked",
        serde_json::json!({
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
                "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 7"]}}}
            }]
        }),
    ))
    .await;
    create(pod(
        &node,
        "message",
        serde_json::json!({
            "restartPolicy": "Never",
            "containers": [
                {"name": "file", "image": "busybox:1.36",
                 "command": ["sh", "-c", "printf 'built 42 artifacts' > /dev/termination-log"]},
                {"name": "logs", "image": "busybox:1.36",
                 "command": ["sh", "-c", "echo compiler said no; exit 2"],
                 "terminationMessagePolicy": "FallbackToLogsOnError"}
            ]
        }),
    ))
    .await;
    create(pod(
        &node,
        "shared",
        serde_json::json!({
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 5,
            "shareProcessNamespace": true,
            "containers": [
                {"name": "one", "image": "busybox:1.36", "command": ["sleep", "3607"],
                 "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
                {"name": "two", "image": "busybox:1.36", "command": ["sleep", "3608"]}
            ]
        }),
    ))
    .await;
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);

    // A failing postStart: the kubelet's event, and the container runs again.
    let seen = wait_events(&events, "hooked", &["FailedPostStartHook"]).await;
    let failed = seen
        .iter()
        .find(|e| e.reason.as_deref() == Some("FailedPostStartHook"))
        .expect("event");
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("exited with 7"),
        "{failed:?}"
    );
    wait_for(
        "the hooked container to restart",
        Duration::from_secs(60),
        || async {
            s.pods
                .get_opt("hooked")
                .await
                .ok()
                .flatten()
                .and_then(|p| p.status?.container_statuses)
                .is_some_and(|c| c.iter().any(|c| c.restart_count >= 1))
        },
    )
    .await;

    // The termination message, from the file and from the log on an error.
    for container in ["file", "logs"] {
        wait_container_terminated(&s.pods, "message", container, Duration::from_secs(60)).await;
    }
    let p = s.pods.get("message").await.expect("get");
    let message = |name: &str| {
        p.status
            .as_ref()
            .and_then(|st| st.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == name))
            .and_then(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
    };
    assert_eq!(message("file").as_deref(), Some("built 42 artifacts"));
    assert_eq!(message("logs").as_deref(), Some("compiler said no"));

    // One PID namespace: container two sees container one's process.
    wait_for("pod shared to run", Duration::from_secs(120), || async {
        s.pods
            .get_opt("shared")
            .await
            .ok()
            .flatten()
            .and_then(|p| p.status?.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    let out = exec(
        &s,
        "shared",
        "two",
        &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"],
    );
    assert!(
        text(&out.stdout).contains("sleep 3607"),
        "stdout: {} stderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // And the field ECI has no place for is named in a Warning event.
    let seen = wait_events(&events, "shared", &["FieldNotSupportedByECI"]).await;
    let warning = seen
        .iter()
        .find(|e| e.reason.as_deref() == Some("FieldNotSupportedByECI"))
        .expect("event");
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("securityContext.seccompProfile"),
        "{warning:?}"
    );
}
