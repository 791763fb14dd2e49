//! The AWS face of the simulator: ECS (Fargate tasks), CloudWatch Logs and STS on one
//! listener, speaking JSON 1.1 and the STS query API as AWS's SDKs do, with SigV4
//! signatures checked. Shapes come from the `fargate` crate's wire module, which the
//! provider shares.
//!
//! - `server`: the HTTP listener ([`EcsCloud::start`]); `api`: routing, signature, faults,
//!   rates, dispatch; `sigv4`: the signature check; `error`: the JSON error shapes.
//! - `taskdefs` (with `sizes`, Fargate's size table): task definitions.
//! - `run`: RunTask -> one engine group per task; `tasks`: Describe/Stop/List, tags,
//!   ExecuteCommand; `ssm`: its Session Manager data channel (the agent's side, on this
//!   face's own listener); `render`: a group as a task.
//! - `logs`: CloudWatch Logs' groups and streams (`log_groups`: the registry; `logs_read`:
//!   GetLogEvents, FilterLogEvents); `sts`: web identity -> keys; `paging`: list tokens.
//! - `face`: the state, and the watcher that stops a task when an essential container exits,
//!   shows a container's stream when it starts, and forgets stopped tasks after a while.
//!
//! Modelled: task definition revisions and Fargate's size table, the task statuses from
//! PROVISIONING to STOPPED with stop codes and reasons, essential containers, RunTask's
//! clientToken, the documented launch rates (`ThrottlingException`), awslogs streams with
//! GetLogEvents' tokens, STS's temporary keys and their expiry, injectable faults.
//! ExecuteCommand's session runs the command on a terminal through the engine's exec.
//! Not modelled: KMS encryption and session logging of exec sessions, PutLogEvents, clusters
//! beyond the configured names, services, health checks and secrets; of container
//! dependencies, only SUCCESS/COMPLETE ones (run to their end first, as init containers;
//! START and HEALTHY are accepted and not waited for).

mod api;
pub mod config;
mod error;
mod face;
mod identity;
mod log_groups;
mod logs;
mod logs_read;
mod paging;
mod render;
mod run;
pub mod server;
pub mod sigv4;
mod sizes;
pub mod ssm;
mod sts;
mod taskdefs;
mod tasks;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_logs;
#[cfg(test)]
mod tests_process;
#[cfg(test)]
mod tests_sts;
#[cfg(test)]
mod tests_tasks;

pub use config::EcsConfig;
pub use error::ApiError;
pub use server::EcsCloud;
