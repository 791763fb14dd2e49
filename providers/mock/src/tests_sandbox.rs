//! The mock's containers' sandboxes, as exec'd commands see them: working directory, volumes
//! at their mount paths shared by the pod's containers, hostname, `/etc/hosts` and
//! `/etc/resolv.conf`; background jobs that outlive their exec and die with the container;
//! commands that outlive their client. Real processes, on tokio's real clock.

use std::time::Duration;

use vk_core::provider::{
    ContainerSpec, ContainerState, ExecOutcome, HostAlias, InstancePhase, PodDns, PodRef, Provider,
    Volume, VolumeFile, VolumeMount, VolumeSource,
};

use super::*;
use crate::tests::{pod, provider, wait_for};
use crate::tests_exec::{running, sh};
use cloudsim::test_support::{exec_client, processes_with, read_all, wait_until};

/// Runs `script` with `sh -c` in `container`; its exit, stdout and stderr.
async fn sh_in(
    p: &MockProvider,
    pod: &PodRef,
    container: &str,
    script: &str,
) -> (ExecOutcome, String, String) {
    let c = exec_client(None, false);
    let (outcome, out, err) = tokio::join!(
        p.exec(pod, container, sh(script), c.io),
        read_all(c.stdout),
        read_all(c.stderr)
    );
    (outcome.unwrap(), out, err)
}

fn workspace_mount(container: &str, path: &str) -> ContainerSpec {
    let mut c = crate::tests::container(container);
    c.volume_mounts = vec![VolumeMount {
        volume: "workspace".into(),
        mount_path: path.into(),
        read_only: false,
        sub_path: None,
    }];
    c
}

/// A Jenkins-like pod `pod-<uid>`: `golang` (working directory the workspace, a read-only
/// docker config) and `jnlp`, sharing the `workspace` emptyDir at `/home/jenkins/agent`.
async fn build_pod(
    uid: &str,
    annotations: &[(&str, &str)],
) -> (MockProvider, PodRef, mpsc::Receiver<StatusEvent>) {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod(uid, annotations, &[]);
    let mut golang = workspace_mount("golang", "/home/jenkins/agent");
    golang.working_dir = Some("/home/jenkins/agent".into());
    golang.volume_mounts.push(VolumeMount {
        volume: "docker-config".into(),
        mount_path: "/kaniko/.docker".into(),
        read_only: true,
        sub_path: None,
    });
    spec.containers = vec![golang, workspace_mount("jnlp", "/home/jenkins/agent")];
    spec.volumes = vec![
        Volume {
            name: "workspace".into(),
            source: VolumeSource::EmptyDir {
                memory: false,
                size_limit_bytes: None,
            },
        },
        Volume {
            name: "docker-config".into(),
            source: VolumeSource::Files(vec![VolumeFile {
                path: "config.json".into(),
                content: b"{\"auths\":{}}".to_vec(),
                mode: 0o400,
            }]),
        },
    ];
    p.create(&spec).await.unwrap();
    let status = wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    (p, status.pod, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_in_the_containers_working_dir_with_its_volumes_at_their_mount_paths() {
    let (p, pod, _rx) = build_pod("sb1", &[]).await;
    // Nothing runs for a pod nobody execs into: no container has a root yet.
    assert!(!crate::pod_dir(&pod).join("rootfs").exists());

    let (outcome, out, err) = sh_in(
        &p,
        &pod,
        "golang",
        "pwd; hostname; cat /kaniko/.docker/config.json; echo; \
         test -w /kaniko/.docker || echo read-only; echo built > artifact; \
         test -e /tmp/vk-mock-exec || echo private-tmp",
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0), "{err}");
    assert_eq!(
        out,
        "/home/jenkins/agent\npod-sb1\n{\"auths\":{}}\nread-only\nprivate-tmp\n"
    );

    // The other container sees the workspace at the same path; its working dir is `/`.
    let (outcome, out, err) =
        sh_in(&p, &pod, "jnlp", "pwd; cat /home/jenkins/agent/artifact").await;
    assert_eq!(outcome, ExecOutcome::Exited(0), "{err}");
    assert_eq!(out, "/\nbuilt\n");

    // A program the container does not have is an error, as runc reports it.
    let c = exec_client(None, false);
    let outcome = p
        .exec(&pod, "jnlp", vec!["no-such-program-vk".into()], c.io)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, ExecOutcome::Error(m) if m.contains("no-such-program-vk")),
        "{outcome:?}"
    );
    p.delete(&pod, Duration::ZERO).await.unwrap();
    let dir = crate::pod_dir(&pod);
    cloudsim::test_support::wait_until("the pod's directory to go with it", || !dir.exists()).await;
}

