//! The engine's groups in the API's shapes (`view`): `DescribeContainerGroups` entries and
//! `DescribeContainerGroupStatus` entries. What the engine keeps (containers' commands,
//! environment and mounts, the volumes as last updated) comes from the engine; what only ECI
//! echoes (pull policy, ports, probes and security context as given, an emptyDir's medium)
//! from the request in the group's face record.

use std::sync::LazyLock;

use base64::Engine as _;
use jiff::Timestamp;

use super::create_extras::ContainerExtras;
use super::placement::stable_hex;
use super::record::{Record, record};
use super::view::{
    CapabilityView, ConditionView, ConfigFileToPathView, ContainerCommon, ContainerStatusView,
    ContainerView, EciSecurityContextView, GroupView, HttpGetView, InitContainerView, PodIpView,
    PodStateView, PodStatusView, ProbeView, SecurityContextView, StatusView, SysctlView,
    TcpSocketView, TerminatedView, VolumeMountView, VolumeView,
};
use crate::engine::Phase;
use crate::engine::group::{CState, ContainerRt, Event, Group};
use crate::engine::spec::{Mount, VolumeSpec};
use eci::wire::api::{
    self, DnsConfig, DnsConfigOption, HostAlias, StateRunning, StateWaiting, container_state,
    group_status,
};
use eci::wire::request::{
    ContainerDef, ProbeCheck, ProbeDef, VOLUME_CONFIG_FILE, VOLUME_EMPTY_DIR, VolumeDef,
};
use eci::wire::request_names::DnsConfigDef;

/// ECI's name for a group's phase (`Status`).
pub fn status_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Scheduling => group_status::SCHEDULING,
        Phase::Pending => group_status::PENDING,
        Phase::Running => group_status::RUNNING,
        Phase::Restarting => group_status::RESTARTING,
        Phase::Terminating => group_status::TERMINATING,
        Phase::Succeeded => group_status::SUCCEEDED,
        Phase::Failed => group_status::FAILED,
        Phase::ScheduleFailed => group_status::SCHEDULE_FAILED,
        Phase::Expired => group_status::EXPIRED,
    }
}

/// An event as `DescribeContainerGroups` lists it.
pub fn event(e: &Event) -> api::Event {
    api::Event {
        count: e.count,
        kind: e.kind.clone(),
        name: e.name.clone(),
        reason: e.reason.clone(),
        message: e.message.clone(),
        first_timestamp: time(e.first),
        last_timestamp: time(e.last),
    }
}

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

fn mount(m: &Mount) -> VolumeMountView {
    VolumeMountView {
        name: m.volume.clone(),
        mount_path: m.mount_path.clone(),
        read_only: m.read_only,
        sub_path: m.sub_path.clone().unwrap_or_default(),
        mount_propagation: "None".into(),
    }
}

/// A probe with Kubernetes' defaults filled in, as ECI echoes it.
fn probe(p: &ProbeDef) -> ProbeView {
    let mut view = ProbeView {
        initial_delay_seconds: p.initial_delay_seconds.unwrap_or(0),
        period_seconds: p.period_seconds.unwrap_or(10),
        timeout_seconds: p.timeout_seconds.unwrap_or(1),
        success_threshold: p.success_threshold.unwrap_or(1),
        failure_threshold: p.failure_threshold.unwrap_or(3),
        ..Default::default()
    };
    match &p.check {
        ProbeCheck::Exec(command) => view.execs = command.clone(),
        ProbeCheck::HttpGet { path, port, scheme } => {
            view.http_get = Some(HttpGetView {
                path: path.clone().unwrap_or_else(|| "/".into()),
                port: *port,
                scheme: scheme.clone().unwrap_or_else(|| "HTTP".into()),
            })
        }
        ProbeCheck::TcpSocket { port } => view.tcp_socket = Some(TcpSocketView { port: *port }),
    }
    view
}

