//! The provider against the simulator's ECS face, in-process: lifecycle, adoption, faults,
//! exit codes, sizes, logs, credentials, pacing and task definitions.

use std::time::Duration;

use futures::StreamExt as _;
use vk_core::provider::{
    ContainerSpec, ContainerState, InstancePhase, LogOptions, Provider, Resources, Volume,
    VolumeFile, VolumeMount, VolumeSource,
};

use crate::tests_support::*;
use crate::wire::ecs_taskdef::{ListTaskDefinitionsRequest, ListTaskDefinitionsResponse};

async fn active_defs(p: &crate::FargateProvider) -> Vec<String> {
    let answer: ListTaskDefinitionsResponse = p
        .client()
        .call(
            crate::client::Api::Ecs,
            "ListTaskDefinitions",
            &ListTaskDefinitionsRequest {
                family_prefix: None,
                status: Some("ACTIVE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    answer.task_definition_arns
}

#[tokio::test]
async fn a_pod_runs_as_one_task_and_delete_stops_it() {
    let cloud = cloud(|_| {}).await;
    let p = provider(&cloud, "vk-fargate");
    let pod = pod("web", None, 0);
    p.create(&pod).await.unwrap();
    p.create(&pod).await.unwrap();
    let s = wait_for(&p, "web", running).await;
    assert!(
        s.pod_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.0.")),
        "{s:?}"
    );
    assert!(matches!(
        s.containers[0].state,
        ContainerState::Running { .. }
    ));
    assert_eq!(task_count(&cloud), 1, "one task per pod");
    // Another node's provider does not see it.
    assert!(statuses(&provider(&cloud, "other-node")).await.is_empty());
    let other = p.sharing(config(&cloud, "other-node")).unwrap();
    assert!(std::sync::Arc::ptr_eq(p.client(), other.client()));
    assert!(statuses(&other).await.is_empty());

    p.delete(&pod.pod, Duration::from_secs(1)).await.unwrap();
    assert!(
        !statuses(&p).await.contains_key("web"),
        "a deleted pod's task is left out"
    );
    for _ in 0..100 {
        let state = cloud.engine().state();
        if state.groups().all(|g| g.is_terminal()) {
            break;
        }
        drop(state);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        cloud.engine().state().groups().all(|g| g.is_terminal()),
        "the task stopped"
    );
    p.delete(&pod.pod, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_restarted_provider_adopts_its_tasks_and_never_runs_a_second() {
    let cloud = cloud(|_| {}).await;
    let first = provider(&cloud, "vk-fargate");
    let pods: Vec<_> = (0..3).map(|i| pod(&format!("p{i}"), None, 0)).collect();
    for pod in &pods {
        first.create(pod).await.unwrap();
    }
    drop(first);
    let again = provider(&cloud, "vk-fargate");
    for pod in &pods {
        again.create(pod).await.unwrap();
    }
    for pod in &pods {
        wait_for(&again, &pod.pod.name, running).await;
    }
    assert_eq!(task_count(&cloud), 3);
    // RunTask itself is idempotent by the pod's token: a fresh provider that skips adoption
    // (as a lost answer would) gets the same task.
    let run = crate::mapping::pod_task(&pods[0], &config(&cloud, "vk-fargate")).unwrap();
    let mut req = run.run.clone();
    req.task_definition = active_defs(&again).await.remove(0);
    let answer: crate::wire::ecs_task::TasksResponse = again
        .client()
        .call(crate::client::Api::Ecs, "RunTask", &req)
        .await
        .unwrap();
    assert_eq!(answer.tasks.len(), 1);
    assert_eq!(task_count(&cloud), 3, "the token answered the first task");
}

#[tokio::test]
async fn errors_and_throttling_leave_exactly_one_task_per_pod() {
    let cloud = cloud(|c| {
        c.faults.error_rate = 0.3;
    })
    .await;
    let p = provider(&cloud, "vk-fargate");
    {
        let mut f = cloud.engine().faults().get();
        f.throttle_calls = 10;
        cloud.engine().faults().set(f);
    }
    let pods: Vec<_> = (0..20).map(|i| pod(&format!("f{i}"), None, 0)).collect();
    // As vk-core does: a create that still fails after the client's own retries (a transient
    // error) is asked again later; it must never make a second task.
    let create = |pod: &vk_core::provider::ResolvedPod| {
        let p = &p;
        let pod = pod.clone();
        async move {
            for _ in 0..10 {
                match p.create(&pod).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.class() == vk_core::provider::ErrorClass::Transient => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) => return Err(e),
                }
            }
            p.create(&pod).await
        }
    };
    let results = futures::future::join_all(pods.iter().map(create)).await;
    for (pod, r) in pods.iter().zip(results) {
        r.unwrap_or_else(|e| panic!("{}: {e}", pod.pod.name));
    }
    let mut f = cloud.engine().faults().get();
    f.error_rate = 0.0;
    cloud.engine().faults().set(f);
    for pod in &pods {
        wait_for(&p, &pod.pod.name, running).await;
    }
    assert_eq!(task_count(&cloud), 20, "exactly one task per pod");
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_pod_with_its_code_and_zero_succeeds() {
    let cloud = cloud(|_| {}).await;
    let p = provider(&cloud, "vk-fargate");
    p.create(&pod("bad", Some(50), 3)).await.unwrap();
    p.create(&pod("good", Some(50), 0)).await.unwrap();
    let bad = wait_for(&p, "bad", |s| s.phase == InstancePhase::Failed).await;
    match &bad.containers[0].state {
        ContainerState::Terminated { exit_code, .. } => assert_eq!(*exit_code, 3),
        other => panic!("{other:?}"),
    }
    assert!(bad.message.unwrap().contains("code 3"));
    wait_for(&p, "good", |s| s.phase == InstancePhase::Succeeded).await;
}

#[tokio::test]
async fn a_pod_too_large_gets_a_reason_and_no_task() {
    let cloud = cloud(|_| {}).await;
    let p = provider(&cloud, "vk-fargate");
    let mut big = pod("big", None, 0);
    big.containers[0].resources = Resources {
        cpu_limit_millis: Some(32_000),
        ..Default::default()
    };
    let err = p.create(&big).await.unwrap_err();
    assert_eq!(err.reason(), Some("TooLarge"), "{err}");
    assert_eq!(task_count(&cloud), 0);
    let mut privileged = pod("root", None, 0);
    privileged.containers[0].security.privileged = Some(true);
    assert_eq!(
        p.create(&privileged).await.unwrap_err().reason(),
        Some("Unsupported")
    );
}

#[tokio::test]
async fn logs_follow_with_tail_since_and_timestamps_without_repeats() {
    let cloud = cloud(|c| c.simulate.log_interval_ms = 30).await;
    let p = provider(&cloud, "vk-fargate");
    p.create(&pod("talk", Some(1500), 0)).await.unwrap();
    wait_for(&p, "talk", running).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pref = pod_ref("talk");
    let opts = LogOptions {
        follow: true,
        tail_lines: Some(2),
        ..Default::default()
    };
    let mut stream = p.logs(&pref, "app", &opts).await.unwrap();
    let mut text = String::new();
    // The stream ends by itself once the container stopped; the status poller must run.
    let lister = async {
        loop {
            let _ = p.list().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let reader = async {
        while let Some(chunk) = stream.next().await {
            text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = lister => unreachable!(),
        _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("follow never ended: {text}"),
    }
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "{text}");
    let numbers: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("app: line ")?.parse().ok())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no repeats or gaps: {numbers:?}"
    );
    assert!(numbers[0] > 2, "the tail started late: {numbers:?}");
    assert!(text.contains("exiting with code 0"), "{text}");

    // One-shot reads: everything, a tail, since, timestamps, a byte limit.
    let all = read(&p, &LogOptions::default()).await;
    assert!(all.starts_with("app: started"), "{all}");
    let tail = read(
        &p,
        &LogOptions {
            tail_lines: Some(3),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tail.lines().count(), 3);
    assert!(tail.ends_with("exiting with code 0\n"), "{tail}");
    let stamped = read(
        &p,
        &LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        },
    )
    .await;
    let (ts, rest) = stamped.split_once(' ').unwrap();
    let at: jiff::Timestamp = ts.parse().unwrap();
    assert_eq!(rest, "app: exiting with code 0\n");
    let since = read(
        &p,
        &LogOptions {
            since: Some(at),
            ..Default::default()
        },
    )
    .await;
    assert!(since.lines().count() <= 2, "{since}");
    assert!(since.ends_with("exiting with code 0\n"), "{since}");
    let cut = read(
        &p,
        &LogOptions {
            limit_bytes: Some(5),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(cut, "app: ");
    assert!(p.logs(&pref, "nope", &LogOptions::default()).await.is_err());

    async fn read(p: &crate::FargateProvider, opts: &LogOptions) -> String {
        let mut s = p.logs(&pod_ref("talk"), "app", opts).await.unwrap();
        let mut text = String::new();
        while let Some(chunk) = s.next().await {
            text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
        text
    }
}

#[tokio::test]
async fn irsa_keys_rotate_through_the_faces_sts() {
    let cloud = cloud(|c| c.sts.lifetime_secs = Some(2)).await;
    let dir = std::env::temp_dir().join(format!("vk-fargate-irsa-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    let enc = |v: serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let jwt = format!(
        "{}.{}.c2ln",
        enc(serde_json::json!({"alg": "RS256"})),
        enc(
            serde_json::json!({"iss": "https://oidc.example", "sub": "system:serviceaccount:vk:vk",
            "aud": "sts.amazonaws.com", "exp": jiff::Timestamp::now().as_second() + 3600})
        )
    );
    std::fs::write(&file, jwt).unwrap();
    let mut config = config(&cloud, "vk-fargate");
    config.credentials = crate::credentials::CredentialsConfig {
        source: crate::credentials::SourceKind::Irsa,
        role_arn: Some("arn:aws:iam::123456789012:role/vk".into()),
        web_identity_token_file: Some(file),
        sts_endpoint: Some(cloud.endpoint()),
        ..Default::default()
    };
    let p = crate::FargateProvider::with_env(config, &|_| None).unwrap();
    p.create(&pod("irsa", None, 0)).await.unwrap();
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        p.list()
            .await
            .expect("every listing works across key rotations");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        p.client().credentials().fetches() >= 3,
        "{}",
        p.client().credentials().fetches()
    );
    assert!(p.node_conditions()[0].healthy);
}

#[tokio::test]
async fn a_hundred_creates_are_paced_without_a_throttling_failure() {
    let cloud = cloud(|_| {}).await;
    let mut config = config(&cloud, "vk-fargate");
    config.retry.max_attempts = 1; // a throttled call would fail the create
    let p = crate::FargateProvider::with_env(config, &env(&[])).unwrap();
    let pods: Vec<_> = (0..100).map(|i| pod(&format!("b{i}"), None, 0)).collect();
    let start = tokio::time::Instant::now();
    let results = futures::future::join_all(pods.iter().map(|pod| p.create(pod))).await;
    for r in results {
        r.expect("no create is throttled");
    }
    let took = start.elapsed();
    // Fargate's launch rate: a burst of 20 RunTask calls, then 20 a second.
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let all = statuses(&p).await;
    assert_eq!(all.len(), 100);
    assert_eq!(task_count(&cloud), 100);
    for pod in &pods {
        wait_for(&p, &pod.pod.name, running).await;
    }
}

#[tokio::test]
async fn task_definitions_are_shared_by_shape_and_deregistered_when_unused() {
    let cloud = cloud(|_| {}).await;
    let p = provider(&cloud, "vk-fargate");
    let a = pod("a", None, 0);
    let mut b = pod("b", None, 0);
    b.containers[0].env.push(vk_core::provider::EnvVar {
        name: "ONLY_B".into(),
        value: "x".into(),
    });
    let mut c = pod("c", None, 0);
    c.containers[0].image = "alpine:3".into();
    for pod in [&a, &b, &c] {
        p.create(pod).await.unwrap();
    }
    assert_eq!(active_defs(&p).await.len(), 2, "a and b share their shape");
    p.delete(&c.pod, Duration::ZERO).await.unwrap();
    let _ = p.list().await.unwrap();
    assert_eq!(active_defs(&p).await.len(), 1, "c's definition is gone");
    // A stale definition of the node, left from before a restart, goes on the first listing.
    p.delete(&a.pod, Duration::ZERO).await.unwrap();
    let kept = active_defs(&p).await;
    assert_eq!(kept.len(), 1, "b still uses it");
    drop(p);
    let again = provider(&cloud, "vk-fargate");
    again.create(&pod("d", None, 0)).await.unwrap(); // the shape of a and b: reused
    assert_eq!(active_defs(&again).await, kept);
    // The deleted pods' tasks may still be stopping: vk-core's orphan sweep deletes them.
    for gone in [&a.pod, &c.pod] {
        again.delete(gone, Duration::ZERO).await.unwrap();
    }
    again.delete(&b.pod, Duration::ZERO).await.unwrap();
    again.delete(&pod_ref("d"), Duration::ZERO).await.unwrap();
    let left = again.list().await.unwrap();
    let defs = active_defs(&again).await;
    assert!(defs.is_empty(), "{defs:?} {left:?}");
}

#[tokio::test]
async fn files_and_empty_dirs_reach_the_task() {
    let cloud = cloud(|_| {}).await;
    let p = provider(&cloud, "vk-fargate");
    let mut pod = pod("vols", None, 0);
    pod.volumes = vec![
        Volume {
            name: "work".into(),
            source: VolumeSource::EmptyDir {
                memory: false,
                size_limit_bytes: Some(30 * 1024 * 1024 * 1024),
            },
        },
        Volume {
            name: "conf".into(),
            source: VolumeSource::Files(vec![VolumeFile {
                path: "app/settings.json".into(),
                content: b"{\"a\": 1}".to_vec(),
                mode: 0o644,
            }]),
        },
    ];
    pod.init_containers = vec![ContainerSpec {
        name: "prepare".into(),
        image: "busybox".into(),
        ..Default::default()
    }];
    pod.containers[0].volume_mounts = vec![
        VolumeMount {
            volume: "work".into(),
            mount_path: "/work".into(),
            read_only: false,
            sub_path: None,
        },
        VolumeMount {
            volume: "conf".into(),
            mount_path: "/etc/app".into(),
            read_only: false,
            sub_path: None,
        },
    ];
    let task = crate::mapping::pod_task(&pod, &config(&cloud, "vk-fargate")).unwrap();
    let d = &task.definition;
    assert_eq!(d.ephemeral_storage.unwrap().size_in_gib, 30);
    let names: Vec<_> = d
        .container_definitions
        .iter()
        .map(|c| c.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["vk-files", "prepare", "app"]);
    assert_eq!(
        d.container_definitions[2].depends_on[0].container_name,
        "prepare"
    );
    assert_eq!(
        d.container_definitions[1].depends_on[0].container_name,
        "vk-files"
    );
    assert_eq!(
        d.container_definitions[2].mount_points[1].read_only,
        Some(true)
    );
    let ov = task.run.overrides.as_ref().unwrap();
    assert_eq!(ov.container_overrides[0].name.as_deref(), Some("vk-files"));
    assert!(task.run.client_token.as_deref() == Some("vk-uid-vols"));

    // The simulated steps end at once; the pod runs with its init container done.
    p.create(&pod).await.unwrap();
    let s = wait_for(&p, "vols", |s| s.phase != InstancePhase::Pending).await;
    assert_eq!(s.containers.len(), 1, "vk-files is not shown: {s:?}");
    let mut with_sub = super::tests_support::pod("sub", None, 0);
    with_sub.volumes = vec![Volume {
        name: "work".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit_bytes: None,
        },
    }];
    with_sub.containers[0].volume_mounts = vec![VolumeMount {
        volume: "work".into(),
        mount_path: "/w".into(),
        read_only: false,
        sub_path: Some("x".into()),
    }];
    assert_eq!(
        p.create(&with_sub).await.unwrap_err().reason(),
        Some("SubPathNotSupported")
    );
}

#[tokio::test]
async fn exec_through_the_provider_runs_in_the_task_with_its_exit_code() {
    // The process executor: the task's container is a sandboxed process with a real shell.
    cloudsim::engine::executor::process::check_bwrap(std::path::Path::new("bwrap"))
        .await
        .expect("bubblewrap");
    let work =
        std::env::temp_dir().join(format!("vk-fargate-provider-exec-{}", std::process::id()));
    let c = cloud(|c| {
        c.executor = cloudsim::engine::executor::ExecutorKind::Process;
        c.process.work_dir = Some(work.clone());
    })
    .await;
    let p = provider(&c, "vk-fargate");
    let mut web = pod("sh", None, 0);
    web.containers[0].working_dir = Some("/work".into());
    web.containers[0].command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "mkdir -p /work; exec sleep 600".into(),
    ];
    p.create(&web).await.unwrap();
    wait_for(&p, "sh", running).await;
    let io = || vk_core::provider::ExecIo::empty();
    let err = p.exec(&web.pod, "app", Vec::new(), io()).await.unwrap_err();
    assert_eq!(err.reason(), Some("EmptyCommand"));
    let err = p
        .exec(&web.pod, "nope", vec!["true".into()], io())
        .await
        .unwrap_err();
    assert_eq!(
        err.class(),
        vk_core::provider::ErrorClass::NotFound,
        "{err}"
    );
    assert_eq!(
        p.work_dir(&web.pod, "app").await.as_deref(),
        Some("/work"),
        "from the task definition"
    );
    // ExecuteCommand, the data channel and the shell protocol: stdout, stderr apart, stdin
    // to its end, the working directory and the command's own exit code.
    let client = cloudsim::test_support::exec_client(Some(b"from stdin\n"), false);
    let argv = ["sh", "-c", "pwd; cat; echo oops >&2; exit 7"]
        .map(String::from)
        .to_vec();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        p.exec(&web.pod, "app", argv, client.io),
    )
    .await
    .expect("the exec ends")
    .unwrap();
    assert_eq!(outcome, vk_core::provider::ExecOutcome::Exited(7));
    assert_eq!(
        cloudsim::test_support::read_all(client.stdout).await,
        "/work\nfrom stdin\n"
    );
    assert_eq!(
        cloudsim::test_support::read_all(client.stderr).await,
        "oops\n"
    );
    p.delete(&web.pod, Duration::from_secs(1)).await.unwrap();
    drop(c);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_pod_with_err_image_pull() {
    let cloud = cloud(|c| c.catalog.allow_unknown = false).await;
    let p = provider(&cloud, "vk-fargate");
    let mut bad = pod("pull", None, 0);
    bad.containers[0].image = "registry.example/nope/missing:1".into();
    p.create(&bad).await.unwrap();
    let s = wait_for(&p, "pull", |s| s.phase == InstancePhase::Failed).await;
    assert_eq!(s.reason.as_deref(), Some("TaskFailedToStart"), "{s:?}");
    assert!(
        s.message
            .as_deref()
            .is_some_and(|m| m.contains("CannotPullContainerError")),
        "{s:?}"
    );
    assert!(
        matches!(&s.containers[0].state, ContainerState::Waiting { reason, .. } if reason == "ErrImagePull"),
        "{s:?}"
    );
}
