//! A task as DescribeTasks reports it, in pod terms.
//!
//! Phase, from `lastStatus`, `stopCode`, `stoppedReason` and the containers:
//! - `PROVISIONING`, `PENDING`, `ACTIVATING`: Pending (containers waiting, `ContainerCreating`);
//! - `RUNNING`: Running;
//! - `DEACTIVATING`, `STOPPING`, `DEPROVISIONING`, `STOPPED`: once every pod container has
//!   stopped with an exit code, Succeeded when all are 0 and Failed otherwise (the pod's
//!   reason then names the first non-zero one); a task that never started
//!   (`TaskFailedToStart`) is Failed with that reason and `stoppedReason` as the message, its
//!   containers waiting with `ErrImagePull` (`CannotPullContainerError`) or
//!   `CreateContainerError`; a task stopped by someone else (`UserInitiated`, a maintenance
//!   `TerminationNotice`) with containers still running is Running until STOPPED, then
//!   Failed with the stop code as reason.
//!
//! Containers: `RUNNING` is running since the task's `startedAt`; `STOPPED` with `exitCode`
//! is terminated with it (reason `Completed` for 0, `Error` otherwise; a container's
//! `reason`, such as `OutOfMemoryError`, is the message, and `OOMKilled` the reason when it
//! says so); `STOPPED` without a code in a stopping task is terminated with 137 (killed).
//! The step that writes the pod's files (`vk-files`) is not shown.

use vk_core::provider::{ContainerState, ContainerStatus, InstancePhase, InstanceStatus, PodRef};

use crate::mapping::FILES_CONTAINER;
use crate::wire::ecs_task::{Container, Task, stop_code};

fn time(secs: Option<f64>) -> Option<jiff::Timestamp> {
    let s = secs?;
    jiff::Timestamp::from_millisecond((s * 1000.0) as i64).ok()
}

fn stopping(last: &str) -> bool {
    matches!(
        last,
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" | "STOPPED"
    )
}

fn waiting_reason(task: &Task) -> (&'static str, Option<String>) {
    let why = task.stopped_reason.clone();
    let text = why.as_deref().unwrap_or_default();
    if text.contains("CannotPullContainer") || text.contains("pull image") {
        ("ErrImagePull", why)
    } else {
        ("CreateContainerError", why)
    }
}

fn container_state(task: &Task, c: &Container) -> ContainerState {
    let last = task.last_status.as_deref().unwrap_or_default();
    let failed_start = task.stop_code.as_deref() == Some(stop_code::TASK_FAILED_TO_START);
    match c.last_status.as_deref() {
        Some("RUNNING") => ContainerState::Running {
            started_at: time(task.started_at).unwrap_or_else(jiff::Timestamp::now),
        },
        Some("STOPPED") => {
            match c.exit_code {
                Some(code) => {
                    let oom = c
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.contains("OutOfMemory"));
                    ContainerState::Terminated {
                        exit_code: code,
                        signal: None,
                        reason: if oom {
                            "OOMKilled"
                        } else if code == 0 {
                            "Completed"
                        } else {
                            "Error"
                        }
                        .into(),
                        message: c.reason.clone(),
                        started_at: time(task.started_at),
                        finished_at: time(task.stopping_at)
                            .or_else(|| time(task.stopped_at))
                            .unwrap_or_else(jiff::Timestamp::now),
                    }
                }
                None if failed_start => {
                    let (reason, message) = waiting_reason(task);
                    ContainerState::Waiting {
                        reason: reason.into(),
                        message: c.reason.clone().or(message),
                    }
                }
                None if task.started_at.is_none() => {
                    // Stopped before it started (the task was stopped while provisioning).
                    let (_, message) = waiting_reason(task);
                    ContainerState::Waiting {
                        reason: "ContainerCreating".into(),
                        message: c.reason.clone().or(message),
                    }
                }
                None => ContainerState::Terminated {
                    exit_code: 137,
                    signal: None,
                    reason: "Error".into(),
                    message: Some(c.reason.clone().unwrap_or_else(|| {
                        "ECS reported no exit code: the task was stopped".into()
                    })),
                    started_at: time(task.started_at),
                    finished_at: time(task.stopped_at)
                        .or_else(|| time(task.stopping_at))
                        .unwrap_or_else(jiff::Timestamp::now),
                },
            }
        }
        _ if failed_start && stopping(last) => {
            let (reason, message) = waiting_reason(task);
            ContainerState::Waiting {
                reason: reason.into(),
                message,
            }
        }
        _ => ContainerState::waiting("ContainerCreating"),
    }
}

