//! ACI's sizes. Every container of a group states its own request (there is no group-level
//! size): CPU in cores to 0.01, memory in GB to 0.1; a container's optional limit may not be
//! below its request nor above the group's total request. A standard Linux group may ask at
//! most 4 cores and 16 GB in total in most regions (Azure's "resource availability" tables;
//! configurable for regions and SKUs that allow more), and hold at most 60 containers and 20
//! volumes.
//!
//! Rules here:
//! - a container asks its request, else its limit (Kubernetes defaults the request to the
//!   limit), else the default (1 core, 1.5 GB: what ACI's own tools use);
//! - values are rounded UP to the granularity (a pod never gets less than it asked);
//! - `memoryInGB` is read as binary gigabytes (Azure writes GB for GiB), so `16Gi` is 16;
//! - init containers state no resources on ACI (they run in the group's), so they are not
//!   summed, but one larger than the group's total is refused: it could not run;
//! - a pod over the group limits is refused with reason `TooLarge`, naming the figures.

use serde::Deserialize;
use vk_core::provider::{ContainerSpec, ProviderError, ResolvedPod};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const EPS: f64 = 1e-9;

/// Per-group maxima (`aci: limits:`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct GroupLimits {
    pub max_cpu: f64,
    pub max_memory_gb: f64,
    pub max_containers: usize,
    pub max_volumes: usize,
    /// What a container without any request or limit asks.
    pub default_cpu: f64,
    pub default_memory_gb: f64,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self {
            max_cpu: 4.0,
            max_memory_gb: 16.0,
            max_containers: 60,
            max_volumes: 20,
            default_cpu: 1.0,
            default_memory_gb: 1.5,
        }
    }
}

/// One container's resources in ACI's units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size {
    pub cpu: f64,
    pub memory_gb: f64,
    pub limit_cpu: Option<f64>,
    pub limit_memory_gb: Option<f64>,
}

/// Round `v` up to a multiple of `step`, tolerating float noise.
pub fn round_up(v: f64, step: f64) -> f64 {
    let n = (v / step - EPS).ceil().max(0.0);
    // Back to a clean decimal (0.1 * 3 is not 0.3 in binary).
    let decimals = if step >= 0.1 { 10.0 } else { 100.0 };
    (n * step * decimals).round() / decimals
}

fn cpu(millis: Option<u64>) -> Option<f64> {
    millis
        .filter(|m| *m > 0)
        .map(|m| round_up(m as f64 / 1000.0, 0.01))
}

fn memory(bytes: Option<u64>) -> Option<f64> {
    bytes
        .filter(|b| *b > 0)
        .map(|b| round_up(b as f64 / GIB, 0.1))
}

/// A container's size under `limits`' defaults.
pub fn container_size(c: &ContainerSpec, limits: &GroupLimits) -> Size {
    let r = &c.resources;
    let limit_cpu = cpu(r.cpu_limit_millis);
    let limit_memory_gb = memory(r.memory_limit_bytes);
    let request_cpu = cpu(r.cpu_request_millis).or(limit_cpu);
    let request_mem = memory(r.memory_request_bytes).or(limit_memory_gb);
    let cpu = request_cpu.unwrap_or(limits.default_cpu);
    let memory_gb = request_mem.unwrap_or(limits.default_memory_gb);
    Size {
        cpu,
        memory_gb,
        // A limit below the (rounded) request would be refused; it equals the request then.
        limit_cpu: limit_cpu.map(|l| l.max(cpu)),
        limit_memory_gb: limit_memory_gb.map(|l| l.max(memory_gb)),
    }
}

