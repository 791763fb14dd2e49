//! Maps what the provider reports (`InstanceStatus`) to the pod's `status` subresource, the
//! way a kubelet fills it. Pure functions: the controller decides when to write.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as K8sContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::provider::{
    ContainerState, ContainerStatus, InstancePhase, InstanceStatus, RestartPolicy,
};

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

/// The reason an ephemeral container (`kubectl debug`) shows on a virtual node.
pub const EPHEMERAL_UNSUPPORTED: &str = "EphemeralContainersNotSupported";

/// Why, in the container's status and the Warning event.
pub const EPHEMERAL_MESSAGE: &str = "a serverless instance cannot take a container once it runs; \
     use `kubectl exec` into one of the pod's containers, or `kubectl debug --copy-to` to start \
     a copy of the pod with the debug container in it";

/// Each ephemeral container of the spec as ended before it started (exit 128, the reason and
/// what to do instead), keeping the time the API already shows so rewrites change nothing.
fn ephemeral_statuses(
    spec: &PodSpec,
    current: &PodStatus,
    now: Timestamp,
) -> Vec<K8sContainerStatus> {
    spec.ephemeral_containers
        .iter()
        .flatten()
        .map(|c| {
            let finished_at = current
                .ephemeral_container_statuses
                .iter()
                .flatten()
                .find(|s| s.name == c.name)
                .and_then(|s| s.state.as_ref()?.terminated.as_ref()?.finished_at.clone())
                .or_else(|| Some(time(now)));
            K8sContainerStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                started: Some(false),
                state: Some(K8sState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 128,
                        reason: Some(EPHEMERAL_UNSUPPORTED.into()),
                        message: Some(EPHEMERAL_MESSAGE.into()),
                        finished_at,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
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
        ephemeral_container_statuses: Some(ephemeral_statuses(&spec, &current, now))
            .filter(|s| !s.is_empty()),
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
        ephemeral_container_statuses: strip(&status.ephemeral_container_statuses)
            .filter(|s| !s.is_empty()),
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

/// A spec the provider can never run: Failed with restartPolicy Never, otherwise Pending with
/// the reason (retried when the pod changes), as a kubelet shows it.
pub fn refused_status(
    pod: &Pod,
    reason: &str,
    message: &str,
    host_ip: &str,
    now: Timestamp,
) -> PodStatus {
    let restart = RestartPolicy::parse(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()));
    if restart == RestartPolicy::Never {
        failed_status(pod, reason, message, host_ip, now)
    } else {
        waiting_status(pod, reason, message, host_ip, now)
    }
}

/// The pod's phase as the API holds it.
pub fn pod_phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Whether the API's status shows the pod ran: Running, or a container running or ended.
pub fn has_started(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        || status
            .container_statuses
            .iter()
            .chain(status.init_container_statuses.iter())
            .flatten()
            .any(|c| {
                c.state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            })
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
#[path = "status_tests.rs"]
mod tests;
