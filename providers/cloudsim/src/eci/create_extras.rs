//! The `CreateContainerGroup` parameters the shared request decoder leaves out, decoded and
//! checked by the simulator itself from ECI's API reference: `DryRun`, `RamRoleName`, the spot
//! fields, `InstanceType`, `Ipv6AddressCount`, the EIP fields, `ResourceGroupId`,
//! `ComputeCategory`, `PrivateIpAddress` (the group's address), `ScheduleStrategy`,
//! `CpuArchitecture`, `StrictSpot`, `AutoMatchImageCache`, `ImageSnapshotId`,
//! `AutoCreateImageCache` (used by `image_cache`), and per container `Gpu` and
//! `EnvironmentVarHide`. They are recorded and, where `DescribeContainerGroups` has a field,
//! echoed; nothing in the executors depends on them.

use eci::wire::params::{ParamError, Params};

/// `SpotStrategy` values.
pub const SPOT_STRATEGIES: &[&str] = &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"];
/// `EipISP` values.
const EIP_ISPS: &[&str] = &["BGP", "BGP_PRO"];
/// `ComputeCategory` values.
const COMPUTE_CATEGORIES: &[&str] = &["economy", "general"];
/// `ScheduleStrategy` values (how the vSwitches given are tried).
const SCHEDULE_STRATEGIES: &[&str] = &["VSwitchOrdered", "VSwitchRandom"];
/// `CpuArchitecture` values.
const CPU_ARCHITECTURES: &[&str] = &["AMD64", "ARM64"];
/// `InstanceType` names at most this many ECS types, comma-separated.
const MAX_INSTANCE_TYPES: usize = 5;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerExtras {
    pub gpu: u32,
    /// The environment variables are left out of `DescribeContainerGroups`.
    pub environment_var_hide: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupExtras {
    pub dry_run: bool,
    pub ram_role_name: Option<String>,
    pub spot_strategy: Option<String>,
    pub spot_price_limit: Option<f64>,
    pub spot_duration: Option<u32>,
    /// The ECS types asked for, in order of preference.
    pub instance_types: Vec<String>,
    pub ipv6_address_count: u32,
    pub auto_create_eip: bool,
    pub eip_bandwidth: Option<u32>,
    pub eip_isp: Option<String>,
    pub eip_instance_id: Option<String>,
    pub resource_group_id: Option<String>,
    pub compute_category: Vec<String>,
    /// The group's private address, instead of one the vSwitch hands out.
    pub private_ip: Option<std::net::Ipv4Addr>,
    pub schedule_strategy: Option<String>,
    pub cpu_architecture: Option<String>,
    pub strict_spot: bool,
    pub auto_match_image_cache: bool,
    /// `ImageSnapshotId`: the image cache (`imc-...`) the group starts from.
    pub image_snapshot_id: Option<String>,
    /// `AutoCreateImageCache`: on a miss, a cache of the group's images is made.
    pub auto_create_image_cache: bool,
    /// By position: `Container.1` first.
    pub containers: Vec<ContainerExtras>,
    pub init_containers: Vec<ContainerExtras>,
}

fn one_of(p: &Params, name: &str, allowed: &[&str]) -> Result<Option<String>, ParamError> {
    match p.string(name) {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ParamError::invalid(
            name,
            format!("{v:?} is not one of {}", allowed.join(", ")),
        )),
        v => Ok(v),
    }
}

/// Strict for the simulator's own fields: `true`/`false` only, the SDK's unset value aside.
fn boolean(p: &Params, name: &str) -> Result<bool, ParamError> {
    p.flag(name, false)
}

fn containers(p: &Params, prefix: &str) -> Result<Vec<ContainerExtras>, ParamError> {
    p.members(prefix)?
        .into_iter()
        .map(|(i, m)| {
            let named = |e: ParamError| match e {
                ParamError::Missing(n) => ParamError::Missing(format!("{prefix}.{i}.{n}")),
                ParamError::Invalid { name, reason } => ParamError::Invalid {
                    name: format!("{prefix}.{i}.{name}"),
                    reason,
                },
            };
            Ok(ContainerExtras {
                gpu: m.parse::<u32>("Gpu").map_err(named)?.unwrap_or(0),
                environment_var_hide: boolean(&m, "EnvironmentVarHide").map_err(named)?,
            })
        })
        .collect()
}

