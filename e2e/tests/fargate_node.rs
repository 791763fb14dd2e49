//! A `fargate` node on the local control plane, backed by the simulator's ECS face (ECS,
//! CloudWatch Logs and STS, signed with SigV4): the Jenkins agent pod
//! (`manifests/examples/jenkins-agent-pod.yaml`) runs as one Fargate task; `kubectl logs -f`
//! follows live; a failing container fails the pod with its exit code; delete stops the task;
//! a SIGKILL of vk in a burst leaves one task per pod. The Jenkins steps run through exec as
//! the kubernetes-plugin sends them (TTY `cat` containers, `sh` exec'd with the script on
//! stdin), over ECS ExecuteCommand and the Session Manager data channel: stdout and exit
//! codes, the shared workspace, `$POD_CONTAINER` and the working directory, a background job
//! outliving its exec seen from jnlp, and fabric8's exec over WebSocket.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::jenkins::{POD, WORKSPACE, ready, step, text};
use e2e::pods::wait_phase;
use e2e::{kubectl_command, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

/// A pod for the test's node from the spec's JSON.
fn pod(node: &str, name: &str, spec: serde_json::Value) -> Pod {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists",
                             "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 2,
        }
    });
    if let (Some(base), Some(extra)) = (value["spec"].as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(value).expect("a valid pod")
}

/// The pods of the node's tasks that have not stopped, one entry per task.
async fn tasks(s: &TestBed) -> Vec<String> {
    s.fargate_cloud()
        .tasks(&s.vk.node)
        .await
        .expect("list tasks")
}

async fn wait_no_tasks(s: &TestBed) {
    let mut left = tasks(s).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !left.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = tasks(s).await;
    }
    assert!(left.is_empty(), "tasks left: {left:?}");
}

#[tokio::test]
async fn the_jenkins_agent_pod_runs_as_one_fargate_task() {
    drop(e2e::fabric8::step_exec());
    let s = Options::fargate("vk-fargate-jenkins", "process", &[])
        .serving_cert()
        .start()
        .await;
    s.create_example_pod("jenkins-agent-pod.yaml").await;
    wait_for(
        "the agent pod to be Ready",
        Duration::from_secs(180),
        || async { s.pods.get(POD).await.ok().is_some_and(|p| ready(&p)) },
    )
    .await;
    wait_for("exec to work", Duration::from_secs(60), || async {
        step(&s, "golang", "true").status.success()
    })
    .await;

    // The workspace is shared; exit codes and stdout come back as under a kubelet.
    let out = step(&s, "golang", "echo from-golang > shared.txt");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = step(&s, "kaniko", "cat shared.txt");
    assert_eq!(text(&out.stdout), "from-golang\n", "{}", text(&out.stderr));
    let out = step(&s, "golang", "echo failing; exit 7");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "failing\n");
    let out = step(&s, "kaniko", "echo \"$POD_CONTAINER in $(pwd)\"");
    assert_eq!(text(&out.stdout), format!("kaniko in {WORKSPACE}\n"));

    // A background job outlives its exec; the jnlp container sees its result.
    let out = step(&s, "golang", "(sleep 2; echo done > bg) >&- 2>&- &");
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for(
        "the background job's file",
        Duration::from_secs(60),
        || async { text(&step(&s, "jnlp", "cat bg").stdout) == "done\n" },
    )
    .await;

    // The plugin's own client: fabric8 over WebSocket, its argv double-quoted on stdin.
    let c = e2e::cluster();
    let mut input = format!("cd \"{WORKSPACE}\"\n");
    for a in ["sh", "-c", "cat shared.txt; echo to-stderr >&2; exit 4"] {
        input.push_str(&format!("\"{}\" ", a.replace('"', "\\\"")));
    }
    input.push_str("\nexit\n");
    let mut cmd = e2e::fabric8::step_exec();
    cmd.arg(&c.kubeconfig)
        .args([&s.ns.name, POD, "golang", "60"]);
    let out = e2e::output_with_input(cmd, Some(&input));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from-golang\n");
    assert!(
        text(&out.stderr).contains("to-stderr"),
        "{}",
        text(&out.stderr)
    );

    // Still Running, no restart; then delete stops the task.
    let p = s.pods.get(POD).await.unwrap();
    for c in p.status.unwrap().container_statuses.unwrap() {
        assert!(
            c.state.unwrap().running.is_some(),
            "{} is not running",
            c.name
        );
        assert_eq!(c.restart_count, 0, "{} restarted", c.name);
    }
    assert_eq!(tasks(&s).await, vec![POD.to_string()]);
    s.pods.delete(POD, &DeleteParams::default()).await.unwrap();
    wait_for(
        "the pod to leave the API",
        Duration::from_secs(60),
        || async { s.pods.get_opt(POD).await.unwrap().is_none() },
    )
    .await;
    wait_no_tasks(&s).await;
}

