//! Runs the simulator's ECS face (`vk-cloud serve --face ecs`) for a test: ECS, CloudWatch
//! Logs and STS over plain HTTP, signed with the cloud's access key, which vk reads from
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.

use fargate::{FargateConfig, FargateProvider};

use crate::cloud::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, MockCloud};

pub const REGION: &str = "us-east-1";

/// A running ECS face; killed on drop.
pub struct FargateCloud {
    pub cloud: MockCloud,
}

impl FargateCloud {
    /// Start it with `executor` (`process` or `simulate`) and extra flags.
    pub fn start(executor: &str, extra: &[&str]) -> FargateCloud {
        let mut flags = vec!["--face", "ecs", "--region-id", REGION];
        flags.extend_from_slice(extra);
        FargateCloud {
            cloud: MockCloud::start(executor, &flags),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.cloud.endpoint
    }

    /// The environment vk needs for the cloud's key.
    pub fn env() -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), ACCESS_KEY_SECRET.into()),
        ]
    }

    /// The `fargate:` section of a vk config file pointing at this cloud.
    pub fn fargate_config(&self) -> String {
        format!(
            "fargate:\n  region: {REGION}\n  cluster: default\n  subnets: [subnet-e2e]\n  ecs_endpoint: {0}\n  logs_endpoint: {0}\n  execution_role_arn: arn:aws:iam::123456789012:role/ecsTaskExecutionRole\n  status_interval_ms: 500\n  log_poll_interval_ms: 300\n  credentials:\n    source: env\n",
            self.endpoint()
        )
    }

    fn provider(&self, node: &str) -> anyhow::Result<FargateProvider> {
        let section = self.fargate_config();
        let yaml = section.trim_start_matches("fargate:\n");
        let mut config: FargateConfig = serde_yaml::from_str(&unindent(yaml))?;
        config.node_name = node.into();
        let env: std::collections::HashMap<String, String> = Self::env().into_iter().collect();
        Ok(FargateProvider::with_env(config, &|k| env.get(k).cloned())?)
    }

    /// The names of the pods whose tasks are not STOPPED for `node` (one entry per task),
    /// asked with the provider's own client.
    pub async fn tasks(&self, node: &str) -> anyhow::Result<Vec<String>> {
        let provider = self.provider(node)?;
        Ok(provider.live_tasks().await?)
    }
}

fn unindent(yaml: &str) -> String {
    yaml.lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}
