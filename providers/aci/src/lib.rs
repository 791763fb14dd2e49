//! Azure Container Instances (ACI): each pod becomes a container group, managed through Azure
//! Resource Manager (`Microsoft.ContainerInstance/containerGroups`, api-version
//! [`wire::API_VERSION`]).
//!
//! - [`wire`]: ARM's shapes on the wire (container groups, instance views, logs, exec, errors,
//!   AAD tokens); the cloud simulator's ACI face decodes and answers with these.
//! - [`http`]: the one HTTPS client (system roots plus an extra CA).
//! - [`credentials`], [`credentials_sources`], [`credentials_chain`]: the bearer token
//!   (workload identity, client secret, managed identity), cached and refreshed.
//! - [`pacing`], [`client`]: ARM calls under ARM's and ACI's limits, with retries.
//! - [`sizing`], [`pod`], [`mapping`], [`status`]: pods to groups, instance views to statuses.
//! - [`logs`]: one-shot reads and `follow` by polling the tail.
//! - [`exec`]: exec with exit codes over ACI's terminal-only exec (the shell protocol of
//!   [`vk_core::provider::terminal_exec`]).
//! - [`AciProvider`]: the `Provider`, built with [`AciProvider::new`] from an [`AciConfig`].
//!
//! ARM's asynchronous operations (PUT and DELETE answer at once; the group goes on through
//! `Creating`/`Deleting`) are followed through the node's one listing per interval, by the
//! group's `provisioningState`, not by polling each operation's `Azure-AsyncOperation` URL:
//! a failed provisioning shows as the pod's `ProvisioningFailed` with ARM's last Warning event.

pub mod client;
mod config;
pub mod credentials;
pub mod credentials_chain;
pub mod credentials_sources;
pub mod error;
pub mod exec;
pub use vk_core::provider::http;
pub mod logs;
pub mod mapping;
pub mod pacing;
pub mod pod;
mod provider;
pub mod sizing;
pub mod status;
#[cfg(test)]
mod tests_cloud;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_mapping;
#[cfg(test)]
pub(crate) mod tests_support;
pub mod wire;

pub use config::{AciCapacity, AciConfig};
pub use provider::AciProvider;
