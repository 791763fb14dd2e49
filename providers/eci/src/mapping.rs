//! ECI container groups in pod terms. Unlike the old OSS provider, a container that has
//! finished is Terminated with its exit code kept (also when it succeeded), whatever word the
//! service used for it (`Terminated`, `Succeeded`, `Failed`, `Completed`).

use jiff::Timestamp;
use vk_core::provider::{
    Billing, ContainerState, ContainerStatus, InstanceEvent, InstancePhase, InstanceStatus, PodRef,
};

use crate::wire::api::{self, ContainerGroup, group_status, image_event};

/// The group status in pod phases (Alibaba's "Lifecycle of a pod" table): what is still being
/// set up is Pending, a terminating group still runs, an expired or unschedulable one failed.
pub fn phase(status: &str) -> InstancePhase {
    use group_status::*;
    match status {
        SCHEDULING | PENDING | RESTARTING | UPDATING => InstancePhase::Pending,
        RUNNING | TERMINATING => InstancePhase::Running,
        SUCCEEDED => InstancePhase::Succeeded,
        FAILED | SCHEDULE_FAILED | EXPIRED => InstancePhase::Failed,
        _ => InstancePhase::Unknown,
    }
}

/// The reason shown on the pod for statuses that need one.
fn phase_reason(status: &str) -> Option<String> {
    use group_status::*;
    match status {
        SCHEDULE_FAILED | EXPIRED | RESTARTING | UPDATING => Some(status.to_string()),
        _ => None,
    }
}

fn parse_time(s: &str) -> Option<Timestamp> {
    (!s.is_empty()).then(|| s.parse().ok()).flatten()
}

/// One `CurrentState`/`PreviousState`; `None` for an empty one. `fallback` stands in for a
/// missing time (the group's creation), so a status never changes between two polls for
/// lack of a clock.
pub fn container_state(s: &api::ContainerState, fallback: Timestamp) -> Option<ContainerState> {
    let non_empty = |v: &str| (!v.is_empty()).then(|| v.to_string());
    match s.state.as_str() {
        "" => None,
        "Running" => Some(ContainerState::Running {
            started_at: parse_time(&s.start_time).unwrap_or(fallback),
        }),
        "Terminated" | "Succeeded" | "Failed" | "Completed" => {
            let exit_code = s.exit_code.unwrap_or(match s.state.as_str() {
                "Failed" => 1,
                _ => 0,
            });
            let reason = non_empty(&s.reason)
                .or_else(|| non_empty(&s.detail_status))
                .unwrap_or_else(|| if exit_code == 0 { "Completed" } else { "Error" }.to_string());
            let started_at = parse_time(&s.start_time);
            Some(ContainerState::Terminated {
                exit_code,
                signal: s.signal,
                reason,
                message: non_empty(&s.message),
                started_at,
                finished_at: parse_time(&s.finish_time)
                    .or(started_at)
                    .unwrap_or(fallback),
            })
        }
        // Waiting, and anything newer than this code: not running yet.
        _ => Some(ContainerState::Waiting {
            reason: non_empty(&s.detail_status)
                .or_else(|| non_empty(&s.reason))
                .unwrap_or_else(|| "ContainerCreating".to_string()),
            message: non_empty(&s.message),
        }),
    }
}

fn container_status(
    group: &ContainerGroup,
    c: &api::Container,
    fallback: Timestamp,
) -> ContainerStatus {
    let state = container_state(&c.current_state, fallback)
        .unwrap_or_else(|| ContainerState::waiting("ContainerCreating"));
    let running = matches!(state, ContainerState::Running { .. });
    ContainerStatus {
        name: c.name.clone(),
        last_state: container_state(&c.previous_state, fallback),
        restart_count: c.restart_count,
        // The service runs the readiness probe and says whether it passed (without a probe
        // a running container is ready); vk-core applies the kubelet's rules on top.
        ready: running && c.ready,
        started: None,
        container_id: Some(format!("{}/{}", group.container_group_id, c.name)),
        image: c.image.clone(),
        image_id: None,
        state,
    }
}

