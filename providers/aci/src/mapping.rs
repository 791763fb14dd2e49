//! A pod's containers in ACI's terms, and what ACI cannot do.
//!
//! ACI has one `command` (the whole argv) and no `args`, `workingDir`, `stdin`/`tty`, startup
//! probes, TCP or gRPC probes, lifecycle hooks or `subPath`. The rules:
//!
//! | pod field | on ACI |
//! |---|---|
//! | command + args | `command` = command followed by args |
//! | args without command | refused (`UnsupportedSpec`): the image's entrypoint is unknown here |
//! | workingDir (with a command) | the command runs as `/bin/sh -c 'cd "$0" && exec "$@"' <dir> <argv>`, Warning event (needs `/bin/sh`) |
//! | workingDir (without a command) | not applied, Warning event |
//! | liveness/readiness exec, httpGet | sent (HTTP headers too) |
//! | startup, TCP and gRPC probes, lifecycle hooks | not sent, Warning event |
//! | volumeMount subPath | refused (`UnsupportedSpec`) |
//! | native sidecar init containers | refused (`UnsupportedSpec`) |
//! | privileged | refused (`UnsupportedSpec`): standard container groups do not run privileged |
//! | runAsUser/Group, capabilities | sent in `securityContext`; ACI refuses what it cannot do |
//! | stdin / tty (with a command) | the command runs as `/bin/sh -c '… exec "$@" <>fifo'`: a stdin that stays open, as the kubelet keeps it (`cat` waits), Warning event |
//! | stdin / tty (without a command) | not applied, Warning event |
//! | dnsConfig / dnsPolicy | `dnsConfig` (nameservers, search, options) when there are nameservers |
//! | hostAliases, sysctls, shareProcessNamespace | not applied, Warning event |

use vk_core::provider::{
    ContainerSpec, Probe, ProbeHandler, ProviderError, ResolvedPod, RestartPolicy,
};

use crate::sizing::Size;
use crate::wire::{self, Container, ContainerProperties, EnvironmentVariable, InitContainer};

/// The event reason of a field ACI cannot honour.
pub const UNSUPPORTED_FIELD: &str = "FieldNotSupportedByACI";

/// A Warning event for the pod: what it asked for that ACI does not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub container: Option<String>,
    pub reason: String,
    pub message: String,
}

impl Warning {
    pub fn field(container: Option<&str>, message: String) -> Self {
        Self {
            container: container.map(str::to_string),
            reason: UNSUPPORTED_FIELD.into(),
            message,
        }
    }
}

fn unsupported(message: String) -> ProviderError {
    ProviderError::invalid("UnsupportedSpec", message)
}

/// Pod-level fields.
pub fn check_pod(pod: &ResolvedPod, warnings: &mut Vec<Warning>) -> Result<(), ProviderError> {
    if let Some(c) = pod
        .init_containers
        .iter()
        .find(|c| c.restart_policy == Some(RestartPolicy::Always))
    {
        return Err(unsupported(format!(
            "init container {:?} is a native sidecar (restartPolicy: Always), which ACI does not support",
            c.name
        )));
    }
    let mut not_applied = Vec::new();
    if !pod.host_aliases.is_empty() {
        not_applied.push("hostAliases");
    }
    if !pod.security.sysctls.is_empty() {
        not_applied.push("securityContext.sysctls");
    }
    if pod.share_process_namespace {
        not_applied.push("shareProcessNamespace");
    }
    if pod.security.fs_group.is_some() {
        not_applied.push("securityContext.fsGroup");
    }
    for field in not_applied {
        warnings.push(Warning::field(
            None,
            format!("{field} is not applied: ACI has no such setting"),
        ));
    }
    Ok(())
}

