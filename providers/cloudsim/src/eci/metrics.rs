//! `DescribeMultiContainerGroupMetric`: one record per asked group that exists, with its
//! running containers' usage as the executor measures it (`process`: the sandbox's processes
//! in `/proc`; `simulate`: figures derived from the container's size and run time).

use jiff::Timestamp;

use super::error::ApiError;
use super::face::Face;
use crate::engine::executor::{RunningContainer, Usage};
use eci::wire::metrics::{
    ContainerMetric, CpuMetric, DescribeMultiContainerGroupMetric,
    DescribeMultiContainerGroupMetricResponse, GroupMetrics, MemoryMetric, MetricRecord,
};

const GIB: f64 = (1u64 << 30) as f64;

impl Face {
    pub async fn multi_metric(
        &self,
        req: &DescribeMultiContainerGroupMetric,
    ) -> Result<DescribeMultiContainerGroupMetricResponse, ApiError> {
        let groups = self.engine().snapshot_running(&req.container_group_ids);
        // One executor call for all the groups: the process executor reads /proc once.
        let running: Vec<RunningContainer> =
            groups.iter().flat_map(|g| g.running.clone()).collect();
        let mut usages = self.engine().executor().usage(&running).await.into_iter();
        let stamp = super::render::time(Timestamp::now());
        let monitor_datas = groups
            .into_iter()
            .map(|g| {
                let containers: Vec<ContainerMetric> = g
                    .running
                    .iter()
                    .map(|c| {
                        let usage = usages.next().flatten().unwrap_or_default();
                        ContainerMetric {
                            name: c.spec.name.clone(),
                            cpu: cpu_metric(usage, c.spec.cpu.unwrap_or(g.cpu)),
                            memory: memory_metric(usage, c.spec.memory_gib.unwrap_or(g.memory_gib)),
                        }
                    })
                    .collect();
                let total = containers.iter().fold(Usage::default(), |sum, c| Usage {
                    nano_cores: sum.nano_cores + c.cpu.usage_nano_cores,
                    core_nano_seconds: sum.core_nano_seconds + c.cpu.usage_core_nano_seconds,
                    working_set_bytes: sum.working_set_bytes + c.memory.working_set,
                    rss_bytes: sum.rss_bytes + c.memory.rss,
                });
                GroupMetrics {
                    container_group_id: g.id,
                    records: vec![MetricRecord {
                        timestamp: stamp.clone(),
                        cpu: cpu_metric(total, g.cpu),
                        memory: memory_metric(total, g.memory_gib),
                        containers,
                    }],
                }
            })
            .collect();
        Ok(DescribeMultiContainerGroupMetricResponse {
            request_id: String::new(),
            monitor_datas,
        })
    }
}

fn cpu_metric(u: Usage, cores: f64) -> CpuMetric {
    CpuMetric {
        usage_nano_cores: u.nano_cores,
        usage_core_nano_seconds: u.core_nano_seconds,
        load: 0,
        limit: (cores * 1000.0).round() as u64,
    }
}

fn memory_metric(u: Usage, gib: f64) -> MemoryMetric {
    MemoryMetric {
        usage_bytes: u.working_set_bytes,
        working_set: u.working_set_bytes,
        rss: u.rss_bytes,
        cache: 0,
        available_bytes: ((gib * GIB) as u64).saturating_sub(u.working_set_bytes),
    }
}
