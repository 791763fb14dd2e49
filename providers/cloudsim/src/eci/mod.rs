//! The ECI face of the simulator: the OpenAPI 2018-08-08 RPC actions over HTTP (`server`,
//! `api`), request signatures (`auth`, checked by `verify` with code of its own apart from
//! the client's signer), the answers' shapes (`render`, `view`, `describe`, `events`,
//! `metrics`, `group_metric`), ECI's own checks and tables (`create_extras`, `specs`,
//! `placement`, `network`, `quota`, `regions`), the request in the engine's terms
//! (`to_engine`), temporary keys (`sts`, `metadata`) and the
//! interactive exec socket (`exec_session`; framing in `eci::wire::exec`). Engine errors
//! become ECI's codes and HTTP statuses here (`error::ApiError`).
//!
//! Modelled on purpose: request signatures (ACS3-HMAC-SHA256 and HMAC-SHA1, nonces,
//! timestamps), ClientToken idempotency (tokens forgotten after `client_token_ttl_secs`), the
//! create/delete quota (token bucket, `Throttling.User`), the sizing table (`specs`, its own
//! copy), page sizes and log limits, DescribeMultiContainerGroupMetric (at most 20 groups per
//! call; `process` measures the sandbox's processes in `/proc`), injectable faults
//! ([`crate::engine::faults`]), and temporary keys from STS AssumeRoleWithOIDC (`sts`) or the
//! ECS metadata service (`metadata`).

pub mod api;
pub mod auth;
mod cache_table;
pub mod config;
mod create;
mod create_extras;
mod delete_batch;
mod describe;
pub mod error;
mod events;
pub mod exec_session;
mod face;
mod group_metric;
mod ids;
pub mod image_cache;
pub mod metadata;
mod metrics;
pub mod network;
pub mod persist;
mod placement;
pub mod quota;
mod record;
mod regions;
mod render;
pub mod server;
mod specs;
pub mod sts;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_image_cache;
#[cfg(test)]
mod tests_persist;
mod to_engine;
pub mod verify;
mod view;

pub use error::ApiError;
pub use face::Face;
