//! Component tests: the ACI provider against the simulator's ACI face over HTTPS (simulate
//! executor): lifecycle with exit codes, init containers, logs, follow, bad pods, delete.

use std::time::Duration;

use futures::TryStreamExt as _;
use vk_core::provider::{
    ContainerState, ErrorClass, InstancePhase, LogOptions, PodRef, Provider, Resources,
    RestartPolicy, StatusSource,
};

use crate::tests_support::*;

fn exit_code(state: &ContainerState) -> Option<i32> {
    match state {
        ContainerState::Terminated { exit_code, .. } => Some(*exit_code),
        _ => None,
    }
}

async fn read_logs(
    provider: &crate::AciProvider,
    pod: &PodRef,
    container: &str,
    opts: LogOptions,
) -> String {
    let chunks: Vec<bytes::Bytes> = provider
        .logs(pod, container, &opts)
        .await
        .expect("logs")
        .try_collect()
        .await
        .expect("log stream");
    String::from_utf8(chunks.concat()).expect("utf-8")
}

#[tokio::test]
async fn create_run_succeed_fail_with_exit_codes_and_delete() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-a");
    assert!(
        matches!(provider.status_source(), StatusSource::Poll(d) if d == Duration::from_millis(100))
    );
    provider.ping().await.expect("ping");

    let ok = pod(
        "uid-ok",
        RestartPolicy::Never,
        vec![sim_container("app", "300", 0)],
    );
    let bad = pod(
        "uid-bad",
        RestartPolicy::Never,
        vec![sim_container("app", "200", 3)],
    );
    provider.create(&ok).await.expect("create");
    provider.create(&bad).await.expect("create");
    // A second create of the same pod adopts its group.
    provider.create(&ok).await.expect("create again");

    let running = wait_for(&provider, "uid-ok", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    assert_eq!(running.pod, ok.pod);
    assert!(running.pod_ip.is_some(), "{running:#?}");
    assert!(matches!(
        running.containers[0].state,
        ContainerState::Running { .. }
    ));

    let done = wait_for(&provider, "uid-ok", "Succeeded", |s| {
        s.phase == InstancePhase::Succeeded
    })
    .await;
    assert_eq!(exit_code(&done.containers[0].state), Some(0));
    let failed = wait_for(&provider, "uid-bad", "Failed", |s| {
        s.phase == InstancePhase::Failed
    })
    .await;
    assert_eq!(
        exit_code(&failed.containers[0].state),
        Some(3),
        "{failed:#?}"
    );

    let logs = read_logs(&provider, &ok.pod, "app", LogOptions::default()).await;
    assert!(logs.contains("app: line 1\n"), "{logs}");
    assert!(
        !logs.starts_with("20"),
        "timestamps are cut unless asked: {logs}"
    );
    let stamped = read_logs(
        &provider,
        &ok.pod,
        "app",
        LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(stamped.lines().count(), 1, "{stamped}");
    assert!(stamped.starts_with("20"), "{stamped}");

    // Another node sees none of these groups.
    let other = provider_for(&cloud, "node-b");
    assert!(other.list().await.unwrap().is_empty());

    provider
        .delete(&ok.pod, Duration::ZERO)
        .await
        .expect("delete");
    provider
        .delete(&ok.pod, Duration::ZERO)
        .await
        .expect("deleting twice is fine");
    provider
        .delete(&bad.pod, Duration::ZERO)
        .await
        .expect("delete");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !provider.list().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the groups are gone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn provider_for(cloud: &cloudsim::aci::AciCloud, node: &str) -> crate::AciProvider {
    provider(cloud, node)
}

#[tokio::test]
async fn init_containers_run_first_and_report_their_exit_codes() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-i");
    let mut p = pod(
        "uid-init",
        RestartPolicy::Never,
        vec![sim_container("app", "100", 0)],
    );
    p.init_containers = vec![sim_container("init", "50", 0)];
    provider.create(&p).await.expect("create");
    let done = wait_for(&provider, "uid-init", "Succeeded", |s| {
        s.phase == InstancePhase::Succeeded
    })
    .await;
    assert_eq!(done.init_containers.len(), 1);
    assert_eq!(exit_code(&done.init_containers[0].state), Some(0));
    assert_eq!(exit_code(&done.containers[0].state), Some(0));
    // A failing init container fails the pod, and the app never starts.
    let mut f = pod(
        "uid-init-bad",
        RestartPolicy::Never,
        vec![sim_container("app", "100", 0)],
    );
    f.init_containers = vec![sim_container("init", "50", 7)];
    provider.create(&f).await.expect("create");
    let failed = wait_for(&provider, "uid-init-bad", "Failed", |s| {
        s.phase == InstancePhase::Failed
    })
    .await;
    assert_eq!(
        exit_code(&failed.init_containers[0].state),
        Some(7),
        "{failed:#?}"
    );
    assert!(
        exit_code(&failed.containers[0].state).is_none(),
        "{failed:#?}"
    );
}

#[tokio::test]
async fn follow_sends_every_line_once_until_the_container_ends() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-f");
    let p = pod(
        "uid-follow",
        RestartPolicy::Never,
        vec![sim_container("app", "1500", 0)],
    );
    provider.create(&p).await.expect("create");
    wait_for(&provider, "uid-follow", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let followed = tokio::time::timeout(
        Duration::from_secs(30),
        read_logs(
            &provider,
            &p.pod,
            "app",
            LogOptions {
                follow: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect("the follow ends with the container");
    let whole = read_logs(&provider, &p.pod, "app", LogOptions::default()).await;
    assert_eq!(followed, whole, "no line repeated or lost");
    let numbers: Vec<u32> = followed
        .lines()
        .filter_map(|l| l.strip_prefix("app: line ")?.parse().ok())
        .collect();
    assert!(numbers.len() > 20, "{followed}");
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    assert!(
        followed.ends_with("app: exiting with code 0\n"),
        "{followed}"
    );
}

#[tokio::test]
async fn pods_aci_cannot_run_get_a_reason() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-x");
    let mut big = sim_container("app", "100", 0);
    big.resources = Resources {
        cpu_request_millis: Some(8000),
        ..Default::default()
    };
    let err = provider
        .create(&pod("uid-big", RestartPolicy::Never, vec![big]))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some("TooLarge"), "{err}");
    assert!(err.message().contains("8 cores"), "{err}");
    let mut args_only = sim_container("app", "100", 0);
    args_only.args = vec!["--flag".into()];
    let err = provider
        .create(&pod("uid-args", RestartPolicy::Never, vec![args_only]))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some("UnsupportedSpec"), "{err}");
    // An image the cloud cannot pull: the pod fails with the cloud's reason, not silently.
    let mut nope = sim_container("app", "100", 0);
    nope.image = "example.com/nope:1".into();
    match provider
        .create(&pod("uid-nope", RestartPolicy::Never, vec![nope]))
        .await
    {
        Err(e) => assert_ne!(e.class(), ErrorClass::Transient, "{e}"),
        Ok(()) => {
            let s = wait_for(&provider, "uid-nope", "a failure", |s| {
                s.phase == InstancePhase::Failed
                    || matches!(&s.containers[0].state, ContainerState::Waiting { reason, .. } if reason != "ContainerCreating")
            })
            .await;
            assert!(format!("{s:?}").to_lowercase().contains("pull"), "{s:#?}");
        }
    }
    assert!(
        provider
            .logs(
                &PodRef {
                    namespace: "default".into(),
                    name: "gone".into(),
                    uid: "u".into()
                },
                "app",
                &LogOptions::default()
            )
            .await
            .is_err()
    );
}

#[tokio::test]
async fn attach_streams_the_containers_output_until_it_ends() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-att");
    let p = pod(
        "uid-att",
        RestartPolicy::Never,
        vec![sim_container("app", "400", 0)],
    );
    provider.create(&p).await.expect("create");
    wait_for(&provider, "uid-att", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let client = cloudsim::test_support::exec_client(None, false);
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        provider.attach(&p.pod, "app", client.io),
    )
    .await
    .expect("attach ends with the container")
    .expect("attach starts");
    assert_eq!(outcome, vk_core::provider::ExecOutcome::Exited(0));
    let out = cloudsim::test_support::read_all(client.stdout).await;
    assert!(out.contains("app: line"), "{out}");
}

