//! Groups in ARM's shape: the request as it came (secure environment values, secret volume
//! contents, registry passwords and storage keys left out, as a GET of the service does) with
//! the read-only parts added: id, name, type, `provisioningState`, the group's instance view
//! (state and events), each container's instance view (restart count, current and previous
//! state with exit code and detail, Pulling/Pulled/Created/Started/Killing events), the IP.

use jiff::Timestamp;

use super::record::Record;
use crate::engine::Phase;
use crate::engine::group::{CState, ContainerRt, Group};
use aci::wire::{
    ContainerEvent, ContainerGroup, ContainerState, GroupInstanceView, InstanceView, IpAddress,
    container_state, event_name, group_state, ip_address_type, provisioning_state,
};

/// `properties.provisioningState` of a group in `phase`.
pub fn provisioning(phase: Option<Phase>) -> &'static str {
    match phase {
        // Stopped: provisioned, nothing runs.
        None => provisioning_state::SUCCEEDED,
        Some(Phase::Scheduling) => provisioning_state::PENDING,
        Some(Phase::Pending) => provisioning_state::CREATING,
        Some(Phase::ScheduleFailed) => provisioning_state::FAILED,
        Some(_) => provisioning_state::SUCCEEDED,
    }
}

fn group_state_of(phase: Option<Phase>) -> &'static str {
    match phase {
        None => group_state::STOPPED,
        Some(Phase::Scheduling | Phase::Pending) => group_state::PENDING,
        Some(Phase::Running | Phase::Restarting | Phase::Terminating) => group_state::RUNNING,
        Some(Phase::Succeeded) => group_state::SUCCEEDED,
        Some(Phase::Failed | Phase::ScheduleFailed | Phase::Expired) => group_state::FAILED,
    }
}

fn time(t: Timestamp) -> String {
    t.to_string()
}

fn state(c: &CState) -> ContainerState {
    match c {
        CState::Waiting { reason, .. } => ContainerState {
            state: Some(container_state::WAITING.into()),
            detail_status: Some(reason.clone()),
            ..Default::default()
        },
        CState::Running { started } => ContainerState {
            state: Some(container_state::RUNNING.into()),
            start_time: Some(time(*started)),
            detail_status: Some(String::new()),
            ..Default::default()
        },
        CState::Terminated {
            exit,
            started,
            finished,
        } => ContainerState {
            state: Some(container_state::TERMINATED.into()),
            start_time: started.map(time),
            exit_code: Some(exit.code),
            finish_time: Some(time(*finished)),
            detail_status: Some(exit.reason.clone()),
        },
    }
}

fn event(name: &str, message: String, at: Timestamp, count: i32, kind: &str) -> ContainerEvent {
    ContainerEvent {
        count: Some(count),
        first_timestamp: Some(time(at)),
        last_timestamp: Some(time(at)),
        name: Some(name.into()),
        message: Some(message),
        kind: Some(kind.into()),
    }
}

/// A container's instance view: its states, and the events of its runs.
fn instance_view(c: &ContainerRt, created: Timestamp) -> InstanceView {
    let mut events = Vec::new();
    if c.started_once {
        let image = &c.spec.image;
        events.push(event(
            event_name::PULLING,
            format!("pulling image \"{image}\""),
            created,
            1,
            "Normal",
        ));
        events.push(event(
            event_name::PULLED,
            format!("Successfully pulled image \"{image}\""),
            created,
            1,
            "Normal",
        ));
        let first = match (&c.state, &c.previous) {
            (
                _,
                Some(CState::Terminated {
                    started: Some(s), ..
                }),
            ) => *s,
            (CState::Running { started }, _)
            | (
                CState::Terminated {
                    started: Some(started),
                    ..
                },
                _,
            ) => *started,
            _ => created,
        };
        events.push(event(
            event_name::CREATED,
            "Created container".into(),
            first,
            c.restart_count + 1,
            "Normal",
        ));
        events.push(event(
            event_name::STARTED,
            "Started container".into(),
            first,
            c.restart_count + 1,
            "Normal",
        ));
        if let CState::Terminated { exit, finished, .. } = &c.state
            && exit.signal == Some(9)
        {
            events.push(event(
                event_name::KILLING,
                "Killing container with id.".into(),
                *finished,
                1,
                "Normal",
            ));
        }
    } else if let CState::Waiting { reason, message } = &c.state
        && (reason.contains("Image") || reason.contains("Pull"))
    {
        events.push(event(
            event_name::FAILED,
            message.clone().unwrap_or_else(|| reason.clone()),
            created,
            1,
            "Warning",
        ));
    }
    InstanceView {
        restart_count: Some(c.restart_count),
        current_state: Some(state(&c.state)),
        previous_state: c.previous.as_ref().map(state),
        events,
    }
}

