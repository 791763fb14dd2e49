//! The status mapping on plain values.

use super::*;
use crate::provider::PodRef;
use k8s_openapi::api::core::v1::{Container, PodSpec};

fn pod(containers: &[&str], init: &[&str]) -> Pod {
    let c = |n: &&str| Container {
        name: n.to_string(),
        image: Some(format!("{n}:1")),
        ..Default::default()
    };
    Pod {
        spec: Some(PodSpec {
            containers: containers.iter().map(c).collect(),
            init_containers: Some(init.iter().map(c).collect()).filter(|v: &Vec<_>| !v.is_empty()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn terminated(name: &str, code: i32) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: ContainerState::Terminated {
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: Some(Timestamp::from_second(100).unwrap()),
            finished_at: Timestamp::from_second(200).unwrap(),
        },
        last_state: None,
        restart_count: 0,
        ready: false,
        started: None,
        container_id: Some(format!("id-{name}")),
        image: format!("{name}:1"),
        image_id: None,
    }
}

fn running(name: &str) -> ContainerStatus {
    ContainerStatus {
        state: ContainerState::Running {
            started_at: Timestamp::from_second(100).unwrap(),
        },
        ready: true,
        ..terminated(name, 0)
    }
}

fn instance(phase: InstancePhase, containers: Vec<ContainerStatus>) -> InstanceStatus {
    InstanceStatus {
        billing: None,
        pod: PodRef::default(),
        phase,
        reason: None,
        message: None,
        pod_ip: Some("10.250.0.7".into()),
        created_at: None,
        init_containers: vec![],
        containers,
        events: vec![],
    }
}

fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == t)
        .unwrap()
}

/// The status of pod `p` on node host `h` of the mock, with instance `i`, now.
fn status_of(p: &Pod, i: &InstanceStatus) -> PodStatus {
    desired_status(
        p,
        Some(i),
        "mock",
        "h",
        "ContainerCreating",
        Timestamp::now(),
    )
}

/// The terminated state of the first app container.
fn first_terminated(s: &PodStatus) -> ContainerStateTerminated {
    s.container_statuses.as_ref().unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .unwrap()
}

#[test]
fn not_created_yet_is_pending_with_container_creating() {
    let now = Timestamp::now();
    let s = desired_status(
        &pod(&["a"], &[]),
        None,
        "mock",
        "10.0.0.1",
        "ContainerCreating",
        now,
    );
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        c.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("ContainerCreating")
    );
    assert_eq!(cond(&s, "PodScheduled").status, "True");
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(s.host_ip.as_deref(), Some("10.0.0.1"));
}

#[test]
fn running_instance_is_ready_with_pod_ip_and_container_id() {
    let i = instance(InstancePhase::Running, vec![running("a"), running("b")]);
    let s = desired_status(
        &pod(&["a", "b"], &[]),
        Some(&i),
        "mock",
        "10.0.0.1",
        "ContainerCreating",
        Timestamp::now(),
    );
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&s, "Ready").status, "True");
    assert_eq!(cond(&s, "ContainersReady").status, "True");
    assert_eq!(s.pod_ip.as_deref(), Some("10.250.0.7"));
    let a = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(a.container_id.as_deref(), Some("mock://id-a"));
    assert_eq!(a.started, Some(true));
}

#[test]
fn succeeded_keeps_exit_code_zero_and_is_not_ready() {
    let i = instance(InstancePhase::Succeeded, vec![terminated("a", 0)]);
    let s = status_of(&pod(&["a"], &[]), &i);
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let t = first_terminated(&s);
    assert_eq!(t.exit_code, 0);
    assert_eq!(t.reason.as_deref(), Some("Completed"));
    assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
}

#[test]
fn failed_reports_the_exit_code() {
    let i = instance(InstancePhase::Failed, vec![terminated("a", 3)]);
    let s = status_of(&pod(&["a"], &[]), &i);
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    let t = first_terminated(&s);
    assert_eq!(t.exit_code, 3);
}

#[test]
fn a_terminated_containers_message_reaches_the_pod_status() {
    let with_message = |code: i32, text: &str| {
        let mut c = terminated("a", code);
        if let ContainerState::Terminated { message, .. } = &mut c.state {
            *message = Some(text.to_string());
        }
        c
    };
    let mut c = with_message(2, "go: build failed: exit status 2\n");
    c.last_state = Some(with_message(137, "previous run: out of memory").state);
    let i = instance(InstancePhase::Failed, vec![c]);
    let mut p = pod(&["a"], &[]);
    let now = Timestamp::now();
    let s = desired_status(&p, Some(&i), "mock", "h", "ContainerCreating", now);
    let status = &s.container_statuses.as_ref().unwrap()[0];
    let t = status.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(t.exit_code, 2);
    assert_eq!(
        t.message.as_deref(),
        Some("go: build failed: exit status 2\n")
    );
    let last = status
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(last.message.as_deref(), Some("previous run: out of memory"));

    // A message that changes alone is a change worth writing.
    p.status = Some(s.clone());
    let i = instance(
        InstancePhase::Failed,
        vec![with_message(2, "another message")],
    );
    let again = desired_status(&p, Some(&i), "mock", "h", "ContainerCreating", now);
    assert_ne!(owned_part(&s), owned_part(&again));
}

