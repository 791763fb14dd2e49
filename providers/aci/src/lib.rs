//! Azure Container Instances (ACI): each pod becomes a container group, managed through Azure
//! Resource Manager (`Microsoft.ContainerInstance/containerGroups`).
//!
//! - [`wire`]: ARM's shapes on the wire (container groups, instance views, logs, exec, errors,
//!   AAD tokens); the cloud simulator's ACI face decodes and answers with these.

pub mod wire;
