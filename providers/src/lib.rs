//! Backends behind the `Provider` trait of vk-core.
//!
//! - [`mock`]: an in-process provider that simulates instances with timers; it needs no cloud
//!   account, so the whole node/pod machinery can be exercised in tests and e2e runs.
//! - [`eci`]: Alibaba Cloud ECI over its OpenAPI (signed RPC calls, one batched list per
//!   interval for status).
//! - [`mockcloud`]: an ECI-compatible service that really runs the containers (simulated or
//!   as sandboxed processes); the `vk-cloud` binary serves it.

pub mod apiclient;
pub mod cli;
pub mod doctor;
pub mod doctor_cloud;
pub mod eci;
pub mod health;
pub mod mock;
pub mod mockcloud;
pub mod node_set;
pub mod probe_net;
mod pty;
mod sandbox;
#[cfg(test)]
mod test_support;