#[test]
fn init_containers_gate_initialized() {
    let mut i = instance(InstancePhase::Pending, vec![]);
    i.init_containers = vec![running("setup")];
    let p = pod(&["a"], &["setup"]);
    let s = status_of(&p, &i);
    assert_eq!(cond(&s, "Initialized").status, "False");
    assert_eq!(
        s.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );
    i.init_containers = vec![terminated("setup", 0)];
    let s = status_of(&p, &i);
    assert_eq!(cond(&s, "Initialized").status, "True");
}

#[test]
fn unchanged_report_gives_equal_owned_part() {
    let i = instance(InstancePhase::Running, vec![running("a")]);
    let mut p = pod(&["a"], &[]);
    let t0 = Timestamp::from_second(1_000).unwrap();
    let first = desired_status(&p, Some(&i), "mock", "h", "ContainerCreating", t0);
    p.status = Some(first.clone());
    let later = desired_status(
        &p,
        Some(&i),
        "mock",
        "h",
        "ContainerCreating",
        Timestamp::from_second(2_000).unwrap(),
    );
    assert_eq!(owned_part(&first), owned_part(&later));
}

#[test]
fn failed_status_turns_running_containers_terminated() {
    let i = instance(InstancePhase::Running, vec![running("a")]);
    let mut p = pod(&["a"], &[]);
    p.status = Some(status_of(&p, &i));
    let s = failed_status(&p, "ProviderInstanceLost", "gone", "h", Timestamp::now());
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(s.reason.as_deref(), Some("ProviderInstanceLost"));
    let t = first_terminated(&s);
    assert_eq!(t.exit_code, 137);
}
/// Pod with one container `a` that has a readiness probe.
fn probed_pod() -> Pod {
    let mut p = pod(&["a"], &[]);
    if let Some(spec) = p.spec.as_mut() {
        spec.containers[0].readiness_probe = Some(k8s_openapi::api::core::v1::Probe {
            exec: Some(k8s_openapi::api::core::v1::ExecAction {
                command: Some(vec!["true".into()]),
            }),
            ..Default::default()
        });
    }
    p
}

#[test]
fn a_readiness_probe_makes_ready_the_providers_word() {
    let p = probed_pod();
    let mut c = running("a");
    c.ready = false;
    let s = status_of(&p, &instance(InstancePhase::Running, vec![c.clone()]));
    assert!(!s.container_statuses.as_ref().unwrap()[0].ready);
    assert_eq!(cond(&s, "ContainersReady").status, "False");
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(
        cond(&s, "Ready").reason.as_deref(),
        Some("ContainersNotReady")
    );
    c.ready = true;
    let s = status_of(&p, &instance(InstancePhase::Running, vec![c]));
    assert!(s.container_statuses.as_ref().unwrap()[0].ready);
    assert_eq!(cond(&s, "Ready").status, "True");
}

#[test]
fn without_a_readiness_probe_running_and_started_is_ready() {
    let mut c = running("a");
    c.ready = false;
    let s = status_of(
        &pod(&["a"], &[]),
        &instance(InstancePhase::Running, vec![c.clone()]),
    );
    assert!(s.container_statuses.as_ref().unwrap()[0].ready);
    assert_eq!(cond(&s, "Ready").status, "True");
    // Not started yet (a startup probe pending): neither started nor ready.
    c.started = Some(false);
    let s = status_of(
        &pod(&["a"], &[]),
        &instance(InstancePhase::Running, vec![c]),
    );
    let a = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!((a.started, a.ready), (Some(false), false));
    assert_eq!(cond(&s, "Ready").status, "False");
}