/// The instance status of a group created for `pod`.
pub fn instance_status(pod: PodRef, group: &ContainerGroup) -> InstanceStatus {
    let created_at = parse_time(&group.creation_time);
    let fallback = created_at.unwrap_or(Timestamp::UNIX_EPOCH);
    let message = group
        .events
        .iter()
        .rev()
        .find(|e| e.kind == "Warning" && !e.message.is_empty())
        .map(|e| e.message.clone())
        .filter(|_| phase(&group.status) != InstancePhase::Running);
    InstanceStatus {
        pod,
        phase: phase(&group.status),
        reason: phase_reason(&group.status),
        message,
        pod_ip: (!group.intranet_ip.is_empty()).then(|| group.intranet_ip.clone()),
        created_at,
        init_containers: group
            .init_containers
            .iter()
            .map(|c| container_status(group, c, fallback))
            .collect(),
        containers: group
            .containers
            .iter()
            .map(|c| container_status(group, c, fallback))
            .collect(),
        events: probe_events(group, fallback),
        billing: billing(group),
    }
}

/// What ECI bills for the group: its `Cpu`/`Memory` (the specification it rounded the
/// request up to) from when it began to pull its images ("ECI instance billing": billed from
/// the image pull until the instance stops) to its end. `None` before the service says
/// what it bills.
fn billing(group: &ContainerGroup) -> Option<Box<Billing>> {
    if !(group.cpu.is_finite() && group.memory.is_finite()) || group.cpu <= 0.0 {
        return None;
    }
    let pull_began = group
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.reason.as_str(),
                image_event::PULLING | image_event::PULLED | image_event::HIT_IMAGE_CACHE
            )
        })
        .filter_map(|e| parse_time(&e.first_timestamp))
        .min();
    let first_start = group
        .init_containers
        .iter()
        .chain(&group.containers)
        .flat_map(|c| [&c.current_state, &c.previous_state])
        .filter_map(|s| parse_time(&s.start_time))
        .min();
    let ended_at = match group.status.as_str() {
        group_status::SUCCEEDED => parse_time(&group.succeeded_time),
        group_status::FAILED | group_status::EXPIRED => parse_time(&group.failed_time),
        _ => None,
    };
    let instance_type = if group.instance_type.is_empty() {
        format!("{:.1}-{:.1}Gi", group.cpu, group.memory)
    } else {
        group.instance_type.clone()
    };
    Some(Box::new(Billing {
        vcpu_milli: (group.cpu * 1000.0).round() as u64,
        memory_mib: (group.memory * 1024.0).round().max(0.0) as u64,
        instance_type,
        spot: !matches!(group.spot_strategy.as_str(), "" | "NoSpot"),
        region: group.region_id.clone(),
        started_at: pull_began.or(first_start),
        ended_at,
    }))
}

/// The group's probe events in the kubelet's words (`Unhealthy`: "Liveness probe failed:
/// ...", `Killing`: "Container x failed liveness probe, will be restarted") and its image
/// events (`Pulling`, `Pulled`, the image cache's hit, miss and automatic creation), which
/// vk-core records on the pod and reads the start timeline from; the service's other events
/// stay the cloud's. Only a `Killing` message names its container.
fn probe_events(group: &ContainerGroup, fallback: Timestamp) -> Vec<InstanceEvent> {
    group
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.reason.as_str(),
                "Unhealthy"
                    | "FailedPostStartHook"
                    | "FailedPreStopHook"
                    | image_event::PULLING
                    | image_event::PULLED
                    | image_event::HIT_IMAGE_CACHE
                    | image_event::MISSED_IMAGE_CACHE
                    | image_event::AUTO_CREATED_IMAGE_CACHE
            ) || (e.reason == "Killing"
                && (e.message.contains(" probe") || e.message.contains(" postStart hook")))
        })
        .map(|e| {
            let last_seen = parse_time(&e.last_timestamp).unwrap_or(fallback);
            InstanceEvent {
                container: event_container(&e.message),
                warning: e.kind == "Warning",
                reason: e.reason.clone(),
                message: e.message.clone(),
                count: e.count.max(1),
                first_seen: parse_time(&e.first_timestamp).unwrap_or(last_seen),
                last_seen,
            }
        })
        .collect()
}

