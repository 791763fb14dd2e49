//! The account's network as the mock cloud knows it, and the actions that describe it: VPC
//! `DescribeVSwitches` and ECS
//! `DescribeSecurityGroups`, in their products' API versions and answer shapes. The network is
//! configurable (`network:` in the cloud's config); the default is a demo VPC with one vSwitch
//! in each of two zones, its security group, and a security group of another VPC. The zones
//! ECI serves are answered by `regions` (ECI `DescribeRegions`) from the same config.

use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::quota;
use eci::wire::api::{API_VERSION, errors};
use eci::wire::network::{
    DescribeSecurityGroupsResponse, DescribeVSwitchesResponse, ECS_VERSION, SecurityGroup,
    SecurityGroups, VPC_VERSION, VSwitch, VSwitches,
};
use eci::wire::params::Params;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VSwitchConfig {
    pub id: String,
    pub vpc_id: String,
    pub zone_id: String,
    pub cidr_block: String,
    pub available_ips: u64,
}

impl Default for VSwitchConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            vpc_id: String::new(),
            zone_id: String::new(),
            cidr_block: "172.16.0.0/20".into(),
            available_ips: 4000,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityGroupConfig {
    pub id: String,
    pub vpc_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// The zones of the cloud's region where ECI runs.
    pub zones: Vec<String>,
    /// Zones ECI lists as unavailable (e.g. sold out).
    pub unavailable_zones: Vec<String>,
    pub vswitches: Vec<VSwitchConfig>,
    pub security_groups: Vec<SecurityGroupConfig>,
}

/// The demo network's names, which the e2e setups and the README use.
pub const DEMO_VPC: &str = "vpc-vk-demo";
pub const DEMO_SECURITY_GROUP: &str = "sg-vk-demo";
pub const DEMO_ZONES: [(&str, &str); 2] = [
    ("cn-hangzhou-j", "vsw-vk-demo-j"),
    ("cn-hangzhou-k", "vsw-vk-demo-k"),
];

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            zones: DEMO_ZONES.iter().map(|(z, _)| z.to_string()).collect(),
            unavailable_zones: Vec::new(),
            vswitches: DEMO_ZONES
                .iter()
                .enumerate()
                .map(|(i, (zone, id))| VSwitchConfig {
                    id: id.to_string(),
                    vpc_id: DEMO_VPC.into(),
                    zone_id: zone.to_string(),
                    cidr_block: format!("172.16.{}.0/20", i * 16),
                    ..Default::default()
                })
                .collect(),
            security_groups: vec![
                SecurityGroupConfig {
                    id: DEMO_SECURITY_GROUP.into(),
                    vpc_id: DEMO_VPC.into(),
                },
                SecurityGroupConfig {
                    id: "sg-vk-other-vpc".into(),
                    vpc_id: "vpc-vk-other".into(),
                },
            ],
        }
    }
}

/// The API version an action is called with: the other products' own, else ECI's.
pub fn api_version(action: &str) -> &'static str {
    match action {
        "DescribeVSwitches" => VPC_VERSION,
        "DescribeSecurityGroups" => ECS_VERSION,
        quota::LIST_PRODUCT_QUOTAS => eci::wire::network::QUOTAS_VERSION,
        _ => API_VERSION,
    }
}

/// Whether this face answers `action`.
pub fn handles(action: &str) -> bool {
    matches!(action, "DescribeVSwitches" | "DescribeSecurityGroups")
}

fn json<T: Serialize>(body: &T) -> Result<String, ApiError> {
    serde_json::to_string(body).map_err(|e| ApiError::new(errors::INTERNAL_ERROR, e.to_string()))
}

/// Answer one of [`handles`]'s actions (the RequestId is set by the caller).
pub fn dispatch(
    network: &NetworkConfig,
    region_id: &str,
    action: &str,
    p: &Params,
) -> Result<String, ApiError> {
    match action {
        "DescribeVSwitches" => {
            let id = p.get("VSwitchId");
            let vpc = p.get("VpcId");
            let zone = p.get("ZoneId");
            let found: Vec<VSwitch> = network
                .vswitches
                .iter()
                .filter(|v| id.is_none_or(|i| i == v.id))
                .filter(|v| vpc.is_none_or(|i| i == v.vpc_id))
                .filter(|v| zone.is_none_or(|z| z == v.zone_id))
                .map(|v| VSwitch {
                    vswitch_id: v.id.clone(),
                    vpc_id: v.vpc_id.clone(),
                    zone_id: v.zone_id.clone(),
                    cidr_block: v.cidr_block.clone(),
                    status: "Available".into(),
                    available_ip_address_count: v.available_ips,
                })
                .collect();
            json(&DescribeVSwitchesResponse {
                request_id: String::new(),
                total_count: found.len() as u64,
                page_number: 1,
                page_size: p.parse("PageSize")?.unwrap_or(10),
                vswitches: VSwitches { vswitch: found },
            })
        }
        "DescribeSecurityGroups" => {
            let ids: Option<Vec<String>> = match p.get("SecurityGroupIds") {
                None => None,
                Some(text) => Some(serde_json::from_str(text).map_err(|_| {
                    ApiError::new(
                        errors::INVALID_PARAMETER,
                        "The specified SecurityGroupIds is not a JSON array of strings.",
                    )
                })?),
            };
            let vpc = p.get("VpcId");
            let found: Vec<SecurityGroup> = network
                .security_groups
                .iter()
                .filter(|g| ids.as_ref().is_none_or(|ids| ids.contains(&g.id)))
                .filter(|g| p.get("SecurityGroupId").is_none_or(|i| i == g.id))
                .filter(|g| vpc.is_none_or(|v| v == g.vpc_id))
                .map(|g| SecurityGroup {
                    security_group_id: g.id.clone(),
                    vpc_id: g.vpc_id.clone(),
                    security_group_name: g.id.clone(),
                    security_group_type: "normal".into(),
                })
                .collect();
            json(&DescribeSecurityGroupsResponse {
                request_id: String::new(),
                region_id: region_id.into(),
                total_count: found.len() as u64,
                page_number: 1,
                page_size: p.parse("PageSize")?.unwrap_or(10),
                security_groups: SecurityGroups {
                    security_group: found,
                },
            })
        }
        other => Err(ApiError::new(
            errors::INVALID_ACTION,
            format!("Specified api {other:?} is not found, please check your url and method."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vswitches_and_groups_are_filtered_as_asked() {
        let network = NetworkConfig::default();
        let mut p = Params::new();
        p.push("VSwitchId", "vsw-vk-demo-k");
        let body = dispatch(&network, "cn-hangzhou", "DescribeVSwitches", &p).unwrap();
        let v: DescribeVSwitchesResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(v.vswitches.vswitch.len(), 1);
        assert_eq!(v.vswitches.vswitch[0].zone_id, "cn-hangzhou-k");

        let mut p = Params::new();
        p.push("SecurityGroupIds", r#"["sg-vk-other-vpc"]"#);
        let body = dispatch(&network, "cn-hangzhou", "DescribeSecurityGroups", &p).unwrap();
        let g: DescribeSecurityGroupsResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(g.security_groups.security_group[0].vpc_id, "vpc-vk-other");

        let mut p = Params::new();
        p.push("SecurityGroupIds", "sg-1");
        let e = dispatch(&network, "cn-hangzhou", "DescribeSecurityGroups", &p).unwrap_err();
        assert_eq!(e.code, errors::INVALID_PARAMETER.0);
        assert_eq!(api_version("DescribeVSwitches"), VPC_VERSION);
        assert_eq!(api_version("CreateContainerGroup"), API_VERSION);
    }
}
