//! `DescribeRegions`: the one region the simulator serves, its endpoint and its zones (the
//! zone a group gets when it names none is the first).

use serde::Serialize;

/// The zone suffixes the simulator offers in its region.
const ZONES: &[&str] = &["a", "b", "c"];

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
}

pub fn describe(region: &str) -> RegionsAnswer {
    let zones: Vec<String> = ZONES.iter().map(|z| format!("{region}-{z}")).collect();
    RegionsAnswer {
        request_id: String::new(),
        regions: vec![RegionView {
            region_id: region.to_string(),
            region_endpoint: format!("eci.{region}.aliyuncs.com"),
            recommend_zones: zones.iter().take(1).cloned().collect(),
            zones,
        }],
    }
}
