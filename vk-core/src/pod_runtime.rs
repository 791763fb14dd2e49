//! The parts of a pod that the container runtime applies (security contexts, lifecycle hooks,
//! termination message policy, ephemeral storage, `shareProcessNamespace`), read from the API
//! objects into the provider model ([`crate::provider::ContainerSecurity`] and friends). Kept
//! apart from the resolver, which fills the rest of the [`ResolvedPod`]; the resolver takes
//! these with struct-update syntax.

use k8s_openapi::api::core::v1::{
    Container, LifecycleHandler as K8sHandler, Pod, PodSecurityContext, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pods::resolve::quantity::parse_units;
use crate::provider::{
    ContainerSecurity, ContainerSpec, Lifecycle, LifecycleHandler, PodSecurity, ResolvedPod,
    TerminationMessagePolicy,
};

const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// A [`ResolvedPod`] holding only the pod-level runtime fields.
pub fn pod(pod: &Pod) -> ResolvedPod {
    let spec = pod.spec.as_ref();
    ResolvedPod {
        security: spec
            .and_then(|s| s.security_context.as_ref())
            .map(pod_security)
            .unwrap_or_default(),
        share_process_namespace: spec
            .and_then(|s| s.share_process_namespace)
            .unwrap_or(false),
        ..Default::default()
    }
}

/// A [`ContainerSpec`] holding only the container's runtime fields.
pub fn container(c: &Container) -> ContainerSpec {
    let resource = |list: Option<&std::collections::BTreeMap<String, _>>| {
        list.and_then(|m| m.get(EPHEMERAL_STORAGE)).and_then(
            |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| parse_units(&q.0).ok(),
        )
    };
    let resources = c.resources.as_ref();
    ContainerSpec {
        security: c
            .security_context
            .as_ref()
            .map(container_security)
            .unwrap_or_default(),
        lifecycle: lifecycle(c),
        termination_message_policy: match c.termination_message_policy.as_deref() {
            Some("FallbackToLogsOnError") => TerminationMessagePolicy::FallbackToLogsOnError,
            _ => TerminationMessagePolicy::File,
        },
        ephemeral_storage_request_bytes: resource(resources.and_then(|r| r.requests.as_ref())),
        ephemeral_storage_limit_bytes: resource(resources.and_then(|r| r.limits.as_ref())),
        ..Default::default()
    }
}

fn pod_security(s: &PodSecurityContext) -> PodSecurity {
    let mut other = Vec::new();
    for (set, name) in [
        (s.se_linux_options.is_some(), "seLinuxOptions"),
        (s.seccomp_profile.is_some(), "seccompProfile"),
        (s.app_armor_profile.is_some(), "appArmorProfile"),
        (s.windows_options.is_some(), "windowsOptions"),
        (s.fs_group_change_policy.is_some(), "fsGroupChangePolicy"),
        (
            s.supplemental_groups_policy.is_some(),
            "supplementalGroupsPolicy",
        ),
        (s.se_linux_change_policy.is_some(), "seLinuxChangePolicy"),
    ] {
        if set {
            other.push(format!("securityContext.{name}"));
        }
    }
    PodSecurity {
        run_as_user: s.run_as_user,
        run_as_group: s.run_as_group,
        run_as_non_root: s.run_as_non_root,
        fs_group: s.fs_group,
        supplemental_groups: s.supplemental_groups.clone().unwrap_or_default(),
        sysctls: s
            .sysctls
            .iter()
            .flatten()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect(),
        other,
    }
}

fn container_security(s: &SecurityContext) -> ContainerSecurity {
    let mut other = Vec::new();
    for (set, name) in [
        (s.se_linux_options.is_some(), "seLinuxOptions"),
        (s.seccomp_profile.is_some(), "seccompProfile"),
        (s.app_armor_profile.is_some(), "appArmorProfile"),
        (s.windows_options.is_some(), "windowsOptions"),
        // `Default` is what every runtime does anyway.
        (
            s.proc_mount.as_deref().is_some_and(|m| m != "Default"),
            "procMount",
        ),
    ] {
        if set {
            other.push(format!("securityContext.{name}"));
        }
    }
    let caps = s.capabilities.as_ref();
    ContainerSecurity {
        run_as_user: s.run_as_user,
        run_as_group: s.run_as_group,
        run_as_non_root: s.run_as_non_root,
        read_only_root_filesystem: s.read_only_root_filesystem,
        privileged: s.privileged,
        allow_privilege_escalation: s.allow_privilege_escalation,
        capabilities_add: caps.and_then(|c| c.add.clone()).unwrap_or_default(),
        capabilities_drop: caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
        other,
    }
}

fn lifecycle(c: &Container) -> Lifecycle {
    let mut out = Lifecycle::default();
    let Some(l) = &c.lifecycle else {
        return out;
    };
    for (hook, slot, name) in [
        (&l.post_start, &mut out.post_start, "postStart"),
        (&l.pre_stop, &mut out.pre_stop, "preStop"),
    ] {
        let Some(h) = hook else { continue };
        match handler(c, h) {
            Ok(handler) => *slot = handler,
            Err(why) => out
                .invalid
                .push((format!("lifecycle.{name}"), why.to_string())),
        }
    }
    if l.stop_signal.is_some() {
        out.invalid.push((
            "lifecycle.stopSignal".into(),
            "a custom stop signal is not supported".into(),
        ));
    }
    out
}

/// The handler with its named port looked up; `None` for an empty one (the API refuses those).
fn handler(c: &Container, h: &K8sHandler) -> Result<Option<LifecycleHandler>, HookPortError> {
    if let Some(exec) = &h.exec {
        return Ok(Some(LifecycleHandler::Exec {
            command: exec.command.clone().unwrap_or_default(),
        }));
    }
    if let Some(get) = &h.http_get {
        return Ok(Some(LifecycleHandler::HttpGet {
            host: get.host.clone().filter(|h| !h.is_empty()),
            port: port(c, &get.port)?,
            path: get.path.clone().unwrap_or_else(|| "/".into()),
            https: get
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")),
            headers: get
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        }));
    }
    if let Some(tcp) = &h.tcp_socket {
        return Ok(Some(LifecycleHandler::TcpSocket {
            host: tcp.host.clone().filter(|h| !h.is_empty()),
            port: port(c, &tcp.port)?,
        }));
    }
    Ok(h.sleep
        .as_ref()
        .map(|s| LifecycleHandler::Sleep { seconds: s.seconds }))
}

/// A hook's port that names no port of the container.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum HookPortError {
    #[error("port {0:?} is not a named port of the container")]
    UnknownName(String),
    #[error("port {0} is not between 1 and 65535")]
    OutOfRange(i32),
}

