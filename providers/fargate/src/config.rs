//! `FargateConfig`: the `fargate:` section of vk's config file. Unknown keys are refused (a
//! misspelt key would otherwise be a silent default). The region, the subnets and the node
//! name must be set for [`crate::FargateProvider::new`] to accept it.

use std::path::PathBuf;

use serde::Deserialize;
use vk_core::provider::pacing::{RateLimit, RetryPolicy};

use crate::credentials::CredentialsConfig;

/// Everything the Fargate provider needs. No secret lives here (see [`CredentialsConfig`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct FargateConfig {
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// The ECS cluster (name or ARN).
    pub cluster: String,
    /// `awsvpc`: the subnets tasks get their network interface in (1 to 16).
    pub subnets: Vec<String>,
    /// `awsvpc`: at most 5 security groups; none: the VPC's default one.
    pub security_groups: Vec<String>,
    /// Give tasks a public address (needed to pull images without a NAT gateway or endpoints).
    pub assign_public_ip: bool,
    /// ECS's endpoint; default `https://ecs.<region>.amazonaws.com`.
    pub ecs_endpoint: Option<String>,
    /// CloudWatch Logs' endpoint; default `https://logs.<region>.amazonaws.com`.
    pub logs_endpoint: Option<String>,
    /// A PEM file of CA certificates trusted besides the system's.
    pub extra_ca_file: Option<PathBuf>,
    pub credentials: CredentialsConfig,
    /// The role ECS pulls images and writes logs with (required by the awslogs driver).
    pub execution_role_arn: Option<String>,
    /// The role the containers' own AWS calls (and exec's Session Manager agent) use.
    pub task_role_arn: Option<String>,
    /// `LATEST` or a version (`1.4.0`); none: ECS's default.
    pub platform_version: Option<String>,
    /// The CloudWatch Logs group of the awslogs driver.
    pub log_group: String,
    /// Streams are `<prefix>/<container>/<task id>`.
    pub log_stream_prefix: String,
    /// Let the awslogs driver create the group (`awslogs-create-group`; the execution role
    /// then needs `logs:CreateLogGroup`).
    pub create_log_group: bool,
    /// The image of the step that writes configMaps, secrets and tokens into the task (needs
    /// `/bin/sh`, `mkdir`, `chmod` and `base64 -d`).
    pub files_image: String,
    /// The virtual node: tags every task, and only its tasks are listed.
    pub node_name: String,
    /// vk-core lists the node's tasks once per this interval.
    pub status_interval_ms: u64,
    /// A followed log is polled this often while nothing new arrives.
    pub log_poll_interval_ms: u64,
    pub request_timeout_ms: u64,
    /// How long exec waits for the Session Manager channel to be ready.
    pub exec_ready_timeout_ms: u64,
    pub retry: RetryPolicy,
    /// RunTask calls (Fargate's published RunTask rate: 20 a second, burst 20; paced at 18,
    /// burst 10, so requests that reach ECS bunched up still fit).
    pub run_task_rate: RateLimit,
    /// Tasks launched (Fargate's published launch bucket: 100, refilled at 20 a second; paced
    /// at 18).
    pub task_launch_rate: RateLimit,
    /// Every other ECS call.
    pub ecs_rate: RateLimit,
    /// CloudWatch Logs calls (GetLogEvents' published 25 a second, kept below).
    pub logs_rate: RateLimit,
    pub capacity: FargateCapacity,
}

impl Default for FargateConfig {
    fn default() -> Self {
        Self {
            region: String::new(),
            cluster: "default".into(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            ecs_endpoint: None,
            logs_endpoint: None,
            extra_ca_file: None,
            credentials: CredentialsConfig::default(),
            execution_role_arn: None,
            task_role_arn: None,
            platform_version: None,
            log_group: "/vk-serverless/fargate".into(),
            log_stream_prefix: "vk".into(),
            create_log_group: true,
            files_image: "public.ecr.aws/docker/library/busybox:stable".into(),
            node_name: String::new(),
            status_interval_ms: 5000,
            log_poll_interval_ms: 1000,
            request_timeout_ms: 30_000,
            exec_ready_timeout_ms: 15_000,
            retry: RetryPolicy::default(),
            // A tenth below the published refill rates: two clocks never quite agree.
            run_task_rate: RateLimit {
                burst: 10,
                per_second: 18.0,
            },
            task_launch_rate: RateLimit {
                burst: 100,
                per_second: 18.0,
            },
            ecs_rate: RateLimit {
                burst: 50,
                per_second: 20.0,
            },
            logs_rate: RateLimit {
                burst: 20,
                per_second: 20.0,
            },
            capacity: FargateCapacity::default(),
        }
    }
}

impl FargateConfig {
    pub fn ecs_url(&self) -> String {
        self.ecs_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://ecs.{}.amazonaws.com", self.region))
    }

    pub fn logs_url(&self) -> String {
        self.logs_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://logs.{}.amazonaws.com", self.region))
    }

    /// What is missing or wrong, named by its key.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("region", &self.region),
            ("cluster", &self.cluster),
            ("node_name", &self.node_name),
            ("log_group", &self.log_group),
            ("log_stream_prefix", &self.log_stream_prefix),
            ("files_image", &self.files_image),
        ] {
            if value.trim().is_empty() {
                return Err(format!("fargate.{key} is not set"));
            }
        }
        if self.subnets.is_empty() || self.subnets.len() > 16 {
            return Err("fargate.subnets: name 1 to 16 subnets (awsvpc)".into());
        }
        if self.security_groups.len() > 5 {
            return Err("fargate.security_groups: at most 5".into());
        }
        for (key, url) in [
            ("ecs_endpoint", self.ecs_url()),
            ("logs_endpoint", self.logs_url()),
        ] {
            let uri: hyper::Uri = url
                .parse()
                .map_err(|e| format!("fargate.{key} {url:?}: {e}"))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(format!("fargate.{key} {url:?} needs http(s) and a host"));
            }
        }
        Ok(())
    }
}

/// What the node offers to the scheduler (Fargate's quotas are per account and region:
/// vCPUs of running tasks).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct FargateCapacity {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
    pub ephemeral_storage_bytes: u64,
}

impl Default for FargateCapacity {
    fn default() -> Self {
        const GI: u64 = 1024 * 1024 * 1024;
        Self {
            cpu_millis: 256_000,
            memory_bytes: 1024 * GI,
            pods: 500,
            ephemeral_storage_bytes: 500 * 20 * GI,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_parses_refuses_unknown_keys_and_says_what_is_missing() {
        let yaml = "region: eu-west-1\nsubnets: [subnet-1]\ncredentials:\n  source: irsa\nrun_task_rate: {burst: 5}\n";
        let config: FargateConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.run_task_rate.burst, 5);
        assert_eq!(config.ecs_url(), "https://ecs.eu-west-1.amazonaws.com");
        assert_eq!(config.logs_url(), "https://logs.eu-west-1.amazonaws.com");
        assert_eq!(config.check().unwrap_err(), "fargate.node_name is not set");
        let err = serde_yaml::from_str::<FargateConfig>("subnet: [a]\n").unwrap_err();
        assert!(err.to_string().contains("subnet"), "{err}");
        let no_subnets = FargateConfig {
            region: "r".into(),
            node_name: "n".into(),
            ..Default::default()
        };
        assert!(no_subnets.check().unwrap_err().contains("subnets"));
        let bad = FargateConfig {
            subnets: vec!["s".into()],
            ecs_endpoint: Some("ftp://x".into()),
            ..no_subnets
        };
        assert!(bad.check().unwrap_err().contains("ecs_endpoint"));
    }
}
