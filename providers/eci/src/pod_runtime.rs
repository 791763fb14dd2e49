//! A pod's security contexts, lifecycle hooks, termination message, ephemeral storage and
//! `shareProcessNamespace` in ECI's parameters (`request_security`, `request_lifecycle`), with
//! the kubelet's semantics: the container's context overrides the pod's; `runAsNonRoot` with
//! user 0 is refused (`CreateContainerConfigError`), as is a sysctl ECI does not take
//! (`SysctlForbidden`) and a capability ECI cannot add (more privilege than can be given must
//! not run silently with less). What ECI cannot express but the pod can run without (dropping
//! capabilities, seccomp/SELinux/AppArmor profiles, fsGroup) runs, with a Warning event that
//! names the field.

use vk_core::provider::{
    ContainerSpec, LifecycleHandler, PodSecurity, ProviderError, ResolvedPod,
    TerminationMessagePolicy,
};

use crate::wire::request::{
    HookDef, LifecycleDef, SecurityContextDef, Sysctl, TerminationMessageDef,
};
use crate::wire::request_security::{ADDABLE_CAPABILITIES, SAFE_SYSCTLS};

/// The event reason of a field ECI cannot honour.
pub const UNSUPPORTED_FIELD: &str = "FieldNotSupportedByECI";

/// The free ephemeral storage of every ECI instance, in GiB; `EphemeralStorage` adds to it.
pub const FREE_EPHEMERAL_STORAGE_GIB: u64 = 30;

/// The capabilities a container runtime grants by default (containerd's and Docker's set):
/// adding one of them asks for nothing more.
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A Warning event for the pod: what it asked for that ECI does not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeWarning {
    pub container: Option<String>,
    pub reason: String,
    pub message: String,
}

fn warn(out: &mut Vec<RuntimeWarning>, container: Option<&str>, message: String) {
    out.push(RuntimeWarning {
        container: container.map(str::to_string),
        reason: UNSUPPORTED_FIELD.into(),
        message,
    });
}

/// `CAP_NET_ADMIN` and `net_admin` are `NET_ADMIN`.
fn capability(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
}

/// A container's effective security context in ECI's terms.
pub fn security_context(
    pod: &ResolvedPod,
    c: &ContainerSpec,
    warnings: &mut Vec<RuntimeWarning>,
) -> Result<Option<SecurityContextDef>, ProviderError> {
    let s = &c.security;
    let p = &pod.security;
    let run_as_user = s.run_as_user.or(p.run_as_user);
    let run_as_non_root = s.run_as_non_root.or(p.run_as_non_root);
    if run_as_non_root == Some(true) && run_as_user == Some(0) {
        return Err(ProviderError::invalid(
            "CreateContainerConfigError",
            format!(
                "container's runAsUser breaks non-root policy (pod: \"{}\", container: {})",
                pod.pod, c.name
            ),
        ));
    }
    let mut capability_add = Vec::new();
    for cap in s.capabilities_add.iter().map(|c| capability(c)) {
        if ADDABLE_CAPABILITIES.contains(&cap.as_str()) {
            if !capability_add.contains(&cap) {
                capability_add.push(cap);
            }
        } else if !DEFAULT_CAPABILITIES.contains(&cap.as_str()) {
            return Err(ProviderError::invalid(
                "UnsupportedSpec",
                format!(
                    "container {:?} adds the capability {cap}; ECI can add only NET_ADMIN and NET_RAW",
                    c.name
                ),
            ));
        }
    }
    let name = Some(c.name.as_str());
    if !s.capabilities_drop.is_empty() {
        warn(
            warnings,
            name,
            format!(
                "container {:?}: securityContext.capabilities.drop ({}) is not applied: ECI cannot drop capabilities, the container keeps the runtime's default set",
                c.name,
                s.capabilities_drop.join(", ")
            ),
        );
    }
    if s.allow_privilege_escalation == Some(false) {
        warn(
            warnings,
            name,
            format!(
                "container {:?}: securityContext.allowPrivilegeEscalation: false is not applied: ECI has no such setting",
                c.name
            ),
        );
    }
    for field in &s.other {
        warn(
            warnings,
            name,
            format!(
                "container {:?}: {field} is not applied: ECI has no such setting",
                c.name
            ),
        );
    }
    let def = SecurityContextDef {
        run_as_user,
        run_as_group: s.run_as_group.or(p.run_as_group),
        run_as_non_root: run_as_non_root.filter(|v| *v),
        privileged: s.privileged.filter(|v| *v),
        read_only_root_filesystem: s.read_only_root_filesystem.filter(|v| *v),
        capability_add,
    };
    Ok((!def.is_empty()).then_some(def))
}

