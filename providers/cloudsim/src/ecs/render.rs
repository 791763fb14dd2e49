//! A task as DescribeTasks answers it, from its engine group, its record and what the face
//! knows besides (why it stopped, its tags). The engine's phases become ECS's statuses:
//! Scheduling is PROVISIONING, Pending PENDING, Running ACTIVATING (for `activating_ms`
//! after its containers started) then RUNNING, a stop in progress DEACTIVATING then
//! STOPPING; once the containers ended the task goes DEACTIVATING, STOPPING,
//! DEPROVISIONING (a third of `stop_latency_ms` each) to STOPPED.

use fargate::wire::KeyValuePair;
use fargate::wire::ecs_task::{Attachment, Container, NetworkInterface, Task, stop_code};
use jiff::{SignedDuration, Timestamp};

use super::face::{Face, TaskMeta, TaskRecord};
use crate::engine::group::{CState, Group, Phase};

/// Task `id` as ECS describes it (`None`: no such task).
pub fn task(face: &Face, id: &str, with_tags: bool) -> Option<Task> {
    let meta = face.meta(id);
    let now = face.engine().now();
    let state = face.engine().state();
    let g = state.get(id)?;
    let record = g.face::<TaskRecord>()?;
    Some(render(face, g, record, &meta, now, with_tags))
}

/// Which tasks exist, in creation order: (id, record's cluster ARN, family, startedBy,
/// desired status).
pub fn listing(face: &Face) -> Vec<(String, String, String, Option<String>, &'static str)> {
    let ids: Vec<(String, String, String, Option<String>, bool)> = {
        let state = face.engine().state();
        state
            .groups()
            .filter_map(|g| {
                let r = g.face::<TaskRecord>()?;
                Some((
                    g.id().to_string(),
                    r.cluster_arn.clone(),
                    r.def.family.clone(),
                    r.started_by.clone(),
                    g.is_terminal(),
                ))
            })
            .collect()
    };
    ids.into_iter()
        .map(|(id, cluster, family, by, ended)| {
            let stopped = ended || face.meta(&id).stop.is_some();
            let desired = if stopped { "STOPPED" } else { "RUNNING" };
            (id, cluster, family, by, desired)
        })
        .collect()
}

fn secs(t: Timestamp) -> f64 {
    Face::epoch(t)
}

fn last_status(face: &Face, g: &Group, meta: &TaskMeta, now: Timestamp) -> &'static str {
    let config = face.config();
    let since = |t: Timestamp| now.duration_since(t);
    let ms = |n: u64| SignedDuration::from_millis(i64::try_from(n).unwrap_or(i64::MAX));
    if g.is_terminal() {
        let ended = g.finished.unwrap_or(g.updated);
        let third = ms(config.stop_latency_ms / 3);
        let e = since(ended);
        return if config.stop_latency_ms == 0 || e >= ms(config.stop_latency_ms) {
            "STOPPED"
        } else if e < third {
            "DEACTIVATING"
        } else if e < third * 2 {
            "STOPPING"
        } else {
            "DEPROVISIONING"
        };
    }
    if g.status == Phase::Terminating || meta.stop.is_some() {
        let at = meta.stop.as_ref().map_or(g.updated, |s| s.at);
        return if since(at) < ms(config.stop_latency_ms / 3) {
            "DEACTIVATING"
        } else {
            "STOPPING"
        };
    }
    match g.status {
        Phase::Scheduling => "PROVISIONING",
        Phase::Pending => "PENDING",
        _ => {
            let started = g
                .apps
                .iter()
                .filter_map(|c| match c.state {
                    CState::Running { started } => Some(started),
                    CState::Terminated { started, .. } => started,
                    _ => None,
                })
                .max();
            match started {
                Some(s) if since(s) < ms(config.activating_ms) => "ACTIVATING",
                _ => "RUNNING",
            }
        }
    }
}

/// Why a task that ended by itself stopped.
fn own_stop(g: &Group) -> (&'static str, String) {
    let pull_failure = g.apps.iter().find_map(|c| match &c.state {
        CState::Waiting { reason, message } if reason.contains("ImagePull") || reason == "ErrImageNeverPull" => {
            Some(format!(
                "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {}: not found{}",
                c.spec.image,
                message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
            ))
        }
        _ => None,
    });
    let failed_first = g.init.iter().find_map(|c| match &c.state {
        CState::Terminated { exit, .. } if exit.code != 0 => Some(format!(
            "CannotStartContainerError: container {} exited with code {} before the containers depending on it (condition SUCCESS) started",
            c.spec.name, exit.code
        )),
        _ => None,
    });
    match (g.status, pull_failure.or(failed_first)) {
        (_, Some(why)) => (stop_code::TASK_FAILED_TO_START, why),
        (Phase::ScheduleFailed, _) => (
            stop_code::TASK_FAILED_TO_START,
            "Capacity is unavailable at this time. Please try again later or in a different availability zone".into(),
        ),
        (Phase::Expired, _) => (
            stop_code::TERMINATION_NOTICE,
            "Task stopped due to a maintenance event.".into(),
        ),
        _ => (
            stop_code::ESSENTIAL_CONTAINER_EXITED,
            "Essential container in task exited".into(),
        ),
    }
}