impl GroupExtras {
    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let spot_strategy = one_of(p, "SpotStrategy", SPOT_STRATEGIES)?;
        let spot_price_limit = p.parse::<f64>("SpotPriceLimit")?;
        if let Some(limit) = spot_price_limit
            && !(limit.is_finite() && limit > 0.0 && (limit * 1000.0).fract() == 0.0)
        {
            return Err(ParamError::invalid(
                "SpotPriceLimit",
                "a positive price with at most 3 decimal places",
            ));
        }
        if spot_strategy.as_deref() == Some("SpotWithPriceLimit") && spot_price_limit.is_none() {
            return Err(ParamError::Missing("SpotPriceLimit".into()));
        }
        let spot_duration = p.parse::<u32>("SpotDuration")?;
        if spot_duration.is_some_and(|d| d > 1) {
            return Err(ParamError::invalid("SpotDuration", "0 or 1 (hours)"));
        }
        let instance_types: Vec<String> = p
            .string("InstanceType")
            .map(|v| v.split(',').map(|t| t.trim().to_string()).collect())
            .unwrap_or_default();
        if instance_types.len() > MAX_INSTANCE_TYPES
            || instance_types
                .iter()
                .any(|t| !t.starts_with("ecs.") || t.len() <= 4)
        {
            return Err(ParamError::invalid(
                "InstanceType",
                format!("up to {MAX_INSTANCE_TYPES} ECS instance types (ecs.*), comma-separated"),
            ));
        }
        let ipv6_address_count = p.parse::<u32>("Ipv6AddressCount")?.unwrap_or(0);
        if ipv6_address_count > 1 {
            return Err(ParamError::invalid(
                "Ipv6AddressCount",
                "only one IPv6 address per instance",
            ));
        }
        let auto_create_eip = boolean(p, "AutoCreateEip")?;
        let eip_instance_id = p.string("EipInstanceId");
        if let Some(id) = &eip_instance_id {
            if !id.starts_with("eip-") {
                return Err(ParamError::invalid(
                    "EipInstanceId",
                    format!("{id:?} is not an EIP id (eip-...)"),
                ));
            }
            if auto_create_eip {
                return Err(ParamError::invalid(
                    "EipInstanceId",
                    "AutoCreateEip and EipInstanceId exclude each other",
                ));
            }
        }
        let eip_bandwidth = p.parse::<u32>("EipBandwidth")?;
        if eip_bandwidth.is_some_and(|b| !(1..=500).contains(&b)) {
            return Err(ParamError::invalid("EipBandwidth", "1 to 500 Mbit/s"));
        }
        let mut compute_category = p.values("ComputeCategory")?;
        compute_category.extend(p.string("ComputeCategory"));
        if let Some(bad) = compute_category
            .iter()
            .find(|c| !COMPUTE_CATEGORIES.contains(&c.as_str()))
        {
            return Err(ParamError::invalid(
                "ComputeCategory",
                format!("{bad:?} is not one of {}", COMPUTE_CATEGORIES.join(", ")),
            ));
        }
        let private_ip = match p.string("PrivateIpAddress") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| {
                ParamError::invalid("PrivateIpAddress", format!("{v:?} is not an IPv4 address"))
            })?),
        };
        Ok(Self {
            private_ip,
            schedule_strategy: one_of(p, "ScheduleStrategy", SCHEDULE_STRATEGIES)?,
            cpu_architecture: one_of(p, "CpuArchitecture", CPU_ARCHITECTURES)?,
            strict_spot: boolean(p, "StrictSpot")?,
            auto_match_image_cache: boolean(p, "AutoMatchImageCache")?,
            image_snapshot_id: match p.string("ImageSnapshotId") {
                Some(id) if !id.starts_with("imc-") => {
                    return Err(ParamError::invalid(
                        "ImageSnapshotId",
                        format!("{id:?} is not an image cache id (imc-...)"),
                    ));
                }
                id => id,
            },
            auto_create_image_cache: boolean(p, "AutoCreateImageCache")?,
            dry_run: boolean(p, "DryRun")?,
            ram_role_name: p.string("RamRoleName"),
            spot_strategy,
            spot_price_limit,
            spot_duration,
            instance_types,
            ipv6_address_count,
            auto_create_eip,
            eip_bandwidth,
            eip_isp: one_of(p, "EipISP", EIP_ISPS)?,
            eip_instance_id,
            resource_group_id: p.string("ResourceGroupId"),
            compute_category,
            containers: containers(p, "Container")?,
            init_containers: containers(p, "InitContainer")?,
        })
    }

    /// The instance has a public address (a new EIP, or one bound by id).
    pub fn has_eip(&self) -> bool {
        self.auto_create_eip || self.eip_instance_id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let mut p = Params::new();
        for (k, v) in pairs {
            p.push(*k, *v);
        }
        p
    }

    #[test]
    fn spot_fields_are_checked_as_eci_does() {
        let ok = GroupExtras::decode(&params(&[
            ("SpotStrategy", "SpotWithPriceLimit"),
            ("SpotPriceLimit", "0.025"),
        ]))
        .unwrap();
        assert_eq!(ok.spot_price_limit, Some(0.025));
        let missing =
            GroupExtras::decode(&params(&[("SpotStrategy", "SpotWithPriceLimit")])).unwrap_err();
        assert_eq!(missing, ParamError::Missing("SpotPriceLimit".into()));
        let bad = GroupExtras::decode(&params(&[("SpotStrategy", "Cheap")])).unwrap_err();
        assert!(matches!(bad, ParamError::Invalid { ref name, .. } if name == "SpotStrategy"));
        let decimals = GroupExtras::decode(&params(&[("SpotPriceLimit", "0.0001")])).unwrap_err();
        assert!(
            matches!(decimals, ParamError::Invalid { ref name, .. } if name == "SpotPriceLimit")
        );
    }

    #[test]
    fn per_container_errors_name_the_container() {
        let err = GroupExtras::decode(&params(&[
            ("Container.1.Name", "a"),
            ("Container.2.Name", "b"),
            ("Container.2.EnvironmentVarHide", "yes"),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, ParamError::Invalid { ref name, .. } if name == "Container.2.EnvironmentVarHide"),
            "{err:?}"
        );
        let ok = GroupExtras::decode(&params(&[
            ("Container.1.Gpu", "1"),
            ("InitContainer.1.EnvironmentVarHide", "true"),
        ]))
        .unwrap();
        assert_eq!(ok.containers[0].gpu, 1);
        assert!(ok.init_containers[0].environment_var_hide);
    }

    #[test]
    fn network_fields_exclude_each_other_and_are_bounded() {
        let both = GroupExtras::decode(&params(&[
            ("AutoCreateEip", "true"),
            ("EipInstanceId", "eip-1"),
        ]))
        .unwrap_err();
        assert!(matches!(both, ParamError::Invalid { ref name, .. } if name == "EipInstanceId"));
        assert!(GroupExtras::decode(&params(&[("Ipv6AddressCount", "2")])).is_err());
        assert!(GroupExtras::decode(&params(&[("InstanceType", "c6.large")])).is_err());
        let ok = GroupExtras::decode(&params(&[
            ("InstanceType", "ecs.c6.large,ecs.g6.large"),
            ("AutoCreateEip", "true"),
            ("EipBandwidth", "10"),
            ("ComputeCategory", "economy"),
        ]))
        .unwrap();
        assert_eq!(ok.instance_types, ["ecs.c6.large", "ecs.g6.large"]);
        assert!(GroupExtras::decode(&params(&[("PrivateIpAddress", "10.0.0.300")])).is_err());
        assert!(GroupExtras::decode(&params(&[("CpuArchitecture", "RISCV")])).is_err());
        assert!(GroupExtras::decode(&params(&[("ScheduleStrategy", "Any")])).is_err());
        assert!(ok.has_eip());
    }
}
