//! Component tests: the ECI provider against the mock cloud over HTTP (simulate executor).

use std::time::Duration;

use futures::TryStreamExt as _;
use vk_core::provider::{
    ContainerSpec, ContainerState, InstancePhase, LogOptions, Provider, ProviderError,
    RestartPolicy, StatusSource, Volume, VolumeFile, VolumeSource,
};

use crate::pod::{client_token, create_request};
use crate::tests_support::*;
use crate::wire::action::{DescribeContainerGroupStatus, RestartContainerGroup};
use crate::wire::request::{DescribeContainerGroups, ExecContainerCommand};

fn exit_code(state: &ContainerState) -> Option<i32> {
    match state {
        ContainerState::Terminated { exit_code, .. } => Some(*exit_code),
        _ => None,
    }
}

async fn read_logs(
    provider: &super::EciProvider,
    pod: &vk_core::provider::PodRef,
    opts: LogOptions,
) -> String {
    let chunks: Vec<bytes::Bytes> = provider
        .logs(pod, "app", &opts)
        .await
        .expect("logs")
        .try_collect()
        .await
        .expect("log stream");
    String::from_utf8(chunks.concat()).expect("utf-8")
}

#[tokio::test]
async fn create_list_logs_delete() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-a");
    assert!(
        matches!(provider.status_source(), StatusSource::Poll(d) if d == Duration::from_millis(100))
    );
    provider.ping().await.expect("ping");

    let pod = pod(
        "uid-1",
        RestartPolicy::Never,
        vec![sim_container("app", "300", 0)],
    );
    provider.create(&pod).await.expect("create");
    let running = wait_for(&provider, "uid-1", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    assert_eq!(running.pod, pod.pod);
    assert!(running.pod_ip.is_some());
    assert!(matches!(
        running.containers[0].state,
        ContainerState::Running { .. }
    ));
    assert!(running.containers[0].ready);

    let done = wait_for(&provider, "uid-1", "Succeeded", |s| {
        s.phase == InstancePhase::Succeeded
    })
    .await;
    // A successful container is Terminated with its exit code, not Running.
    assert_eq!(exit_code(&done.containers[0].state), Some(0));
    assert!(!done.containers[0].ready);
    let status = cloudsim::test_support::status_of(&provider, &pod.pod)
        .await
        .expect("status")
        .expect("exists");
    assert_eq!(status.phase, InstancePhase::Succeeded);

    let logs = read_logs(&provider, &pod.pod, LogOptions::default()).await;
    assert!(logs.contains("app: line 1\n"), "{logs}");
    assert!(logs.ends_with("app: exiting with code 0\n"), "{logs}");
    let tail = read_logs(
        &provider,
        &pod.pod,
        LogOptions {
            tail_lines: Some(1),
            timestamps: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tail.lines().count(), 1);
    let (ts, line) = tail.trim_end().split_once(' ').expect("timestamped");
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{tail}");
    assert_eq!(line, "app: exiting with code 0");

    provider
        .delete(&pod.pod, Duration::from_secs(30))
        .await
        .expect("delete");
    assert!(provider.list().await.expect("list").is_empty());
    assert!(
        cloudsim::test_support::status_of(&provider, &pod.pod)
            .await
            .expect("status")
            .is_none()
    );
    // Deleting again is not an error.
    provider
        .delete(&pod.pod, Duration::ZERO)
        .await
        .expect("delete twice");
    let missing = provider.logs(&pod.pod, "app", &LogOptions::default()).await;
    assert!(matches!(missing, Err(ProviderError::NotFound(_))));
}

#[tokio::test]
async fn follow_streams_until_the_container_ends() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-a");
    let pod = pod(
        "uid-f",
        RestartPolicy::Never,
        vec![sim_container("app", "600", 0)],
    );
    provider.create(&pod).await.expect("create");
    wait_for(&provider, "uid-f", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let follow = LogOptions {
        follow: true,
        ..Default::default()
    };
    let logs = tokio::time::timeout(
        Duration::from_secs(20),
        read_logs(&provider, &pod.pod, follow),
    )
    .await
    .expect("the follow ends when the container does");
    let lines: Vec<&str> = logs.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.contains("started")),
        "{logs}"
    );
    assert_eq!(lines.last(), Some(&"app: exiting with code 0"), "{logs}");
    // Every line exactly once, in order.
    let numbered: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("app: line "))
        .map(|n| n.parse().expect("number"))
        .collect();
    assert!(numbered.len() >= 10, "{logs}");
    assert_eq!(
        numbered,
        (1..=numbered.len() as u32).collect::<Vec<_>>(),
        "{logs}"
    );
}

