//! Maps what the provider reports (`InstanceStatus`) to the pod's `status` subresource, the
//! way a kubelet fills it. Pure functions: the controller decides when to write.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as K8sContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::provider::{ContainerState, ContainerStatus, InstancePhase, InstanceStatus};

/// The condition types this controller owns.
const OWNED_CONDITIONS: [&str; 4] = ["PodScheduled", "Initialized", "ContainersReady", "Ready"];

/// Kubernetes `Time` has second precision; anything finer would make every comparison differ.
fn time(t: Timestamp) -> Time {
    Time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

pub fn phase_name(phase: InstancePhase) -> &'static str {
    match phase {
        InstancePhase::Pending => "Pending",
        InstancePhase::Running => "Running",
        InstancePhase::Succeeded => "Succeeded",
        InstancePhase::Failed => "Failed",
        InstancePhase::Unknown => "Unknown",
    }
}

pub fn is_terminal_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded") | Some("Failed"))
}

fn k8s_state(state: &ContainerState) -> K8sState {
    match state {
        ContainerState::Waiting { reason, message } => K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        ContainerState::Running { started_at } => K8sState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(*started_at)),
            }),
            ..Default::default()
        },
        ContainerState::Terminated {
            exit_code,
            signal,
            reason,
            message,
            started_at,
            finished_at,
        } => K8sState {
            terminated: Some(ContainerStateTerminated {
                exit_code: *exit_code,
                signal: *signal,
                reason: Some(reason.clone()),
                message: message.clone(),
                started_at: started_at.map(time),
                finished_at: Some(time(*finished_at)),
                container_id: None,
            }),
            ..Default::default()
        },
    }
}

/// A container's status. `readiness_probe`: it has one, so it is ready only when the provider
/// says so; without one it is ready once running and started.
fn container_status(
    provider: &str,
    name: &str,
    image: &str,
    reported: Option<&ContainerStatus>,
    waiting_reason: &str,
    readiness_probe: bool,
) -> K8sContainerStatus {
    match reported {
        Some(c) => {
            let running = matches!(c.state, ContainerState::Running { .. });
            let started = running && c.started.unwrap_or(true);
            let ready = started && (c.ready || !readiness_probe);
            K8sContainerStatus {
                name: name.to_string(),
                image: image.to_string(),
                image_id: c.image_id.clone().unwrap_or_default(),
                container_id: c
                    .container_id
                    .as_ref()
                    .map(|id| format!("{provider}://{id}")),
                ready,
                started: Some(started),
                restart_count: c.restart_count,
                state: Some(k8s_state(&c.state)),
                last_state: c.last_state.as_ref().map(k8s_state),
                ..Default::default()
            }
        }
        None => K8sContainerStatus {
            name: name.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            ready: false,
            started: Some(false),
            restart_count: 0,
            state: Some(k8s_state(&ContainerState::waiting(waiting_reason))),
            ..Default::default()
        },
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    now: Timestamp,
    current: &PodStatus,
) -> PodCondition {
    let status = if ok { "True" } else { "False" }.to_string();
    let previous = current
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == status);
    PodCondition {
        type_: type_.to_string(),
        status,
        reason: reason.map(str::to_string),
        last_transition_time: previous
            .and_then(|p| p.last_transition_time.clone())
            .or_else(|| Some(time(now))),
        ..Default::default()
    }
}

/// Why `spec.readinessGates` keep the pod un-Ready: the first gate whose condition (written by
/// others) is missing or not True, in the kubelet's words. None: every gate is open.
fn unready_gate(spec: &PodSpec, current: &PodStatus) -> Option<String> {
    spec.readiness_gates.iter().flatten().find_map(|gate| {
        let type_ = &gate.condition_type;
        match current
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == *type_)
        {
            None => Some(format!(
                "corresponding condition of pod readiness gate \"{type_}\" does not exist."
            )),
            Some(c) if c.status != "True" => Some(format!(
                "the status of pod readiness gate \"{type_}\" is not \"True\", but {}",
                c.status
            )),
            Some(_) => None,
        }
    })
}

