//! ECS task definitions on the wire: RegisterTaskDefinition, DeregisterTaskDefinition,
//! DescribeTaskDefinition and ListTaskDefinitions, with the container definitions they carry.
//! Task-level `cpu` and `memory` are strings (CPU units and MiB, e.g. `"256"`, `"512"`);
//! container-level ones are integers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{KeyValuePair, Tag};

/// `logConfiguration.logDriver` for CloudWatch Logs.
pub const AWSLOGS: &str = "awslogs";
/// The awslogs driver's options.
pub const AWSLOGS_GROUP: &str = "awslogs-group";
pub const AWSLOGS_REGION: &str = "awslogs-region";
pub const AWSLOGS_STREAM_PREFIX: &str = "awslogs-stream-prefix";
pub const AWSLOGS_CREATE_GROUP: &str = "awslogs-create-group";

/// Where a container's output goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    #[serde(default)]
    pub log_driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `dependsOn.condition` values.
pub mod dependency_condition {
    /// The dependency has started.
    pub const START: &str = "START";
    /// The dependency ran to its end, whatever its exit code (non-essential containers only).
    pub const COMPLETE: &str = "COMPLETE";
    /// The dependency ran to its end with exit code 0 (non-essential containers only).
    pub const SUCCESS: &str = "SUCCESS";
    /// The dependency passed its health check.
    pub const HEALTHY: &str = "HEALTHY";
    pub const ALL: [&str; 4] = [START, COMPLETE, SUCCESS, HEALTHY];
}

/// A container another one waits for before it starts (`dependsOn`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    #[serde(default)]
    pub container_name: String,
    /// One of [`dependency_condition`].
    #[serde(default)]
    pub condition: String,
}

/// The task's ephemeral storage (Fargate: 21 to 200 GiB; 20 GiB when absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EphemeralStorage {
    #[serde(rename = "sizeInGiB", default)]
    pub size_in_gib: i32,
}

/// Fargate's ephemeral storage bounds, GiB (the default when none is asked for, the most).
pub const DEFAULT_EPHEMERAL_GIB: i32 = 20;
pub const MAX_EPHEMERAL_GIB: i32 = 200;

/// A task volume (Fargate: bind mounts in the task's ephemeral storage).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// CPU units (1024 per vCPU); 0 or absent: a share of the task's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    /// Hard limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i32>,
    /// Absent: `true`. When an essential container stops, the task stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// Seconds between SIGTERM and SIGKILL when the task stops (Fargate: at most 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_terminal: Option<bool>,
    /// Containers to wait for before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
}

impl ContainerDefinition {
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterTaskDefinitionRequest {
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub container_definitions: Vec<ContainerDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Fargate: `awsvpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_compatibilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A registered revision of a family.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    #[serde(default)]
    pub task_definition_arn: String,
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub revision: i32,
    /// `ACTIVE`, `INACTIVE` (deregistered) or `DELETE_IN_PROGRESS`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub container_definitions: Vec<ContainerDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_compatibilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compatibilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionResponse {
    #[serde(default)]
    pub task_definition: Option<TaskDefinition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// DeregisterTaskDefinition and DescribeTaskDefinition: `family:revision`, `family` (the
/// latest ACTIVE revision; Describe only) or the ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionRequest {
    #[serde(default)]
    pub task_definition: String,
    /// `["TAGS"]` to have the tags in the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_prefix: Option<String>,
    /// `ACTIVE` (the default), `INACTIVE` or `DELETE_IN_PROGRESS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `ASC` (the default) or `DESC`, by family then revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// 1 to 100; absent: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsResponse {
    #[serde(default)]
    pub task_definition_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_round_trips_and_tolerates_unknown_fields() {
        let json = r#"{"taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            "family": "web", "revision": 3, "status": "ACTIVE", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "app", "image": "busybox", "essential": false,
              "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
              "healthCheck": {"command": ["true"]}}],
            "registeredAt": 1700000000.5, "runtimePlatform": {"cpuArchitecture": "X86_64"}},
            "tags": [{"key": "a", "value": "b"}]}"#;
        let answer: TaskDefinitionResponse = serde_json::from_str(json).unwrap();
        let def = answer.task_definition.unwrap();
        assert_eq!(def.revision, 3);
        assert!(!def.container_definitions[0].is_essential());
        assert_eq!(
            def.container_definitions[0]
                .log_configuration
                .as_ref()
                .unwrap()
                .options[AWSLOGS_GROUP],
            "g"
        );
        let again = serde_json::to_value(&def).unwrap();
        let storage = serde_json::to_value(EphemeralStorage { size_in_gib: 30 }).unwrap();
        assert_eq!(storage, serde_json::json!({"sizeInGiB": 30}));
        let dep: ContainerDefinition = serde_json::from_str(
            r#"{"name": "app", "dependsOn": [{"containerName": "files", "condition": "SUCCESS"}]}"#,
        )
        .unwrap();
        assert_eq!(dep.depends_on[0].condition, dependency_condition::SUCCESS);
        assert_eq!(again["containerDefinitions"][0]["name"], "app");
        assert!(again.get("deregisteredAt").is_none());
    }
}