#[tokio::test]
async fn failures_restarts_and_init_containers_are_reported() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-a");
    let mut crashing = pod(
        "uid-c",
        RestartPolicy::OnFailure,
        vec![sim_container("app", "20", 3)],
    );
    crashing.init_containers = vec![sim_container("init", "10", 0)];
    provider.create(&crashing).await.expect("create");
    let restarted = wait_for(&provider, "uid-c", "restarted", |s| {
        s.containers[0].restart_count >= 1
    })
    .await;
    assert_eq!(restarted.phase, InstancePhase::Running);
    assert_eq!(
        restarted.containers[0]
            .last_state
            .as_ref()
            .and_then(exit_code),
        Some(3)
    );
    assert_eq!(exit_code(&restarted.init_containers[0].state), Some(0));

    let failing = pod(
        "uid-n",
        RestartPolicy::Never,
        vec![sim_container("app", "20", 2)],
    );
    provider.create(&failing).await.expect("create");
    let failed = wait_for(&provider, "uid-n", "Failed", |s| {
        s.phase == InstancePhase::Failed
    })
    .await;
    assert_eq!(exit_code(&failed.containers[0].state), Some(2));

    let mut bad_image = pod(
        "uid-i",
        RestartPolicy::Never,
        vec![sim_container("app", "20", 0)],
    );
    bad_image.containers[0].image = "example.com/no/such-image:1".into();
    provider.create(&bad_image).await.expect("create");
    let pulling = wait_for(&provider, "uid-i", "ErrImagePull", |s| {
        matches!(&s.containers[0].state, ContainerState::Waiting { reason, .. } if reason == "ErrImagePull")
    })
    .await;
    assert_eq!(pulling.phase, InstancePhase::Pending);
}

#[tokio::test]
async fn client_token_makes_creates_idempotent() {
    let cloud = cloud(|_| {}).await;
    let first = provider(&cloud, "node-a");
    // A second provider process knows nothing of the first one's creates.
    let second = provider(&cloud, "node-a");
    let pod = pod(
        "uid-t",
        RestartPolicy::Always,
        vec![sim_container("app", "forever", 0)],
    );
    first.create(&pod).await.expect("create");
    second.create(&pod).await.expect("create again");
    first.create(&pod).await.expect("and again");
    assert_eq!(cloud.engine().len(), 1);

    // The same token with other parameters is refused, as the service does.
    let mut other = create_request(&pod, "node-a", &Default::default()).expect("request");
    other.containers[0].image = "alpine".into();
    assert_eq!(
        other.client_token.as_deref(),
        Some(client_token(&pod).as_str())
    );
    let err = first.client().send(&other).await.unwrap_err();
    assert_eq!(err.code(), Some("IdempotentParameterMismatch"));
    assert!(matches!(
        ProviderError::from(err).plain(),
        ProviderError::InvalidSpec { .. }
    ));
}

/// A create whose answer was lost leaves a group the provider does not know of. The next
/// reconcile resolves the pod again, and its service-account token comes out re-issued, so
/// the retried create carries the same ClientToken with other contents: the group must be
/// adopted, not the pod failed as an invalid spec.
#[tokio::test]
async fn a_retried_create_with_reissued_tokens_adopts_the_group() {
    let cloud = cloud(|_| {}).await;
    let with_token = |token: &[u8]| {
        let mut p = pod(
            "uid-lost",
            RestartPolicy::Never,
            vec![sim_container("app", "forever", 0)],
        );
        p.volumes = vec![Volume {
            name: "kube-api-access".into(),
            source: VolumeSource::Files(vec![VolumeFile {
                path: "token".into(),
                content: token.to_vec(),
                mode: 0o600,
            }]),
        }];
        p
    };
    // The first attempt ran in the cloud, but its answer never reached this provider.
    let lost =
        create_request(&with_token(b"first"), "node-a", &Default::default()).expect("request");
    let first_id = provider(&cloud, "node-a")
        .client()
        .send(&lost)
        .await
        .expect("create")
        .container_group_id;

    let provider = provider(&cloud, "node-a");
    let again = with_token(b"re-issued");
    provider
        .create(&again)
        .await
        .expect("the retried create adopts the existing group");
    assert_eq!(cloud.engine().len(), 1);
    let listed = provider.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].pod.uid, "uid-lost");
    // The provider now knows the group: deleting the pod deletes it.
    provider
        .delete(&again.pod, Duration::ZERO)
        .await
        .expect("delete");
    assert!(cloud.engine().is_empty(), "{first_id} was not deleted");
}