/// The argv ACI runs, and the Warning for a working dir it cannot apply.
fn command(c: &ContainerSpec, warnings: &mut Vec<Warning>) -> Result<Vec<String>, ProviderError> {
    if c.command.is_empty() && !c.args.is_empty() {
        return Err(unsupported(format!(
            "container {:?} has args but no command: ACI takes only a whole command line, so the image's entrypoint would be lost; set command",
            c.name
        )));
    }
    let argv: Vec<String> = c.command.iter().chain(&c.args).cloned().collect();
    let dir = c.working_dir.as_deref().filter(|d| !d.is_empty());
    // `stdin`/`tty`: the kubelet keeps such a container's stdin open (`cat` waits on it).
    let keep_stdin = c.stdin || c.tty;
    if dir.is_none() && !keep_stdin {
        return Ok(argv);
    }
    let name = Some(c.name.as_str());
    if argv.is_empty() {
        warnings.push(Warning::field(name, format!(
            "container {:?}: workingDir and stdin/tty are not applied: ACI has neither, and without a command the image's entrypoint cannot be wrapped",
            c.name
        )));
        return Ok(argv);
    }
    let mut script = String::new();
    if let Some(dir) = dir {
        script.push_str("cd \"$0\" && ");
        warnings.push(Warning::field(name, format!(
            "container {:?}: ACI has no workingDir; the command runs through /bin/sh, which changes to {dir:?} first",
            c.name
        )));
    }
    if keep_stdin {
        // A FIFO opened for reading and writing: reads wait forever, never an end of file;
        // an attach writes the client's stdin into it (`stdin_pipe`). Without one (no mkfifo,
        // a read-only /tmp) the command runs as given.
        script.push_str(&format!(
            "{{ vk_f={pipe}; if mkfifo -m 600 \"$vk_f\" 2>/dev/null || [ -p \"$vk_f\" ]; then exec \"$@\" <>\"$vk_f\"; fi; exec \"$@\"; }}",
            pipe = vk_core::provider::stdin_pipe::STDIN_PIPE
        ));
        warnings.push(Warning::field(name, format!(
            "container {:?}: ACI gives containers no stdin or terminal; the command runs through /bin/sh with a stdin that stays open, on a pipe kubectl attach writes to (exec still works)",
            c.name
        )));
    } else {
        script.push_str("exec \"$@\"");
    }
    let mut wrapped = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        script,
        dir.unwrap_or("sh").to_string(),
    ];
    wrapped.extend(argv);
    Ok(wrapped)
}