/// Jenkins' durable task: the step starts in the background and the exec returns; the job
/// writes its result later, which the agent's container reads; the job dies with its
/// container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_job_outlives_its_exec_and_dies_with_the_container() {
    let (p, pod, mut rx) = build_pod("sb2", &[("mock.vk.io/run-ms.golang", "4000")]).await;
    let marker = format!("3801.{}", std::process::id() % 1000);
    let script =
        format!("(sleep 1; echo done > f) >&- 2>&- & sleep {marker} >&- 2>&- & echo started");
    let (outcome, out, err) = sh_in(&p, &pod, "golang", &script).await;
    assert_eq!(outcome, ExecOutcome::Exited(0), "{err}");
    assert_eq!(out, "started\n");
    assert!(!processes_with(&marker).is_empty(), "the job runs on");
    let mut seen = String::new();
    for _ in 0..100 {
        seen = sh_in(&p, &pod, "jnlp", "cat /home/jenkins/agent/f 2>/dev/null")
            .await
            .1;
        if seen == "done\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "done\n", "the background job wrote its result");

    // The container's run ends (run-ms): so does every process exec started in it.
    wait_for(&mut rx, |s| {
        matches!(s.containers[0].state, ContainerState::Terminated { .. })
    })
    .await;
    wait_until("the job to end with its container", || {
        processes_with(&marker).is_empty()
    })
    .await;
    // The other container's processes live on.
    let (outcome, out, _) = sh_in(&p, &pod, "jnlp", "echo alive").await;
    assert_eq!((outcome, out.as_str()), (ExecOutcome::Exited(0), "alive\n"));
    p.delete(&pod, Duration::ZERO).await.unwrap();
}

/// As under containerd's CRI: a client that goes away leaves its command running (its stdin
/// ends, its output is dropped); the command goes when the container does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_outlives_its_client_until_the_pod_goes() {
    let (p, pod) = running("sb3").await;
    let p = std::sync::Arc::new(p);
    let id = std::process::id() % 1000;

    // The call is dropped (the kubelet API does that when the connection closes).
    let marker = format!("3802.{id}");
    let call = {
        let (p, pod, script) = (
            p.clone(),
            pod.clone(),
            format!("sleep {marker}; echo never"),
        );
        tokio::spawn(async move {
            let c = exec_client(None, false);
            let _keep = (c.stdout, c.stderr);
            p.exec(&pod, "main", sh(&script), c.io).await
        })
    };
    wait_until("the sleep to start", || !processes_with(&marker).is_empty()).await;
    call.abort();

    // A command reading its stdin gets its end when the client goes.
    let reader = format!("reader-{id}");
    let (stdin_tx, stdin_rx) = tokio::io::duplex(64);
    let call = {
        let (p, pod, script) = (
            p.clone(),
            pod.clone(),
            format!("cat > /dev/null # {reader}"),
        );
        tokio::spawn(async move {
            let mut c = exec_client(None, false);
            c.io.stdin = Some(Box::new(stdin_rx));
            let _keep = (c.stdout, c.stderr);
            p.exec(&pod, "main", sh(&script), c.io).await
        })
    };
    wait_until("the reader to start", || {
        !processes_with(&reader).is_empty()
    })
    .await;
    call.abort();
    drop(stdin_tx);
    wait_until("the reader to see its stdin end", || {
        processes_with(&reader).is_empty()
    })
    .await;
    assert!(!processes_with(&marker).is_empty(), "the sleep runs on");

    // The client stops reading: the exec call ends with an error, the command goes on.
    let ticker = format!("tick-{id}");
    let c = exec_client(None, false);
    let mut stdout = c.stdout;
    let call = {
        let (p, pod) = (p.clone(), pod.clone());
        let script = format!("while :; do echo {ticker}; sleep 0.05; done");
        tokio::spawn(async move { p.exec(&pod, "main", sh(&script), c.io).await })
    };
    let mut first = [0u8; 8];
    tokio::io::AsyncReadExt::read_exact(&mut stdout, &mut first)
        .await
        .unwrap();
    drop(stdout);
    let outcome = call.await.unwrap().unwrap();
    assert!(matches!(outcome, ExecOutcome::Error(_)), "{outcome:?}");
    assert!(!processes_with(&ticker).is_empty(), "the loop goes on");

    p.delete(&pod, Duration::ZERO).await.unwrap();
    for m in [&marker, &ticker] {
        wait_until("the commands to end with the pod", || {
            processes_with(m).is_empty()
        })
        .await;
    }
}

