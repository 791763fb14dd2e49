//! A resolved pod as an ACI container group (the body of the PUT).
//!
//! - The group's name derives from the pod (namespace, name and a hash of the UID), so a
//!   retried PUT replaces the same group and never makes a second one ([`group_name`]).
//! - Tags name the pod (UID, namespace, name) and the node: listings find the node's groups
//!   by them, and orphans are groups of the node whose pod is gone.
//! - Sizes come from [`crate::sizing`]; environment values are sent as `secureValue` (the
//!   resolved pod no longer says which came from a secret, so none is shown by a GET).
//! - Volumes: emptyDir as `emptyDir`; every file volume (configMap, secret, downward API,
//!   projected service-account token) as a `secret` volume (file name -> base64), refreshed
//!   by a re-PUT of the group ([`crate::provider`]'s update).
//! - What ACI cannot do is refused with a reason ([`crate::mapping`] for the rest of the
//!   fields) or, when the pod can run without it, reported as a Warning event.

use std::collections::BTreeMap;

use base64::Engine as _;
use vk_core::provider::{ProviderError, ResolvedPod, RestartPolicy, VolumeSource};

use crate::mapping::{self, Warning};
use crate::sizing::{self, GroupLimits};
use crate::wire::{
    self, ContainerGroup, ContainerGroupProperties, EmptyDir, ImageRegistryCredential, IpAddress,
    SubnetId, Volume,
};

/// Tag keys every group of this provider carries.
pub mod tags {
    pub const POD_UID: &str = "vk-pod-uid";
    pub const NAMESPACE: &str = "vk-namespace";
    pub const POD_NAME: &str = "vk-pod-name";
    pub const NODE: &str = "vk-node";
}

/// Where and how the groups run (`aci:` settings besides the account).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    pub location: String,
    /// Join this subnet (a private IP per group).
    pub subnet_id: Option<String>,
    /// Give groups with ports a public IP (only without a subnet).
    pub public_ip: bool,
    pub limits: GroupLimits,
}

/// ACI's group name: 1–63 lower-case letters, digits and single hyphens, starting and ending
/// with a letter or digit. `<namespace>-<name>` cut to fit, then `-` and 8 hex digits of a
/// hash of the UID: stable for the pod, different for a pod recreated with the same name.
pub fn group_name(namespace: &str, name: &str, uid: &str) -> String {
    let mut base = String::new();
    for c in format!("{namespace}-{name}").to_ascii_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (base.is_empty() || base.ends_with('-'))) {
            base.push(c);
        }
    }
    base.truncate(54);
    let base = base.trim_end_matches('-');
    // FNV-1a: stable across releases (not `DefaultHasher`).
    let hash = uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let suffix = format!("{:08x}", (hash ^ (hash >> 32)) as u32);
    if base.is_empty() {
        format!("vk-{suffix}")
    } else {
        format!("{base}-{suffix}")
    }
}

/// The tags of the pod's group.
pub fn group_tags(pod: &ResolvedPod, node: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::POD_UID.to_string(), pod.pod.uid.clone()),
        (tags::NAMESPACE.to_string(), pod.pod.namespace.clone()),
        (tags::POD_NAME.to_string(), pod.pod.name.clone()),
        (tags::NODE.to_string(), node.to_string()),
    ])
}