#[tokio::test]
async fn logs_follow_live_and_a_failing_container_fails_the_pod() {
    let s = Options::fargate("vk-fargate-logs", "process", &[])
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
        "ticker",
        json!({"restartPolicy": "Never", "containers": [{
            "name": "app", "image": "busybox:1.36",
            "command": ["sh", "-c", "i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo tick $i; sleep 0.3; done"]
        }]}),
    ))
    .await;
    create(pod(
        &node,
        "fails",
        json!({"restartPolicy": "Never", "containers": [{
            "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo bye; exit 3"]
        }]}),
    ))
    .await;

    wait_phase(&s.pods, "ticker", "Running", Duration::from_secs(120)).await;
    // `kubectl logs -f` while the container runs: every line once, in order, to the end.
    let mut follow = kubectl_command(&["-n", &s.ns.name, "logs", "-f", "ticker", "-c", "app"]);
    let mut child = follow
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        let out = BufReader::new(child.stdout.take().unwrap());
        let lines = out.lines().map_while(Result::ok).collect();
        let _ = child.wait();
        lines
    })
    .await
    .unwrap();
    let want: Vec<String> = (1..=40).map(|i| format!("tick {i}")).collect();
    assert_eq!(lines, want, "the followed log");
    let done = wait_phase(&s.pods, "ticker", "Succeeded", Duration::from_secs(60)).await;
    let t = done.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(t.exit_code, 0);

    let failed = wait_phase(&s.pods, "fails", "Failed", Duration::from_secs(120)).await;
    let t = failed.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(t.exit_code, 3, "{t:?}");
    let out = e2e::kubectl_ok(&["-n", &s.ns.name, "logs", "fails", "-c", "app"]);
    assert_eq!(out, "bye\n");
}

#[tokio::test]
async fn a_sigkill_of_vk_in_a_burst_leaves_one_task_per_pod() {
    let mut s = Options::fargate("vk-fargate-burst", "simulate", &[])
        .start()
        .await;
    let node = s.vk.node.clone();
    let names: Vec<String> = (0..30).map(|i| format!("burst-{i}")).collect();
    for name in &names {
        let p = pod(
            &node,
            name,
            json!({"containers": [{"name": "app", "image": "busybox:1.36",
                   "env": [{"name": "MOCKCLOUD_RUN_MS", "value": "forever"}]}]}),
        );
        s.pods
            .create(&PostParams::default(), &p)
            .await
            .expect("create");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.vk.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.vk.restart();
    wait_for("every pod Running", Duration::from_secs(180), || async {
        let pods = s.pods.list(&ListParams::default()).await.unwrap().items;
        pods.len() == names.len()
            && pods
                .iter()
                .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in tasks(&s).await {
        *counts.entry(g).or_default() += 1;
    }
    let want: BTreeMap<String, usize> = names.iter().map(|n| (n.clone(), 1)).collect();
    assert_eq!(counts, want, "tasks per pod after the restart");
    s.pods
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    wait_for(
        "the pods to leave the API",
        Duration::from_secs(120),
        || async {
            s.pods
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        },
    )
    .await;
    wait_no_tasks(&s).await;
}

#[tokio::test]
async fn configmaps_secrets_and_empty_dirs_reach_the_task() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let s = Options::fargate("vk-fargate-files", "process", &[])
        .serving_cert()
        .start()
        .await;
    let node = s.vk.node.clone();
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(s.client.clone(), &s.ns.name);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"},
        "data": {"greeting": "hello from a configMap", "nested.conf": "a=1\n"}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("configMap");
    let secrets: kube::Api<Secret> = kube::Api::namespaced(s.client.clone(), &s.ns.name);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"}, "stringData": {"password": "s3cr3t"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let p = pod(
        &node,
        "files",
        json!({"restartPolicy": "Never",
            "volumes": [
                {"name": "cfg", "configMap": {"name": "settings",
                    "items": [{"key": "greeting", "path": "sub/greeting.txt"}]}},
                {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 256}},
                {"name": "work", "emptyDir": {}}],
            "initContainers": [{"name": "prepare", "image": "busybox:1.36",
                "command": ["sh", "-c", "echo from-init > /work/made"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "containers": [{"name": "app", "image": "busybox:1.36",
                "command": ["sh", "-c", "cat /cfg/sub/greeting.txt; echo; cat /creds/password; echo; stat -c %a /creds/password; cat /work/made; test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token"],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"},
                                 {"name": "creds", "mountPath": "/creds"},
                                 {"name": "work", "mountPath": "/work"}]}]}),
    );
    s.pods
        .create(&PostParams::default(), &p)
        .await
        .expect("create");
    let done = wait_phase(&s.pods, "files", "Succeeded", Duration::from_secs(120)).await;
    let init = done.status.unwrap().init_container_statuses.unwrap();
    assert_eq!(init.len(), 1, "{init:?}");
    let out = e2e::kubectl_ok(&["-n", &s.ns.name, "logs", "files", "-c", "app"]);
    assert_eq!(
        out, "hello from a configMap\ns3cr3t\n400\nfrom-init\ntoken\n",
        "what the container found"
    );
}
