//! Fargate's task sizes: a task has one of AWS's CPU/memory combinations, so a pod's needs are
//! rounded up to the smallest combination that holds them; a pod larger than the largest (16
//! vCPU, 120 GiB) is refused with reason `TooLarge`, naming the figures, and never becomes a
//! task.
//!
//! A pod's need: per resource, the containers' limits (else requests) added up, at least the
//! largest init container's (they run one after the other), at least what the scheduler
//! counted; no figure at all is the smallest size (0.25 vCPU, 512 MiB).

use vk_core::provider::{ProviderError, ResolvedPod};

/// The memory choices (MiB) for a task of `cpu` units, as AWS publishes them.
pub fn memory_choices(cpu: u32) -> Vec<u32> {
    let gib = |from: u32, to: u32, step: u32| {
        (from..=to)
            .step_by(step as usize)
            .map(|g| g * 1024)
            .collect::<Vec<u32>>()
    };
    match cpu {
        256 => vec![512, 1024, 2048],
        512 => gib(1, 4, 1),
        1024 => gib(2, 8, 1),
        2048 => gib(4, 16, 1),
        4096 => gib(8, 30, 1),
        8192 => gib(16, 60, 4),
        16384 => gib(32, 120, 8),
        _ => Vec::new(),
    }
}

/// The CPU sizes, in units (1024 a vCPU).
pub const CPU_SIZES: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// A task size: CPU units and MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSize {
    pub cpu: u32,
    pub memory_mib: u32,
}

/// The smallest combination with at least `cpu_millis` and `memory_bytes`.
pub fn fit(cpu_millis: u64, memory_bytes: u64) -> Option<TaskSize> {
    let units = cpu_millis.saturating_mul(1024).div_ceil(1000);
    let mib = memory_bytes.div_ceil(1024 * 1024);
    CPU_SIZES
        .iter()
        .filter(|c| u64::from(**c) >= units)
        .find_map(|&cpu| {
            memory_choices(cpu)
                .into_iter()
                .find(|m| u64::from(*m) >= mib)
                .map(|memory_mib| TaskSize { cpu, memory_mib })
        })
}

/// What a pod needs: (CPU millis, memory bytes).
pub fn need(pod: &ResolvedPod) -> (u64, u64) {
    let one = |c: &vk_core::provider::ContainerSpec| {
        let r = &c.resources;
        (
            r.cpu_limit_millis.or(r.cpu_request_millis).unwrap_or(0),
            r.memory_limit_bytes.or(r.memory_request_bytes).unwrap_or(0),
        )
    };
    let (mut cpu, mut memory) = pod
        .containers
        .iter()
        .map(one)
        .fold((0u64, 0u64), |(a, b), (c, m)| {
            (a.saturating_add(c), b.saturating_add(m))
        });
    for (c, m) in pod.init_containers.iter().map(one) {
        cpu = cpu.max(c);
        memory = memory.max(m);
    }
    (
        cpu.max(pod.effective_cpu_millis),
        memory.max(pod.effective_memory_bytes),
    )
}

/// The task size for `pod`, or why there is none.
pub fn task_size(pod: &ResolvedPod) -> Result<TaskSize, ProviderError> {
    let (cpu, memory) = need(pod);
    fit(cpu, memory).ok_or_else(|| {
        ProviderError::invalid(
            "TooLarge",
            format!(
                "the pod needs {cpu}m CPU and {} MiB of memory; the largest Fargate task has 16 vCPU and 120 GiB (and 8 vCPU at most 60 GiB, 4 vCPU 30 GiB)",
                memory.div_ceil(1024 * 1024)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vk_core::provider::{ContainerSpec, Resources};

    const MI: u64 = 1024 * 1024;
    const GI: u64 = 1024 * MI;

    #[test]
    fn needs_round_up_to_the_smallest_combination() {
        assert_eq!(
            fit(0, 0),
            Some(TaskSize {
                cpu: 256,
                memory_mib: 512
            })
        );
        assert_eq!(
            fit(250, 600 * MI),
            Some(TaskSize {
                cpu: 256,
                memory_mib: 1024
            })
        );
        assert_eq!(
            fit(300, 512 * MI),
            Some(TaskSize {
                cpu: 512,
                memory_mib: 1024
            })
        );
        assert_eq!(
            fit(1000, 3 * GI),
            Some(TaskSize {
                cpu: 1024,
                memory_mib: 3072
            })
        );
        // 3 GiB of memory does not fit 0.25 vCPU: the next CPU size that offers it.
        assert_eq!(
            fit(100, 3 * GI),
            Some(TaskSize {
                cpu: 512,
                memory_mib: 3072
            })
        );
        assert_eq!(
            fit(5000, 17 * GI),
            Some(TaskSize {
                cpu: 8192,
                memory_mib: 20480
            })
        );
        assert_eq!(
            fit(16_000, 120 * GI),
            Some(TaskSize {
                cpu: 16384,
                memory_mib: 122_880
            })
        );
        assert_eq!(fit(17_000, GI), None);
        assert_eq!(fit(1000, 121 * GI), None);
        for cpu in CPU_SIZES {
            assert!(!memory_choices(cpu).is_empty());
        }
    }

    #[test]
    fn a_pod_too_large_gets_a_reason() {
        let big = |cpu: u64| ContainerSpec {
            name: "c".into(),
            resources: Resources {
                cpu_limit_millis: Some(cpu),
                memory_limit_bytes: Some(GI),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut pod = ResolvedPod {
            containers: vec![big(10_000), big(10_000)],
            ..Default::default()
        };
        let err = task_size(&pod).unwrap_err();
        assert_eq!(err.reason(), Some("TooLarge"));
        assert!(err.message().contains("20000m"), "{err}");
        pod.containers.pop();
        pod.init_containers = vec![big(2000)];
        assert_eq!(
            task_size(&pod).unwrap(),
            TaskSize {
                cpu: 16384,
                memory_mib: 32768
            }
        );
    }
}
