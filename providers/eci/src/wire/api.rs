//! The JSON side of ECI's OpenAPI (version 2018-08-08): response bodies and the error body,
//! field for field as the service names them (PascalCase). Client and mock cloud share these
//! types, so the wire format has one definition; every field has a default because the
//! service omits empty ones.

use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "2018-08-08";

/// Group statuses (`ContainerGroup.Status`).
pub mod group_status {
    pub const SCHEDULING: &str = "Scheduling";
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const RESTARTING: &str = "Restarting";
    pub const UPDATING: &str = "Updating";
    pub const TERMINATING: &str = "Terminating";
    pub const SCHEDULE_FAILED: &str = "ScheduleFailed";
    pub const EXPIRED: &str = "Expired";
}

/// Container states (`Container.CurrentState.State`).
pub mod container_state {
    pub const WAITING: &str = "Waiting";
    pub const RUNNING: &str = "Running";
    pub const TERMINATED: &str = "Terminated";
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Event {
    pub count: u32,
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub message: String,
    pub first_timestamp: String,
    pub last_timestamp: String,
}

/// `CurrentState` / `PreviousState` of a container. Times are RFC 3339 UTC, empty when unset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub state: String,
    pub detail_status: String,
    pub reason: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub start_time: String,
    pub finish_time: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnvironmentVar {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
    pub sub_path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Port {
    pub port: u16,
    pub protocol: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub cpu: f64,
    pub memory: f64,
    pub restart_count: i32,
    pub working_dir: String,
    pub image_pull_policy: String,
    pub commands: Vec<String>,
    pub args: Vec<String>,
    pub ready: bool,
    pub current_state: ContainerState,
    pub previous_state: ContainerState,
    pub environment_vars: Vec<EnvironmentVar>,
    pub volume_mounts: Vec<VolumeMount>,
    pub ports: Vec<Port>,
    /// As created (`RunAsUser`, `ReadOnlyRootFilesystem`, `Capability.Adds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<ContainerSecurityContext>,
}

/// A described container's `SecurityContext`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSecurityContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    pub read_only_root_filesystem: bool,
    pub capability: Capability,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Capability {
    pub adds: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerGroup {
    pub container_group_id: String,
    pub container_group_name: String,
    pub region_id: String,
    pub zone_id: String,
    #[serde(rename = "VSwitchId")]
    pub vswitch_id: String,
    pub security_group_id: String,
    pub cpu: f64,
    pub memory: f64,
    pub restart_policy: String,
    pub intranet_ip: String,
    pub status: String,
    pub creation_time: String,
    pub succeeded_time: String,
    pub failed_time: String,
    pub expired_time: String,
    pub tags: Vec<Tag>,
    pub events: Vec<Event>,
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
    pub volumes: Vec<Volume>,
    /// The resolver settings the group was created with (`DnsConfig.*`).
    pub dns_config: Option<DnsConfig>,
    pub host_aliases: Vec<HostAlias>,
    /// The specification billed: `2.0-4.0Gi` for a vCPU/memory size, or an ECS type.
    pub instance_type: String,
    /// `NoSpot`, `SpotWithPriceLimit` or `SpotAsPriceGo`.
    pub spot_strategy: String,
    pub spot_price_limit: f64,
    /// GiB added to the free ephemeral storage.
    pub ephemeral_storage: u32,
}

/// `DnsConfig` of a described group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DnsConfig {
    pub name_servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<DnsConfigOption>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DnsConfigOption {
    pub name: String,
    pub value: Option<String>,
}

/// `HostAliases` of a described group: one `/etc/hosts` line each.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostAlias {
    pub ip: String,
    pub hostnames: Vec<String>,
}

impl ContainerGroup {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateContainerGroupResponse {
    pub request_id: String,
    pub container_group_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeContainerGroupsResponse {
    pub request_id: String,
    pub next_token: String,
    pub total_count: u64,
    pub container_groups: Vec<ContainerGroup>,
}

/// `DescribeContainerGroupStatus`: the statuses of many groups in Kubernetes terms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeContainerGroupStatusResponse {
    pub request_id: String,
    pub next_token: String,
    pub total_count: u64,
    pub data: Vec<GroupStatusData>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GroupStatusData {
    pub container_group_id: String,
    pub name: String,
    pub namespace: String,
    pub annotations: String,
    pub status: String,
    pub pod_status: PodStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PodStatus {
    pub phase: String,
    pub pod_ip: String,
    pub start_time: String,
    pub container_statuses: Vec<PodContainerStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PodContainerStatus {
    pub name: String,
    pub image: String,
    pub ready: bool,
    pub started: bool,
    pub restart_count: i32,
    pub state: PodContainerState,
    pub last_state: PodContainerState,
}

/// One of the three is set, as in Kubernetes. `StartedAtstartedAt` is the service's spelling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PodContainerState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<StateWaiting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<StateRunning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<StateTerminated>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StateWaiting {
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateRunning {
    #[serde(rename = "StartedAtstartedAt")]
    pub started_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StateTerminated {
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub reason: String,
    pub message: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeContainerLogResponse {
    pub request_id: String,
    pub container_name: String,
    pub content: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecContainerCommandResponse {
    pub request_id: String,
    pub web_socket_uri: String,
    pub http_url: String,
    pub sync_response: String,
}

/// Image cache statuses (`ImageCache.Status`), as ECI names them.
pub mod image_cache_status {
    pub const PREPARING: &str = "Preparing";
    pub const CREATING: &str = "Creating";
    pub const READY: &str = "Ready";
    pub const FAILED: &str = "Failed";
    pub const UPDATING: &str = "Updating";
    pub const UPDATE_FAILED: &str = "UpdateFailed";
}

/// Event reasons ECI records on a group about its images (beside the kubelet's `Pulling` and
/// `Pulled`).
pub mod image_event {
    pub const PULLING: &str = "Pulling";
    pub const PULLED: &str = "Pulled";
    /// The group was created from an image cache's snapshot; its message names the cache.
    pub const HIT_IMAGE_CACHE: &str = "SuccessfulHitImageCache";
    /// Automatic matching found no cache for the group's images.
    pub const MISSED_IMAGE_CACHE: &str = "ImageCacheMissed";
    /// A cache was made for the group's images after a miss (`AutoCreateImageCache`).
    pub const AUTO_CREATED_IMAGE_CACHE: &str = "ImageCacheAutoCreated";
}

/// One image cache as `DescribeImageCaches` reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageCache {
    pub image_cache_id: String,
    pub image_cache_name: String,
    pub region_id: String,
    /// The disk snapshot the cache is kept as.
    pub snapshot_id: String,
    pub images: Vec<String>,
    /// One of [`image_cache_status`].
    pub status: String,
    /// `"0%"` to `"100%"`.
    pub progress: String,
    /// The temporary group that pulls the images while the cache is made.
    pub container_group_id: String,
    /// GiB.
    pub image_cache_size: u32,
    /// Absent (0) when the cache never expires.
    pub retention_days: u32,
    pub creation_time: String,
    pub expire_date_time: String,
    pub last_matched_time: String,
    pub events: Vec<Event>,
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeImageCachesResponse {
    pub request_id: String,
    pub next_token: String,
    pub total_count: u64,
    pub image_caches: Vec<ImageCache>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateImageCacheResponse {
    pub request_id: String,
    pub image_cache_id: String,
    pub container_group_id: String,
}

/// Answers that carry nothing but the request id (delete, restart, update).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestIdResponse {
    pub request_id: String,
}

/// The body of every error answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ErrorResponse {
    pub request_id: String,
    pub host_id: String,
    pub code: String,
    pub message: String,
    pub recommend: String,
}

/// Error codes the service answers with, and the HTTP status it sends them with.
pub mod errors {
    /// (code, HTTP status)
    pub type Code = (&'static str, u16);
    pub const MISSING_PARAMETER: Code = ("MissingParameter", 400);
    pub const INVALID_PARAMETER: Code = ("InvalidParameter", 400);
    pub const INVALID_ACTION: Code = ("InvalidAction.NotFound", 404);
    pub const INVALID_VERSION: Code = ("InvalidVersion", 400);
    pub const INVALID_ACCESS_KEY_ID: Code = ("InvalidAccessKeyId.NotFound", 404);
    /// Temporary (STS) keys: the token is missing, not the key's, or past its Expiration.
    pub const MISSING_SECURITY_TOKEN: Code = ("MissingSecurityToken", 400);
    pub const SECURITY_TOKEN_MISMATCH: Code = ("InvalidSecurityToken.MismatchWithAccessKey", 400);
    pub const SECURITY_TOKEN_EXPIRED: Code = ("InvalidSecurityToken.Expired", 400);
    pub const SIGNATURE_DOES_NOT_MATCH: Code = ("SignatureDoesNotMatch", 400);
    /// ACS3: the `Authorization` header lacks a part, or a header that must be signed is not.
    pub const INCOMPLETE_SIGNATURE: Code = ("IncompleteSignature", 400);
    pub const SIGNATURE_NONCE_USED: Code = ("SignatureNonceUsed", 400);
    pub const INVALID_TIMESTAMP_FORMAT: Code = ("InvalidTimeStamp.Format", 400);
    pub const INVALID_TIMESTAMP_EXPIRED: Code = ("InvalidTimeStamp.Expired", 400);
    pub const UNSUPPORTED_SIGNATURE_METHOD: Code = ("InvalidSignatureMethod", 400);
    pub const THROTTLING: Code = ("Throttling.User", 400);
    pub const INCORRECT_STATUS: Code = ("IncorrectStatus", 400);
    pub const IDEMPOTENT_MISMATCH: Code = ("IdempotentParameterMismatch", 400);
    pub const GROUP_NOT_FOUND: Code = ("InvalidContainerGroup.NotFound", 404);
    pub const IMAGE_CACHE_NOT_FOUND: Code = ("InvalidImageCache.NotFound", 404);
    /// The images do not fit the cache's `ImageCacheSize`.
    pub const IMAGE_CACHE_SIZE_EXCEEDED: Code = ("ImageCacheSize.Exceeded", 400);
    pub const IMAGE_CACHE_QUOTA_EXCEEDED: Code = ("QuotaExceeded.ImageCache", 400);
    pub const CONTAINER_NOT_FOUND: Code = ("InvalidContainer.NotFound", 404);
    pub const INTERNAL_ERROR: Code = ("InternalError", 500);
    pub const SERVICE_UNAVAILABLE: Code = ("ServiceUnavailable", 503);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_round_trips_with_the_service_field_names() {
        let json = r#"{
            "ContainerGroupId": "eci-1", "Status": "Running", "IntranetIp": "10.0.0.2",
            "Tags": [{"Key": "k", "Value": "v"}],
            "Containers": [{"Name": "c", "RestartCount": 2,
                "CurrentState": {"State": "Terminated", "ExitCode": 0, "DetailStatus": "Completed"},
                "PreviousState": {"State": "Terminated", "ExitCode": 3}}],
            "Events": [{"Type": "Warning", "Reason": "BackOff", "Count": 1}],
            "Unknown": true
        }"#;
        let group: ContainerGroup = serde_json::from_str(json).unwrap();
        assert_eq!(group.tag("k"), Some("v"));
        assert_eq!(group.containers[0].current_state.exit_code, Some(0));
        assert_eq!(group.containers[0].previous_state.exit_code, Some(3));
        assert_eq!(group.events[0].kind, "Warning");
        let back = serde_json::to_value(&group).unwrap();
        assert_eq!(back["Containers"][0]["CurrentState"]["ExitCode"], 0);
        assert_eq!(back["Events"][0]["Type"], "Warning");
    }

    #[test]
    fn running_state_uses_the_services_spelling() {
        let s = PodContainerState {
            running: Some(StateRunning {
                started_at: "2021-05-23T20:49:31Z".into(),
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["Running"]["StartedAtstartedAt"],
            "2021-05-23T20:49:31Z"
        );
        assert!(json.get("Waiting").is_none());
    }
}