#[tokio::test]
async fn list_is_per_node_and_paginated() {
    let cloud = cloud(|c| c.max_page_size = 3).await;
    let a = provider(&cloud, "node-a");
    let b = provider(&cloud, "node-b");
    for i in 0..7 {
        let p = pod(
            &format!("a-{i}"),
            RestartPolicy::Always,
            vec![sim_container("app", "forever", 0)],
        );
        a.create(&p).await.expect("create");
    }
    for i in 0..2 {
        let p = pod(
            &format!("b-{i}"),
            RestartPolicy::Always,
            vec![sim_container("app", "forever", 0)],
        );
        b.create(&p).await.expect("create");
    }
    let mut listed: Vec<String> = a
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.pod.uid)
        .collect();
    listed.sort();
    assert_eq!(listed, (0..7).map(|i| format!("a-{i}")).collect::<Vec<_>>());
    assert_eq!(b.list().await.expect("list").len(), 2);

    let page = a
        .client()
        .send(&DescribeContainerGroups::default())
        .await
        .expect("describe");
    assert_eq!(page.container_groups.len(), 3);
    assert_eq!(page.total_count, 9);
    assert!(!page.next_token.is_empty());
    let status = a
        .client()
        .send(&DescribeContainerGroupStatus(
            DescribeContainerGroups::default(),
        ))
        .await
        .expect("status");
    assert_eq!(status.data.len(), 9);
    assert_eq!(status.data[0].namespace, "default");
}

#[tokio::test]
async fn exec_restart_and_update() {
    let cloud = cloud(|_| {}).await;
    let provider = provider(&cloud, "node-a");
    let mut p = pod(
        "uid-e",
        RestartPolicy::Always,
        vec![sim_container("app", "forever", 0)],
    );
    p.volumes = vec![Volume {
        name: "token".into(),
        source: VolumeSource::Files(vec![VolumeFile {
            path: "token".into(),
            content: b"one".to_vec(),
            mode: 0o600,
        }]),
    }];
    provider.create(&p).await.expect("create");
    wait_for(&provider, "uid-e", "Running", |s| {
        s.phase == InstancePhase::Running
    })
    .await;
    let id = group_id(&provider).await;

    let answer = provider
        .client()
        .send(&ExecContainerCommand {
            container_group_id: id.clone(),
            container_name: "app".into(),
            command: vec!["echo".into(), "hello".into()],
            sync: true,
            ..Default::default()
        })
        .await
        .expect("exec");
    assert_eq!(answer.sync_response, "hello\n");
    assert!(!answer.request_id.is_empty());

    provider
        .client()
        .send(&RestartContainerGroup::new(&id))
        .await
        .expect("restart");
    let restarted = wait_for(&provider, "uid-e", "restarted", |s| {
        s.phase == InstancePhase::Running && s.containers[0].restart_count == 1
    })
    .await;
    assert_eq!(
        restarted.containers[0]
            .last_state
            .as_ref()
            .and_then(exit_code),
        Some(137)
    );

    // Re-issued file contents reach the running group.
    if let VolumeSource::Files(files) = &mut p.volumes[0].source {
        files[0].content = b"two".to_vec();
    }
    provider.update(&p).await.expect("update");
    // A finished group has nothing to update, which is not an error.
    let mut done = pod(
        "uid-d",
        RestartPolicy::Never,
        vec![sim_container("app", "10", 0)],
    );
    done.volumes = p.volumes.clone();
    provider.create(&done).await.expect("create");
    wait_for(&provider, "uid-d", "Succeeded", |s| {
        s.phase == InstancePhase::Succeeded
    })
    .await;
    provider
        .update(&done)
        .await
        .expect("update of a finished group");
    let gone = pod(
        "uid-none",
        RestartPolicy::Always,
        vec![ContainerSpec::default()],
    );
    assert!(matches!(
        provider.update(&gone).await,
        Err(ProviderError::NotFound(_))
    ));
}
