//! The answers and bodies of the operations around a group: list pages (`value`,
//! `nextLink`), container logs (`content`), exec and attach (a WebSocket URI and its
//! password), the status of an asynchronous operation (`Azure-AsyncOperation`), and the
//! location's usages and capabilities.

use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::group::ContainerGroup;

/// One page of a list; `nextLink` is the absolute URL of the next page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListPage<T> {
    pub value: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// A page of container groups.
pub type ContainerGroupList = ListPage<ContainerGroup>;

/// `GET …/containers/{c}/logs?tail=N&timestamps=true`: the lines, newline-separated; with
/// `timestamps`, each line starts with its RFC 3339 time and a space.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logs {
    pub content: String,
}

/// `POST …/containers/{c}/exec`: one program to run (ACI takes a single program, without
/// arguments), and the terminal's size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerExecRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_size: Option<TerminalSize>,
}

/// A terminal's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

/// The answer of exec and attach: connect to `webSocketUri`, send `password` as the first text
/// message; the socket is then the terminal, both ways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerExecResponse {
    pub web_socket_uri: String,
    pub password: String,
}

/// The answer of attach (the same shape as exec's).
pub type ContainerAttachResponse = ContainerExecResponse;

/// The status of an asynchronous operation, at the `Azure-AsyncOperation` URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AsyncOperation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// See [`operation_status`].
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// Values of [`AsyncOperation::status`].
pub mod operation_status {
    pub const IN_PROGRESS: &str = "InProgress";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const CANCELED: &str = "Canceled";
}

/// One usage of a location's quota (`…/locations/{loc}/usages`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `Count`.
    pub unit: String,
    pub current_value: i64,
    pub limit: i64,
    pub name: UsageName,
}

/// A usage's name: `ContainerGroups`, `StandardCores`, `StandardSpotCores`…
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageName {
    pub value: String,
    pub localized_value: String,
}

/// The usages answer (no paging).
pub type UsageList = ListPage<Usage>;

/// What a location offers for one OS and resource type (`…/locations/{loc}/capabilities`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Capability {
    pub resource_type: String,
    pub os_type: String,
    pub location: String,
    pub ip_address_type: String,
    /// `K80`, `P100`, `V100`, or `None`.
    pub gpu: String,
    pub capabilities: CapabilityLimits,
}

/// The largest container group offered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CapabilityLimits {
    #[serde(rename = "maxMemoryInGB")]
    pub max_memory_in_gb: f64,
    pub max_cpu: f64,
    pub max_gpu_count: f64,
}

/// The capabilities answer.
pub type CapabilityList = ListPage<Capability>;