/// The container an event names: `Container x failed ...` (a kill), or `... for Container
/// "x" in Pod ...` (a hook).
fn event_container(message: &str) -> Option<String> {
    if let Some((name, _)) = message
        .strip_prefix("Container ")
        .and_then(|rest| rest.split_once(" failed "))
    {
        return Some(name.to_string());
    }
    let rest = message.split_once("for Container \"")?.1;
    Some(rest.split_once('"')?.0.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(state: &str, exit: Option<i32>) -> api::ContainerState {
        api::ContainerState {
            state: state.into(),
            exit_code: exit,
            start_time: "2024-01-01T00:00:00Z".into(),
            finish_time: if exit.is_some() {
                "2024-01-01T00:01:00Z".into()
            } else {
                String::new()
            },
            ..Default::default()
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn every_group_status_has_a_phase() {
        use InstancePhase::*;
        for (status, expected, reason) in [
            ("Scheduling", Pending, None),
            ("Pending", Pending, None),
            ("Restarting", Pending, Some("Restarting")),
            ("Updating", Pending, Some("Updating")),
            ("Running", Running, None),
            ("Terminating", Running, None),
            ("Succeeded", Succeeded, None),
            ("Failed", Failed, None),
            ("ScheduleFailed", Failed, Some("ScheduleFailed")),
            ("Expired", Failed, Some("Expired")),
            ("SomethingNew", Unknown, None),
        ] {
            assert_eq!(phase(status), expected, "{status}");
            assert_eq!(phase_reason(status).as_deref(), reason, "{status}");
        }
    }

    #[test]
    fn finished_containers_are_terminated_with_their_exit_code() {
        let epoch = Timestamp::UNIX_EPOCH;
        for (word, exit, expected_exit, reason) in [
            ("Terminated", Some(0), 0, "Completed"),
            ("Terminated", Some(2), 2, "Error"),
            // The OSS provider turned these into Running (Succeeded) and Waiting (Terminated).
            ("Succeeded", Some(0), 0, "Completed"),
            ("Succeeded", None, 0, "Completed"),
            ("Failed", None, 1, "Error"),
            ("Completed", Some(0), 0, "Completed"),
        ] {
            let mapped = container_state(&state(word, exit), epoch).unwrap();
            assert_eq!(
                mapped,
                ContainerState::Terminated {
                    exit_code: expected_exit,
                    signal: None,
                    reason: reason.into(),
                    message: None,
                    started_at: Some(t("2024-01-01T00:00:00Z")),
                    finished_at: if exit.is_some() {
                        t("2024-01-01T00:01:00Z")
                    } else {
                        t("2024-01-01T00:00:00Z")
                    },
                },
                "{word} {exit:?}"
            );
        }
    }

    #[test]
    fn a_terminated_containers_message_is_kept() {
        let mut s = state("Terminated", Some(2));
        s.message = "go: build failed: exit status 2".into();
        match container_state(&s, Timestamp::UNIX_EPOCH) {
            Some(ContainerState::Terminated { message, .. }) => {
                assert_eq!(message.as_deref(), Some("go: build failed: exit status 2"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn running_waiting_and_empty_states() {
        let epoch = Timestamp::UNIX_EPOCH;
        assert_eq!(
            container_state(&state("Running", None), epoch),
            Some(ContainerState::Running {
                started_at: t("2024-01-01T00:00:00Z")
            })
        );
        let no_time = api::ContainerState {
            state: "Running".into(),
            ..Default::default()
        };
        assert_eq!(
            container_state(&no_time, epoch),
            Some(ContainerState::Running { started_at: epoch })
        );
        let waiting = api::ContainerState {
            state: "Waiting".into(),
            detail_status: "ErrImagePull".into(),
            message: "not found".into(),
            ..Default::default()
        };
        assert_eq!(
            container_state(&waiting, epoch),
            Some(ContainerState::Waiting {
                reason: "ErrImagePull".into(),
                message: Some("not found".into())
            })
        );
        assert_eq!(
            container_state(&state("Waiting", None), epoch),
            Some(ContainerState::waiting("ContainerCreating"))
        );
        assert_eq!(
            container_state(&api::ContainerState::default(), epoch),
            None
        );
        let terminated_reason = api::ContainerState {
            state: "Terminated".into(),
            exit_code: Some(137),
            reason: "OOMKilled".into(),
            signal: Some(9),
            ..Default::default()
        };
        assert!(matches!(
            container_state(&terminated_reason, epoch),
            Some(ContainerState::Terminated { exit_code: 137, signal: Some(9), ref reason, .. }) if reason == "OOMKilled"
        ));
    }

    #[test]
    fn group_maps_to_instance_status() {
        let group = ContainerGroup {
            container_group_id: "eci-1".into(),
            status: "Succeeded".into(),
            intranet_ip: "10.1.0.2".into(),
            creation_time: "2024-01-01T00:00:00Z".into(),
            containers: vec![api::Container {
                name: "app".into(),
                image: "busybox".into(),
                restart_count: 1,
                current_state: state("Terminated", Some(0)),
                previous_state: state("Terminated", Some(3)),
                ..Default::default()
            }],
            init_containers: vec![api::Container {
                name: "init".into(),
                current_state: state("Terminated", Some(0)),
                ..Default::default()
            }],
            events: vec![api::Event {
                kind: "Warning".into(),
                message: "back-off".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let pod = PodRef {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u".into(),
        };
        let s = instance_status(pod.clone(), &group);
        assert_eq!(s.pod, pod);
        assert_eq!(s.phase, InstancePhase::Succeeded);
        assert_eq!(s.pod_ip.as_deref(), Some("10.1.0.2"));
        assert_eq!(s.created_at, Some(t("2024-01-01T00:00:00Z")));
        assert_eq!(s.message.as_deref(), Some("back-off"));
        let app = &s.containers[0];
        assert_eq!(app.restart_count, 1);
        assert!(!app.ready);
        assert_eq!(app.container_id.as_deref(), Some("eci-1/app"));
        assert!(matches!(
            app.state,
            ContainerState::Terminated { exit_code: 0, .. }
        ));
        assert!(matches!(
            app.last_state,
            Some(ContainerState::Terminated { exit_code: 3, .. })
        ));
        assert_eq!(s.init_containers.len(), 1);
    }

    #[test]
    fn ready_is_the_services_flag_and_probe_events_are_kept() {
        let event = |reason: &str, message: &str, count: u32| api::Event {
            count,
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            first_timestamp: "2024-01-01T00:00:10Z".into(),
            last_timestamp: "2024-01-01T00:00:30Z".into(),
            ..Default::default()
        };
        let group = ContainerGroup {
            container_group_id: "eci-1".into(),
            status: "Running".into(),
            creation_time: "2024-01-01T00:00:00Z".into(),
            containers: vec![api::Container {
                name: "app".into(),
                ready: false,
                current_state: api::ContainerState {
                    state: "Running".into(),
                    start_time: "2024-01-01T00:00:01Z".into(),
                    ..Default::default()
                },
                ..Default::default()
            }],
            events: vec![
                event("Scheduled", "Successfully assigned eci-1", 1),
                event("Unhealthy", "Readiness probe failed: no", 3),
                event(
                    "Killing",
                    "Container app failed liveness probe, will be restarted",
                    1,
                ),
            ],
            ..Default::default()
        };
        let status = instance_status(PodRef::default(), &group);
        assert!(!status.containers[0].ready);
        assert_eq!(status.events.len(), 2);
        let unhealthy = &status.events[0];
        assert_eq!(
            (
                unhealthy.container.as_deref(),
                unhealthy.reason.as_str(),
                unhealthy.count
            ),
            (None, "Unhealthy", 3)
        );
        assert_eq!(unhealthy.first_seen.as_second(), 1_704_067_210);
        assert_eq!(unhealthy.last_seen.as_second(), 1_704_067_230);
        assert_eq!(status.events[1].container.as_deref(), Some("app"));
        assert!(status.events[1].warning);
    }

    #[test]
    fn hook_failures_are_kept_with_their_container() {
        let mut group = ContainerGroup {
            status: "Running".into(),
            ..Default::default()
        };
        group.events.push(api::Event {
            count: 1,
            kind: "Warning".into(),
            reason: "FailedPostStartHook".into(),
            message: "Exec lifecycle hook ([\"false\"]) for Container \"app\" in Pod \"g\" failed - error: command 'false' exited with 1: ".into(),
            ..Default::default()
        });
        let status = instance_status(PodRef::default(), &group);
        assert_eq!(status.events.len(), 1);
        assert_eq!(status.events[0].reason, "FailedPostStartHook");
        assert_eq!(status.events[0].container.as_deref(), Some("app"));
    }

    #[test]
    fn image_events_pass_through_and_billing_runs_from_the_pull_to_the_end() {
        let event = |reason: &str, at: &str| api::Event {
            count: 1,
            kind: "Normal".into(),
            reason: reason.into(),
            message: format!("{reason} golang:1.22"),
            first_timestamp: at.into(),
            last_timestamp: at.into(),
            ..Default::default()
        };
        let mut group = ContainerGroup {
            status: "Succeeded".into(),
            region_id: "cn-hangzhou".into(),
            cpu: 2.0,
            memory: 4.0,
            instance_type: "2.0-4.0Gi".into(),
            spot_strategy: "SpotAsPriceGo".into(),
            succeeded_time: "2024-01-01T00:02:00Z".into(),
            events: vec![
                event("Scheduled", "2024-01-01T00:00:00Z"),
                event("Pulling", "2024-01-01T00:00:05Z"),
                event("Pulled", "2024-01-01T00:00:40Z"),
                event("SuccessfulHitImageCache", "2024-01-01T00:00:06Z"),
            ],
            ..Default::default()
        };
        let status = instance_status(PodRef::default(), &group);
        let reasons: Vec<_> = status.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["Pulling", "Pulled", "SuccessfulHitImageCache"]);
        assert!(status.events.iter().all(|e| e.container.is_none()));
        let billing = status.billing.unwrap();
        assert_eq!((billing.vcpu_milli, billing.memory_mib), (2000, 4096));
        assert_eq!(billing.instance_type, "2.0-4.0Gi");
        assert!(billing.spot);
        assert_eq!(billing.region, "cn-hangzhou");
        assert_eq!(billing.started_at, Some(t("2024-01-01T00:00:05Z")));
        assert_eq!(billing.ended_at, Some(t("2024-01-01T00:02:00Z")));
        // Running: no end yet; without events the first container start begins the billing.
        group.status = "Running".into();
        group.events.clear();
        group.spot_strategy = "NoSpot".into();
        group.containers.push(api::Container {
            name: "app".into(),
            current_state: state("Running", None),
            ..Default::default()
        });
        let billing = instance_status(PodRef::default(), &group).billing.unwrap();
        assert_eq!(billing.ended_at, None);
        assert!(!billing.spot);
        assert_eq!(billing.started_at, Some(t("2024-01-01T00:00:00Z")));
        // Nothing billed before the service says what it bills.
        group.cpu = 0.0;
        assert!(instance_status(PodRef::default(), &group).billing.is_none());
    }
}
