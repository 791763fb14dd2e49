//! Alibaba Cloud Elastic Container Instance (ECI): each pod becomes a container group.
//!
//! - [`sign_acs3`], [`sign`]: request signatures, ACS3-HMAC-SHA256 (default) and the RPC
//!   signature 1.0 (HMAC-SHA1); the mock cloud checks them with code of its own.
//! - [`params`], [`request`], [`query`], [`api`]: the wire format of OpenAPI 2018-08-08.
//! - [`client`]: signed calls with client-side rate limiting and retries.
//! - [`credentials`], [`credentials_chain`], [`credentials_fetch`]: the keys calls are signed
//!   with: static, RRSA (STS AssumeRoleWithOIDC), the ECS RAM role, a credentials file.
//! - [`sizing`], [`pod`], [`mapping`]: pods to groups and group statuses to pod terms.
//! - [`exec`]: interactive exec over the WebSocket ExecContainerCommand hands out.
//! - [`EciProvider`]: the `Provider`, built with [`EciProvider::new`] from an [`EciConfig`].

pub mod annotations;
pub mod client;
pub mod credentials;
pub mod credentials_chain;
pub mod credentials_fetch;
pub mod error;
pub mod exec;
mod group_ids;
pub mod image_cache;
mod logs;
pub mod mapping;
pub mod metrics;
pub mod network;
pub mod pod;
pub mod pod_runtime;
mod provider;
pub mod ratelimit;
pub mod sizing;
#[cfg(test)]
mod tests_cloud;
#[cfg(test)]
mod tests_credentials;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_fuzz_answers;
#[cfg(test)]
mod tests_names;
#[cfg(test)]
mod tests_probes;
#[cfg(test)]
mod tests_process;
#[cfg(test)]
mod tests_security;
#[cfg(test)]
mod tests_signature;
#[cfg(test)]
mod tests_stats;
#[cfg(test)]
pub(crate) mod tests_support;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use client::{ClientConfig, EciClient, EciError, RateLimit, RetryPolicy, SignatureMethod};
pub use provider::EciProvider;

/// Everything the ECI provider needs; every field has a default but the endpoint and the
/// node name must be set for [`EciProvider::new`] to accept it. Without `access_key_id` the
/// keys come from the chain of [`credentials_chain`].
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct EciConfig {
    /// `https://eci.<region>.aliyuncs.com`, or the mock cloud's `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub region_id: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// With `access_key_id`: the STS token of temporary keys.
    pub security_token: String,
    /// RRSA: STS's address (default `https://sts.aliyuncs.com`, or by `ALIBABA_CLOUD_STS_REGION`).
    pub sts_endpoint: Option<String>,
    /// RRSA: the lifetime asked of STS (900 s up to the role's maximum).
    pub sts_duration_secs: u64,
    /// RRSA: the role session name (default `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else `vk-<node>`).
    pub role_session_name: Option<String>,
    /// The ECS instance metadata service (default `http://100.100.100.200`).
    pub metadata_endpoint: Option<String>,
    /// The ECS RAM role (default `ALIBABA_CLOUD_ECS_METADATA`, else the instance's role).
    pub ecs_ram_role: Option<String>,
    /// The credentials file (default `ALIBABA_CLOUD_CREDENTIALS_FILE`, else
    /// `~/.alibabacloud/credentials` when it exists).
    pub credentials_file: Option<PathBuf>,
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
    /// How calls are signed: `acs3` (default) or `hmac-sha1`.
    pub signature: SignatureMethod,
    pub capacity: EciCapacity,
    /// VPC, ECS and Quota Center, for `vk doctor`'s network and quota checks.
    pub services: network::AccountServices,
    /// Image caches: matching on create, the `ImageCache` controller ([`annotations`]).
    pub image_cache: annotations::ImageCacheConfig,
}

impl Default for EciConfig {
    fn default() -> Self {
        let client = ClientConfig::new("", "cn-hangzhou", "", "");
        Self {
            endpoint: String::new(),
            region_id: client.region_id,
            access_key_id: String::new(),
            access_key_secret: String::new(),
            security_token: String::new(),
            sts_endpoint: None,
            sts_duration_secs: 3600,
            role_session_name: None,
            metadata_endpoint: None,
            ecs_ram_role: None,
            credentials_file: None,
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
            signature: client.signature,
            capacity: EciCapacity::default(),
            services: Default::default(),
            image_cache: Default::default(),
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
            .field("security_token", &"<redacted>")
            .field("sts_endpoint", &self.sts_endpoint)
            .field("sts_duration_secs", &self.sts_duration_secs)
            .field("role_session_name", &self.role_session_name)
            .field("metadata_endpoint", &self.metadata_endpoint)
            .field("ecs_ram_role", &self.ecs_ram_role)
            .field("credentials_file", &self.credentials_file)
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
            .field("signature", &self.signature)
            .field("capacity", &self.capacity)
            .field("services", &self.services)
            .field("image_cache", &self.image_cache)
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
            credentials: None,
            retry: self.retry,
            write_rate: self.write_rate,
            read_rate: self.read_rate,
            timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
            metrics: Default::default(),
            signature: self.signature,
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
    fn signature_method_is_acs3_unless_hmac_sha1_is_asked() {
        let config: EciConfig = serde_yaml::from_str("node_name: vk\n").unwrap();
        assert_eq!(config.client_config().signature, SignatureMethod::Acs3);
        let config: EciConfig = serde_yaml::from_str("signature: hmac-sha1\n").unwrap();
        assert_eq!(config.client_config().signature, SignatureMethod::HmacSha1);
        let config: EciConfig = serde_yaml::from_str("signature: acs3\n").unwrap();
        assert_eq!(config.signature, SignatureMethod::Acs3);
        assert!(serde_yaml::from_str::<EciConfig>("signature: sha256\n").is_err());
    }

    #[test]
    fn config_parses_partially_and_hides_the_secret() {
        let yaml = "endpoint: http://127.0.0.1:8080\naccess_key_id: id\naccess_key_secret: s3cr3t\nsecurity_token: t0k3n\nsts_endpoint: http://127.0.0.1:1\nnode_name: vk\nwrite_rate: {burst: 10}\n";
        let config: EciConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.region_id, "cn-hangzhou");
        assert_eq!(config.write_rate.burst, 10);
        assert_eq!(
            config.write_rate.per_second,
            RateLimit::default().per_second
        );
        assert_eq!(config.status_interval_ms, 5000);
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert!(!format!("{config:?}").contains("t0k3n"));
        assert_eq!(config.sts_endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(config.sts_duration_secs, 3600);
        assert!(!format!("{:?}", config.client_config()).contains("s3cr3t"));
        assert!(EciProvider::new(config).is_ok());
        assert!(EciProvider::new(EciConfig::default()).is_err());
    }
}
