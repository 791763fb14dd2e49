//! `AciConfig`: the `aci:` section of vk's config file. Every field has a default but the
//! subscription, the resource group, the location and the node name must be set for
//! [`crate::AciProvider::new`] to accept it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::client::Pacing;
use crate::credentials_chain::CredentialsConfig;
use crate::pacing::{RateLimit, RetryPolicy, default_group_write_limits};
use crate::sizing::GroupLimits;

/// Everything the ACI provider needs. No secret lives here (see [`CredentialsConfig`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct AciConfig {
    pub subscription_id: String,
    pub resource_group: String,
    /// The region groups are created in, e.g. `westeurope`.
    pub location: String,
    /// ARM's base URL (default `https://management.azure.com`), or the simulator's.
    pub endpoint: String,
    /// A PEM file of CA certificates trusted besides the system's (ARM, AAD and exec sockets).
    pub extra_ca_file: Option<PathBuf>,
    pub credentials: CredentialsConfig,
    /// The virtual node: tags every group, and only its groups are listed.
    pub node_name: String,
    /// A subnet resource id: groups join it and get a private IP.
    pub subnet_id: Option<String>,
    /// Without a subnet: give groups that declare ports a public IP.
    pub public_ip: bool,
    pub limits: GroupLimits,
    /// vk-core lists the node's groups once per this interval.
    pub status_interval_ms: u64,
    /// At most this many groups whose listing lacks an instance view (ARM's lists have none)
    /// are read with a GET per listing (never read first, then changed, then the longest
    /// unread); the others keep their last view until their turn, and finished groups are
    /// never read again. 10 per 5 s stays well under ARM's classic 12 000 reads an hour; a
    /// running group's view is then at most `groups / 10` intervals old.
    pub detail_reads_per_list: usize,
    /// A followed log is polled this often while nothing new arrives.
    pub log_poll_interval_ms: u64,
    /// Lines asked for per follow poll.
    pub follow_tail: u64,
    pub request_timeout_ms: u64,
    /// How long exec waits for the container's shell to answer.
    pub exec_ready_timeout_ms: u64,
    /// Re-PUT a running group when its file volumes (tokens, configMaps, secrets) change.
    /// ACI restarts the group's containers on such an update, so this is off by default.
    pub refresh_volumes: bool,
    pub retry: RetryPolicy,
    pub read_rate: RateLimit,
    pub write_rate: RateLimit,
    /// Buckets every group create and delete waits on (ACI: 100 per 5 min, 300 per hour).
    pub group_write_limits: Vec<RateLimit>,
    /// Below this many remaining calls (ARM's `x-ms-ratelimit-remaining-*`) calls slow down.
    pub low_water: u32,
    /// The wait at 0 remaining calls.
    pub pause_ms: u64,
    pub capacity: AciCapacity,
}

impl Default for AciConfig {
    fn default() -> Self {
        let pacing = Pacing::default();
        Self {
            subscription_id: String::new(),
            resource_group: String::new(),
            location: String::new(),
            endpoint: crate::wire::ARM_ENDPOINT.into(),
            extra_ca_file: None,
            credentials: CredentialsConfig::default(),
            node_name: String::new(),
            subnet_id: None,
            public_ip: false,
            limits: GroupLimits::default(),
            status_interval_ms: 5000,
            detail_reads_per_list: 10,
            log_poll_interval_ms: 1000,
            follow_tail: 1000,
            request_timeout_ms: 30_000,
            exec_ready_timeout_ms: 15_000,
            refresh_volumes: false,
            retry: pacing.retry,
            read_rate: pacing.reads,
            write_rate: pacing.writes,
            group_write_limits: default_group_write_limits(),
            low_water: pacing.low_water,
            pause_ms: pacing.pause.as_millis() as u64,
            capacity: AciCapacity::default(),
        }
    }
}

impl AciConfig {
    pub fn pacing(&self) -> Pacing {
        Pacing {
            retry: self.retry,
            reads: self.read_rate,
            writes: self.write_rate,
            group_writes: self.group_write_limits.clone(),
            low_water: self.low_water,
            pause: Duration::from_millis(self.pause_ms),
        }
    }

    /// What is missing for a provider, named by its key.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("subscription_id", &self.subscription_id),
            ("resource_group", &self.resource_group),
            ("location", &self.location),
            ("node_name", &self.node_name),
        ] {
            if value.trim().is_empty() {
                return Err(format!("aci.{key} is not set"));
            }
        }
        Ok(())
    }
}

/// What the node offers to the scheduler (ACI's quotas are per subscription and region).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct AciCapacity {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
    pub ephemeral_storage_bytes: u64,
}

impl Default for AciCapacity {
    fn default() -> Self {
        const GI: u64 = 1024 * 1024 * 1024;
        // ACI's default regional quota: 100 standard cores.
        Self {
            cpu_millis: 100_000,
            memory_bytes: 400 * GI,
            pods: 100,
            ephemeral_storage_bytes: 50 * 100 * GI,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_partially_and_says_what_is_missing() {
        let yaml = "subscription_id: sub\nresource_group: rg\nlocation: westeurope\nendpoint: https://127.0.0.1:8443\ncredentials:\n  source: client_secret\n  tenant_id: t\nread_rate: {burst: 5}\n";
        let config: AciConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.read_rate.burst, 5);
        assert_eq!(config.status_interval_ms, 5000);
        assert_eq!(config.check().unwrap_err(), "aci.node_name is not set");
        assert_eq!(
            AciConfig::default().endpoint,
            "https://management.azure.com"
        );
        assert!(serde_yaml::from_str::<AciConfig>("limits: {max_cpu: x}\n").is_err());
    }
}
