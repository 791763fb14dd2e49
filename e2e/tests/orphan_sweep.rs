//! Instances whose pod is gone are deleted by vk's orphan sweep: a pod force-deleted while vk
//! was down, and an ended pod removed from the API while the cloud refused vk's delete.

use std::time::Duration;

use e2e::cloud::set_faults;
use e2e::harness::Options;
use e2e::pods::{pod_for_node, wait_phase};
use e2e::{kubectl_ok, wait_for};
use k8s_openapi::api::core::v1::EnvVar;

fn timed(name: &str, node: &str, run: &str) -> k8s_openapi::api::core::v1::Pod {
    let mut pod = pod_for_node(name, node, &["main"], &[]);
    pod.spec.as_mut().unwrap().containers[0].env = Some(vec![EnvVar {
        name: "MOCKCLOUD_RUN_MS".into(),
        value: Some(run.into()),
        ..Default::default()
    }]);
    pod
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_of_pods_gone_while_vk_or_the_cloud_was_away_are_swept() {
    let mut s = Options::eci("vk-orphan", "simulate", &[]).start().await;
    let node = s.vk.node.clone();
    s.run_pod(&timed("away", &node, "forever")).await;
    s.vk.kill();
    kubectl_ok(&[
        "delete",
        "pod",
        "away",
        "-n",
        &s.ns.name,
        "--force",
        "--grace-period=0",
    ]);
    s.vk.restart();
    wait_for(
        "the instance of the pod deleted while vk was down to go",
        Duration::from_secs(30),
        || async { s.cloud().groups(&node).await.unwrap_or_default().is_empty() },
    )
    .await;

    // An ended pod goes from the API at once on delete; the cloud is down meanwhile, longer
    // than vk's client retries: the periodic sweep (every 60 s) deletes the instance.
    s.pods
        .create(&Default::default(), &timed("ended", &node, "500"))
        .await
        .unwrap();
    wait_phase(&s.pods, "ended", "Succeeded", Duration::from_secs(60)).await;
    set_faults(&s.cloud().endpoint, r#"{"api_down":true}"#).await;
    kubectl_ok(&["delete", "pod", "ended", "-n", &s.ns.name]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    set_faults(&s.cloud().endpoint, "{}").await;
    wait_for(
        "the instance of the ended pod to go",
        Duration::from_secs(70),
        || async { s.cloud().groups(&node).await.unwrap_or_default().is_empty() },
    )
    .await;
}
