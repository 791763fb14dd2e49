//! `DescribeRegions`: the one region the simulator serves, its endpoint and its zones: those of
//! the configured network (`network.zones`), the unavailable ones left out of the recommended.

use serde::Serialize;

use super::network::NetworkConfig;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegionsAnswer {
    pub request_id: String,
    pub regions: Vec<RegionView>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegionView {
    pub region_id: String,
    pub region_endpoint: String,
    pub zones: Vec<String>,
    pub recommend_zones: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable_zones: Vec<String>,
}

pub fn describe(region: &str, network: &NetworkConfig) -> RegionsAnswer {
    RegionsAnswer {
        request_id: String::new(),
        regions: vec![RegionView {
            region_id: region.to_string(),
            region_endpoint: format!("eci.{region}.aliyuncs.com"),
            zones: network.zones.clone(),
            recommend_zones: network
                .zones
                .iter()
                .filter(|z| !network.unavailable_zones.contains(z))
                .cloned()
                .collect(),
            unavailable_zones: network.unavailable_zones.clone(),
        }],
    }
}