#[tokio::test]
async fn changed_file_volumes_are_put_again_only_when_asked() {
    use vk_core::provider::{Volume, VolumeFile, VolumeSource};
    let cloud = cloud(|_| {}).await;
    let files = |token: &[u8]| {
        vec![Volume {
            name: "sa".into(),
            source: VolumeSource::Files(vec![VolumeFile {
                path: "token".into(),
                content: token.to_vec(),
                mode: 0o644,
            }]),
        }]
    };
    let mut p = pod(
        "uid-upd",
        RestartPolicy::Always,
        vec![sim_container("app", "forever", 0)],
    );
    p.volumes = files(b"token-1");
    let quiet = provider(&cloud, "node-u");
    quiet.create(&p).await.unwrap();
    wait_for(&quiet, "uid-upd", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let first = files_tag(&quiet).await;
    p.volumes = files(b"token-2");
    quiet.update(&p).await.unwrap();
    assert_eq!(
        files_tag(&quiet).await,
        first,
        "by default a running group is left alone"
    );

    let mut config = config(&cloud, "node-u");
    config.refresh_volumes = true;
    let refreshing = crate::AciProvider::with_env(config, &env(&[])).unwrap();
    refreshing.list().await.unwrap();
    refreshing.update(&p).await.unwrap();
    assert_ne!(
        files_tag(&refreshing).await,
        first,
        "the group was put again with the new files"
    );
    refreshing.list().await.unwrap();
    refreshing.update(&p).await.unwrap();
}

async fn files_tag(provider: &crate::AciProvider) -> String {
    let groups = provider.all_groups().await.unwrap();
    groups[0].tags.get("vk-files").cloned().unwrap()
}

#[tokio::test]
async fn exec_into_a_finished_or_unknown_container_is_refused_at_once() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-nx");
    let p = pod(
        "uid-nx",
        RestartPolicy::Never,
        vec![sim_container("app", "50", 0)],
    );
    provider.create(&p).await.unwrap();
    wait_for(&provider, "uid-nx", "Succeeded", |s| {
        s.phase == InstancePhase::Succeeded
    })
    .await;
    let started = tokio::time::Instant::now();
    let client = cloudsim::test_support::exec_client(None, false);
    let err = provider
        .exec(&p.pod, "app", vec!["true".into()], client.io)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match err {
        Err(e) => assert!(!e.is_transient(), "{e}"),
        Ok(outcome) => assert!(
            matches!(outcome, vk_core::provider::ExecOutcome::Error(_)),
            "{outcome:?}"
        ),
    }
    let client = cloudsim::test_support::exec_client(None, false);
    let err = provider
        .exec(&p.pod, "nope", vec!["true".into()], client.io)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
    let gone = PodRef {
        namespace: "default".into(),
        name: "gone".into(),
        uid: "x".into(),
    };
    let client = cloudsim::test_support::exec_client(None, false);
    let err = provider
        .exec(&gone, "app", vec!["true".into()], client.io)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
}
