//! A container group as ACI reports it, in pod terms.
//!
//! Phase: `provisioningState` first — `Failed`/`Canceled` is Failed (reason
//! `ProvisioningFailed`, the group's last Warning event as the message); anything not yet
//! `Succeeded` is Pending — then the instance view's `state`: `Running`, `Succeeded`,
//! `Failed`, `Stopped` (Failed, reason `Stopped`), `Pending`. Without a group state the
//! containers decide (all terminated: Succeeded when every exit code is 0, else Failed).
//!
//! Containers: `currentState.state` `Running` is running since `startTime`; `Terminated` is
//! terminated WITH its `exitCode` (reason `detailStatus`, else `Completed` for 0 and `Error`
//! otherwise; a missing code reads as 0 for `Completed` and 1 otherwise, and the message says
//! so); `Waiting` or nothing yet is waiting with `detailStatus` (e.g. `ErrImagePull`) or
//! `ContainerCreating`. `previousState` is the last state, `restartCount` the restarts.
//! Warning events of containers and of the group become pod events.

use vk_core::provider::{
    ContainerState, ContainerStatus, InstanceEvent, InstancePhase, InstanceStatus, PodRef,
};

use crate::wire::{
    self, ContainerEvent, ContainerGroup, container_state, group_state, provisioning_state,
};

fn time(s: Option<&str>) -> Option<jiff::Timestamp> {
    s.and_then(|s| s.parse().ok())
}

/// One container state in pod terms.
pub fn state(s: Option<&wire::ContainerState>) -> ContainerState {
    let Some(s) = s else {
        return ContainerState::waiting("ContainerCreating");
    };
    let detail = s.detail_status.clone().filter(|d| !d.is_empty());
    match s.state.as_deref() {
        Some(container_state::RUNNING) => ContainerState::Running {
            started_at: time(s.start_time.as_deref()).unwrap_or_else(jiff::Timestamp::now),
        },
        Some(container_state::TERMINATED) => {
            let completed = detail.as_deref() == Some("Completed");
            let (exit_code, message) = match s.exit_code {
                Some(code) => (code, None),
                None => (
                    i32::from(!completed),
                    Some("ACI reported no exit code for this container".to_string()),
                ),
            };
            let reason = detail
                .unwrap_or_else(|| if exit_code == 0 { "Completed" } else { "Error" }.to_string());
            ContainerState::Terminated {
                exit_code,
                signal: None,
                reason,
                message,
                started_at: time(s.start_time.as_deref()),
                finished_at: time(s.finish_time.as_deref())
                    .or_else(|| time(s.start_time.as_deref()))
                    .unwrap_or_else(jiff::Timestamp::now),
            }
        }
        _ => ContainerState::Waiting {
            reason: detail.unwrap_or_else(|| "ContainerCreating".to_string()),
            message: None,
        },
    }
}

fn status(name: &str, image: &str, view: Option<&wire::InstanceView>) -> ContainerStatus {
    let current = state(view.and_then(|v| v.current_state.as_ref()));
    let running = matches!(current, ContainerState::Running { .. });
    ContainerStatus {
        name: name.to_string(),
        last_state: view
            .and_then(|v| v.previous_state.as_ref())
            .filter(|p| p.state.is_some())
            .map(|p| state(Some(p))),
        restart_count: view.and_then(|v| v.restart_count).unwrap_or(0),
        ready: running,
        started: Some(running),
        container_id: None,
        image: image.to_string(),
        image_id: None,
        state: current,
    }
}

fn event(container: Option<&str>, e: &ContainerEvent) -> Option<InstanceEvent> {
    if e.kind.as_deref() != Some("Warning") {
        return None;
    }
    let first = time(e.first_timestamp.as_deref()).or_else(|| time(e.last_timestamp.as_deref()))?;
    Some(InstanceEvent {
        container: container.map(str::to_string),
        warning: true,
        reason: e.name.clone().unwrap_or_else(|| "Failed".into()),
        message: e.message.clone().unwrap_or_default(),
        count: e
            .count
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(1)
            .max(1),
        first_seen: first,
        last_seen: time(e.last_timestamp.as_deref()).unwrap_or(first),
    })
}

