//! ECI's instance sizes. A container group gets the smallest supported vCPU/memory
//! specification that covers what was asked for (vCPUs first, then memory), or 2 vCPU / 4 GiB
//! when nothing was asked for. The table is the one Alibaba documents as "supported in all
//! regions" ("Specify vCPUs and memory to create an instance"); some regions offer finer
//! specifications, which the mock cloud does not model.

use vk_core::provider::{ContainerSpec, ResolvedPod};

/// (vCPU, [memory GiB]) in ascending vCPU order, memory ascending.
pub const SPECIFICATIONS: &[(f64, &[f64])] = &[
    (0.25, &[0.5, 1.0]),
    (0.5, &[1.0, 2.0]),
    (1.0, &[2.0, 4.0, 8.0]),
    (2.0, &[1.0, 2.0, 4.0, 8.0, 16.0]),
    (4.0, &[2.0, 4.0, 8.0, 16.0, 32.0]),
    (8.0, &[4.0, 8.0, 16.0, 32.0, 64.0]),
    (12.0, &[12.0, 24.0, 48.0, 96.0]),
    (16.0, &[16.0, 32.0, 64.0, 128.0]),
    (24.0, &[24.0, 48.0, 96.0, 192.0]),
    (32.0, &[32.0, 64.0, 128.0, 256.0]),
    (52.0, &[96.0, 192.0, 384.0]),
    (64.0, &[128.0, 256.0, 512.0]),
];

/// What ECI gives a group for which no size was asked.
pub const DEFAULT_SPEC: Spec = Spec {
    cpu: 2.0,
    memory_gib: 4.0,
};

/// A group size: vCPUs and GiB of memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    pub cpu: f64,
    pub memory_gib: f64,
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} vCPU / {} GiB", self.cpu, self.memory_gib)
    }
}

/// Round a request up to a supported specification; `None` when it is larger than the
/// largest one. A request of zero for either dimension means "unset" for that dimension:
/// with both unset the default applies.
pub fn round_up(cpu: f64, memory_gib: f64) -> Option<Spec> {
    let cpu = if cpu.is_finite() { cpu.max(0.0) } else { 0.0 };
    let memory_gib = if memory_gib.is_finite() {
        memory_gib.max(0.0)
    } else {
        0.0
    };
    if cpu == 0.0 && memory_gib == 0.0 {
        return Some(DEFAULT_SPEC);
    }
    // Tolerate float noise from unit conversions (e.g. 0.1 + 0.2).
    const EPS: f64 = 1e-9;
    SPECIFICATIONS
        .iter()
        .filter(|(c, _)| *c + EPS >= cpu)
        .find_map(|(c, memories)| {
            memories
                .iter()
                .find(|m| **m + EPS >= memory_gib)
                .map(|m| Spec {
                    cpu: *c,
                    memory_gib: *m,
                })
        })
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A container's ask in vCPUs and GiB: the limit when it is set (ACK sizes by the limit when
/// limit and request differ), else the request; 0 when neither is set.
pub fn container_ask(c: &ContainerSpec) -> (f64, f64) {
    let r = &c.resources;
    let cpu_millis = r.cpu_limit_millis.or(r.cpu_request_millis).unwrap_or(0);
    let memory = r.memory_limit_bytes.or(r.memory_request_bytes).unwrap_or(0);
    (cpu_millis as f64 / 1000.0, memory as f64 / GIB)
}

/// The group's ask: the larger of the app containers' sum and the largest init container
/// (init containers run one at a time, before the app containers).
pub fn pod_ask(pod: &ResolvedPod) -> (f64, f64) {
    let (mut cpu, mut memory) = (0.0f64, 0.0f64);
    for c in &pod.containers {
        let (c_cpu, c_mem) = container_ask(c);
        cpu += c_cpu;
        memory += c_mem;
    }
    for c in &pod.init_containers {
        let (c_cpu, c_mem) = container_ask(c);
        cpu = cpu.max(c_cpu);
        memory = memory.max(c_mem);
    }
    (cpu, memory)
}

/// The specification the pod will run with, `None` when it is larger than ECI offers.
pub fn pod_spec(pod: &ResolvedPod) -> Option<Spec> {
    let (cpu, memory) = pod_ask(pod);
    round_up(cpu, memory)
}

#[cfg(test)]
mod tests {
    use vk_core::provider::Resources;

    use super::*;

    fn spec(cpu: f64, memory_gib: f64) -> Option<Spec> {
        Some(Spec { cpu, memory_gib })
    }

    #[test]
    fn rounds_up_to_the_next_supported_specification() {
        // The documented example for the all-regions table.
        assert_eq!(round_up(7.0, 13.0), spec(8.0, 16.0));
        assert_eq!(round_up(2.0, 4.0), spec(2.0, 4.0));
        assert_eq!(round_up(0.1, 0.1), spec(0.25, 0.5));
        assert_eq!(round_up(0.25, 1.5), spec(0.5, 2.0));
        assert_eq!(round_up(0.5, 3.0), spec(1.0, 4.0));
        // More memory than a vCPU count offers moves up to the next vCPU count.
        assert_eq!(round_up(1.0, 9.0), spec(2.0, 16.0));
        assert_eq!(round_up(2.0, 17.0), spec(4.0, 32.0));
        assert_eq!(round_up(48.0, 1.0), spec(52.0, 96.0));
        assert_eq!(round_up(64.0, 512.0), spec(64.0, 512.0));
        // Memory only, or CPU only.
        assert_eq!(round_up(0.0, 6.0), spec(1.0, 8.0));
        assert_eq!(round_up(3.0, 0.0), spec(4.0, 2.0));
    }

    #[test]
    fn nothing_asked_gets_the_default_and_too_much_gets_none() {
        assert_eq!(round_up(0.0, 0.0), Some(DEFAULT_SPEC));
        assert_eq!(round_up(f64::NAN, -1.0), Some(DEFAULT_SPEC));
        assert_eq!(round_up(65.0, 1.0), None);
        assert_eq!(round_up(1.0, 513.0), None);
    }

    #[test]
    fn every_table_entry_is_its_own_rounding() {
        for (cpu, memories) in SPECIFICATIONS {
            for m in *memories {
                assert_eq!(round_up(*cpu, *m), spec(*cpu, *m));
            }
        }
    }

    fn container(
        cpu_req: Option<u64>,
        cpu_lim: Option<u64>,
        mem_req: Option<u64>,
    ) -> ContainerSpec {
        ContainerSpec {
            resources: Resources {
                cpu_request_millis: cpu_req,
                cpu_limit_millis: cpu_lim,
                memory_request_bytes: mem_req,
                memory_limit_bytes: None,
            },
            ..Default::default()
        }
    }

    #[test]
    fn pods_sum_app_containers_and_take_the_largest_init_container() {
        const MI: u64 = 1024 * 1024;
        let pod = ResolvedPod {
            containers: vec![
                container(Some(500), None, Some(512 * MI)),
                // The limit wins over the request.
                container(Some(250), Some(1500), Some(1024 * MI)),
            ],
            init_containers: vec![container(Some(3000), None, None)],
            ..Default::default()
        };
        let (cpu, memory) = pod_ask(&pod);
        assert_eq!(cpu, 3.0);
        assert_eq!(memory, 1.5);
        assert_eq!(pod_spec(&pod), spec(4.0, 2.0));
        assert_eq!(pod_spec(&ResolvedPod::default()), Some(DEFAULT_SPEC));
    }
}
