//! Alibaba Cloud Elastic Container Instance (ECI): each pod becomes a container group.
//!
//! - [`sign`]: the RPC signature (HMAC-SHA1, version 1.0), shared with the mock cloud.
//! - [`params`], [`request`], [`query`], [`api`]: the wire format of OpenAPI 2018-08-08.
//! - [`client`]: signed calls with client-side rate limiting and retries.
//! - [`sizing`], [`pod`], [`mapping`]: pods to groups and group statuses to pod terms.
//! - [`exec`]: interactive exec over the WebSocket ExecContainerCommand hands out.
//! - [`EciProvider`]: the `Provider`, built with [`EciProvider::new`] from an [`EciConfig`].

pub mod api;
pub mod client;
pub mod error;
pub mod exec;
mod group_ids;
mod logs;
pub mod mapping;
pub mod metrics;
pub mod params;
pub mod pod;
mod provider;
pub mod query;
pub mod ratelimit;
pub mod request;
pub mod request_names;
pub mod sign;
pub mod sizing;
#[cfg(test)]
mod tests_cloud;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_stats;
#[cfg(test)]
pub(crate) mod tests_support;

use std::time::Duration;

use serde::Deserialize;

pub use client::{ClientConfig, EciClient, EciError, RateLimit, RetryPolicy};
pub use provider::EciProvider;

/// Everything the ECI provider needs; every field has a default but the endpoint, the
/// credentials and the node name must be set for [`EciProvider::new`] to accept it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct EciConfig {
    /// `https://eci.<region>.aliyuncs.com`, or the mock cloud's `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub region_id: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// The virtual node: tags every group, and only its groups are listed.
    pub node_name: String,
    pub zone_id: Option<String>,
    pub security_group_id: Option<String>,
    pub vswitch_id: Option<String>,
    /// vk-core lists the node's groups once per this interval.
    pub status_interval_ms: u64,
    /// A followed log is polled this often while nothing new arrives.
    pub log_poll_interval_ms: u64,
    pub request_timeout_ms: u64,
    pub retry: RetryPolicy,
    /// Creates and deletes (the service allows a burst of 100 and 20/s).
    pub write_rate: RateLimit,
    /// Every other call.
    pub read_rate: RateLimit,
    pub capacity: EciCapacity,
}

impl Default for EciConfig {
    fn default() -> Self {
        let client = ClientConfig::new("", "cn-hangzhou", "", "");
        Self {
            endpoint: String::new(),
            region_id: client.region_id,
            access_key_id: String::new(),
            access_key_secret: String::new(),
            node_name: String::new(),
            zone_id: None,
            security_group_id: None,
            vswitch_id: None,
            status_interval_ms: 5000,
            log_poll_interval_ms: 1000,
            request_timeout_ms: 30_000,
            retry: client.retry,
            write_rate: client.write_rate,
            read_rate: client.read_rate,
            capacity: EciCapacity::default(),
        }
    }
}

/// The secret stays out of logs.
impl std::fmt::Debug for EciConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EciConfig")
            .field("endpoint", &self.endpoint)
            .field("region_id", &self.region_id)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("node_name", &self.node_name)
            .field("zone_id", &self.zone_id)
            .field("security_group_id", &self.security_group_id)
            .field("vswitch_id", &self.vswitch_id)
            .field("status_interval_ms", &self.status_interval_ms)
            .field("log_poll_interval_ms", &self.log_poll_interval_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("retry", &self.retry)
            .field("write_rate", &self.write_rate)
            .field("read_rate", &self.read_rate)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl EciConfig {
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            endpoint: self.endpoint.clone(),
            region_id: self.region_id.clone(),
            access_key_id: self.access_key_id.clone(),
            access_key_secret: self.access_key_secret.clone(),
            retry: self.retry,
            write_rate: self.write_rate,
            read_rate: self.read_rate,
            timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
        }
    }
}

/// What the node offers to the scheduler (ECI's own quotas are per account, not per node).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct EciCapacity {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
    pub ephemeral_storage_bytes: u64,
}

impl Default for EciCapacity {
    fn default() -> Self {
        const TI: u64 = 1024 * 1024 * 1024 * 1024;
        Self {
            cpu_millis: 1_000_000,
            memory_bytes: 4 * TI,
            pods: 1000,
            ephemeral_storage_bytes: 30 * TI,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_partially_and_hides_the_secret() {
        let yaml = "endpoint: http://127.0.0.1:8080\naccess_key_id: id\naccess_key_secret: s3cr3t\nnode_name: vk\nwrite_rate: {burst: 10}\n";
        let config: EciConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.region_id, "cn-hangzhou");
        assert_eq!(config.write_rate.burst, 10);
        assert_eq!(
            config.write_rate.per_second,
            RateLimit::default().per_second
        );
        assert_eq!(config.status_interval_ms, 5000);
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", config.client_config()).contains("s3cr3t"));
        assert!(EciProvider::new(config).is_ok());
        assert!(EciProvider::new(EciConfig::default()).is_err());
    }
}