/// The pod's volumes on ACI.
pub fn volumes(pod: &ResolvedPod, warnings: &mut Vec<Warning>) -> Vec<Volume> {
    pod.volumes
        .iter()
        .map(|v| match &v.source {
            VolumeSource::EmptyDir {
                memory,
                size_limit_bytes,
            } => {
                if *memory || size_limit_bytes.is_some() {
                    warnings.push(Warning::field(
                        None,
                        format!(
                            "volume {:?}: emptyDir medium and sizeLimit are not applied: ACI's emptyDir is a plain directory on the group's disk",
                            v.name
                        ),
                    ));
                }
                Volume {
                    name: v.name.clone(),
                    empty_dir: Some(EmptyDir {}),
                    ..Default::default()
                }
            }
            VolumeSource::Files(files) => Volume {
                name: v.name.clone(),
                secret: Some(
                    files
                        .iter()
                        .map(|f| {
                            (
                                f.path.trim_start_matches('/').to_string(),
                                base64::engine::general_purpose::STANDARD.encode(&f.content),
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            },
        })
        .collect()
}

/// The container group for `pod` on `node`; an error when ACI cannot run it as specified.
/// `warnings` gets what the pod asks for that ACI does not do but the pod can run without.
pub fn container_group(
    pod: &ResolvedPod,
    node: &str,
    placement: &Placement,
    warnings: &mut Vec<Warning>,
) -> Result<ContainerGroup, ProviderError> {
    if pod.containers.is_empty() {
        return Err(ProviderError::invalid(
            "InvalidSpec",
            "the pod has no containers",
        ));
    }
    mapping::check_pod(pod, warnings)?;
    let sizes = sizing::pod_sizes(pod, &placement.limits)?;
    let containers = pod
        .containers
        .iter()
        .zip(&sizes)
        .map(|(c, size)| mapping::container(pod, c, size, warnings))
        .collect::<Result<Vec<_>, _>>()?;
    let init_containers = pod
        .init_containers
        .iter()
        .map(|c| mapping::init_container(pod, c, warnings))
        .collect::<Result<Vec<_>, _>>()?;
    let ports: Vec<wire::ContainerPort> = containers
        .iter()
        .flat_map(|c| c.properties.ports.clone())
        .collect();
    let ip_address = match (&placement.subnet_id, placement.public_ip) {
        (Some(_), _) if !ports.is_empty() => Some(wire::ip_address_type::PRIVATE),
        (None, true) if !ports.is_empty() => Some(wire::ip_address_type::PUBLIC),
        _ => None,
    }
    .map(|kind| IpAddress {
        ports,
        kind: kind.to_string(),
        ..Default::default()
    });
    Ok(ContainerGroup {
        location: Some(placement.location.clone()),
        tags: group_tags(pod, node),
        properties: ContainerGroupProperties {
            containers,
            init_containers,
            image_registry_credentials: pod
                .image_pull_credentials
                .iter()
                .map(|c| ImageRegistryCredential {
                    server: c.server.clone(),
                    username: Some(c.username.clone()),
                    password: Some(c.password.clone()),
                    ..Default::default()
                })
                .collect(),
            restart_policy: Some(
                match pod.restart_policy {
                    RestartPolicy::Always => wire::restart_policy::ALWAYS,
                    RestartPolicy::OnFailure => wire::restart_policy::ON_FAILURE,
                    RestartPolicy::Never => wire::restart_policy::NEVER,
                }
                .to_string(),
            ),
            ip_address,
            os_type: wire::os_type::LINUX.to_string(),
            volumes: volumes(pod, warnings),
            subnet_ids: placement
                .subnet_id
                .iter()
                .map(|id| SubnetId {
                    id: id.clone(),
                    name: None,
                })
                .collect(),
            dns_config: mapping::dns_config(pod, warnings),
            sku: Some(wire::sku::STANDARD.to_string()),
            ..Default::default()
        },
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_valid_stable_and_differ_by_uid() {
        let a = group_name("ci", "Jenkins_Agent.x--1", "uid-1");
        assert_eq!(a, group_name("ci", "Jenkins_Agent.x--1", "uid-1"));
        assert!(a.starts_with("ci-jenkins-agent-x-1-"), "{a}");
        assert_ne!(a, group_name("ci", "Jenkins_Agent.x--1", "uid-2"));
        let long = group_name(&"n".repeat(40), &"p".repeat(60), "u");
        assert!(long.len() <= 63, "{long}");
        for name in [a, long, group_name("-", "-", "u")] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(
                !name.starts_with('-') && !name.ends_with('-') && !name.contains("--"),
                "{name}"
            );
        }
    }
}
