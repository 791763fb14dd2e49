//! A checked container group in the engine's terms ([`crate::engine::spec`]): ACI's command
//! (one list: it replaces the image's entrypoint and arguments), environment (plain and
//! secure values alike), requests, probes (ACI's defaults are the kubelet's), security
//! context, volumes (emptyDir shared by the group; secret files out of base64; azureFile and
//! gitRepo stand in as empty directories), the DNS config, the restart policy. Containers get
//! no stdin and no terminal: ACI has neither.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use vk_core::provider::{DnsOption, PodDns, ProbeHandler};

use super::record::Record;
use crate::engine::spec::{
    ContainerSpec, EnvVar, FileSpec, Main, Mount, Names, Security, VolumeSpec,
};
use crate::engine::{NewGroup, RestartPolicy};
use aci::wire::{
    ContainerGroup, EnvironmentVariable, Probe, SecurityContext, VolumeMount, restart_policy,
};

/// The engine's request for the group of `record` (already checked by `validate`).
pub fn new_group(record: Arc<Record>) -> NewGroup {
    let p = &record.spec.properties;
    let containers = p
        .containers
        .iter()
        .map(|c| {
            let cp = &c.properties;
            let mut spec = base(
                &c.name,
                &cp.image,
                &cp.command,
                &cp.environment_variables,
                &cp.volume_mounts,
                cp.security_context.as_ref(),
            );
            spec.cpu = Some(cp.resources.requests.cpu);
            spec.memory_gib = Some(cp.resources.requests.memory_in_gb);
            spec.liveness_probe = cp.liveness_probe.as_ref().and_then(probe);
            spec.readiness_probe = cp.readiness_probe.as_ref().and_then(probe);
            spec
        })
        .collect();
    let init_containers = p
        .init_containers
        .iter()
        .map(|c| {
            let cp = &c.properties;
            base(
                &c.name,
                cp.image.as_deref().unwrap_or_default(),
                &cp.command,
                &cp.environment_variables,
                &cp.volume_mounts,
                cp.security_context.as_ref(),
            )
        })
        .collect();
    NewGroup {
        id: record.engine_key(),
        name: record.name.clone(),
        cpu: record.cpu,
        memory_gib: record.memory_gb,
        containers,
        init_containers,
        volumes: volumes(&record.spec),
        names: Names {
            hostname: None,
            dns: p.dns_config.as_ref().map(|d| PodDns {
                on_cloud_resolver: false,
                nameservers: d.name_servers.clone(),
                searches: d
                    .search_domains
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_string)
                    .collect(),
                options: d
                    .options
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(|o| match o.split_once(':') {
                        Some((name, value)) => DnsOption {
                            name: name.into(),
                            value: Some(value.into()),
                        },
                        None => DnsOption {
                            name: o.into(),
                            value: None,
                        },
                    })
                    .collect(),
            }),
            host_aliases: Vec::new(),
        },
        share_process_namespace: false,
        restart_policy: match p.restart_policy.as_deref() {
            Some(restart_policy::NEVER) => RestartPolicy::Never,
            Some(restart_policy::ON_FAILURE) => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        },
        active_deadline: None,
        termination_grace: Some(Duration::from_secs(10)),
        start_latency: None,
        image_cache: Default::default(),
        private_ip: None,
        idempotency: None,
        face: record,
    }
}

fn base(
    name: &str,
    image: &str,
    command: &[String],
    env: &[EnvironmentVariable],
    mounts: &[VolumeMount],
    security: Option<&SecurityContext>,
) -> ContainerSpec {
    let security = security.cloned().unwrap_or_default();
    ContainerSpec {
        name: name.into(),
        main: Main::Command,
        image: image.into(),
        command: command.to_vec(),
        env: env
            .iter()
            .map(|e| EnvVar {
                name: e.name.clone(),
                value: e
                    .value
                    .clone()
                    .or_else(|| e.secure_value.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        mounts: mounts
            .iter()
            .map(|m| Mount {
                volume: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only == Some(true),
                sub_path: None,
            })
            .collect(),
        security: Security {
            run_as_user: security.run_as_user,
            run_as_group: security.run_as_group,
            run_as_non_root: false,
            privileged: security.privileged == Some(true),
            read_only_root: false,
            capabilities_add: security.capabilities.map(|c| c.add).unwrap_or_default(),
        },
        ..Default::default()
    }
}

/// ACI's probe in vk-core's terms; `None` when it has no handler.
fn probe(p: &Probe) -> Option<vk_core::provider::Probe> {
    let handler = if let Some(exec) = &p.exec {
        ProbeHandler::Exec {
            command: exec.command.clone(),
        }
    } else {
        let http = p.http_get.as_ref()?;
        ProbeHandler::HttpGet {
            host: None,
            port: http.port,
            path: http.path.clone().unwrap_or_else(|| "/".into()),
            https: http
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("https")),
            headers: http
                .http_headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        }
    };
    let mut probe = vk_core::provider::Probe::new(handler);
    let secs =
        |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
    probe.initial_delay_seconds = secs(p.initial_delay_seconds, 0);
    probe.period_seconds = secs(p.period_seconds, 10).max(1);
    probe.timeout_seconds = secs(p.timeout_seconds, 1).max(1);
    probe.success_threshold = secs(p.success_threshold, 1).max(1);
    probe.failure_threshold = secs(p.failure_threshold, 3).max(1);
    Some(probe)
}

fn volumes(group: &ContainerGroup) -> Vec<VolumeSpec> {
    group
        .properties
        .volumes
        .iter()
        .map(|v| match &v.secret {
            Some(files) => VolumeSpec::Files {
                name: v.name.clone(),
                files: files
                    .iter()
                    .map(|(path, content)| FileSpec {
                        path: path.clone(),
                        content: base64::engine::general_purpose::STANDARD
                            .decode(content)
                            .unwrap_or_default(),
                        mode: 0o644,
                    })
                    .collect(),
            },
            None => VolumeSpec::EmptyDir {
                name: v.name.clone(),
            },
        })
        .collect()
}
