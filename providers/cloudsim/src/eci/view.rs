//! The simulator's own shapes of the `DescribeContainerGroups` and
//! `DescribeContainerGroupStatus` answers, field for field as ECI's API reference and its
//! SDK's models name them (`VSwitchId`, `InitContainers[].Command`, the lower-case keys of
//! `PodStatus.Conditions`). Written here rather than shared with the eci client, so that a
//! name the client gets wrong is caught by the tests instead of agreed on.

use serde::Serialize;

use eci::wire::api::{
    ContainerState, DnsConfig, EnvironmentVar, Event, HostAlias, Port, StateRunning, StateWaiting,
    Tag,
};

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeGroupsAnswer {
    pub request_id: String,
    pub next_token: String,
    pub total_count: u64,
    pub container_groups: Vec<GroupView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupView {
    pub container_group_id: String,
    pub container_group_name: String,
    pub region_id: String,
    pub zone_id: String,
    pub vpc_id: String,
    #[serde(rename = "VSwitchId")]
    pub vswitch_id: String,
    pub security_group_id: String,
    pub resource_group_id: String,
    pub eni_instance_id: String,
    pub intranet_ip: String,
    /// Only with an EIP (`AutoCreateEip`, `EipInstanceId`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub internet_ip: String,
    /// Only with `Ipv6AddressCount`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    pub instance_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub compute_category: String,
    pub cpu: f64,
    pub memory: f64,
    pub restart_policy: String,
    pub status: String,
    pub creation_time: String,
    pub succeeded_time: String,
    pub failed_time: String,
    pub expired_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ram_role_name: Option<String>,
    pub spot_strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_price_limit: Option<f64>,
    pub tags: Vec<Tag>,
    /// Left out when the caller asked `WithEvent=false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    pub containers: Vec<ContainerView>,
    pub init_containers: Vec<InitContainerView>,
    pub volumes: Vec<VolumeView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    pub host_aliases: Vec<HostAlias>,
    /// GiB added to the instance's disk (`EphemeralStorage`), when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<u32>,
    /// The group's sysctls (`SecurityContext.Sysctl.N`), when any were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eci_security_context: Option<EciSecurityContextView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EciSecurityContextView {
    pub sysctls: Vec<SysctlView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SysctlView {
    pub name: String,
    pub value: String,
}

/// A container's `SecurityContext` as ECI describes it (what it can express: the user, a
/// read-only root and the added capabilities).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityContextView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    pub read_only_root_filesystem: bool,
    pub capability: CapabilityView,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CapabilityView {
    pub adds: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeMountView {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
    pub sub_path: String,
    /// Kubernetes' default; CreateContainerGroup's `MountPropagation` is not modelled.
    pub mount_propagation: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpGetView {
    pub path: String,
    pub port: u16,
    pub scheme: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TcpSocketView {
    pub port: u16,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeView {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub execs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketView>,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// What ECI describes alike for app and init containers.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCommon {
    pub name: String,
    pub image: String,
    pub cpu: f64,
    pub memory: f64,
    pub gpu: u32,
    pub working_dir: String,
    pub image_pull_policy: String,
    pub args: Vec<String>,
    pub ready: bool,
    pub restart_count: i32,
    pub current_state: ContainerState,
    pub previous_state: ContainerState,
    pub environment_vars: Vec<EnvironmentVar>,
    pub volume_mounts: Vec<VolumeMountView>,
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContextView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerView {
    #[serde(flatten)]
    pub common: ContainerCommon,
    pub commands: Vec<String>,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<ProbeView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<ProbeView>,
}

/// An init container as ECI describes one: its command is `Command`, and it has no probes
/// or terminal settings.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InitContainerView {
    #[serde(flatten)]
    pub common: ContainerCommon,
    pub command: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFileToPathView {
    pub path: String,
    pub content: String,
}

/// A volume, its details flattened into prefixed names as ECI answers them.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeView {
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir_volume_medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir_volume_size_limit: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_file_volume_config_file_to_paths: Vec<ConfigFileToPathView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStatusAnswer {
    pub request_id: String,
    pub next_token: String,
    pub total_count: u64,
    pub data: Vec<StatusView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatusView {
    pub container_group_id: String,
    pub name: String,
    pub namespace: String,
    /// The pod's UID (the `vk-serverless.io/pod-uid` tag), as ECI reports the pod's.
    #[serde(rename = "uuid")]
    pub uuid: String,
    pub annotations: String,
    pub status: String,
    pub pod_status: PodStatusView,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PodStatusView {
    pub phase: String,
    pub pod_ip: String,
    pub pod_ips: Vec<PodIpView>,
    /// Every instance is its own host: the host's address is the pod's.
    pub host_ip: String,
    pub qos_class: String,
    pub start_time: String,
    pub conditions: Vec<ConditionView>,
    pub container_statuses: Vec<ContainerStatusView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PodIpView {
    pub ip: String,
}

/// Kubernetes' pod condition; the service spells three of its keys in lower case.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "status")]
    pub status: String,
    #[serde(rename = "lastTransitionTime")]
    pub last_transition_time: String,
    #[serde(rename = "Reason")]
    pub reason: String,
    #[serde(rename = "Message")]
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatusView {
    pub name: String,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub ready: bool,
    pub started: bool,
    pub restart_count: i32,
    pub state: PodStateView,
    pub last_state: PodStateView,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PodStateView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<StateWaiting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<StateRunning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<TerminatedView>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerminatedView {
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub reason: String,
    pub message: String,
    pub started_at: String,
    pub finished_at: String,
}
