//! Azure Container Instances (ACI): each pod becomes a container group, managed through Azure
//! Resource Manager (`Microsoft.ContainerInstance/containerGroups`).
//!
//! - [`wire`]: ARM's shapes on the wire (container groups, instance views, logs, exec, errors,
//!   AAD tokens); the cloud simulator's ACI face decodes and answers with these.
//! - [`http`]: the one HTTPS client (system roots plus an extra CA).
//! - [`credentials`], [`credentials_sources`], [`credentials_chain`]: the bearer token.
//! - [`pacing`]: rate limits, ARM's remaining-calls headers, `Retry-After`, backoff.
//! - [`sizing`]: ACI's CPU/memory granularity and group limits.

pub mod client;
pub mod credentials;
pub mod credentials_chain;
pub mod credentials_sources;
pub mod error;
pub mod exec_script;
pub mod http;
pub mod mapping;
pub mod pacing;
pub mod pod;
pub mod sizing;
pub mod status;
pub mod wire;
