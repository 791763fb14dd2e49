//! AWS Fargate: each pod becomes an ECS task (`RunTask` with launch type `FARGATE`).
//!
//! - [`wire`]: the ECS, CloudWatch Logs and STS shapes on the wire (JSON 1.1 requests and
//!   answers, error bodies); the cloud simulator's ECS face decodes and answers with these.
//! - [`credentials`]: the keys every call signs with, as operators provide them (IRSA, EKS Pod
//!   Identity, the instance profile through IMDSv2, environment keys), refreshed before expiry.
//! - [`sign`]: SigV4 with AWS's own signer.
//! - [`exec`], [`ssm`]: exec through ECS ExecuteCommand and the Session Manager data channel.
//! - [`client`]: JSON 1.1 calls, signed, paced at Fargate's published rates, retried.
//! - [`sizing`], [`mapping`], [`status`]: pods to task definitions and RunTasks, tasks to
//!   statuses.
//! - [`logs`]: CloudWatch Logs reads and `follow` by forward tokens.
//! - [`FargateProvider`]: the `Provider`, built with [`FargateProvider::new`] from a
//!   [`FargateConfig`].
//!
//! What Fargate cannot do, and this provider therefore does not:
//! - no `hostPath`, no privileged container, no `subPath` mount (a mount point mounts a whole
//!   volume), no host ports (`awsvpc`: the task has its own address);
//! - a task never restarts a container: `restartPolicy` Always and OnFailure end like Never
//!   (an essential container that exits stops the task; the pod is Succeeded or Failed by
//!   the exit codes), and `kubectl logs --previous` has nothing to show;
//! - files of configMaps, secrets, the downward API and service-account tokens are written
//!   once, when the task starts, by the `vk-files` step: an edited configMap or a re-issued
//!   token does not reach a running task (a token outliving its task's first hour is stale);
//!   their contents travel in RunTask's overrides, which ECS caps at 8 KiB with the pods'
//!   environment, and which anyone allowed to describe the task can read;
//! - `emptyDir.medium: Memory` is disk, not tmpfs; emptyDirs and the containers' writable
//!   layers share the task's ephemeral storage (20 GiB, up to 200 GiB when the pod's
//!   `sizeLimit`s and ephemeral-storage figures ask for more);
//! - `imagePullSecrets` are not used: ECS pulls private images with the execution role (ECR)
//!   or a Secrets Manager secret named in the task definition (`repositoryCredentials`),
//!   which this provider does not create;
//! - probes and lifecycle hooks are not run; usage figures are not reported (they are in
//!   CloudWatch Container Insights).

pub mod client;
mod config;
pub mod credentials;
pub mod error;
pub mod exec;
pub mod logs;
pub mod mapping;
mod provider;
pub mod sign;
pub mod sizing;
pub mod ssm;
pub mod status;
#[cfg(test)]
mod tests_cloud;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
pub(crate) mod tests_support;
pub mod wire;

pub use config::{FargateCapacity, FargateConfig};
pub use provider::FargateProvider;
