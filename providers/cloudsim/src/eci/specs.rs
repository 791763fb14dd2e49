//! The vCPU/memory specifications ECI bills, the simulator's own copy of Alibaba's table
//! ("Specify vCPUs and memory to create an instance", the specifications offered in all
//! regions), kept apart from the eci client's so that the two can disagree and a test say so.
//! A group is billed the smallest specification that covers what it asks for, vCPUs first,
//! then memory; nothing asked for is 2 vCPU / 4 GiB.

use super::error::ApiError;
use eci::wire::api::errors;
use eci::wire::request::{ContainerDef, CreateContainerGroup};

/// (vCPU, [GiB]) ascending.
const SPECS: &[(f64, &[f64])] = &[
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

const DEFAULT: (f64, f64) = (2.0, 4.0);

/// The billed (vCPU, GiB) for a request; `None` past the largest specification. Zero or
/// less in a dimension is "not asked".
pub fn billed(cpu: f64, memory: f64) -> Option<(f64, f64)> {
    let clean = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
    let (cpu, memory) = (clean(cpu), clean(memory));
    if cpu == 0.0 && memory == 0.0 {
        return Some(DEFAULT);
    }
    // Sums of container sizes carry float noise (0.1 + 0.2).
    const EPS: f64 = 1e-9;
    SPECS
        .iter()
        .filter(|(c, _)| *c + EPS >= cpu)
        .find_map(|(c, mems)| mems.iter().find(|m| **m + EPS >= memory).map(|m| (*c, *m)))
}

/// The group's vCPU/GiB: asked for explicitly, or the containers' sum (init containers run
/// alone, so the largest of them counts), rounded up to a supported specification.
pub fn group_size(req: &CreateContainerGroup) -> Result<(f64, f64), ApiError> {
    let sum = |f: fn(&ContainerDef) -> Option<f64>| {
        let apps: f64 = req.containers.iter().filter_map(f).sum();
        let init = req.init_containers.iter().filter_map(f).fold(0.0, f64::max);
        apps.max(init)
    };
    let cpu = req.cpu.unwrap_or_else(|| sum(|c| c.cpu));
    let memory = req.memory.unwrap_or_else(|| sum(|c| c.memory));
    let spec = billed(cpu, memory).ok_or_else(|| {
        ApiError::new(
            errors::INVALID_PARAMETER,
            format!("The requested {cpu} vCPU / {memory} GiB exceeds the largest specification (64 vCPU / 512 GiB)."),
        )
    })?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_billed_the_next_specification_up() {
        assert_eq!(billed(0.0, 0.0), Some((2.0, 4.0)));
        assert_eq!(billed(1.5, 3.0), Some((2.0, 4.0)));
        assert_eq!(billed(0.1, 0.0), Some((0.25, 0.5)));
        assert_eq!(billed(1.0, 10.0), Some((2.0, 16.0)));
        assert_eq!(billed(0.1 + 0.2, 1.0), Some((0.5, 1.0)));
        assert_eq!(billed(64.0, 512.0), Some((64.0, 512.0)));
        assert_eq!(billed(65.0, 1.0), None);
        assert_eq!(billed(1.0, 600.0), None);
    }

    /// The client sizes pods with a table of its own: a disagreement shows here.
    #[test]
    fn the_eci_client_rounds_as_the_simulator_bills() {
        for cpu in [
            0.0, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 6.0, 10.0, 20.0, 50.0, 64.0,
        ] {
            for memory in [
                0.0, 0.5, 1.0, 1.5, 3.0, 7.0, 12.0, 40.0, 100.0, 300.0, 512.0,
            ] {
                let client = eci::sizing::round_up(cpu, memory).map(|s| (s.cpu, s.memory_gib));
                assert_eq!(client, billed(cpu, memory), "{cpu} vCPU / {memory} GiB");
            }
        }
    }
}