/// A stopped container: terminated when the group stopped.
fn stopped_view(at: Timestamp) -> InstanceView {
    InstanceView {
        restart_count: Some(0),
        current_state: Some(ContainerState {
            state: Some(container_state::TERMINATED.into()),
            exit_code: Some(0),
            finish_time: Some(time(at)),
            detail_status: Some("Stopped".into()),
            ..Default::default()
        }),
        previous_state: None,
        events: Vec::new(),
    }
}

/// The group of `record` as a GET answers it; `group` None: stopped at `stopped_at`.
pub fn group(record: &Record, live: Option<&Group>, stopped_at: Timestamp) -> ContainerGroup {
    let mut out = record.spec.clone();
    out.id = Some(record.id());
    out.name = Some(record.name.clone());
    out.kind = Some(aci::wire::GROUP_TYPE.into());
    out.location = Some(record.location.clone());
    out.tags = record.tags();
    let phase = live.map(|g| g.status);
    let p = &mut out.properties;
    p.provisioning_state = Some(provisioning(phase).into());
    p.restart_policy
        .get_or_insert_with(|| aci::wire::restart_policy::ALWAYS.into());
    p.sku.get_or_insert_with(|| aci::wire::sku::STANDARD.into());
    for c in &mut p.containers {
        for env in &mut c.properties.environment_variables {
            env.secure_value = None;
        }
        c.properties.instance_view = Some(
            match live.and_then(|g| g.apps.iter().find(|rt| rt.spec.name == c.name)) {
                Some(rt) => instance_view(rt, record.created),
                None => stopped_view(stopped_at),
            },
        );
    }
    for c in &mut p.init_containers {
        for env in &mut c.properties.environment_variables {
            env.secure_value = None;
        }
        c.properties.instance_view = Some(
            match live.and_then(|g| g.init.iter().find(|rt| rt.spec.name == c.name)) {
                Some(rt) => instance_view(rt, record.created),
                None => stopped_view(stopped_at),
            },
        );
    }
    for v in &mut p.volumes {
        if let Some(files) = &mut v.secret {
            files.values_mut().for_each(String::clear);
        }
        if let Some(share) = &mut v.azure_file {
            share.storage_account_key = None;
        }
    }
    for credential in &mut p.image_registry_credentials {
        credential.password = None;
    }
    let ip = live.map(|g| g.ip.clone()).filter(|ip| !ip.is_empty());
    match (&mut p.ip_address, ip) {
        (Some(address), ip) => address.ip = ip,
        (None, Some(ip)) => {
            p.ip_address = Some(IpAddress {
                ports: Vec::new(),
                kind: ip_address_type::PRIVATE.into(),
                ip: Some(ip),
                ..Default::default()
            })
        }
        (None, None) => {}
    }
    p.instance_view = Some(GroupInstanceView {
        state: Some(group_state_of(phase).into()),
        events: live
            .map(|g| {
                g.events
                    .iter()
                    .map(|e| ContainerEvent {
                        count: Some(e.count as i32),
                        first_timestamp: Some(time(e.first)),
                        last_timestamp: Some(time(e.last)),
                        name: Some(e.reason.clone()),
                        message: Some(e.message.clone()),
                        kind: Some(e.kind.clone()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    });
    out
}
