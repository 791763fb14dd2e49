//! Two vk replicas for one eci node against the simulator, with leader election on: one runs
//! the node, the other stands by. SIGKILL of the active one: the standby takes over before the
//! node's heartbeat runs out (the Node never leaves Ready), no pod is created twice in the
//! cloud, running pods stay Running and a new pod runs. SIGTERM of the new active one: it hands
//! the Lease over at once (well before it would have expired) to the restarted first replica.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{node_condition, pod_for_node, wait_phase};
use e2e::vk::Vk;
use e2e::wait_for;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{EnvVar, Node, Pod};
use kube::api::Api;

/// Tighter than the defaults (15/10/2): the test cluster marks a silent node NotReady after
/// 30 s (the usual grace is 40 s or more).
const LEADER: &str = "leader_election:\n  enabled: true\n  lease_duration_seconds: 10\n  renew_deadline_seconds: 6\n  retry_period_seconds: 1\n";
const LEASE_DURATION: i64 = 10;

/// A pod whose container runs until deleted on the simulator.
fn long_running(name: &str, node: &str) -> Pod {
    let mut pod = pod_for_node(name, node, &["main"], &[]);
    pod.spec.as_mut().unwrap().containers[0].env = Some(vec![EnvVar {
        name: "MOCKCLOUD_RUN_MS".into(),
        value: Some("forever".into()),
        ..Default::default()
    }]);
    pod
}

async fn leader_lease(s: &TestBed) -> Option<Lease> {
    Api::<Lease>::namespaced(s.client.clone(), "vk-system")
        .get_opt(&format!("vk-{}", s.vk.node))
        .await
        .expect("reading the leader Lease")
}

/// Whether `vk` (identity `<host>_<pid>`) holds the leader Lease.
async fn holds(s: &TestBed, vk: &Vk) -> bool {
    let Some(pid) = vk.pid() else { return false };
    leader_lease(s)
        .await
        .and_then(|l| l.spec?.holder_identity)
        .is_some_and(|h| h.ends_with(&format!("_{pid}")))
}

/// The kubelet port the Node advertises (the active replica's).
async fn advertised_port(s: &TestBed) -> Option<i32> {
    let node = s.nodes.get(&s.vk.node).await.ok()?;
    Some(node.status?.daemon_endpoints?.kubelet_endpoint?.port)
}

/// Container groups in the cloud per pod UID (the tag vk puts on each group it creates).
async fn groups_per_uid(s: &TestBed) -> BTreeMap<String, usize> {
    let mut per_uid = BTreeMap::new();
    for group in s.cloud().node_groups(&s.vk.node).await {
        let uid = group
            .tags
            .iter()
            .find(|t| t.key == eci::wire::tags::POD_UID)
            .map(|t| t.value.clone())
            .unwrap_or_else(|| format!("untagged {}", group.container_group_id));
        *per_uid.entry(uid).or_insert(0) += 1;
    }
    per_uid
}

/// Every Ready condition of the Node that was not True, as a watch saw them.
fn watch_ready(nodes: &Api<Node>, node: &str) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let mut events = kube::runtime::watcher::watch_object(nodes.clone(), node).boxed();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let bad = match event {
                Ok(Some(node)) => match node_condition(&node, "Ready") {
                    Some((status, _)) if status == "True" => None,
                    other => Some(format!("Ready {other:?}")),
                },
                Ok(None) => Some("the Node was deleted".into()),
                Err(_) => None,
            };
            if let Some(bad) = bad {
                record.lock().unwrap().push(bad);
            }
        }
    });
    seen
}

async fn run_new_pod(s: &TestBed, name: &str) -> String {
    let pod = s.run_pod(&long_running(name, &s.vk.node)).await;
    pod.metadata.uid.expect("uid")
}

