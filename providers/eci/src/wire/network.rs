//! The answers of the account's other products that `vk doctor` reads, on the wire: ECI
//! `DescribeRegions`, VPC `DescribeVSwitches` (2016-04-28), ECS `DescribeSecurityGroups`
//! (2014-05-26) and Quota Center `ListProductQuotas` (2020-05-10), as Alibaba documents them.

use serde::{Deserialize, Serialize};

pub const VPC_VERSION: &str = "2016-04-28";
pub const ECS_VERSION: &str = "2014-05-26";
pub const QUOTAS_VERSION: &str = "2020-05-10";

/// Alibaba does not document the code of ECI's vCPU quota in its API reference; this is the
/// mock cloud's, configurable as `services.vcpu_quota_code`.
pub const VCPU_QUOTA_CODE: &str = "q_eci_regional_vcpu";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Region {
    pub region_id: String,
    pub region_endpoint: String,
    pub zones: Vec<String>,
    pub recommend_zones: Vec<String>,
    pub unavailable_zones: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeRegionsResponse {
    pub request_id: String,
    pub regions: Vec<Region>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VSwitch {
    #[serde(rename = "VSwitchId")]
    pub vswitch_id: String,
    pub vpc_id: String,
    pub zone_id: String,
    pub cidr_block: String,
    pub status: String,
    pub available_ip_address_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VSwitches {
    #[serde(rename = "VSwitch")]
    pub vswitch: Vec<VSwitch>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeVSwitchesResponse {
    pub request_id: String,
    #[serde(rename = "VSwitches")]
    pub vswitches: VSwitches,
    pub total_count: u64,
    pub page_number: u64,
    pub page_size: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroup {
    pub security_group_id: String,
    pub vpc_id: String,
    pub security_group_name: String,
    pub security_group_type: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroups {
    pub security_group: Vec<SecurityGroup>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeSecurityGroupsResponse {
    pub request_id: String,
    pub region_id: String,
    pub security_groups: SecurityGroups,
    pub total_count: u64,
    pub page_number: u64,
    pub page_size: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ProductQuota {
    pub product_code: String,
    pub quota_action_code: String,
    pub quota_name: String,
    pub quota_unit: String,
    pub total_quota: f64,
    pub total_usage: f64,
    /// e.g. `{"regionId": "cn-hangzhou"}`.
    pub dimensions: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListProductQuotasResponse {
    pub request_id: String,
    pub quotas: Vec<ProductQuota>,
    pub total_count: u64,
    pub max_results: u64,
    pub next_token: String,
}
