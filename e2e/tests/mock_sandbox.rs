//! The mock provider runs a container's processes in the container's own sandbox, so the
//! kubernetes-plugin's pattern works through the API server: a step piped to `sh` through
//! `kubectl exec -i` starts its work in the background and returns, the work outlives the
//! exec, and the agent's container reads its result in the shared workspace.

use std::time::{Duration, Instant};

use e2e::harness::Options;
use e2e::{kubectl, kubectl_command, kubectl_ok, output_with_input};
use k8s_openapi::api::core::v1::Pod;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// The plugin's pod shape: `jnlp` and a `golang` build container kept up by `cat` on a
/// terminal, sharing the `workspace` emptyDir at `/home/jenkins/agent`; `golang` works in it
/// and has the docker config secret mounted.
fn build_pod(node: &str) -> Pod {
    let workspace = serde_json::json!({"name": "workspace", "mountPath": "/home/jenkins/agent"});
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "build"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists",
                             "effect": "NoSchedule"}],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {"name": "jnlp", "image": "jenkins/inbound-agent:3283.v92c105e0f819-7",
                 "volumeMounts": [workspace]},
                {"name": "golang", "image": "golang:1.22", "command": ["cat"], "tty": true,
                 "workingDir": "/home/jenkins/agent",
                 "volumeMounts": [workspace,
                                  {"name": "docker-config", "mountPath": "/kaniko/.docker",
                                   "readOnly": true}]}
            ],
            "volumes": [
                {"name": "workspace", "emptyDir": {}},
                {"name": "docker-config", "secret": {"secretName": "docker-config"}}
            ]
        }
    }))
    .expect("a valid pod")
}

#[tokio::test]
async fn a_background_step_started_through_exec_writes_the_shared_workspace() {
    let s = Options::mock("vk-sandbox").serving_cert().start().await;
    let ns = s.ns.name.clone();
    kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "generic",
        "docker-config",
        "--from-literal=config.json={\"auths\":{}}",
    ]);
    s.run_pod(&build_pod(&s.vk.node)).await;

    // As the plugin runs a step: `sh` with the script on stdin, no terminal.
    let step = "cd /home/jenkins/agent\n\
                (sleep 2; echo done > f) >&- 2>&- &\n\
                pwd; cat /kaniko/.docker/config.json; echo\n\
                exit\n";
    let out = output_with_input(
        kubectl_command(&["-n", &ns, "exec", "-i", "build", "-c", "golang", "--", "sh"]),
        Some(step),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "/home/jenkins/agent\n{\"auths\":{}}\n");

    // The job outlived the exec: its result appears in the agent's container.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kubectl(&[
            "-n",
            &ns,
            "exec",
            "build",
            "-c",
            "jnlp",
            "--",
            "cat",
            "/home/jenkins/agent/f",
        ]);
        if out.status.success() && text(&out.stdout) == "done\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no result from the background job: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = s.pods.delete("build", &Default::default()).await;
}