fn render(
    face: &Face,
    g: &Group,
    r: &TaskRecord,
    meta: &TaskMeta,
    now: Timestamp,
    with_tags: bool,
) -> Task {
    let config = face.config();
    let last = last_status(face, g, meta, now);
    let stopped = last == "STOPPED";
    let ended = g.is_terminal();
    let cluster_name = r.cluster_arn.rsplit('/').next().unwrap_or_default();
    let id = g.id();
    // In definition order, the containers that ran first (init containers) among them.
    let containers = r
        .def
        .container_definitions
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let name = d.name.as_deref()?;
            let c = g
                .init
                .iter()
                .chain(g.apps.iter())
                .find(|c| c.spec.name == name)?;
            let (status, exit_code, reason) = match &c.state {
                CState::Waiting { reason, .. } if ended => {
                    let why = reason.contains("ImagePull").then(|| own_stop(g).1);
                    ("STOPPED", None, why)
                }
                CState::Waiting { .. } => ("PENDING", None, None),
                CState::Running { .. } => ("RUNNING", None, None),
                CState::Terminated { exit, .. } => ("STOPPED", Some(exit.code), None),
            };
            Some(Container {
                container_arn: Some(config.arn(
                    "ecs",
                    &format!(
                        "container/{cluster_name}/{id}/{}",
                        r.container_ids.get(i).map(String::as_str).unwrap_or_default()
                    ),
                )),
                task_arn: Some(r.arn.clone()),
                name: c.spec.name.clone(),
                image: Some(c.spec.image.clone()),
                runtime_id: (c.started_once).then(|| format!("{id}-{}", c.spec.name)),
                last_status: Some(status.into()),
                exit_code,
                reason,
                network_interfaces: vec![NetworkInterface {
                    attachment_id: Some(r.attachment_id.clone()),
                    private_ipv4_address: Some(g.ip.clone()),
                }],
                health_status: Some("UNKNOWN".into()),
                cpu: Some(c.spec.cpu.map_or(0, |v| (v * 1024.0) as i64).to_string()),
                memory: c.spec.memory_gib.map(|m| ((m * 1024.0) as i64).to_string()),
            })
        })
        .collect();
    let detail = |name: &str, value: String| KeyValuePair::new(name, value);
    let attachment = Attachment {
        id: Some(r.attachment_id.clone()),
        kind: Some("ElasticNetworkInterface".into()),
        status: Some(
            if stopped {
                "DELETED"
            } else if matches!(last, "PROVISIONING") {
                "PRECREATED"
            } else {
                "ATTACHED"
            }
            .into(),
        ),
        details: vec![
            detail("subnetId", r.subnet.clone()),
            detail("networkInterfaceId", r.eni_id.clone()),
            detail("macAddress", r.mac.clone()),
            detail(
                "privateDnsName",
                format!("ip-{}.ec2.internal", g.ip.replace('.', "-")),
            ),
            detail("privateIPv4Address", g.ip.clone()),
        ],
    };
    let stop = meta
        .stop
        .as_ref()
        .map(|s| (s.code, s.reason.clone(), s.at))
        .or_else(|| {
            ended.then(|| {
                let (code, why) = own_stop(g);
                (code, why, g.finished.unwrap_or(g.updated))
            })
        });
    let started_at = g
        .apps
        .iter()
        .filter_map(|c| match c.state {
            CState::Running { started } => Some(started),
            CState::Terminated { started, .. } => started,
            _ => None,
        })
        .min();
    let stop_ms = SignedDuration::from_millis(i64::try_from(config.stop_latency_ms).unwrap_or(0));
    Task {
        task_arn: r.arn.clone(),
        cluster_arn: Some(r.cluster_arn.clone()),
        task_definition_arn: Some(r.def.task_definition_arn.clone()),
        last_status: Some(last.into()),
        desired_status: Some(if stop.is_some() { "STOPPED" } else { "RUNNING" }.into()),
        launch_type: Some("FARGATE".into()),
        platform_version: Some("1.4.0".into()),
        platform_family: Some("Linux".into()),
        availability_zone: Some(format!("{}a", config.region)),
        cpu: Some(r.cpu.to_string()),
        memory: Some(r.memory.to_string()),
        containers,
        attachments: vec![attachment],
        overrides: Some(r.overrides.clone().unwrap_or_default()),
        created_at: Some(secs(g.created)),
        pull_started_at: started_at.map(|_| secs(g.created)),
        pull_stopped_at: started_at.map(secs),
        started_at: started_at.map(secs),
        stopping_at: stop.as_ref().map(|s| secs(s.2)),
        stopped_at: stopped
            .then(|| {
                g.finished
                    .and_then(|f| f.checked_add(stop_ms).ok())
                    .map(secs)
            })
            .flatten(),
        stop_code: stop.as_ref().map(|s| s.0.to_string()),
        stopped_reason: stop.map(|s| s.1),
        started_by: r.started_by.clone(),
        group: r.group.clone(),
        connectivity: started_at.map(|_| "CONNECTED".into()),
        enable_execute_command: Some(r.enable_execute_command),
        version: Some(i64::try_from(g.seq).unwrap_or(0) + 1),
        tags: if with_tags {
            meta.tags.clone()
        } else {
            Vec::new()
        },
    }
}
