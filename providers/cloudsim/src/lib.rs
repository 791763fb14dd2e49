//! A simulated cloud that really runs containers: one engine of container groups
//! ([`engine`]: lifecycle, executors, logs, exec, probes and hooks, faults) behind one face
//! per cloud API: Alibaba Cloud ECI and Azure Container Instances ([`crate::aci`]: ARM's
//! routes over HTTPS, Azure AD tokens, the exec socket with its password). The first face is Alibaba Cloud ECI ([`crate::eci`]): an HTTP server
//! speaking the OpenAPI 2018-08-08 RPC style, signed requests, the service's error codes,
//! STS and the ECS metadata service; the `eci` provider drives it exactly as it would drive
//! the service. The engine knows nothing of a face: it takes neutral requests
//! ([`engine::NewGroup`]), answers [`engine::EngineError`], and keeps each group's face
//! record opaque; a face maps those to its API.
//!
//! The executors run containers as timers (`simulate`) or as real processes in bubblewrap
//! sandboxes (`process`, [`sandbox`]). Start a cloud in-process with [`MockCloud::start`], or
//! as the `vk-cloud` binary.

pub mod aci;
pub mod eci;
pub mod ecs;
pub mod engine;
pub mod launch;
pub mod probe_net;
pub mod pty;
pub mod sandbox;
pub mod test_support;
#[cfg(test)]
mod tests_layers;
mod ws_opening;

pub use crate::eci::config::{MockCloudConfig, QuotaConfig};
pub use crate::eci::server::MockCloud;
/// The STS face's state (`MockCloud::sts`), at the path it had before the faces were split.
pub use crate::eci::sts;
pub use crate::engine::Engine;
pub use crate::engine::executor::ExecutorKind;