/// The kubernetes-plugin's build containers: a main `cat` kept waiting by its terminal or
/// its open stdin; exec joins its sandbox (sees it, gets `TERM` with a terminal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_main_processes_with_a_terminal_or_stdin_keep_running_and_exec_joins_them() {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod(
        "sb4",
        &[
            ("mock.vk.io/process.golang", "exec cat"),
            ("mock.vk.io/process.kaniko", "exec cat"),
        ],
        &["golang", "kaniko"],
    );
    spec.containers[0].tty = true;
    spec.containers[1].stdin = true;
    spec.hostname = "builder".into();
    // Both start at once and write the same files (the service account's token, say).
    spec.volumes = vec![Volume {
        name: "token".into(),
        source: VolumeSource::Files(vec![VolumeFile {
            path: "token".into(),
            content: b"t0ken".to_vec(),
            mode: 0o644,
        }]),
    }];
    for c in &mut spec.containers {
        c.volume_mounts = vec![VolumeMount {
            volume: "token".into(),
            mount_path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
            read_only: true,
            sub_path: None,
        }];
    }
    p.create(&spec).await.unwrap();
    let status = wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (container, term) in [("golang", "xterm"), ("kaniko", "")] {
        let (outcome, out, err) = sh_in(
            &p,
            &status.pod,
            container,
            "hostname; echo \"$TERM\"; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done",
        )
        .await;
        assert_eq!(outcome, ExecOutcome::Exited(0), "{container}: {err}");
        let mut lines = out.lines();
        // The pod's hostname as the kubelet gives it.
        assert_eq!(lines.next(), Some("builder"), "{container}");
        assert_eq!(lines.next(), Some(term), "{container}");
        assert!(
            lines.any(|l| l.trim_end() == "cat"),
            "{container}: the main process is in the sandbox: {out}"
        );
    }
    let status = cloudsim::test_support::status_of(&p, &status.pod)
        .await
        .unwrap()
        .unwrap();
    for c in &status.containers {
        assert!(
            matches!(c.state, ContainerState::Running { .. }),
            "{}: {:?}",
            c.name,
            c.state
        );
    }
    p.delete(&status.pod, Duration::ZERO).await.unwrap();
}

/// The pod's names as the kubelet gives them: hostname, `/etc/hosts` with the host aliases,
/// `/etc/resolv.conf` from the resolver vk-core computed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_the_pods_hostname_hosts_and_resolver() {
    let (p, mut rx) = provider(MockConfig::default());
    let mut spec = pod("sb5", &[], &["main"]);
    spec.hostname = "agent".into();
    spec.host_aliases = vec![HostAlias {
        ip: "10.1.2.3".into(),
        hostnames: vec!["registry.local".into()],
    }];
    spec.dns = Some(PodDns {
        on_cloud_resolver: false,
        nameservers: vec!["10.0.0.10".into()],
        searches: vec!["ci.svc.cluster.local".into()],
        options: vec![],
    });
    p.create(&spec).await.unwrap();
    let status = wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    let ip = status.pod_ip.clone().unwrap();
    let (outcome, out, err) = sh_in(
        &p,
        &status.pod,
        "main",
        "hostname; echo $HOSTNAME; grep -v '^#' /etc/resolv.conf; grep -e agent -e registry /etc/hosts",
    )
    .await;
    assert_eq!(outcome, ExecOutcome::Exited(0), "{err}");
    assert_eq!(
        out,
        format!(
            "agent\nagent\nsearch ci.svc.cluster.local\nnameserver 10.0.0.10\n{ip}\tagent\n10.1.2.3\tregistry.local\n"
        )
    );
    p.delete(&status.pod, Duration::ZERO).await.unwrap();
}
