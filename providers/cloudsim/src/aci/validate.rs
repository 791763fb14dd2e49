//! ACI's checks of a container group before it is created, written from Azure's
//! documentation: names (1–63 lowercase letters, digits and hyphens, no hyphen at either
//! end), at least one container and at most 60, unique container names (init containers
//! included), images the registry has, requests of at least 0.01 vCPU (in steps of 0.01) and
//! 0.1 GB (in steps of 0.1), limits not under their request nor over the group's total
//! request, the largest group of the region (4 vCPU / 16 GB for Linux), restart policies,
//! Linux only, at most 20 volumes of exactly one kind each, secret files in base64, and
//! mounts of volumes that exist.

use std::collections::BTreeSet;

use base64::Engine as _;

use super::config::AciConfig;
use super::error::AciError;
use crate::engine::catalog::ImageCatalog;
use aci::wire::{ContainerGroup, Resources, codes, os_type, restart_policy};

/// A container group's or container's name as ACI accepts it.
pub fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// `value` is a whole number of `step`s (within rounding).
fn in_steps(value: f64, step: f64) -> bool {
    let n = value / step;
    (n - n.round()).abs() < 1e-6
}

/// Normalized region names: `West Europe` is `westeurope`.
pub fn same_location(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    norm(a) == norm(b)
}

/// Everything the create checks on the body alone; the group's total request (vCPU, GB).
pub fn check(
    config: &AciConfig,
    catalog: &ImageCatalog,
    name: &str,
    group: &ContainerGroup,
) -> Result<(f64, f64), AciError> {
    let bad = |code: &str, message: String| AciError::bad_request(code, message);
    if !valid_name(name) {
        return Err(bad(
            codes::INVALID_CONTAINER_GROUP_NAME,
            format!(
                "The container group name '{name}' is invalid. The name must contain no more than 63 characters and only lowercase letters, numbers and dashes; it cannot start or end with a dash nor have two consecutive dashes."
            ),
        ));
    }
    let location = group.location.as_deref().unwrap_or_default();
    if location.is_empty() {
        return Err(bad(
            "LocationRequired",
            "The location property is required for this definition.".into(),
        ));
    }
    if !same_location(location, &config.location) {
        return Err(bad(
            "LocationNotAvailableForResourceType",
            format!(
                "The provided location '{location}' is not available for resource type 'Microsoft.ContainerInstance/containerGroups'. List of available regions for the resource type is '{}'.",
                config.location
            ),
        ));
    }
    let p = &group.properties;
    match p.os_type.as_str() {
        os_type::LINUX => {}
        "" => {
            return Err(AciError::invalid_content(
                "The request content was invalid: the osType property is required.",
            ));
        }
        other => {
            return Err(bad(
                codes::INVALID_OS_TYPE,
                format!(
                    "The OS type '{other}' of container group '{name}' is not supported in this simulated region; only 'Linux' is."
                ),
            ));
        }
    }
    if let Some(policy) = &p.restart_policy
        && ![
            restart_policy::ALWAYS,
            restart_policy::ON_FAILURE,
            restart_policy::NEVER,
        ]
        .contains(&policy.as_str())
    {
        return Err(bad(
            codes::INVALID_RESTART_POLICY,
            format!(
                "The restart policy '{policy}' is invalid. It must be 'Always', 'OnFailure' or 'Never'."
            ),
        ));
    }
    if p.containers.is_empty() {
        return Err(bad(
            "ContainerGroupHasNoContainers",
            format!("The container group '{name}' must have at least one container."),
        ));
    }
    if p.containers.len() + p.init_containers.len() > config.quotas.max_containers {
        return Err(bad(
            "ContainerGroupContainersLimitExceeded",
            format!(
                "The container group '{name}' has {} containers; at most {} are allowed.",
                p.containers.len() + p.init_containers.len(),
                config.quotas.max_containers
            ),
        ));
    }
    let mut names = BTreeSet::new();
    let images = p
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.properties.image.as_str()))
        .chain(p.init_containers.iter().map(|c| {
            (
                c.name.as_str(),
                c.properties.image.as_deref().unwrap_or_default(),
            )
        }));
    for (container, image) in images {
        if !valid_name(container) {
            return Err(bad(
                codes::INVALID_CONTAINER_NAME,
                format!(
                    "The container name '{container}' in container group '{name}' is invalid. It must contain no more than 63 characters and only lowercase letters, numbers and dashes, and cannot start or end with a dash."
                ),
            ));
        }
        if !names.insert(container) {
            return Err(bad(
                codes::DUPLICATE_CONTAINER_NAME,
                format!(
                    "The container name '{container}' is used more than once in container group '{name}'."
                ),
            ));
        }
        if image.trim().is_empty() {
            return Err(bad(
                codes::INVALID_IMAGE,
                format!(
                    "The image of container '{container}' in container group '{name}' is empty."
                ),
            ));
        }
        if catalog.resolve(image).is_err() {
            return Err(bad(
                codes::INACCESSIBLE_IMAGE,
                format!(
                    "The image '{image}' in container group '{name}' is not accessible. Please check the image and registry credential."
                ),
            ));
        }
    }
    let (mut cpu, mut memory) = (0.0, 0.0);
    for c in &p.containers {
        let r = &c.properties.resources.requests;
        check_request(name, &c.name, r)?;
        cpu += r.cpu;
        memory += r.memory_in_gb;
    }
    for c in &p.containers {
        let requests = &c.properties.resources.requests;
        if let Some(limits) = &c.properties.resources.limits {
            check_limits(name, &c.name, requests, limits, cpu, memory)?;
        }
    }
    if cpu > config.quotas.max_group_cpu + 1e-9 || memory > config.quotas.max_group_memory_gb + 1e-9
    {
        return Err(AciError::new(
            409,
            codes::SERVICE_UNAVAILABLE,
            format!(
                "The requested resource is not available in the location '{}' at this moment. Please retry with a different resource request or in another location. Resource requested: '{cpu}' CPU '{memory}' GB memory 'Linux' OS",
                config.location
            ),
        ));
    }
    check_volumes(config, name, group)?;
    Ok((cpu, memory))
}

