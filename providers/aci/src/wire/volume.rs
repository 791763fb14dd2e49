//! Volumes of a container group and their mounts: `emptyDir` (shared by the group's
//! containers), `secret` (files whose contents are base64 on the wire), `azureFile` and
//! `gitRepo`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One volume of a group (`properties.volumes[]`): exactly one of the kinds is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Volume {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_file: Option<AzureFileVolume>,
    /// An empty directory; on the wire `{}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDir>,
    /// File name → base64 of its contents. Write-only: a GET does not return the values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_repo: Option<GitRepoVolume>,
}

/// `emptyDir: {}` (no fields today; unknown ones are ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmptyDir {}

/// An Azure Files share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureFileVolume {
    pub share_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    pub storage_account_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_account_key: Option<String>,
}

/// A git repository cloned into the volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitRepoVolume {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    pub repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}
