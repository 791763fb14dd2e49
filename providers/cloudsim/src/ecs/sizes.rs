//! Fargate's task sizes: the CPU units and MiB a task may have (AWS's table of valid
//! combinations), and the readings of `cpu` and `memory` a task definition accepts (`"256"`,
//! `"1 vCPU"`, `"0.25 vcpu"`; `"512"`, `"2 GB"`, `"2GB"`).

/// The memory choices (MiB) for a task of `cpu` units; empty for a size Fargate lacks.
pub fn memory_choices(cpu: u32) -> Vec<u32> {
    let gib = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).map(|g| g * 1024);
    match cpu {
        256 => vec![512, 1024, 2048],
        512 => gib(1, 4, 1).collect(),
        1024 => gib(2, 8, 1).collect(),
        2048 => gib(4, 16, 1).collect(),
        4096 => gib(8, 30, 1).collect(),
        8192 => gib(16, 60, 4).collect(),
        16384 => gib(32, 120, 8).collect(),
        _ => Vec::new(),
    }
}

pub fn is_valid(cpu: u32, memory_mib: u32) -> bool {
    memory_choices(cpu).contains(&memory_mib)
}

/// `"256"` or `"1 vCPU"` / `"0.25 vcpu"` as CPU units.
pub fn parse_cpu(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Ok(units) = t.parse::<u32>() {
        return Some(units);
    }
    let lower = t.to_ascii_lowercase();
    let number = lower.strip_suffix("vcpu")?.trim();
    let vcpu: f64 = number.parse().ok()?;
    let units = vcpu * 1024.0;
    (units.is_finite() && units >= 0.0 && units.fract() == 0.0 && units <= f64::from(u32::MAX))
        .then_some(units as u32)
}

/// `"512"` or `"2 GB"` / `"2GB"` as MiB.
pub fn parse_memory(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Ok(mib) = t.parse::<u32>() {
        return Some(mib);
    }
    let lower = t.to_ascii_lowercase();
    let number = lower.strip_suffix("gb")?.trim();
    let gb: f64 = number.parse().ok()?;
    let mib = gb * 1024.0;
    (mib.is_finite() && mib >= 0.0 && mib.fract() == 0.0 && mib <= f64::from(u32::MAX))
        .then_some(mib as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_valid_sizes() {
        assert!(is_valid(256, 512) && is_valid(256, 2048) && !is_valid(256, 3072));
        assert!(is_valid(512, 4096) && !is_valid(512, 512));
        assert!(is_valid(1024, 8192) && !is_valid(1024, 9216));
        assert!(is_valid(2048, 16384) && !is_valid(2048, 3072));
        assert!(is_valid(4096, 30720) && !is_valid(4096, 31744));
        assert!(is_valid(8192, 20480) && !is_valid(8192, 18432) && !is_valid(8192, 65536));
        assert!(is_valid(16384, 40960) && !is_valid(16384, 36864) && is_valid(16384, 122880));
        assert!(!is_valid(300, 512));
    }

    #[test]
    fn sizes_read_in_units_or_words() {
        assert_eq!(parse_cpu("256"), Some(256));
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu("0.25 vcpu"), Some(256));
        assert_eq!(parse_cpu("lots"), None);
        assert_eq!(parse_memory("2 GB"), Some(2048));
        assert_eq!(parse_memory("0.5GB"), Some(512));
        assert_eq!(parse_memory("512"), Some(512));
        assert_eq!(parse_memory("-1"), None);
    }
}
