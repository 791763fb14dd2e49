//! Where a group lives and how it is reached, as ECI reports it: zone, vSwitch, VPC, security
//! group, resource group, ENI, public and IPv6 addresses; and the filters of
//! `DescribeContainerGroups` / `DescribeContainerGroupStatus` / `DescribeContainerGroupEvents`
//! on them (`ZoneId`, `VSwitchId`, `SecurityGroupId`, `ResourceGroupId`, `ComputeCategory`),
//! with `WithEvent`.
//!
//! What the caller did not give, ECI takes from the region's defaults (its default vSwitch,
//! security group and resource group); the simulator names those after the region.

use ring::digest;

use super::record::record;
use crate::engine::group::Group;
use eci::wire::params::{ParamError, Params};

/// Lower-case hex of the first `bytes` bytes of SHA-256(`seed`): stable ids and digests.
pub fn stable_hex(seed: &str, bytes: usize) -> String {
    digest::digest(&digest::SHA256, seed.as_bytes())
        .as_ref()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Group {
    pub fn zone(&self, region: &str) -> String {
        record(self)
            .request
            .zone_id
            .clone()
            .unwrap_or_else(|| format!("{region}-a"))
    }

    /// The first of the vSwitches given (ECI takes up to ten, comma-separated, and picks one).
    pub fn vswitch(&self, region: &str) -> String {
        record(self)
            .request
            .vswitch_id
            .as_deref()
            .and_then(|v| v.split(',').map(str::trim).find(|v| !v.is_empty()))
            .map(str::to_string)
            .unwrap_or_else(|| format!("vsw-{region}-default"))
    }

    /// The vSwitch's VPC.
    pub fn vpc(&self, region: &str) -> String {
        format!("vpc-{}", stable_hex(&self.vswitch(region), 10))
    }

    pub fn security_group(&self, region: &str) -> String {
        record(self)
            .request
            .security_group_id
            .clone()
            .unwrap_or_else(|| format!("sg-{region}-default"))
    }

    pub fn resource_group(&self) -> String {
        record(self)
            .extras
            .resource_group_id
            .clone()
            .unwrap_or_else(|| "rg-default".into())
    }

    pub fn eni(&self) -> String {
        format!("eni-{}", stable_hex(self.id(), 10))
    }

    /// The EIP's address, when the group has one.
    pub fn internet_ip(&self) -> Option<String> {
        record(self).extras.has_eip().then(|| {
            let n = self.seq;
            format!("47.96.{}.{}", (n / 254) % 256, n % 254 + 1)
        })
    }

    pub fn ipv6(&self) -> Option<String> {
        (record(self).extras.ipv6_address_count > 0)
            .then(|| format!("2408:4005:3ff:a00::{:x}", self.seq + 1))
    }

    pub fn compute_category(&self) -> String {
        record(self)
            .extras
            .compute_category
            .first()
            .cloned()
            .unwrap_or_default()
    }
}

/// The placement filters of the listing actions, and `WithEvent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementFilter {
    pub zone_id: Option<String>,
    pub vswitch_id: Option<String>,
    pub security_group_id: Option<String>,
    pub resource_group_id: Option<String>,
    pub compute_category: Option<String>,
    /// The reference gives `WithEvent` no default; the simulator answers each group's events
    /// unless told `WithEvent=false` (the eci provider reads them without asking).
    pub with_event: bool,
}

impl Default for PlacementFilter {
    fn default() -> Self {
        Self {
            zone_id: None,
            vswitch_id: None,
            security_group_id: None,
            resource_group_id: None,
            compute_category: None,
            with_event: true,
        }
    }
}

impl PlacementFilter {
    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            zone_id: p.string("ZoneId"),
            vswitch_id: p.string("VSwitchId"),
            security_group_id: p.string("SecurityGroupId"),
            resource_group_id: p.string("ResourceGroupId"),
            compute_category: p.string("ComputeCategory"),
            with_event: p.flag("WithEvent", true)?,
        })
    }

    pub fn matches(&self, g: &Group, region: &str) -> bool {
        let is = |want: &Option<String>, have: String| want.as_ref().is_none_or(|w| *w == have);
        is(&self.zone_id, g.zone(region))
            && is(&self.vswitch_id, g.vswitch(region))
            && is(&self.security_group_id, g.security_group(region))
            && is(&self.resource_group_id, g.resource_group())
            && is(&self.compute_category, g.compute_category())
    }
}