/// The sizes of the pod's app containers, in order, after checking the group limits; init
/// containers only checked. An error says what is too large and what ACI allows.
pub fn pod_sizes(pod: &ResolvedPod, limits: &GroupLimits) -> Result<Vec<Size>, ProviderError> {
    let count = pod.containers.len() + pod.init_containers.len();
    if count > limits.max_containers {
        return Err(ProviderError::invalid(
            "TooLarge",
            format!(
                "the pod has {count} containers; an ACI container group holds at most {}",
                limits.max_containers
            ),
        ));
    }
    if pod.volumes.len() > limits.max_volumes {
        return Err(ProviderError::invalid(
            "TooLarge",
            format!(
                "the pod has {} volumes; an ACI container group holds at most {}",
                pod.volumes.len(),
                limits.max_volumes
            ),
        ));
    }
    let sizes: Vec<Size> = pod
        .containers
        .iter()
        .map(|c| container_size(c, limits))
        .collect();
    let total_cpu = round_up(sizes.iter().map(|s| s.cpu).sum(), 0.01);
    let total_mem = round_up(sizes.iter().map(|s| s.memory_gb).sum(), 0.1);
    if total_cpu > limits.max_cpu + EPS || total_mem > limits.max_memory_gb + EPS {
        return Err(ProviderError::invalid(
            "TooLarge",
            format!(
                "the pod asks for {total_cpu} cores and {total_mem} GB in total (requests, rounded up); an ACI container group takes at most {} cores and {} GB",
                limits.max_cpu, limits.max_memory_gb
            ),
        ));
    }
    for init in &pod.init_containers {
        let s = container_size(init, limits);
        let (c, m) = (
            s.limit_cpu.unwrap_or(s.cpu),
            s.limit_memory_gb.unwrap_or(s.memory_gb),
        );
        let explicit = init.resources != Default::default();
        if explicit && (c > total_cpu + EPS || m > total_mem + EPS) {
            return Err(ProviderError::invalid(
                "TooLarge",
                format!(
                    "init container {:?} asks for {c} cores and {m} GB, more than the group's {total_cpu} cores and {total_mem} GB: on ACI init containers run within the app containers' total",
                    init.name
                ),
            ));
        }
    }
    // A limit above the group's total request is refused by ACI: cap it there.
    Ok(sizes
        .into_iter()
        .map(|s| Size {
            limit_cpu: s.limit_cpu.map(|l| l.min(total_cpu)),
            limit_memory_gb: s.limit_memory_gb.map(|l| l.min(total_mem)),
            ..s
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use vk_core::provider::Resources;

    use super::*;

    const GI: u64 = 1024 * 1024 * 1024;

    fn c(name: &str, r: Resources) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            resources: r,
            ..Default::default()
        }
    }

    #[test]
    fn sizes_round_up_to_the_granularity() {
        assert_eq!(round_up(0.301, 0.01), 0.31);
        assert_eq!(round_up(0.3, 0.1), 0.3);
        assert_eq!(round_up(1.01, 0.1), 1.1);
        let l = GroupLimits::default();
        let s = container_size(
            &c(
                "a",
                Resources {
                    cpu_request_millis: Some(250),
                    memory_request_bytes: Some(GI / 3),
                    cpu_limit_millis: Some(1500),
                    memory_limit_bytes: Some(2 * GI),
                },
            ),
            &l,
        );
        assert_eq!(
            s,
            Size {
                cpu: 0.25,
                memory_gb: 0.4,
                limit_cpu: Some(1.5),
                limit_memory_gb: Some(2.0)
            }
        );
        // Nothing asked: the default; a limit alone is the request.
        assert_eq!(container_size(&c("b", Resources::default()), &l).cpu, 1.0);
        let only_limit = container_size(
            &c(
                "b",
                Resources {
                    cpu_limit_millis: Some(2),
                    ..Default::default()
                },
            ),
            &l,
        );
        assert_eq!((only_limit.cpu, only_limit.limit_cpu), (0.01, Some(0.01)));
    }

    #[test]
    fn pods_over_the_group_limits_are_too_large_with_the_figures() {
        let l = GroupLimits::default();
        let big = |cpu| {
            c(
                "x",
                Resources {
                    cpu_request_millis: Some(cpu),
                    memory_request_bytes: Some(GI),
                    ..Default::default()
                },
            )
        };
        let pod = ResolvedPod {
            containers: vec![big(3000), big(1500)],
            ..Default::default()
        };
        let err = pod_sizes(&pod, &l).unwrap_err();
        assert_eq!(err.reason(), Some("TooLarge"));
        assert!(
            err.message().contains("4.5 cores") && err.message().contains("at most 4 cores"),
            "{err}"
        );
        let ok = ResolvedPod {
            containers: vec![big(2000), big(2000)],
            ..Default::default()
        };
        assert_eq!(pod_sizes(&ok, &l).unwrap().len(), 2);
        let mut init_too_big = ok.clone();
        init_too_big.init_containers = vec![big(8000)];
        let err = pod_sizes(&init_too_big, &l).unwrap_err();
        assert!(err.message().contains("init container"), "{err}");
        let many = ResolvedPod {
            containers: vec![c("x", Resources::default()); 61],
            ..Default::default()
        };
        assert!(
            pod_sizes(
                &many,
                &GroupLimits {
                    max_cpu: 100.0,
                    max_memory_gb: 1000.0,
                    ..l
                }
            )
            .unwrap_err()
            .message()
            .contains("60")
        );
    }

    #[test]
    fn limits_are_capped_at_the_group_total() {
        let l = GroupLimits::default();
        let pod = ResolvedPod {
            containers: vec![c(
                "a",
                Resources {
                    cpu_request_millis: Some(500),
                    cpu_limit_millis: Some(4000),
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        let sizes = pod_sizes(&pod, &l).unwrap();
        assert_eq!(sizes[0].limit_cpu, Some(0.5));
    }
}