/// A probe ACI takes (exec, httpGet); `None` and a Warning for the others.
fn probe(
    c: &ContainerSpec,
    kind: &str,
    p: Option<&Probe>,
    warnings: &mut Vec<Warning>,
) -> Option<wire::Probe> {
    let p = p?;
    let mut out = wire::Probe {
        initial_delay_seconds: Some(p.initial_delay_seconds.try_into().unwrap_or(i32::MAX)),
        period_seconds: Some(p.period_seconds.try_into().unwrap_or(i32::MAX)),
        failure_threshold: Some(p.failure_threshold.try_into().unwrap_or(i32::MAX)),
        success_threshold: Some(p.success_threshold.try_into().unwrap_or(i32::MAX)),
        timeout_seconds: Some(p.timeout_seconds.try_into().unwrap_or(i32::MAX)),
        ..Default::default()
    };
    match &p.handler {
        ProbeHandler::Exec { command } => {
            out.exec = Some(wire::ExecProbe {
                command: command.clone(),
            })
        }
        ProbeHandler::HttpGet {
            host,
            port,
            path,
            https,
            headers,
        } => {
            if host.is_some() {
                warnings.push(Warning::field(Some(&c.name), format!(
                    "container {:?}: the {kind} probe's httpGet.host is not applied: ACI probes the container's own address", c.name)));
            }
            out.http_get = Some(wire::HttpGetProbe {
                path: Some(path.clone()),
                port: *port,
                scheme: Some(if *https { "https" } else { "http" }.to_string()),
                http_headers: headers
                    .iter()
                    .map(|(name, value)| wire::HttpHeader {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            });
        }
        ProbeHandler::TcpSocket { .. } | ProbeHandler::Grpc { .. } => {
            warnings.push(Warning::field(Some(&c.name), format!(
                "container {:?}: the {kind} probe is not applied: ACI probes only by exec and httpGet", c.name)));
            return None;
        }
    }
    Some(out)
}

fn env(c: &ContainerSpec) -> Vec<EnvironmentVariable> {
    c.env
        .iter()
        .map(|e| EnvironmentVariable {
            name: e.name.clone(),
            value: None,
            secure_value: Some(e.value.clone()),
        })
        .collect()
}

fn mounts(c: &ContainerSpec) -> Result<Vec<wire::VolumeMount>, ProviderError> {
    c.volume_mounts
        .iter()
        .map(|m| {
            if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(unsupported(format!(
                    "container {:?} mounts volume {:?} with subPath, which ACI does not support",
                    c.name, m.volume
                )));
            }
            Ok(wire::VolumeMount {
                name: m.volume.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only.then_some(true),
            })
        })
        .collect()
}

/// The container's security context; privileged is refused.
fn security(
    pod: &ResolvedPod,
    c: &ContainerSpec,
) -> Result<Option<wire::SecurityContext>, ProviderError> {
    let s = &c.security;
    if s.privileged == Some(true) {
        return Err(unsupported(format!(
            "container {:?} is privileged; ACI's standard container groups do not run privileged containers",
            c.name
        )));
    }
    let ctx = wire::SecurityContext {
        run_as_user: s.run_as_user.or(pod.security.run_as_user),
        run_as_group: s.run_as_group.or(pod.security.run_as_group),
        allow_privilege_escalation: s.allow_privilege_escalation,
        capabilities: (!s.capabilities_add.is_empty() || !s.capabilities_drop.is_empty()).then(
            || wire::Capabilities {
                add: s.capabilities_add.clone(),
                drop: s.capabilities_drop.clone(),
            },
        ),
        ..Default::default()
    };
    Ok((ctx != wire::SecurityContext::default()).then_some(ctx))
}

fn common_warnings(c: &ContainerSpec, warnings: &mut Vec<Warning>) {
    let name = Some(c.name.as_str());
    if !c.lifecycle.is_empty() {
        warnings.push(Warning::field(
            name,
            format!(
                "container {:?}: lifecycle hooks are not run: ACI has none",
                c.name
            ),
        ));
    }
    if c.startup_probe.is_some() {
        warnings.push(Warning::field(
            name,
            format!(
                "container {:?}: the startup probe is not applied: ACI has none",
                c.name
            ),
        ));
    }
    for field in &c.security.other {
        warnings.push(Warning::field(
            name,
            format!(
                "container {:?}: {field} is not applied: ACI has no such setting",
                c.name
            ),
        ));
    }
}

/// An app container.
pub fn container(
    pod: &ResolvedPod,
    c: &ContainerSpec,
    size: &Size,
    warnings: &mut Vec<Warning>,
) -> Result<Container, ProviderError> {
    common_warnings(c, warnings);
    let resources = |cpu: f64, mem: f64| wire::Resources {
        cpu,
        memory_in_gb: mem,
        gpu: None,
    };
    let limits = (size.limit_cpu.is_some() || size.limit_memory_gb.is_some()).then(|| {
        resources(
            size.limit_cpu.unwrap_or(size.cpu),
            size.limit_memory_gb.unwrap_or(size.memory_gb),
        )
    });
    Ok(Container {
        name: c.name.clone(),
        properties: ContainerProperties {
            image: c.image.clone(),
            command: command(c, warnings)?,
            ports: c
                .ports
                .iter()
                .map(|p| wire::ContainerPort {
                    protocol: Some(p.protocol.to_ascii_uppercase()),
                    port: p.port,
                })
                .collect(),
            environment_variables: env(c),
            resources: wire::ResourceRequirements {
                requests: resources(size.cpu, size.memory_gb),
                limits,
            },
            volume_mounts: mounts(c)?,
            liveness_probe: probe(c, "liveness", c.liveness_probe.as_ref(), warnings),
            readiness_probe: probe(c, "readiness", c.readiness_probe.as_ref(), warnings),
            security_context: security(pod, c)?,
            instance_view: None,
        },
    })
}

/// An init container (ACI takes image, command, env and mounts).
pub fn init_container(
    pod: &ResolvedPod,
    c: &ContainerSpec,
    warnings: &mut Vec<Warning>,
) -> Result<InitContainer, ProviderError> {
    common_warnings(c, warnings);
    if c.liveness_probe.is_some() || c.readiness_probe.is_some() || !c.ports.is_empty() {
        warnings.push(Warning::field(Some(&c.name), format!(
            "init container {:?}: probes and ports are not applied: ACI's init containers take none", c.name)));
    }
    Ok(InitContainer {
        name: c.name.clone(),
        properties: wire::InitContainerProperties {
            image: Some(c.image.clone()),
            command: command(c, warnings)?,
            environment_variables: env(c),
            volume_mounts: mounts(c)?,
            security_context: security(pod, c)?,
            instance_view: None,
        },
    })
}

/// The resolver settings, when there are nameservers to give.
pub fn dns_config(pod: &ResolvedPod, warnings: &mut Vec<Warning>) -> Option<wire::DnsConfig> {
    let dns = pod.dns.as_ref()?;
    if dns.nameservers.is_empty() {
        if !dns.searches.is_empty() || !dns.options.is_empty() {
            warnings.push(Warning::field(None, "dnsConfig searches/options without nameservers are not applied: ACI takes them only with nameservers".into()));
        }
        return None;
    }
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(" "));
    Some(wire::DnsConfig {
        name_servers: dns.nameservers.clone(),
        search_domains: join(dns.searches.clone()),
        options: join(dns.options.iter().map(ToString::to_string).collect()),
    })
}