fn terminated_ok(s: &ContainerStatus) -> Option<bool> {
    match &s.state {
        ContainerState::Terminated { exit_code, .. } => Some(*exit_code == 0),
        _ => None,
    }
}

/// The group's status for `pod`.
pub fn instance_status(pod: PodRef, group: &ContainerGroup) -> InstanceStatus {
    let p = &group.properties;
    let containers: Vec<ContainerStatus> = p
        .containers
        .iter()
        .map(|c| {
            status(
                &c.name,
                &c.properties.image,
                c.properties.instance_view.as_ref(),
            )
        })
        .collect();
    let init_containers: Vec<ContainerStatus> = p
        .init_containers
        .iter()
        .map(|c| {
            status(
                &c.name,
                c.properties.image.as_deref().unwrap_or_default(),
                c.properties.instance_view.as_ref(),
            )
        })
        .collect();
    let mut events: Vec<InstanceEvent> = p
        .instance_view
        .iter()
        .flat_map(|v| v.events.iter().filter_map(|e| event(None, e)))
        .collect();
    for c in &p.containers {
        if let Some(v) = &c.properties.instance_view {
            events.extend(v.events.iter().filter_map(|e| event(Some(&c.name), e)));
        }
    }
    for c in &p.init_containers {
        if let Some(v) = &c.properties.instance_view {
            events.extend(v.events.iter().filter_map(|e| event(Some(&c.name), e)));
        }
    }
    events.sort_by_key(|e| e.first_seen);
    let provisioning = p
        .provisioning_state
        .as_deref()
        .unwrap_or(provisioning_state::PENDING);
    let group_state = p.instance_view.as_ref().and_then(|v| v.state.as_deref());
    let last_warning = || {
        events
            .last()
            .map(|e| format!("{}: {}", e.reason, e.message))
    };
    let (phase, reason, message) = match (provisioning, group_state) {
        (provisioning_state::FAILED | provisioning_state::CANCELED, _) => (
            InstancePhase::Failed,
            Some("ProvisioningFailed".to_string()),
            Some(last_warning().unwrap_or_else(|| format!("ACI: provisioning {provisioning}"))),
        ),
        (s, Some(group_state::RUNNING)) if s != provisioning_state::SUCCEEDED => {
            (InstancePhase::Running, None, None)
        }
        (s, _) if s != provisioning_state::SUCCEEDED => (InstancePhase::Pending, None, None),
        (_, Some(group_state::RUNNING)) => (InstancePhase::Running, None, None),
        (_, Some(group_state::SUCCEEDED)) => (InstancePhase::Succeeded, None, None),
        (_, Some(group_state::FAILED)) => (InstancePhase::Failed, None, last_warning()),
        (_, Some(group_state::STOPPED)) => (
            InstancePhase::Failed,
            Some("Stopped".to_string()),
            Some("the container group was stopped".to_string()),
        ),
        (_, Some(group_state::PENDING)) => (InstancePhase::Pending, None, None),
        _ => {
            let done: Vec<Option<bool>> = containers.iter().map(terminated_ok).collect();
            if !done.is_empty() && done.iter().all(Option::is_some) {
                if done.iter().all(|d| *d == Some(true)) {
                    (InstancePhase::Succeeded, None, None)
                } else {
                    (InstancePhase::Failed, None, None)
                }
            } else if containers
                .iter()
                .any(|c| matches!(c.state, ContainerState::Running { .. }))
            {
                (InstancePhase::Running, None, None)
            } else {
                (InstancePhase::Pending, None, None)
            }
        }
    };
    InstanceStatus {
        billing: None,
        pod,
        phase,
        reason,
        message,
        pod_ip: p
            .ip_address
            .as_ref()
            .and_then(|ip| ip.ip.clone())
            .filter(|ip| !ip.is_empty()),
        created_at: None,
        init_containers,
        containers,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(value: serde_json::Value) -> ContainerGroup {
        serde_json::from_value(value).unwrap()
    }

    fn pod() -> PodRef {
        PodRef {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u".into(),
        }
    }

    #[test]
    fn terminated_containers_keep_their_exit_codes() {
        let g = group(serde_json::json!({"properties": {
        "provisioningState": "Succeeded",
        "ipAddress": {"type": "Private", "ip": "10.0.0.4", "ports": []},
        "instanceView": {"state": "Failed"},
        "initContainers": [{"name": "init", "properties": {"image": "busybox", "instanceView": {
            "currentState": {"state": "Terminated", "exitCode": 0, "detailStatus": "Completed",
                "startTime": "2026-01-01T00:00:00Z", "finishTime": "2026-01-01T00:00:01Z"}}}}],
        "containers": [
            {"name": "ok", "properties": {"image": "i", "instanceView": {"restartCount": 0,
                "currentState": {"state": "Terminated", "exitCode": 0, "finishTime": "2026-01-01T00:00:05Z"}}}},
            {"name": "bad", "properties": {"image": "i", "instanceView": {"restartCount": 2,
                "currentState": {"state": "Terminated", "exitCode": 3, "detailStatus": "Error"},
                "previousState": {"state": "Terminated", "exitCode": 3},
                "events": [{"name": "BackOff", "type": "Warning", "message": "restarting",
                    "firstTimestamp": "2026-01-01T00:00:02Z", "count": 2}]}}}
        ]}}));
        let s = instance_status(pod(), &g);
        assert_eq!(s.phase, InstancePhase::Failed);
        assert_eq!(s.pod_ip.as_deref(), Some("10.0.0.4"));
        let code = |c: &ContainerStatus| match &c.state {
            ContainerState::Terminated {
                exit_code, reason, ..
            } => (*exit_code, reason.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(code(&s.init_containers[0]), (0, "Completed".into()));
        assert_eq!(code(&s.containers[0]), (0, "Completed".into()));
        assert_eq!(code(&s.containers[1]), (3, "Error".into()));
        assert_eq!(s.containers[1].restart_count, 2);
        assert!(s.containers[1].last_state.is_some());
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].count, 2);
        assert_eq!(s.message.as_deref(), Some("BackOff: restarting"));
    }

    #[test]
    fn provisioning_decides_before_the_instance_view() {
        let g = group(
            serde_json::json!({"properties": {"provisioningState": "Creating",
            "containers": [{"name": "c", "properties": {"image": "i"}}]}}),
        );
        let s = instance_status(pod(), &g);
        assert_eq!(s.phase, InstancePhase::Pending);
        assert_eq!(
            s.containers[0].state,
            ContainerState::waiting("ContainerCreating")
        );
        let failed = group(
            serde_json::json!({"properties": {"provisioningState": "Failed",
            "instanceView": {"events": [{"name": "Failed", "type": "Warning", "message": "image not found",
                "firstTimestamp": "2026-01-01T00:00:00Z"}]},
            "containers": [{"name": "c", "properties": {"image": "i", "instanceView": {
                "currentState": {"state": "Waiting", "detailStatus": "ErrImagePull"}}}}]}}),
        );
        let s = instance_status(pod(), &failed);
        assert_eq!(s.phase, InstancePhase::Failed);
        assert_eq!(s.reason.as_deref(), Some("ProvisioningFailed"));
        assert!(s.message.unwrap().contains("image not found"));
        assert_eq!(
            s.containers[0].state,
            ContainerState::waiting("ErrImagePull")
        );
        // No group state: the containers decide.
        let done = group(
            serde_json::json!({"properties": {"provisioningState": "Succeeded",
            "containers": [{"name": "c", "properties": {"image": "i", "instanceView": {
                "currentState": {"state": "Terminated", "exitCode": 0}}}}]}}),
        );
        assert_eq!(
            instance_status(pod(), &done).phase,
            InstancePhase::Succeeded
        );
    }
}