fn exited_ok(c: &K8sContainerStatus) -> bool {
    c.state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

/// The status the pod should have given the provider's report (`None`: not created yet).
/// `waiting_reason` is what containers show before the instance exists.
pub fn desired_status(
    pod: &Pod,
    instance: Option<&InstanceStatus>,
    provider: &str,
    host_ip: &str,
    waiting_reason: &str,
    now: Timestamp,
) -> PodStatus {
    let current = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let phase = instance.map_or(InstancePhase::Pending, |i| i.phase);
    let phase = match phase {
        // Keep what the API has rather than publishing the deprecated Unknown phase.
        InstancePhase::Unknown => current.phase.clone().unwrap_or_else(|| "Pending".into()),
        p => phase_name(p).to_string(),
    };
    let find = |list: Option<&Vec<ContainerStatus>>, name: &str| {
        list.and_then(|l| l.iter().find(|c| c.name == name))
            .cloned()
    };
    let init_statuses: Vec<K8sContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            let reported = find(instance.map(|i| &i.init_containers), &c.name);
            let probed = c.readiness_probe.is_some();
            let reason = if waiting_reason == "ContainerCreating" {
                "PodInitializing"
            } else {
                waiting_reason
            };
            container_status(
                provider,
                &c.name,
                c.image.as_deref().unwrap_or_default(),
                reported.as_ref(),
                reason,
                probed,
            )
        })
        .collect();
    let app_waiting = if init_statuses.is_empty() || waiting_reason != "ContainerCreating" {
        waiting_reason
    } else {
        "PodInitializing"
    };
    let statuses: Vec<K8sContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            let reported = find(instance.map(|i| &i.containers), &c.name);
            container_status(
                provider,
                &c.name,
                c.image.as_deref().unwrap_or_default(),
                reported.as_ref(),
                app_waiting,
                c.readiness_probe.is_some(),
            )
        })
        .collect();

    let terminal = is_terminal_phase(Some(&phase));
    let sidecar = |name: &str| {
        spec.init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    };
    let initialized = init_statuses.iter().all(|s| {
        if sidecar(&s.name) {
            s.started == Some(true) || exited_ok(s)
        } else {
            exited_ok(s)
        }
    }) || phase == "Running"
        || phase == "Succeeded";
    // Native sidecars count too, as the kubelet counts restartable init containers.
    let containers_ready = !terminal
        && !statuses.is_empty()
        && statuses.iter().all(|s| s.ready)
        && init_statuses
            .iter()
            .filter(|s| sidecar(&s.name))
            .all(|s| s.ready);
    let not_ready_reason = if terminal {
        Some("PodCompleted")
    } else {
        Some("ContainersNotReady")
    };
    let ready_reason = if containers_ready {
        None
    } else {
        not_ready_reason
    };
    let gates = unready_gate(&spec, &current);
    let pod_ready = containers_ready && gates.is_none();
    let pod_ready_reason = if containers_ready && gates.is_some() {
        Some("ReadinessGatesNotReady")
    } else {
        ready_reason
    };
    let conditions = vec![
        condition("PodScheduled", true, None, now, &current),
        condition(
            "Initialized",
            initialized,
            if initialized {
                None
            } else {
                Some("ContainersNotInitialized")
            },
            now,
            &current,
        ),
        condition(
            "ContainersReady",
            containers_ready,
            ready_reason,
            now,
            &current,
        ),
        PodCondition {
            message: gates.filter(|_| containers_ready),
            ..condition("Ready", pod_ready, pod_ready_reason, now, &current)
        },
    ];

    let pod_ip = instance.and_then(|i| i.pod_ip.clone());
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        container_statuses: Some(statuses),
        init_container_statuses: Some(init_statuses).filter(|s| !s.is_empty()),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: current.start_time.clone().or_else(|| Some(time(now))),
        reason: instance.and_then(|i| i.reason.clone()).filter(|_| terminal),
        message: instance
            .and_then(|i| i.message.clone())
            .filter(|_| terminal),
        ..Default::default()
    }
}

