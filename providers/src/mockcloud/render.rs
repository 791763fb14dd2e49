//! The engine's groups in the API's shapes: `DescribeContainerGroups` entries and
//! `DescribeContainerGroupStatus` entries.

use jiff::Timestamp;

use super::group::{CState, ContainerRt, Group};
use crate::eci::api::{
    self, Container, ContainerGroup, DnsConfig, DnsConfigOption, GroupStatusData, HostAlias,
    PodContainerState, PodContainerStatus, PodStatus, StateRunning, StateTerminated, StateWaiting,
    Volume, container_state, group_status,
};
use crate::eci::request_names::DnsConfigDef;

/// The service's time format: RFC 3339, UTC, to the second.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn state(s: &CState) -> api::ContainerState {
    match s {
        CState::Waiting { reason, message } => api::ContainerState {
            state: container_state::WAITING.into(),
            detail_status: reason.clone(),
            reason: reason.clone(),
            message: message.clone().unwrap_or_default(),
            ..Default::default()
        },
        CState::Running { started } => api::ContainerState {
            state: container_state::RUNNING.into(),
            start_time: time(*started),
            ..Default::default()
        },
        CState::Terminated {
            exit,
            started,
            finished,
        } => api::ContainerState {
            state: container_state::TERMINATED.into(),
            detail_status: exit.reason.clone(),
            reason: exit.reason.clone(),
            message: exit.message.clone().unwrap_or_default(),
            exit_code: Some(exit.code),
            signal: exit.signal,
            start_time: started.map(time).unwrap_or_default(),
            finish_time: time(*finished),
        },
    }
}

fn container(c: &ContainerRt) -> Container {
    Container {
        name: c.def.name.clone(),
        image: c.def.image.clone(),
        cpu: c.def.cpu.unwrap_or_default(),
        memory: c.def.memory.unwrap_or_default(),
        restart_count: c.restart_count,
        working_dir: c.def.working_dir.clone().unwrap_or_default(),
        image_pull_policy: c.def.image_pull_policy.clone().unwrap_or_default(),
        commands: c.def.commands.clone(),
        args: c.def.args.clone(),
        ready: c.ready && matches!(c.state, CState::Running { .. }),
        current_state: state(&c.state),
        previous_state: c.previous.as_ref().map(state).unwrap_or_default(),
        environment_vars: c.def.env.clone(),
        volume_mounts: c.def.volume_mounts.clone(),
        ports: c.def.ports.clone(),
        security_context: c
            .def
            .security_context
            .as_ref()
            .map(|s| api::ContainerSecurityContext {
                run_as_user: s.run_as_user,
                read_only_root_filesystem: s.read_only_root_filesystem == Some(true),
                capability: api::Capability {
                    adds: s.capability_add.clone(),
                },
            }),
    }
}

pub fn group(g: &Group, region_id: &str) -> ContainerGroup {
    let finished = |status: &str| {
        (g.status == status)
            .then(|| g.finished.map(time))
            .flatten()
            .unwrap_or_default()
    };
    ContainerGroup {
        container_group_id: g.id().to_string(),
        container_group_name: g.spec.name.clone(),
        region_id: region_id.to_string(),
        zone_id: g
            .request
            .zone_id
            .clone()
            .unwrap_or_else(|| format!("{region_id}-a")),
        cpu: g.cpu,
        memory: g.memory,
        restart_policy: g
            .request
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into()),
        intranet_ip: if g.status == group_status::SCHEDULING {
            String::new()
        } else {
            g.ip.clone()
        },
        status: g.status.to_string(),
        creation_time: time(g.created),
        succeeded_time: finished(group_status::SUCCEEDED),
        failed_time: finished(group_status::FAILED),
        expired_time: finished(group_status::EXPIRED),
        tags: g.request.tags.clone(),
        events: g.events.clone(),
        containers: g.apps.iter().map(container).collect(),
        init_containers: g.init.iter().map(container).collect(),
        volumes: g
            .spec
            .volumes
            .iter()
            .map(|v| Volume {
                name: v.name().to_string(),
                kind: v.kind().to_string(),
            })
            .collect(),
        dns_config: dns_config(&g.request.names.dns_config),
        host_aliases: g
            .request
            .names
            .host_aliases
            .iter()
            .map(|a| HostAlias {
                ip: a.ip.clone(),
                hostnames: a.hostnames.clone(),
            })
            .collect(),
    }
}

/// Echoed as given; absent when the group was created without one.
fn dns_config(c: &DnsConfigDef) -> Option<DnsConfig> {
    (!c.is_empty()).then(|| DnsConfig {
        name_servers: c.name_servers.clone(),
        searches: c.searches.clone(),
        options: c
            .options
            .iter()
            .map(|o| DnsConfigOption {
                name: o.name.clone(),
                value: o.value.clone(),
            })
            .collect(),
    })
}

fn pod_state(s: &CState) -> PodContainerState {
    match s {
        CState::Waiting { reason, message } => PodContainerState {
            waiting: Some(StateWaiting {
                reason: reason.clone(),
                message: message.clone().unwrap_or_default(),
            }),
            ..Default::default()
        },
        CState::Running { started } => PodContainerState {
            running: Some(StateRunning {
                started_at: time(*started),
            }),
            ..Default::default()
        },
        CState::Terminated {
            exit,
            started,
            finished,
        } => PodContainerState {
            terminated: Some(StateTerminated {
                exit_code: exit.code,
                signal: exit.signal,
                reason: exit.reason.clone(),
                message: exit.message.clone().unwrap_or_default(),
                started_at: started.map(time).unwrap_or_default(),
                finished_at: time(*finished),
            }),
            ..Default::default()
        },
    }
}

/// The pod phase ECI reports for a group status.
fn pod_phase(status: &str) -> &'static str {
    use group_status::*;
    match status {
        RUNNING | TERMINATING => "Running",
        SUCCEEDED => "Succeeded",
        FAILED | EXPIRED | SCHEDULE_FAILED => "Failed",
        _ => "Pending",
    }
}

pub fn status(g: &Group) -> GroupStatusData {
    let tag = |k: &str| {
        g.request
            .tags
            .iter()
            .find(|t| t.key == k)
            .map(|t| t.value.clone())
            .unwrap_or_default()
    };
    GroupStatusData {
        container_group_id: g.id().to_string(),
        name: tag(crate::eci::pod::tags::POD_NAME),
        namespace: tag(crate::eci::pod::tags::NAMESPACE),
        annotations: "{}".into(),
        status: g.status.to_string(),
        pod_status: PodStatus {
            phase: pod_phase(g.status).into(),
            pod_ip: g.ip.clone(),
            start_time: time(g.created),
            container_statuses: g
                .apps
                .iter()
                .map(|c| PodContainerStatus {
                    name: c.def.name.clone(),
                    image: c.def.image.clone(),
                    ready: c.ready && matches!(c.state, CState::Running { .. }),
                    started: c.started && matches!(c.state, CState::Running { .. }),
                    restart_count: c.restart_count,
                    state: pod_state(&c.state),
                    last_state: c.previous.as_ref().map(pod_state).unwrap_or_default(),
                })
                .collect(),
        },
    }
}
