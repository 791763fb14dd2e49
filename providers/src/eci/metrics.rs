//! `DescribeMultiContainerGroupMetric`: the latest usage sample of up to 20 container groups
//! per call, and its mapping to vk-core's [`PodStats`].
//!
//! Shape as documented for OpenAPI 2018-08-08: request `RegionId`, `ContainerGroupIds` (a JSON
//! array, at most 20), `MetricType` (`summary`); answer `MonitorDatas[]` of
//! `{ContainerGroupId, Records[]}`, a record `{Timestamp, CPU, Memory, Network, Containers[]}`,
//! a container `{Name, CPU, Memory}`, CPU `{UsageNanoCores, UsageCoreNanoSeconds, Load,
//! Limit}`, memory `{UsageBytes, WorkingSet, Rss, Cache, AvailableBytes}`. Not confirmed by the
//! documentation, and chosen here: an unknown or finished group's id is left out of the answer
//! rather than failing the call, and CPU `Limit` is in millicores.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use vk_core::provider::{ContainerStats, PodRef, PodStats};

use super::params::{ParamError, Params};

/// The service takes at most this many ids per call.
pub const MAX_GROUP_IDS: usize = 20;

/// The only `MetricType` the service documents.
pub const METRIC_TYPE_SUMMARY: &str = "summary";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeMultiContainerGroupMetric {
    pub region_id: String,
    pub container_group_ids: Vec<String>,
    pub metric_type: Option<String>,
}

impl DescribeMultiContainerGroupMetric {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        let ids = serde_json::to_string(&self.container_group_ids).unwrap_or_default();
        p.push("ContainerGroupIds", ids);
        p.push_opt("MetricType", self.metric_type.as_ref());
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let ids = p.required("ContainerGroupIds")?;
        let container_group_ids = serde_json::from_str::<Vec<String>>(ids).map_err(|_| {
            ParamError::invalid("ContainerGroupIds", "expected a JSON array of strings")
        })?;
        if container_group_ids.len() > MAX_GROUP_IDS {
            return Err(ParamError::invalid(
                "ContainerGroupIds",
                "at most 20 ids per request",
            ));
        }
        let metric_type = p.string("MetricType").filter(|t| !t.is_empty());
        if let Some(t) = &metric_type
            && t != METRIC_TYPE_SUMMARY
        {
            return Err(ParamError::invalid(
                "MetricType",
                "only \"summary\" is supported",
            ));
        }
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            container_group_ids,
            metric_type,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeMultiContainerGroupMetricResponse {
    pub request_id: String,
    pub monitor_datas: Vec<GroupMetrics>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GroupMetrics {
    pub container_group_id: String,
    pub records: Vec<MetricRecord>,
}

/// One sample of a group: its totals and its running containers'.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MetricRecord {
    /// RFC 3339.
    pub timestamp: String,
    #[serde(rename = "CPU")]
    pub cpu: CpuMetric,
    pub memory: MemoryMetric,
    pub containers: Vec<ContainerMetric>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerMetric {
    pub name: String,
    #[serde(rename = "CPU")]
    pub cpu: CpuMetric,
    pub memory: MemoryMetric,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CpuMetric {
    /// Cores in use over the sampling window, in billionths of a core.
    pub usage_nano_cores: u64,
    /// CPU time used since the container started.
    pub usage_core_nano_seconds: u64,
    pub load: u64,
    pub limit: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MemoryMetric {
    pub usage_bytes: u64,
    pub working_set: u64,
    pub rss: u64,
    pub cache: u64,
    pub available_bytes: u64,
}

/// The pods' stats from the answers: each group's latest record, per container. Groups not in
/// `pods` (not this node's, or unknown) are left out.
pub fn pod_stats(
    answers: impl IntoIterator<Item = GroupMetrics>,
    pods: &HashMap<String, PodRef>,
) -> Vec<PodStats> {
    answers
        .into_iter()
        .filter_map(|group| {
            let pod = pods.get(&group.container_group_id)?.clone();
            // RFC 3339 UTC stamps of one format sort as text; the service sends one anyway.
            let latest = group
                .records
                .into_iter()
                .max_by(|a, b| a.timestamp.cmp(&b.timestamp))?;
            Some(PodStats {
                pod: Some(pod),
                containers: latest
                    .containers
                    .into_iter()
                    .map(|c| ContainerStats {
                        name: c.name,
                        cpu_usage_nano_cores: c.cpu.usage_nano_cores,
                        cpu_usage_core_nano_seconds: c.cpu.usage_core_nano_seconds,
                        memory_working_set_bytes: c.memory.working_set,
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_is_checked() {
        let req = DescribeMultiContainerGroupMetric {
            region_id: "cn-hangzhou".into(),
            container_group_ids: vec!["eci-a".into(), "eci-b".into()],
            metric_type: Some(METRIC_TYPE_SUMMARY.into()),
        };
        let mut p = Params::new();
        req.encode(&mut p);
        assert_eq!(p.get("ContainerGroupIds"), Some(r#"["eci-a","eci-b"]"#));
        assert_eq!(DescribeMultiContainerGroupMetric::decode(&p).unwrap(), req);

        let ids: Vec<String> = (0..21).map(|i| format!("eci-{i}")).collect();
        let mut p = Params::new();
        DescribeMultiContainerGroupMetric {
            region_id: "cn-hangzhou".into(),
            container_group_ids: ids,
            metric_type: None,
        }
        .encode(&mut p);
        assert!(DescribeMultiContainerGroupMetric::decode(&p).is_err());
    }

    #[test]
    fn answer_in_the_documented_shape_maps_to_pod_stats() {
        let json = r#"{"RequestId": "R", "MonitorDatas": [
            {"ContainerGroupId": "eci-a", "Records": [
              {"Timestamp": "2024-05-01T10:00:00Z",
               "CPU": {"UsageNanoCores": 1, "UsageCoreNanoSeconds": 1, "Load": 0, "Limit": 1000},
               "Memory": {"WorkingSet": 1}, "Containers": []},
              {"Timestamp": "2024-05-01T10:00:15Z",
               "CPU": {"UsageNanoCores": 250000000, "UsageCoreNanoSeconds": 40876694, "Load": 0, "Limit": 1000},
               "Memory": {"AvailableBytes": 4285091840, "Cache": 0, "Rss": 9289728, "UsageBytes": 9289728, "WorkingSet": 9289728},
               "Network": {"Interfaces": [{"Name": "eth0", "TxBytes": 1, "RxBytes": 2}]},
               "Containers": [{"Name": "app",
                  "CPU": {"UsageNanoCores": 250000000, "UsageCoreNanoSeconds": 40876694, "Load": 0, "Limit": 1000},
                  "Memory": {"WorkingSet": 9289728, "Rss": 9289728, "UsageBytes": 9289728}}]}]},
            {"ContainerGroupId": "eci-stranger", "Records": []}
        ]}"#;
        let answer: DescribeMultiContainerGroupMetricResponse = serde_json::from_str(json).unwrap();
        let pod = PodRef {
            namespace: "ci".into(),
            name: "build".into(),
            uid: "uid-1".into(),
        };
        let pods = HashMap::from([("eci-a".to_string(), pod.clone())]);
        let stats = pod_stats(answer.monitor_datas, &pods);
        assert_eq!(
            stats,
            vec![PodStats {
                pod: Some(pod),
                containers: vec![ContainerStats {
                    name: "app".into(),
                    cpu_usage_nano_cores: 250_000_000,
                    cpu_usage_core_nano_seconds: 40_876_694,
                    memory_working_set_bytes: 9_289_728,
                }],
            }]
        );
    }
}