/// The part of a status this controller writes, so a comparison ignores others' fields.
pub fn owned_part(status: &PodStatus) -> PodStatus {
    let mut conditions: Vec<PodCondition> = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| OWNED_CONDITIONS.contains(&c.type_.as_str()))
        .cloned()
        .map(|mut c| {
            c.last_probe_time = None;
            c.message = None;
            c.observed_generation = None;
            c
        })
        .collect();
    conditions.sort_by_key(|c| OWNED_CONDITIONS.iter().position(|t| *t == c.type_));
    let strip = |list: &Option<Vec<K8sContainerStatus>>| {
        list.as_ref().map(|l| {
            l.iter()
                .map(|c| K8sContainerStatus {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    image_id: c.image_id.clone(),
                    container_id: c.container_id.clone(),
                    ready: c.ready,
                    started: c.started,
                    restart_count: c.restart_count,
                    state: c.state.clone(),
                    last_state: c.last_state.clone().filter(|s| *s != K8sState::default()),
                    ..Default::default()
                })
                .collect::<Vec<_>>()
        })
    };
    PodStatus {
        phase: status.phase.clone(),
        conditions: Some(conditions),
        container_statuses: strip(&status.container_statuses),
        init_container_statuses: strip(&status.init_container_statuses).filter(|s| !s.is_empty()),
        host_ip: status.host_ip.clone(),
        host_ips: status.host_ips.clone(),
        pod_ip: status.pod_ip.clone(),
        pod_ips: status.pod_ips.clone(),
        start_time: status.start_time.clone(),
        reason: status.reason.clone(),
        message: status.message.clone(),
        ..Default::default()
    }
}

/// A terminal status for a pod that cannot run (or whose instance vanished).
pub fn failed_status(
    pod: &Pod,
    reason: &str,
    message: &str,
    host_ip: &str,
    now: Timestamp,
) -> PodStatus {
    let mut status = desired_status(pod, None, "", host_ip, reason, now);
    status.phase = Some("Failed".into());
    status.reason = Some(reason.into());
    status.message = Some(message.into());
    for c in all_statuses_mut(&mut status) {
        // Containers that ran keep their last known state; the rest show why they never did.
        let previous = pod.status.as_ref().and_then(|s| {
            s.container_statuses
                .iter()
                .chain(s.init_container_statuses.iter())
                .flatten()
                .find(|p| p.name == c.name)
                .cloned()
        });
        match previous.and_then(|p| p.state) {
            Some(K8sState {
                terminated: Some(t),
                ..
            }) => {
                c.state = Some(K8sState {
                    terminated: Some(t),
                    ..Default::default()
                })
            }
            Some(K8sState {
                running: Some(r), ..
            }) => {
                c.state = Some(K8sState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 137,
                        reason: Some(reason.into()),
                        message: Some(message.into()),
                        started_at: r.started_at,
                        finished_at: Some(time(now)),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            }
            _ => {}
        }
    }
    for cond in status.conditions.iter_mut().flatten() {
        if cond.type_ == "Ready" || cond.type_ == "ContainersReady" {
            cond.status = "False".into();
            cond.reason = Some("PodFailed".into());
        }
    }
    status
}

/// A pod that is waiting for something the user must fix (a missing secret, an invalid spec
/// the provider refuses while restartPolicy allows retrying): Pending, with the reason on
/// every container as the kubelet shows it.
pub fn waiting_status(
    pod: &Pod,
    reason: &str,
    message: &str,
    host_ip: &str,
    now: Timestamp,
) -> PodStatus {
    let mut status = desired_status(pod, None, "", host_ip, reason, now);
    for c in all_statuses_mut(&mut status) {
        c.state = Some(K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some(message.into()),
            }),
            ..Default::default()
        });
    }
    status
}

/// Every container status of `status`, app containers first, then init containers.
fn all_statuses_mut(status: &mut PodStatus) -> impl Iterator<Item = &mut K8sContainerStatus> {
    status
        .container_statuses
        .iter_mut()
        .flatten()
        .chain(status.init_container_statuses.iter_mut().flatten())
}

#[cfg(test)]
mod tests {
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
                init_containers: Some(init.iter().map(c).collect())
                    .filter(|v: &Vec<_>| !v.is_empty()),
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
            Some(
                "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
            )
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
}