#[tokio::test]
async fn the_standby_takes_over_without_notready_or_duplicates_and_sigterm_hands_over() {
    let mut s = Options::eci("vk-ha", "simulate", &[])
        .config(LEADER)
        .start()
        .await;
    let node = s.vk.node.clone();
    // The first replica created the Lease and runs the node.
    wait_for(
        "the first replica to hold the leader Lease",
        Duration::from_secs(30),
        || holds(&s, &s.vk),
    )
    .await;
    let mut standby = s.vk.replica("b");
    wait_for(
        "the second replica to stand by",
        Duration::from_secs(60),
        || {
            let logs = standby.logs();
            async move { logs.contains("another replica is active; standing by") }
        },
    )
    .await;
    assert!(!holds(&s, &standby).await);
    assert_eq!(advertised_port(&s).await, Some(s.vk.kubelet_port as i32));

    let not_ready = watch_ready(&s.nodes, &node);
    let mut uids = BTreeMap::new();
    for i in 0..3 {
        let name = format!("before-{i}");
        uids.insert(name.clone(), run_new_pod(&s, &name).await);
    }

    // One pod ends while no replica is active: its final status must not be lost.
    let mut finishing = pod_for_node("finishes", &node, &["main"], &[]);
    finishing.spec.as_mut().unwrap().containers[0].env = Some(
        [("MOCKCLOUD_RUN_MS", "3000"), ("MOCKCLOUD_EXIT_CODE", "0")]
            .map(|(name, value)| EnvVar {
                name: name.into(),
                value: Some(value.into()),
                ..Default::default()
            })
            .to_vec(),
    );
    let finishing_uid = s.run_pod(&finishing).await.metadata.uid.expect("uid");

    // SIGKILL of the active replica: the standby takes over after the Lease expires.
    s.vk.kill();
    wait_for(
        "the standby to take the Lease over",
        Duration::from_secs(60),
        || holds(&s, &standby),
    )
    .await;
    wait_for(
        "the Node to advertise the new active replica's kubelet port",
        Duration::from_secs(30),
        || async { advertised_port(&s).await == Some(standby.kubelet_port as i32) },
    )
    .await;
    uids.insert("after-kill".into(), run_new_pod(&s, "after-kill").await);
    let done = wait_phase(&s.pods, "finishes", "Succeeded", Duration::from_secs(60)).await;
    let exit = done
        .status
        .and_then(|st| st.container_statuses)
        .unwrap_or_default()[0]
        .state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code);
    assert_eq!(exit, Some(0));

    // The killed replica comes back as the standby.
    s.vk.restart();
    wait_for(
        "the restarted replica to stand by",
        Duration::from_secs(60),
        || {
            let logs = s.vk.logs();
            async move { logs.contains("another replica is active; standing by") }
        },
    )
    .await;
    assert!(!holds(&s, &s.vk).await);

    // SIGTERM of the active replica: it stops its work, releases the Lease, and the standby
    // takes it well before it would have expired.
    let before = leader_lease(&s).await.and_then(|l| l.spec).expect("lease");
    let last_renewal = before.renew_time.expect("renewTime").0;
    assert_eq!(standby.terminate(), Some(0), "{}", standby.logs());
    assert!(
        standby.logs().contains("leader Lease released"),
        "{}",
        standby.logs()
    );
    wait_for(
        "the first replica to take the Lease back",
        Duration::from_secs(30),
        || holds(&s, &s.vk),
    )
    .await;
    let after = leader_lease(&s).await.and_then(|l| l.spec).expect("lease");
    let acquired = after.acquire_time.expect("acquireTime").0;
    assert!(
        acquired < last_renewal + jiff::SignedDuration::from_secs(LEASE_DURATION),
        "taken at {acquired}, not before expiry of the renewal at {last_renewal}: not handed over"
    );
    // Created, taken over after the kill, handed over on SIGTERM.
    assert_eq!(after.lease_transitions, Some(2));
    wait_for(
        "the Node to advertise the first replica's kubelet port again",
        Duration::from_secs(30),
        || async { advertised_port(&s).await == Some(s.vk.kubelet_port as i32) },
    )
    .await;
    uids.insert("after-term".into(), run_new_pod(&s, "after-term").await);

    // Every pod still Running as the same object, with exactly one group each in the cloud.
    for (name, uid) in &uids {
        let pod = wait_phase(&s.pods, name, "Running", Duration::from_secs(5)).await;
        assert_eq!(
            pod.metadata.uid.as_ref(),
            Some(uid),
            "{name} was re-created"
        );
        let restarts: i32 = pod
            .status
            .and_then(|st| st.container_statuses)
            .unwrap_or_default()
            .iter()
            .map(|c| c.restart_count)
            .sum();
        assert_eq!(restarts, 0, "{name} restarted");
    }
    let groups = groups_per_uid(&s).await;
    let mut want: BTreeMap<String, usize> = uids.values().map(|u| (u.clone(), 1)).collect();
    // The finished pod's group is still there (the pod was not deleted).
    want.insert(finishing_uid, 1);
    assert_eq!(
        groups, want,
        "container groups per pod UID (pods: {uids:?})"
    );

    let not_ready = not_ready.lock().unwrap().clone();
    assert!(
        not_ready.is_empty(),
        "the Node left Ready during the hand-overs: {not_ready:?}"
    );
}

