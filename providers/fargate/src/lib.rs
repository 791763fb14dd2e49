//! AWS Fargate: each pod becomes an ECS task (`RunTask` with launch type `FARGATE`).
//!
//! - [`wire`]: the ECS, CloudWatch Logs and STS shapes on the wire (JSON 1.1 requests and
//!   answers, error bodies); the cloud simulator's ECS face decodes and answers with these.
//! - [`credentials`]: the keys every call signs with, as operators provide them (IRSA, EKS Pod
//!   Identity, the instance profile through IMDSv2, environment keys), refreshed before expiry.
//! - [`sign`]: SigV4 with AWS's own signer.
//! - [`exec`], [`ssm`]: exec through ECS ExecuteCommand and the Session Manager data channel.

pub mod credentials;
pub mod exec;
pub mod sign;
pub mod ssm;
#[cfg(test)]
mod tests_exec;
pub mod wire;
