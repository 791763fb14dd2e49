//! The ECI face of the simulator: the OpenAPI 2018-08-08 RPC actions over HTTP (`server`,
//! `api`), request signatures (`auth`, checked by `verify` with code of its own apart from
//! the client's signer), the answers' shapes (`render`, `view`, `describe`, `events`,
//! `metrics`, `group_metric`), ECI's own checks and tables (`create_extras`, `specs`,
//! `placement`, `network`, `quota`, `regions`), temporary keys (`sts`, `metadata`) and the
//! interactive exec socket (`exec_session`; framing in `eci::wire::exec`). Engine errors
//! become ECI's codes and HTTP statuses here (`error::ApiError`).

pub mod api;
pub mod auth;
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
pub mod metadata;
mod metrics;
pub mod network;
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
pub mod verify;
mod view;

pub use error::ApiError;
pub use face::Face;