fn check_request(group: &str, container: &str, r: &Resources) -> Result<(), AciError> {
    if r.cpu < 0.01 || !in_steps(r.cpu, 0.01) {
        return Err(AciError::bad_request(
            codes::INVALID_CPU_REQUEST,
            format!(
                "The CPU request '{}' of container '{container}' in container group '{group}' is invalid: it must be at least 0.01 and a multiple of 0.01.",
                r.cpu
            ),
        ));
    }
    if r.memory_in_gb < 0.1 || !in_steps(r.memory_in_gb, 0.1) {
        return Err(AciError::bad_request(
            codes::INVALID_MEMORY_REQUEST,
            format!(
                "The memory request '{}' GB of container '{container}' in container group '{group}' is invalid: it must be at least 0.1 and a multiple of 0.1.",
                r.memory_in_gb
            ),
        ));
    }
    Ok(())
}

fn check_limits(
    group: &str,
    container: &str,
    requests: &Resources,
    limits: &Resources,
    cpu: f64,
    memory: f64,
) -> Result<(), AciError> {
    for (what, limit, request, total) in [
        ("Cpu", limits.cpu, requests.cpu, cpu),
        (
            "MemoryInGB",
            limits.memory_in_gb,
            requests.memory_in_gb,
            memory,
        ),
    ] {
        if limit == 0.0 {
            continue;
        }
        if limit + 1e-9 < request {
            return Err(AciError::bad_request(
                codes::RESOURCE_LIMITS_LESS_THAN_REQUESTS,
                format!(
                    "The resource requirement of container '{container}' in container group '{group}' is invalid. The '{what}' limit value must be greater than or equal to the request value."
                ),
            ));
        }
        if limit > total + 1e-9 {
            return Err(AciError::bad_request(
                codes::LIMIT_GREATER_THAN_GROUP_REQUEST,
                format!(
                    "The '{what}' limit '{limit}' in container '{container}' is greater than the total request '{total}' of container group '{group}'."
                ),
            ));
        }
    }
    Ok(())
}

fn check_volumes(config: &AciConfig, name: &str, group: &ContainerGroup) -> Result<(), AciError> {
    let p = &group.properties;
    if p.volumes.len() > config.quotas.max_volumes {
        return Err(AciError::bad_request(
            codes::INVALID_VOLUME,
            format!(
                "The container group '{name}' has {} volumes; at most {} are allowed.",
                p.volumes.len(),
                config.quotas.max_volumes
            ),
        ));
    }
    let mut volumes = BTreeSet::new();
    for v in &p.volumes {
        let kinds = [
            v.empty_dir.is_some(),
            v.secret.is_some(),
            v.azure_file.is_some(),
            v.git_repo.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(AciError::bad_request(
                codes::INVALID_VOLUME,
                format!(
                    "The volume '{}' in container group '{name}' must have exactly one of emptyDir, secret, azureFile and gitRepo.",
                    v.name
                ),
            ));
        }
        if v.name.is_empty() || !volumes.insert(v.name.as_str()) {
            return Err(AciError::bad_request(
                codes::INVALID_VOLUME,
                format!(
                    "The volume name '{}' in container group '{name}' is empty or used twice.",
                    v.name
                ),
            ));
        }
        for (file, content) in v.secret.iter().flatten() {
            if base64::engine::general_purpose::STANDARD
                .decode(content)
                .is_err()
            {
                return Err(AciError::bad_request(
                    codes::INVALID_VOLUME,
                    format!(
                        "The secret volume '{}' in container group '{name}' has a file '{file}' whose value is not base64.",
                        v.name
                    ),
                ));
            }
        }
    }
    let mounts = p
        .containers
        .iter()
        .map(|c| (c.name.as_str(), &c.properties.volume_mounts))
        .chain(
            p.init_containers
                .iter()
                .map(|c| (c.name.as_str(), &c.properties.volume_mounts)),
        );
    for (container, list) in mounts {
        for m in list {
            if !volumes.contains(m.name.as_str()) {
                return Err(AciError::bad_request(
                    codes::INVALID_VOLUME_MOUNT,
                    format!(
                        "The volume mount '{}' of container '{container}' in container group '{name}' names no volume of the group.",
                        m.name
                    ),
                ));
            }
            if !m.mount_path.starts_with('/') {
                return Err(AciError::bad_request(
                    codes::INVALID_VOLUME_MOUNT,
                    format!(
                        "The mount path '{}' of container '{container}' in container group '{name}' must be absolute.",
                        m.mount_path
                    ),
                ));
            }
        }
    }
    Ok(())
}
