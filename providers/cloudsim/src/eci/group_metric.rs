//! `DescribeContainerGroupMetric`: one group's usage records. The simulator keeps no history,
//! so the answer holds the one record measured now (as `DescribeMultiContainerGroupMetric`
//! measures it), plus the fields ECI adds for a single group: the system disk's filesystem,
//! disks and the network interface, which the executors do not measure (zero).

use serde::Serialize;

use super::error::ApiError;
use super::face::Face;
use eci::wire::api::errors;
use eci::wire::metrics::{DescribeMultiContainerGroupMetric, MetricRecord};
use eci::wire::params::{ParamError, Params};

/// `Period` values, in seconds.
const PERIODS: &[u32] = &[15, 30, 60, 600];
/// `StartTime` reaches back this far at most.
const HISTORY: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);
/// ECI's default temporary storage: a 30 GiB system disk.
const SYSTEM_DISK_BYTES: u64 = 30 << 30;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupMetricAnswer {
    pub request_id: String,
    pub container_group_id: String,
    pub records: Vec<RecordView>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordView {
    #[serde(flatten)]
    pub usage: MetricRecord,
    pub disk: Vec<DiskView>,
    pub filesystem: Vec<FilesystemView>,
    pub network: NetworkView,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskView {
    pub device: String,
    pub read_bytes: u64,
    #[serde(rename = "ReadIO")]
    pub read_io: u64,
    pub write_bytes: u64,
    #[serde(rename = "WriteIO")]
    pub write_io: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemView {
    pub fs_name: String,
    pub category: String,
    pub capacity: u64,
    pub usage: u64,
    pub available: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkView {
    pub interfaces: Vec<InterfaceView>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceView {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_drops: u64,
    pub rx_errors: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_drops: u64,
    pub tx_errors: u64,
    pub tx_packets: u64,
}

fn rfc3339(p: &Params, name: &str) -> Result<Option<jiff::Timestamp>, ParamError> {
    match p.string(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<jiff::Timestamp>()
            .map(Some)
            .map_err(|_| ParamError::invalid(name, format!("{v:?} is not RFC 3339"))),
    }
}

/// The time range: within the last 30 days, start before end.
fn check_range(p: &Params) -> Result<(), ParamError> {
    let (start, end) = (rfc3339(p, "StartTime")?, rfc3339(p, "EndTime")?);
    let now = jiff::Timestamp::now();
    if let Some(start) = start {
        if now.checked_sub(HISTORY).is_ok_and(|oldest| start < oldest) {
            return Err(ParamError::invalid("StartTime", "within the last 30 days"));
        }
        if start > end.unwrap_or(now) {
            return Err(ParamError::invalid("StartTime", "before EndTime"));
        }
    }
    Ok(())
}

impl Face {
    pub async fn group_metric(&self, p: &Params) -> Result<GroupMetricAnswer, ApiError> {
        let id = p.required("ContainerGroupId")?.to_string();
        check_range(p)?;
        if let Some(period) = p.parse::<u32>("Period")?
            && !PERIODS.contains(&period)
        {
            return Err(ParamError::invalid("Period", "15, 30, 60 or 600 seconds").into());
        }
        let multi = self
            .multi_metric(&DescribeMultiContainerGroupMetric {
                region_id: p.required("RegionId")?.to_string(),
                container_group_ids: vec![id.clone()],
                metric_type: None,
            })
            .await?;
        let Some(data) = multi.monitor_datas.into_iter().next() else {
            return Err(ApiError::new(
                errors::GROUP_NOT_FOUND,
                format!("The specified ContainerGroupId {id:?} does not exist."),
            ));
        };
        Ok(GroupMetricAnswer {
            request_id: String::new(),
            container_group_id: id,
            records: data
                .records
                .into_iter()
                .map(|usage| RecordView {
                    usage,
                    disk: vec![DiskView {
                        device: "/dev/vda".into(),
                        ..Default::default()
                    }],
                    filesystem: vec![FilesystemView {
                        fs_name: "/dev/vda1".into(),
                        category: "system".into(),
                        capacity: SYSTEM_DISK_BYTES,
                        usage: 0,
                        available: SYSTEM_DISK_BYTES,
                    }],
                    network: NetworkView {
                        interfaces: vec![InterfaceView {
                            name: "eth0".into(),
                            ..Default::default()
                        }],
                    },
                })
                .collect(),
        })
    }
}
