//! The ACI face of the simulator: Azure Resource Manager's `Microsoft.ContainerInstance`
//! routes over the engine, shapes from [`aci::wire`] (the client's own types; the checks,
//! limits and states here are the face's own, written from Azure's documentation).
//!
//! - `api`: the routes; `groups` (create/replace, get, tags, delete, lists, restart/stop/start)
//!   and `containers` (logs, exec and attach, usages, capabilities); `lro` the asynchronous
//!   operations (`Azure-AsyncOperation`), `render` the groups in ARM's shape with instance
//!   views, `validate` ACI's checks and sizing rules, `to_engine` the request in the engine's
//!   terms, `record` the face's record of a group.
//! - `auth`: access tokens (signed by the face), Azure AD's token endpoint (client secret or a
//!   federated token, the latter's claims checked without its signature) and the instance
//!   metadata service; `throttle` ARM's request budgets and ACI's create/delete limits.
//! - `exec`: the exec/attach sockets with ACI's password handshake; `server` and `tls` the
//!   HTTPS server ([`AciCloud::start`]).

mod answer;
pub mod api;
pub mod auth;
pub mod config;
mod containers;
pub mod error;
pub mod exec;
mod face;
mod groups;
mod lro;
mod record;
mod render;
pub mod server;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_tls;
mod throttle;
pub mod tls;
mod to_engine;
pub mod validate;

pub use config::AciConfig;
pub use error::AciError;
pub use face::AciFace;
pub use server::AciCloud;
pub use tls::TlsMode;