/// An active replica that finds another holder in the Lease (as after a partition, when a
/// standby rightly took over) stops running the node and exits non-zero at once, so that two
/// replicas never run it together; the Deployment then restarts it as a standby.
#[tokio::test]
async fn an_active_replica_that_loses_the_lease_stops_and_exits_non_zero() {
    let mut s = Options::eci("vk-ha-lost", "simulate", &[])
        .config(LEADER)
        .start()
        .await;
    wait_for(
        "vk to hold the leader Lease",
        Duration::from_secs(30),
        || holds(&s, &s.vk),
    )
    .await;
    let api = Api::<Lease>::namespaced(s.client.clone(), "vk-system");
    let name = format!("vk-{}", s.vk.node);
    let mut lease = api.get(&name).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("another-replica".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        jiff::Timestamp::now(),
    ));
    spec.lease_duration_seconds = Some(60);
    api.replace(&name, &Default::default(), &lease)
        .await
        .unwrap();
    wait_for("vk to exit", Duration::from_secs(30), || {
        let done = s.vk.exited().is_some();
        async move { done }
    })
    .await;
    let logs = s.vk.logs();
    assert!(
        logs.contains("the leader Lease is held by another-replica now"),
        "{logs}"
    );
    assert_ne!(s.vk.exited().and_then(|e| e.code()), Some(0), "{logs}");
}

/// Replicas racing for a Lease nobody holds yet (the API server's optimistic concurrency
/// decides): exactly one wins; when it releases, exactly one of the others takes it, with one
/// more transition.
#[tokio::test]
async fn of_replicas_racing_for_a_lease_exactly_one_wins_and_a_release_passes_it_to_one() {
    use vk_core::leader::{LeaderConfig, LeaderElector};
    let client = e2e::client().await;
    let ns = e2e::TestNamespace::new(&client, "vk-ha-race").await;
    let mut electors: Vec<LeaderElector> = (0..4)
        .map(|i| {
            let mut config = LeaderConfig::new(&ns.name, "race", &format!("replica-{i}"));
            config.lease_duration = Duration::from_secs(30);
            config.renew_deadline = Duration::from_secs(20);
            config.retry_period = Duration::from_millis(200);
            LeaderElector::new(client.clone(), config)
        })
        .collect();
    // Each round: all but `skip` try for 3 s; who got it.
    async fn race(electors: &mut [LeaderElector], skip: Option<usize>) -> Vec<usize> {
        let cancel = tokio_util::sync::CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            stop.cancel();
        });
        let tries = electors
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(i, e)| {
                let cancel = cancel.clone();
                async move { e.acquire(&cancel).await.then_some(i) }
            });
        futures::future::join_all(tries)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
    let winners = race(&mut electors, None).await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    let first = winners[0];
    let lease = Api::<Lease>::namespaced(client.clone(), &ns.name);
    let spec = lease.get("race").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, Some(format!("replica-{first}")));
    assert_eq!(spec.lease_transitions, Some(0));

    electors[first].release().await.unwrap();
    let winners = race(&mut electors, Some(first)).await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_ne!(winners[0], first);
    let spec = lease.get("race").await.unwrap().spec.unwrap();
    assert_eq!(
        spec.holder_identity,
        Some(format!("replica-{}", winners[0]))
    );
    assert_eq!(spec.lease_transitions, Some(1));
}