/// The container as ECI was asked for it (an empty one in a group another face created).
fn asked<'a>(g: &'a Group, c: &ContainerRt) -> &'a ContainerDef {
    static NONE: LazyLock<ContainerDef> = LazyLock::new(ContainerDef::default);
    let request = &record(g).request;
    request
        .containers
        .iter()
        .chain(&request.init_containers)
        .find(|d| d.name == c.spec.name)
        .unwrap_or(&NONE)
}

fn common(c: &ContainerRt, def: &ContainerDef, extras: &ContainerExtras) -> ContainerCommon {
    ContainerCommon {
        name: c.spec.name.clone(),
        image: c.spec.image.clone(),
        cpu: c.spec.cpu.unwrap_or_default(),
        memory: c.spec.memory_gib.unwrap_or_default(),
        gpu: extras.gpu,
        restart_count: c.restart_count,
        working_dir: c.spec.working_dir.clone().unwrap_or_default(),
        image_pull_policy: def.image_pull_policy.clone().unwrap_or_default(),
        args: c.spec.args.clone(),
        ready: c.ready && matches!(c.state, CState::Running { .. }),
        current_state: state(&c.state),
        previous_state: c.previous.as_ref().map(state).unwrap_or_default(),
        environment_vars: if extras.environment_var_hide {
            Vec::new()
        } else {
            c.spec
                .env
                .iter()
                .map(|e| api::EnvironmentVar {
                    key: e.name.clone(),
                    value: e.value.clone(),
                })
                .collect()
        },
        volume_mounts: c.spec.mounts.iter().map(mount).collect(),
        ports: def.ports.clone(),
        security_context: def.security_context.as_ref().map(|s| SecurityContextView {
            run_as_user: s.run_as_user,
            read_only_root_filesystem: s.read_only_root_filesystem == Some(true),
            capability: CapabilityView {
                adds: s.capability_add.clone(),
            },
        }),
    }
}

fn container(g: &Group, c: &ContainerRt, extras: &ContainerExtras) -> ContainerView {
    let def = asked(g, c);
    ContainerView {
        common: common(c, def, extras),
        commands: c.spec.command.clone(),
        stdin: c.spec.stdin,
        stdin_once: def.stdin_once,
        tty: c.spec.tty,
        liveness_probe: def.liveness_probe.as_ref().map(probe),
        readiness_probe: def.readiness_probe.as_ref().map(probe),
    }
}

fn init_container(g: &Group, c: &ContainerRt, extras: &ContainerExtras) -> InitContainerView {
    InitContainerView {
        common: common(c, asked(g, c), extras),
        command: c.spec.command.clone(),
    }
}

/// A volume as the engine has it now (an update replaces files), with what ECI was asked of
/// an emptyDir.
fn volume(g: &Group, v: &VolumeSpec) -> VolumeView {
    let mut view = VolumeView {
        name: v.name().to_string(),
        ..Default::default()
    };
    match v {
        VolumeSpec::EmptyDir { name } => {
            view.kind = VOLUME_EMPTY_DIR.into();
            let asked = record(g).request.volumes.iter().find_map(|a| match a {
                VolumeDef::EmptyDir {
                    name: asked,
                    medium,
                    size_limit,
                } if asked == name => Some((medium, size_limit)),
                _ => None,
            });
            let (medium, size_limit) = asked.unzip();
            view.empty_dir_volume_medium = Some(medium.cloned().flatten().unwrap_or_default());
            view.empty_dir_volume_size_limit = size_limit.cloned().flatten();
        }
        VolumeSpec::Files { files, .. } => {
            view.kind = VOLUME_CONFIG_FILE.into();
            view.config_file_volume_config_file_to_paths = files
                .iter()
                .map(|f| ConfigFileToPathView {
                    path: f.path.clone(),
                    content: base64::engine::general_purpose::STANDARD.encode(&f.content),
                })
                .collect()
        }
    }
    view
}