fn status(task: &Task, c: &Container) -> ContainerStatus {
    let state = container_state(task, c);
    let running = matches!(state, ContainerState::Running { .. });
    ContainerStatus {
        name: c.name.clone(),
        state,
        last_state: None,
        restart_count: 0,
        ready: running,
        started: Some(running),
        container_id: c.runtime_id.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: None,
    }
}

/// The task's status for `pod`; `init` names the pod's init containers.
pub fn instance_status(pod: PodRef, task: &Task, init: &[String]) -> InstanceStatus {
    let mut containers = Vec::new();
    let mut init_containers = Vec::new();
    for c in task.containers.iter().filter(|c| c.name != FILES_CONTAINER) {
        if init.contains(&c.name) {
            init_containers.push(status(task, c));
        } else {
            containers.push(status(task, c));
        }
    }
    let last = task.last_status.as_deref().unwrap_or("PROVISIONING");
    let code = |s: &ContainerStatus| match &s.state {
        ContainerState::Terminated { exit_code, .. } => Some(*exit_code),
        _ => None,
    };
    let all_ended = !containers.is_empty() && containers.iter().all(|c| code(c).is_some());
    let failed_start = task.stop_code.as_deref() == Some(stop_code::TASK_FAILED_TO_START);
    let files_failed = task
        .containers
        .iter()
        .find(|c| c.name == FILES_CONTAINER)
        .and_then(|c| c.exit_code)
        .filter(|c| *c != 0);
    let failed_init = init_containers
        .iter()
        .find(|c| code(c).is_some_and(|x| x != 0))
        .map(|c| c.name.clone());
    let (phase, reason, message) = if !stopping(last) {
        match last {
            "RUNNING" => (InstancePhase::Running, None, None),
            _ => (InstancePhase::Pending, None, None),
        }
    } else if let Some(code) = files_failed {
        (
            InstancePhase::Failed,
            Some("FilesNotWritten".to_string()),
            Some(format!(
                "the step writing the pod's configMaps, secrets and tokens ({FILES_CONTAINER}) exited with code {code}"
            )),
        )
    } else if let Some(name) = failed_init {
        (
            InstancePhase::Failed,
            Some("InitContainerFailed".to_string()),
            Some(format!("init container {name} failed")),
        )
    } else if failed_start && !all_ended {
        (
            InstancePhase::Failed,
            Some(stop_code::TASK_FAILED_TO_START.to_string()),
            task.stopped_reason.clone(),
        )
    } else if all_ended {
        match containers.iter().find(|c| code(c) != Some(0)) {
            None => (InstancePhase::Succeeded, None, None),
            Some(c) => (
                InstancePhase::Failed,
                Some("Error".to_string()),
                Some(format!(
                    "container {} exited with code {}{}",
                    c.name,
                    code(c).unwrap_or_default(),
                    task.stopped_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )),
            ),
        }
    } else if last == "STOPPED" {
        (
            InstancePhase::Failed,
            Some(task.stop_code.clone().unwrap_or_else(|| "Stopped".into())),
            task.stopped_reason.clone(),
        )
    } else if task.started_at.is_none() {
        (InstancePhase::Pending, None, None)
    } else {
        (InstancePhase::Running, None, None)
    };
    InstanceStatus {
        billing: None,
        pod,
        phase,
        reason,
        message,
        pod_ip: task.private_ip().map(str::to_string),
        created_at: time(task.created_at),
        init_containers,
        containers,
        events: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(value: serde_json::Value) -> Task {
        serde_json::from_value(value).unwrap()
    }

    fn pod() -> PodRef {
        PodRef {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u".into(),
        }
    }

    fn exit(c: &ContainerStatus) -> Option<i32> {
        match &c.state {
            ContainerState::Terminated { exit_code, .. } => Some(*exit_code),
            _ => None,
        }
    }

    #[test]
    fn states_map_through_the_task_life() {
        for (last, phase) in [
            ("PROVISIONING", InstancePhase::Pending),
            ("PENDING", InstancePhase::Pending),
            ("ACTIVATING", InstancePhase::Pending),
            ("RUNNING", InstancePhase::Running),
        ] {
            let t = task(serde_json::json!({"lastStatus": last, "startedAt": 1.0,
                "containers": [{"name": "app", "lastStatus": if last == "RUNNING" {"RUNNING"} else {"PENDING"}}]}));
            assert_eq!(instance_status(pod(), &t, &[]).phase, phase, "{last}");
        }
        let running = task(
            serde_json::json!({"lastStatus": "RUNNING", "startedAt": 1700000000.0,
            "attachments": [{"details": [{"name": "privateIPv4Address", "value": "10.0.0.7"}]}],
            "containers": [{"name": "vk-files", "lastStatus": "STOPPED", "exitCode": 0},
                           {"name": "init", "lastStatus": "STOPPED", "exitCode": 0},
                           {"name": "app", "lastStatus": "RUNNING"}]}),
        );
        let s = instance_status(pod(), &running, &["init".into()]);
        assert_eq!(s.pod_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(s.containers.len(), 1);
        assert_eq!(exit(&s.init_containers[0]), Some(0));
        assert!(s.containers[0].ready);
    }

    #[test]
    fn a_stopped_task_with_a_non_zero_exit_is_failed_with_it() {
        let t = task(
            serde_json::json!({"lastStatus": "STOPPED", "startedAt": 1.0, "stoppedAt": 5.0,
            "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "a", "lastStatus": "STOPPED", "exitCode": 0},
                           {"name": "b", "lastStatus": "STOPPED", "exitCode": 3}]}),
        );
        let s = instance_status(pod(), &t, &[]);
        assert_eq!(s.phase, InstancePhase::Failed);
        assert_eq!(exit(&s.containers[1]), Some(3));
        assert!(s.message.unwrap().contains("exited with code 3"));
        let ok = task(
            serde_json::json!({"lastStatus": "DEPROVISIONING", "startedAt": 1.0,
            "stopCode": "EssentialContainerExited",
            "containers": [{"name": "a", "lastStatus": "STOPPED", "exitCode": 0}]}),
        );
        assert_eq!(
            instance_status(pod(), &ok, &[]).phase,
            InstancePhase::Succeeded
        );
    }

    #[test]
    fn a_task_that_failed_to_start_says_why() {
        let t = task(
            serde_json::json!({"lastStatus": "STOPPED", "stopCode": "TaskFailedToStart",
            "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 1 time(s): not found",
            "containers": [{"name": "a", "lastStatus": "STOPPED"}]}),
        );
        let s = instance_status(pod(), &t, &[]);
        assert_eq!(s.phase, InstancePhase::Failed);
        assert_eq!(s.reason.as_deref(), Some("TaskFailedToStart"));
        assert!(matches!(&s.containers[0].state,
            ContainerState::Waiting { reason, .. } if reason == "ErrImagePull"));
        let stopped = task(
            serde_json::json!({"lastStatus": "STOPPING", "startedAt": 1.0,
            "stopCode": "UserInitiated", "containers": [{"name": "a", "lastStatus": "RUNNING"}]}),
        );
        assert_eq!(
            instance_status(pod(), &stopped, &[]).phase,
            InstancePhase::Running
        );
        let files = task(
            serde_json::json!({"lastStatus": "STOPPED", "stopCode": "TaskFailedToStart",
            "containers": [{"name": "vk-files", "lastStatus": "STOPPED", "exitCode": 2},
                           {"name": "a", "lastStatus": "STOPPED"}]}),
        );
        assert_eq!(
            instance_status(pod(), &files, &[]).reason.as_deref(),
            Some("FilesNotWritten")
        );
    }
}
