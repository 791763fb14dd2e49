//! AWS Fargate: each pod becomes an ECS task (`RunTask` with launch type `FARGATE`).
//!
//! - [`wire`]: the ECS, CloudWatch Logs and STS shapes on the wire (JSON 1.1 requests and
//!   answers, error bodies); the cloud simulator's ECS face decodes and answers with these.

pub mod wire;