/// The specification ECI bills: the first ECS type asked for, else vCPU-GiB of the size the
/// request was rounded up to.
fn instance_type(g: &Group) -> String {
    record(g)
        .extras
        .instance_types
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{:.1}-{:.1}Gi", g.cpu, g.memory))
}

pub fn group(g: &Group, region_id: &str, with_event: bool) -> GroupView {
    let finished = |status: Phase| {
        (g.status == status)
            .then(|| g.finished.map(time))
            .flatten()
            .unwrap_or_default()
    };
    let extras = |list: &[ContainerExtras], i: usize| list.get(i).cloned().unwrap_or_default();
    let Record {
        request,
        extras: face_extras,
        ..
    } = record(g);
    let spot_strategy = face_extras
        .spot_strategy
        .clone()
        .unwrap_or_else(|| "NoSpot".into());
    GroupView {
        container_group_id: g.id().to_string(),
        container_group_name: g.spec.name.clone(),
        region_id: region_id.to_string(),
        zone_id: g.zone(region_id),
        vpc_id: g.vpc(region_id),
        vswitch_id: g.vswitch(region_id),
        security_group_id: g.security_group(region_id),
        resource_group_id: g.resource_group(),
        eni_instance_id: g.eni(),
        intranet_ip: if g.status == Phase::Scheduling {
            String::new()
        } else {
            g.ip.clone()
        },
        internet_ip: g.internet_ip().unwrap_or_default(),
        ipv6_address: g.ipv6().unwrap_or_default(),
        instance_type: instance_type(g),
        compute_category: g.compute_category(),
        cpu: g.cpu,
        memory: g.memory,
        restart_policy: request
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into()),
        status: status_name(g.status).to_string(),
        creation_time: time(g.created),
        succeeded_time: finished(Phase::Succeeded),
        failed_time: finished(Phase::Failed),
        expired_time: finished(Phase::Expired),
        ram_role_name: face_extras.ram_role_name.clone(),
        spot_price_limit: (spot_strategy == "SpotWithPriceLimit")
            .then_some(face_extras.spot_price_limit)
            .flatten(),
        spot_strategy,
        tags: request.tags.clone(),
        events: with_event.then(|| g.events.iter().map(event).collect()),
        containers: g
            .apps
            .iter()
            .enumerate()
            .map(|(i, c)| container(g, c, &extras(&face_extras.containers, i)))
            .collect(),
        init_containers: g
            .init
            .iter()
            .enumerate()
            .map(|(i, c)| init_container(g, c, &extras(&face_extras.init_containers, i)))
            .collect(),
        volumes: g.spec.volumes.iter().map(|v| volume(g, v)).collect(),
        dns_config: dns_config(&request.names.dns_config),
        host_aliases: request
            .names
            .host_aliases
            .iter()
            .map(|a| HostAlias {
                ip: a.ip.clone(),
                hostnames: a.hostnames.clone(),
            })
            .collect(),
        ephemeral_storage: request.ephemeral_storage,
        eci_security_context: (!request.sysctls.is_empty()).then(|| EciSecurityContextView {
            sysctls: request
                .sysctls
                .iter()
                .map(|s| SysctlView {
                    name: s.name.clone(),
                    value: s.value.clone(),
                })
                .collect(),
        }),
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

/// A container run's id, stable for the run: `containerd://<64 hex>`.
fn container_id(g: &Group, c: &ContainerRt, run: i32) -> String {
    format!(
        "containerd://{}",
        stable_hex(&format!("{}/{}/{run}", g.id(), c.spec.name), 32)
    )
}

fn pod_state(s: &CState, id: String) -> PodStateView {
    match s {
        CState::Waiting { reason, message } => PodStateView {
            waiting: Some(StateWaiting {
                reason: reason.clone(),
                message: message.clone().unwrap_or_default(),
            }),
            ..Default::default()
        },
        CState::Running { started } => PodStateView {
            running: Some(StateRunning {
                started_at: time(*started),
            }),
            ..Default::default()
        },
        CState::Terminated {
            exit,
            started,
            finished,
        } => PodStateView {
            terminated: Some(TerminatedView {
                container_id: id,
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
fn pod_phase(status: Phase) -> &'static str {
    match status {
        Phase::Running | Phase::Terminating => "Running",
        Phase::Succeeded => "Succeeded",
        Phase::Failed | Phase::Expired | Phase::ScheduleFailed => "Failed",
        Phase::Scheduling | Phase::Pending | Phase::Restarting => "Pending",
    }
}

/// Kubernetes' QoS class: every container sized in both dimensions is Guaranteed (ECI sets
/// limits equal to requests), none sized is BestEffort.
fn qos_class(g: &Group) -> &'static str {
    let all = g.init.iter().chain(&g.apps);
    let sized = |c: &&ContainerRt| c.spec.cpu.is_some() && c.spec.memory_gib.is_some();
    let unsized_ = |c: &&ContainerRt| c.spec.cpu.is_none() && c.spec.memory_gib.is_none();
    if all.clone().all(|c| sized(&c)) {
        "Guaranteed"
    } else if all.clone().all(|c| unsized_(&c)) {
        "BestEffort"
    } else {
        "Burstable"
    }
}

fn conditions(g: &Group) -> Vec<ConditionView> {
    let running = |c: &ContainerRt| matches!(c.state, CState::Running { .. });
    let scheduled = !matches!(g.status, Phase::Scheduling | Phase::ScheduleFailed);
    let initialized = scheduled
        && g.init
            .iter()
            .all(|c| matches!(&c.state, CState::Terminated { exit, .. } if exit.code == 0));
    let ready = g.apps.iter().all(|c| c.ready && running(c));
    let condition = |kind: &str, ok: bool, at: Timestamp| ConditionView {
        kind: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        last_transition_time: time(at),
        reason: String::new(),
        message: String::new(),
    };
    vec![
        condition("PodScheduled", scheduled, g.created),
        condition("Initialized", initialized, g.updated),
        condition("ContainersReady", ready, g.updated),
        condition("Ready", ready, g.updated),
    ]
}

pub fn status(g: &Group) -> StatusView {
    let tag = |k: &str| {
        record(g)
            .request
            .tags
            .iter()
            .find(|t| t.key == k)
            .map(|t| t.value.clone())
            .unwrap_or_default()
    };
    let running = |c: &ContainerRt| matches!(c.state, CState::Running { .. });
    StatusView {
        container_group_id: g.id().to_string(),
        name: tag(eci::wire::tags::POD_NAME),
        namespace: tag(eci::wire::tags::NAMESPACE),
        uuid: tag(eci::wire::tags::POD_UID),
        annotations: "{}".into(),
        status: status_name(g.status).to_string(),
        pod_status: PodStatusView {
            phase: pod_phase(g.status).into(),
            pod_ip: g.ip.clone(),
            pod_ips: vec![PodIpView { ip: g.ip.clone() }],
            host_ip: g.ip.clone(),
            qos_class: qos_class(g).into(),
            start_time: time(g.created),
            conditions: conditions(g),
            container_statuses: g
                .apps
                .iter()
                .map(|c| ContainerStatusView {
                    name: c.spec.name.clone(),
                    image: c.spec.image.clone(),
                    image_id: format!(
                        "{}@sha256:{}",
                        crate::engine::catalog::repository(&c.spec.image),
                        stable_hex(&c.spec.image, 32)
                    ),
                    ready: c.ready && running(c),
                    started: c.started && running(c),
                    restart_count: c.restart_count,
                    state: pod_state(&c.state, container_id(g, c, c.restart_count)),
                    last_state: c
                        .previous
                        .as_ref()
                        .map(|s| pod_state(s, container_id(g, c, c.restart_count - 1)))
                        .unwrap_or_default(),
                })
                .collect(),
        },
    }
}
