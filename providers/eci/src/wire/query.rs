//! The requests that read or act on existing groups: listing (`DescribeContainerGroups`,
//! whose filters `DescribeContainerGroupStatus` shares), logs and exec.

use crate::wire::api::Tag;
use crate::wire::params::{ParamError, Params};
use crate::wire::request::{decode_tags, encode_tags};

/// `DescribeContainerGroups` (and the filters `DescribeContainerGroupStatus` shares).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeContainerGroups {
    pub region_id: String,
    /// At most 20 ids, sent as a JSON array.
    pub container_group_ids: Vec<String>,
    pub container_group_name: Option<String>,
    pub status: Option<String>,
    pub tags: Vec<Tag>,
    pub next_token: Option<String>,
    pub limit: Option<u32>,
}

impl DescribeContainerGroups {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        if !self.container_group_ids.is_empty() {
            let ids = serde_json::to_string(&self.container_group_ids).unwrap_or_default();
            p.push("ContainerGroupIds", ids);
        }
        p.push_opt("ContainerGroupName", self.container_group_name.as_ref());
        p.push_opt("Status", self.status.as_ref());
        encode_tags(p, "Tag", &self.tags);
        p.push_opt("NextToken", self.next_token.as_ref());
        p.push_opt("Limit", self.limit);
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let container_group_ids = match p.get("ContainerGroupIds").filter(|v| !v.is_empty()) {
            None => Vec::new(),
            Some(json) => serde_json::from_str::<Vec<String>>(json).map_err(|_| {
                ParamError::invalid("ContainerGroupIds", "expected a JSON array of strings")
            })?,
        };
        if container_group_ids.len() > 20 {
            return Err(ParamError::invalid(
                "ContainerGroupIds",
                "at most 20 ids per request",
            ));
        }
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            container_group_ids,
            container_group_name: p.string("ContainerGroupName"),
            status: p.string("Status"),
            tags: decode_tags(p, "Tag")?,
            next_token: p.string("NextToken"),
            limit: p.parse("Limit")?,
        })
    }
}

/// `DescribeContainerLog`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeContainerLog {
    pub region_id: String,
    pub container_group_id: String,
    pub container_name: String,
    pub tail: Option<u32>,
    /// RFC 3339.
    pub start_time: Option<String>,
    pub since_seconds: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub timestamps: bool,
    /// The previous run of a restarted container.
    pub last_time: bool,
}

impl DescribeContainerLog {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push("ContainerGroupId", &self.container_group_id);
        p.push("ContainerName", &self.container_name);
        p.push_opt("Tail", self.tail);
        p.push_opt("StartTime", self.start_time.as_ref());
        p.push_opt("SinceSeconds", self.since_seconds);
        p.push_opt("LimitBytes", self.limit_bytes);
        if self.timestamps {
            p.push("Timestamps", "true");
        }
        if self.last_time {
            p.push("LastTime", "true");
        }
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            container_group_id: p.required("ContainerGroupId")?.to_string(),
            container_name: p.required("ContainerName")?.to_string(),
            tail: p.parse("Tail")?,
            start_time: p.string("StartTime"),
            since_seconds: p.parse("SinceSeconds")?,
            limit_bytes: p.parse("LimitBytes")?,
            timestamps: p.flag("Timestamps", false)?,
            last_time: p.flag("LastTime", false)?,
        })
    }
}

/// `ExecContainerCommand`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecContainerCommand {
    pub region_id: String,
    pub container_group_id: String,
    pub container_name: String,
    /// argv, sent as a JSON array.
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    /// Run at once and answer with the output instead of a WebSocket address.
    pub sync: bool,
}

impl ExecContainerCommand {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push("ContainerGroupId", &self.container_group_id);
        p.push("ContainerName", &self.container_name);
        p.push(
            "Command",
            serde_json::to_string(&self.command).unwrap_or_default(),
        );
        p.push("TTY", self.tty.to_string());
        p.push("Stdin", self.stdin.to_string());
        p.push("Sync", self.sync.to_string());
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let raw = p.required("Command")?;
        // A JSON array, or (as the service also accepts) a single command.
        let command = if raw.trim_start().starts_with('[') {
            serde_json::from_str::<Vec<String>>(raw)
                .map_err(|_| ParamError::invalid("Command", "expected a JSON array of strings"))?
        } else {
            vec![raw.to_string()]
        };
        if command.is_empty() || command.len() > 20 || command.iter().any(|c| c.len() > 256) {
            return Err(ParamError::invalid(
                "Command",
                "1 to 20 words of at most 256 characters",
            ));
        }
        let sync = p.flag("Sync", false)?;
        let tty = p.flag("TTY", false)?;
        if sync && tty {
            return Err(ParamError::invalid(
                "TTY",
                "must be false when Sync is true",
            ));
        }
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            container_group_id: p.required("ContainerGroupId")?.to_string(),
            container_name: p.required("ContainerName")?.to_string(),
            command,
            tty,
            stdin: p.flag("Stdin", true)?,
            sync,
        })
    }
}