fn hook(
    c: &ContainerSpec,
    kind: &str,
    h: Option<&LifecycleHandler>,
    warnings: &mut Vec<RuntimeWarning>,
) -> Option<HookDef> {
    Some(match h? {
        LifecycleHandler::Exec { command } => HookDef::Exec(command.clone()),
        LifecycleHandler::HttpGet {
            host,
            port,
            path,
            https,
            headers,
        } => HookDef::HttpGet {
            host: host.clone(),
            port: *port,
            path: Some(path.clone()),
            scheme: Some(if *https { "HTTPS" } else { "HTTP" }.into()),
            headers: headers.clone(),
        },
        LifecycleHandler::TcpSocket { host, port } => HookDef::TcpSocket {
            host: host.clone(),
            port: *port,
        },
        // ECI has no sleep action; a command does the same where the image has `sleep`.
        LifecycleHandler::Sleep { seconds } => {
            warn(
                warnings,
                Some(&c.name),
                format!(
                    "container {:?}: lifecycle.{kind}.sleep is sent as the command `sleep {seconds}` (ECI has no sleep action); the image needs a sleep binary",
                    c.name
                ),
            );
            HookDef::Exec(vec!["sleep".into(), seconds.to_string()])
        }
    })
}

/// A container's hooks in ECI's terms.
pub fn lifecycle(c: &ContainerSpec, warnings: &mut Vec<RuntimeWarning>) -> LifecycleDef {
    for (field, why) in &c.lifecycle.invalid {
        warn(
            warnings,
            Some(&c.name),
            format!("container {:?}: {field} is not sent: {why}", c.name),
        );
    }
    LifecycleDef {
        post_start: hook(c, "postStart", c.lifecycle.post_start.as_ref(), warnings),
        pre_stop: hook(c, "preStop", c.lifecycle.pre_stop.as_ref(), warnings),
    }
}

pub fn termination_message(c: &ContainerSpec) -> TerminationMessageDef {
    TerminationMessageDef {
        path: c.termination_message_path.clone().filter(|p| !p.is_empty()),
        policy: (c.termination_message_policy == TerminationMessagePolicy::FallbackToLogsOnError)
            .then(|| c.termination_message_policy.as_str().to_string()),
    }
}

/// The pod's sysctls; one ECI does not take is refused as the kubelet refuses a sysctl that
/// is not allowed (`SysctlForbidden`).
pub fn sysctls(
    security: &PodSecurity,
    warnings: &mut Vec<RuntimeWarning>,
) -> Result<Vec<Sysctl>, ProviderError> {
    let mut out = Vec::new();
    for (name, value) in &security.sysctls {
        // The kubelet accepts the slash form too.
        let name = name.replace('/', ".");
        if !SAFE_SYSCTLS.contains(&name.as_str()) {
            return Err(ProviderError::invalid(
                "SysctlForbidden",
                format!("forbidden sysctl: {name:?} is not one ECI takes ({SAFE_SYSCTLS:?})"),
            ));
        }
        out.push(Sysctl {
            name,
            value: value.clone(),
        });
    }
    if let Some(group) = security.fs_group {
        warn(
            warnings,
            None,
            format!(
                "securityContext.fsGroup ({group}) is not applied: ECI has no such setting (volumes are not given to the group)"
            ),
        );
    }
    if !security.supplemental_groups.is_empty() {
        warn(
            warnings,
            None,
            "securityContext.supplementalGroups is not applied: ECI has no such setting".into(),
        );
    }
    for field in &security.other {
        warn(
            warnings,
            None,
            format!("{field} is not applied: ECI has no such setting"),
        );
    }
    Ok(out)
}

/// `EphemeralStorage`: what the pod's ephemeral-storage requests need beyond the free 30 GiB,
/// in whole GiB (ECI takes integers; rounded up). The requests of the app containers add up,
/// an init container's counts alone, as the scheduler counts them.
pub fn ephemeral_storage_gib(pod: &ResolvedPod) -> Option<u32> {
    let request = |c: &ContainerSpec| c.ephemeral_storage_request_bytes.unwrap_or(0);
    let apps: u64 = pod.containers.iter().map(request).sum();
    let init = pod.init_containers.iter().map(request).max().unwrap_or(0);
    let need = apps.max(init).div_ceil(1 << 30);
    let extra = need.saturating_sub(FREE_EPHEMERAL_STORAGE_GIB);
    (extra > 0).then(|| u32::try_from(extra).unwrap_or(u32::MAX))
}

#[cfg(test)]
#[path = "pod_runtime_tests.rs"]
mod tests;
