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

use vk_core::provider::{ContainerStats, PodRef, PodStats};

pub use crate::wire::metrics::{
    ContainerMetric, CpuMetric, DescribeMultiContainerGroupMetric,
    DescribeMultiContainerGroupMetricResponse, GroupMetrics, MAX_GROUP_IDS, METRIC_TYPE_SUMMARY,
    MemoryMetric, MetricRecord,
};

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
    use crate::wire::params::Params;

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
