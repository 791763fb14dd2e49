//! `DescribeMultiContainerGroupMetric` on the wire: the request (`RegionId`, `ContainerGroupIds`
//! as a JSON array of at most 20, `MetricType` `summary`) and the answer (`MonitorDatas[]` of
//! `{ContainerGroupId, Records[]}`; a record `{Timestamp, CPU, Memory, Network, Containers[]}`),
//! as documented for OpenAPI 2018-08-08.

use serde::{Deserialize, Serialize};

use crate::wire::params::{ParamError, Params};

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
