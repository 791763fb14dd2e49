//! The container group resource on the wire: ARM's envelope (id, name, type, location, tags,
//! zones, identity) around `properties` (containers, init containers, registry credentials,
//! restart policy, IP address, OS, volumes, DNS, subnets, SKU, priority, and the read-only
//! provisioning state and instance view).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::container::{Container, ContainerEvent, InitContainer};
use super::volume::Volume;

/// A container group: the body of PUT and the answer of PUT, GET, PATCH and DELETE.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerGroup {
    /// Read-only: the resource id (`/subscriptions/…/containerGroups/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Read-only: the group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Read-only: [`super::GROUP_TYPE`].
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The region, e.g. `westeurope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<GroupIdentity>,
    pub properties: ContainerGroupProperties,
}

/// The body of PATCH on a group: only tags change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagsPatch {
    pub tags: BTreeMap<String, String>,
}

/// A group's `properties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerGroupProperties {
    /// Read-only: see [`super::provisioning_state`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<InitContainer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    /// See [`super::restart_policy`]; ACI's default is `Always`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddress>,
    /// See [`super::os_type`].
    pub os_type: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Read-only: the group's state and events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<GroupInstanceView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<SubnetId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    /// See [`super::sku`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// See [`super::priority`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

/// Credentials for a private registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImageRegistryCredential {
    /// The registry's host, e.g. `myregistry.azurecr.io`.
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Write-only: never returned by a GET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A user-assigned identity's resource id to pull with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_url: Option<String>,
}

/// The group's IP address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpAddress {
    pub ports: Vec<super::container::ContainerPort>,
    /// See [`super::ip_address_type`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Read-only for public addresses: the address given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_name_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_generated_domain_name_label_scope: Option<String>,
    /// Read-only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
}

/// A subnet of a virtual network the group joins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubnetId {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// DNS settings of the group (`resolv.conf`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DnsConfig {
    pub name_servers: Vec<String>,
    /// Space-separated search domains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_domains: Option<String>,
    /// Space-separated resolver options (`ndots:2 timeout:1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
}

/// The group's managed identities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_assigned_identities: BTreeMap<String, UserAssignedIdentity>,
}

/// One user-assigned identity (read-only ids).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserAssignedIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The group's instance view: its state (see [`super::group_state`]) and events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupInstanceView {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ContainerEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}
