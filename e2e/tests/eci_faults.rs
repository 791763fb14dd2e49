//! The eci provider against a misbehaving cloud: the mock ECI cloud in `simulate` mode answers
//! ~30% of all calls with a 5xx (half of them after the action ran, so the answer is lost) and
//! throttles every call in bursts. Every pod must still reach its own final state with its
//! containers' exit codes, each pod must get exactly one container group, and deleting the
//! pods must leave no group behind.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::cloud::set_faults;
use e2e::harness::Options;
use e2e::pods::{phase, pod_for_node};
use e2e::wait_for;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, EnvVar, Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

const FLAKY: &str = r#"{"error_rate":0.3}"#;
/// A burst of throttling: the next N calls, whatever they are, are answered Throttling.User
/// (the 5xx go on). The first burst, as the pods are created, outlasts the client's own
/// retries of some creates, so vk-core's retry (a new resolve, a new token) runs too.
fn throttle_burst(calls: u32) -> String {
    format!(r#"{{"error_rate":0.3,"throttle_calls":{calls}}}"#)
}
const FIRST_BURST: u32 = 40;
const LATER_BURSTS: u32 = 8;
const BURST_EVERY: Duration = Duration::from_secs(8);

/// A simulated container: runs `run_ms`, then exits with `exit`.
fn sim(name: &str, run_ms: u64, exit: i32) -> Container {
    Container {
        name: name.into(),
        image: Some("busybox:1.36".into()),
        env: Some(vec![
            EnvVar {
                name: "MOCKCLOUD_RUN_MS".into(),
                value: Some(run_ms.to_string()),
                ..Default::default()
            },
            EnvVar {
                name: "MOCKCLOUD_EXIT_CODE".into(),
                value: Some(exit.to_string()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

/// What a pod must end as: its phase, and each container's exit code (init containers
/// first; `None` for a container that never ran).
struct Expected {
    phase: &'static str,
    init: Vec<Option<i32>>,
    apps: Vec<Option<i32>>,
}

/// Pod `i` of the mix: six kinds, run times spread so that pods start and stop throughout.
fn mixed_pod(i: usize, node: &str) -> (Pod, Expected) {
    let name = format!("mix-{i:02}");
    let run = 1000 + (i as u64 % 7) * 400;
    let mut pod = pod_for_node(&name, node, &["main"], &[]);
    let spec = pod.spec.as_mut().expect("spec");
    let code = |base: i32| base + (i as i32 % 5);
    let expected = match i % 6 {
        0 => {
            spec.containers = vec![sim("main", run, 0)];
            Expected {
                phase: "Succeeded",
                init: vec![],
                apps: vec![Some(0)],
            }
        }
        1 => {
            spec.containers = vec![sim("main", run, code(1))];
            Expected {
                phase: "Failed",
                init: vec![],
                apps: vec![Some(code(1))],
            }
        }
        2 => {
            spec.containers = vec![sim("main", run, 0), sim("sidecar", run / 2, 0)];
            Expected {
                phase: "Succeeded",
                init: vec![],
                apps: vec![Some(0), Some(0)],
            }
        }
        3 => {
            spec.containers = vec![sim("main", run, 0), sim("sidecar", run / 2, code(20))];
            Expected {
                phase: "Failed",
                init: vec![],
                apps: vec![Some(0), Some(code(20))],
            }
        }
        4 => {
            spec.init_containers = Some(vec![sim("prepare", 300, 0)]);
            spec.containers = vec![sim("main", run, 0)];
            Expected {
                phase: "Succeeded",
                init: vec![Some(0)],
                apps: vec![Some(0)],
            }
        }
        _ => {
            spec.init_containers = Some(vec![sim("prepare", 300, code(40))]);
            spec.containers = vec![sim("main", run, 0)];
            Expected {
                phase: "Failed",
                init: vec![Some(code(40))],
                apps: vec![None],
            }
        }
    };
    (pod, expected)
}

fn exit_codes(statuses: Option<&Vec<ContainerStatus>>, names: &[String]) -> Vec<Option<i32>> {
    names
        .iter()
        .map(|name| {
            statuses
                .and_then(|s| s.iter().find(|c| &c.name == name))
                .and_then(|c| c.state.as_ref()?.terminated.as_ref())
                .map(|t| t.exit_code)
        })
        .collect()
}

fn names(containers: &[Container]) -> Vec<String> {
    containers.iter().map(|c| c.name.clone()).collect()
}

#[tokio::test]
async fn pods_reach_their_final_state_through_5xx_and_throttling_and_leave_no_group() {
    let s = Options::eci("vk-eci-faults", "simulate", &["--faults", FLAKY])
        .config("pod_workers: 8\n")
        .ready_timeout(Duration::from_secs(90))
        .start()
        .await;
    let (client, node, cloud, ns, pods) = (&s.client, s.vk.node.clone(), s.cloud(), &s.ns, &s.pods);

    // Throttling bursts for the whole test, on top of the 5xx.
    set_faults(&cloud.endpoint, &throttle_burst(FIRST_BURST)).await;
    let bursts = {
        let endpoint = cloud.endpoint.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(BURST_EVERY).await;
                set_faults(&endpoint, &throttle_burst(LATER_BURSTS)).await;
            }
        })
    };

    const PODS: usize = 24;
    let mut expected = BTreeMap::new();
    for i in 0..PODS {
        let (pod, want) = mixed_pod(i, &node);
        let name = pod.metadata.name.clone().expect("name");
        pods.create(&PostParams::default(), &pod).await.unwrap();
        expected.insert(name, want);
    }

    let terminal = |p: &Pod| matches!(phase(p).as_deref(), Some("Succeeded" | "Failed"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let finished = loop {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        if list.len() == PODS && list.iter().all(terminal) {
            break list;
        }
        if tokio::time::Instant::now() >= deadline {
            let pending: Vec<_> = list
                .iter()
                .filter(|p| !terminal(p))
                .map(|p| (p.metadata.name.clone(), p.status.clone()))
                .collect();
            panic!("pods not finished after 240 s: {pending:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let mut wrong = Vec::new();
    for pod in &finished {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let want = &expected[&name];
        let spec = pod.spec.as_ref().expect("spec");
        let status = pod.status.as_ref().expect("status");
        let init = exit_codes(
            status.init_container_statuses.as_ref(),
            &names(spec.init_containers.as_deref().unwrap_or_default()),
        );
        let apps = exit_codes(status.container_statuses.as_ref(), &names(&spec.containers));
        if phase(pod).as_deref() != Some(want.phase) || init != want.init || apps != want.apps {
            wrong.push(format!(
                "{name}: {:?} (reason {:?}: {:?}) init {init:?} apps {apps:?}; want {} init {:?} apps {:?}",
                phase(pod),
                status.reason,
                status.message,
                want.phase,
                want.init,
                want.apps
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "pods with the wrong final state:\n{}",
        wrong.join("\n")
    );

    // Lost answers were retried with the pod's ClientToken: one group per pod, no more. The
    // listing meets the same throttling bursts, which may outlast the client's own retries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut groups = loop {
        match cloud.groups(&node).await {
            Ok(groups) => break groups,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("listing the node's groups through the faults for 60 s: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    groups.sort();
    let mut want_groups: Vec<String> = expected.keys().cloned().collect();
    want_groups.sort();
    assert_eq!(groups, want_groups, "one container group per pod");

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let retried = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ProviderCreateFailed"))
        .count();
    eprintln!("{PODS} pods finished correctly; {retried} ProviderCreateFailed events on the way");

    // Delete them all while the cloud still misbehaves.
    for name in expected.keys() {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for(
        "every pod to leave the API",
        Duration::from_secs(120),
        || async {
            pods.list(&ListParams::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
        },
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let left = loop {
        let left = cloud.groups(&node).await;
        if left.as_ref().is_ok_and(Vec::is_empty) || tokio::time::Instant::now() >= deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bursts.abort();
    assert!(
        left.as_ref().is_ok_and(Vec::is_empty),
        "container groups left in the cloud after their pods were deleted: {left:?}"
    );
}