/// A port number, or a port name of the container (as for probes).
fn port(c: &Container, port: &IntOrString) -> Result<u16, HookPortError> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .or_else(|| name.parse().ok())
            .ok_or_else(|| HookPortError::UnknownName(name.clone()))?,
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(HookPortError::OutOfRange(number))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn container_of(v: serde_json::Value) -> Container {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_containers_runtime_fields_are_read() {
        let c = container_of(json!({
            "name": "app",
            "ports": [{"name": "http", "containerPort": 8080}],
            "securityContext": {
                "runAsUser": 1000, "runAsGroup": 2000, "readOnlyRootFilesystem": true,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}, "procMount": "Default"
            },
            "lifecycle": {
                "postStart": {"httpGet": {"port": "http", "path": "/start"}},
                "preStop": {"exec": {"command": ["sh", "-c", "echo bye"]}}
            },
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"requests": {"ephemeral-storage": "2Gi"}, "limits": {"ephemeral-storage": "3G"}}
        }));
        let spec = container(&c);
        assert_eq!(spec.security.run_as_user, Some(1000));
        assert_eq!(spec.security.run_as_group, Some(2000));
        assert_eq!(spec.security.read_only_root_filesystem, Some(true));
        assert_eq!(spec.security.capabilities_add, vec!["NET_ADMIN"]);
        assert_eq!(spec.security.capabilities_drop, vec!["ALL"]);
        assert_eq!(spec.security.other, vec!["securityContext.seccompProfile"]);
        assert_eq!(
            spec.lifecycle.post_start,
            Some(LifecycleHandler::HttpGet {
                host: None,
                port: 8080,
                path: "/start".into(),
                https: false,
                headers: vec![]
            })
        );
        assert_eq!(
            spec.lifecycle.pre_stop,
            Some(LifecycleHandler::Exec {
                command: vec!["sh".into(), "-c".into(), "echo bye".into()]
            })
        );
        assert_eq!(
            spec.termination_message_policy,
            TerminationMessagePolicy::FallbackToLogsOnError
        );
        assert_eq!(spec.ephemeral_storage_request_bytes, Some(2 << 30));
        assert_eq!(spec.ephemeral_storage_limit_bytes, Some(3_000_000_000));
    }

    #[test]
    fn a_hook_on_an_unknown_port_is_reported_not_dropped() {
        let c = container_of(json!({
            "name": "app",
            "lifecycle": {"preStop": {"tcpSocket": {"port": "nope"}}}
        }));
        let l = container(&c).lifecycle;
        assert_eq!(l.pre_stop, None);
        assert_eq!(l.invalid.len(), 1);
        assert_eq!(l.invalid[0].0, "lifecycle.preStop");
        assert_eq!(
            l.invalid[0].1,
            r#"port "nope" is not a named port of the container"#
        );
        let c = container_of(json!({
            "name": "app",
            "lifecycle": {"postStart": {"httpGet": {"port": 70000}}}
        }));
        let l = container(&c).lifecycle;
        assert_eq!(l.post_start, None);
        assert_eq!(
            l.invalid,
            vec![(
                "lifecycle.postStart".to_string(),
                "port 70000 is not between 1 and 65535".to_string()
            )]
        );
    }

    #[test]
    fn the_pods_security_context_and_shared_pid_namespace_are_read() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "shareProcessNamespace": true,
                "containers": [],
                "securityContext": {
                    "runAsUser": 1000, "runAsNonRoot": true, "fsGroup": 3000,
                    "supplementalGroups": [4000],
                    "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                    "seLinuxOptions": {"level": "s0"}
                }
            }
        }))
        .unwrap();
        let r = pod(&p);
        assert!(r.share_process_namespace);
        assert_eq!(r.security.run_as_user, Some(1000));
        assert_eq!(r.security.run_as_non_root, Some(true));
        assert_eq!(r.security.fs_group, Some(3000));
        assert_eq!(r.security.supplemental_groups, vec![4000]);
        assert_eq!(
            r.security.sysctls,
            vec![("net.ipv4.tcp_syncookies".into(), "1".into())]
        );
        assert_eq!(r.security.other, vec!["securityContext.seLinuxOptions"]);
    }
}