#[test]
fn readiness_gates_hold_ready_without_touching_their_conditions() {
    let mut p = pod(&["a"], &[]);
    if let Some(spec) = p.spec.as_mut() {
        spec.readiness_gates = Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
            condition_type: "example.com/lb".into(),
        }]);
    }
    let i = instance(InstancePhase::Running, vec![running("a")]);
    let s = status_of(&p, &i);
    assert_eq!(cond(&s, "ContainersReady").status, "True");
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(
        cond(&s, "Ready").reason.as_deref(),
        Some("ReadinessGatesNotReady")
    );
    assert_eq!(
        cond(&s, "Ready").message.as_deref(),
        Some("corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
    );
    let gate = |status: &str| PodCondition {
        type_: "example.com/lb".into(),
        status: status.into(),
        ..Default::default()
    };
    p.status = Some(PodStatus {
        conditions: Some(vec![gate("False")]),
        ..s.clone()
    });
    let s = status_of(&p, &i);
    assert_eq!(cond(&s, "Ready").status, "False");
    p.status = Some(PodStatus {
        conditions: Some(vec![gate("True")]),
        ..s
    });
    let s = status_of(&p, &i);
    assert_eq!(cond(&s, "Ready").status, "True");
    // The gate's condition is someone else's: never in what this controller writes.
    assert!(
        s.conditions
            .iter()
            .flatten()
            .all(|c| c.type_ != "example.com/lb")
    );
}

#[test]
fn an_unready_sidecar_keeps_the_pod_unready() {
    let mut p = pod(&["a"], &["proxy"]);
    if let Some(spec) = p.spec.as_mut() {
        let proxy = &mut spec.init_containers.as_mut().unwrap()[0];
        proxy.restart_policy = Some("Always".into());
        proxy.readiness_probe = probed_pod().spec.unwrap().containers[0]
            .readiness_probe
            .clone();
    }
    let mut i = instance(InstancePhase::Running, vec![running("a")]);
    let mut proxy = running("proxy");
    proxy.ready = false;
    i.init_containers = vec![proxy];
    let s = status_of(&p, &i);
    assert_eq!(cond(&s, "ContainersReady").status, "False");
    i.init_containers[0].ready = true;
    let s = status_of(&p, &i);
    assert_eq!(cond(&s, "ContainersReady").status, "True");
    assert_eq!(cond(&s, "Ready").status, "True");
}

fn with_restart_policy(policy: &str) -> Pod {
    let mut p = pod(&["build"], &[]);
    if let Some(spec) = p.spec.as_mut() {
        spec.restart_policy = Some(policy.into());
    }
    p
}

#[test]
fn a_refused_spec_fails_the_pod_only_when_it_never_restarts() {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let never = refused_status(&with_restart_policy("Never"), "Bad", "no", "10.0.0.1", now);
    assert_eq!(never.phase.as_deref(), Some("Failed"));
    assert_eq!(never.reason.as_deref(), Some("Bad"));
    for policy in ["Always", "OnFailure"] {
        let status = refused_status(&with_restart_policy(policy), "Bad", "no", "10.0.0.1", now);
        assert_eq!(status.phase.as_deref(), Some("Pending"), "{policy}");
        let waiting = status.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("Bad"));
        assert_eq!(waiting.message.as_deref(), Some("no"));
    }
}

#[test]
fn a_pod_has_started_once_running_or_a_container_ran() {
    let mut p = pod(&["build"], &[]);
    assert!(!has_started(&p), "no status");
    p.status = Some(PodStatus {
        phase: Some("Pending".into()),
        ..Default::default()
    });
    assert!(!has_started(&p));
    assert_eq!(pod_phase(&p), Some("Pending"));
    p.status = Some(PodStatus {
        phase: Some("Pending".into()),
        init_container_statuses: Some(vec![K8sContainerStatus {
            name: "setup".into(),
            state: Some(K8sState {
                terminated: Some(ContainerStateTerminated::default()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    });
    assert!(has_started(&p), "an init container ran");
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
    assert!(has_started(&p));
}

#[test]
fn an_ephemeral_container_is_shown_as_unable_to_start_and_stays_put() {
    let mut p = pod(&["app"], &[]);
    p.spec.as_mut().unwrap().ephemeral_containers =
        Some(vec![k8s_openapi::api::core::v1::EphemeralContainer {
            name: "debugger".into(),
            image: Some("busybox:1.36".into()),
            ..Default::default()
        }]);
    let i = instance(InstancePhase::Running, vec![running("app")]);
    let first = status_of(&p, &i);
    let shown = &first.ephemeral_container_statuses.as_ref().unwrap()[0];
    assert_eq!(shown.name, "debugger");
    let t = shown.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(t.exit_code, 128);
    assert_eq!(t.reason.as_deref(), Some(EPHEMERAL_UNSUPPORTED));
    assert!(t.message.as_deref().unwrap().contains("kubectl exec"));
    // The pod itself runs on; a later status keeps the first time, so nothing is rewritten.
    assert_eq!(first.phase.as_deref(), Some("Running"));
    p.status = Some(first.clone());
    let later = desired_status(
        &p,
        Some(&i),
        "mock",
        "h",
        "ContainerCreating",
        Timestamp::now() + jiff::SignedDuration::from_secs(60),
    );
    assert_eq!(owned_part(&later), owned_part(&first));
    assert!(owned_part(&first).ephemeral_container_statuses.is_some());
}
