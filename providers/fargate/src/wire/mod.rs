//! ECS, CloudWatch Logs and STS as they are on the wire, and nothing else.
//!
//! ECS and CloudWatch Logs speak JSON 1.1: every call is a `POST /` whose `X-Amz-Target`
//! header names the action (`AmazonEC2ContainerServiceV20141113.RunTask`,
//! `Logs_20140328.GetLogEvents`), with `Content-Type: application/x-amz-json-1.1` and a JSON
//! body; errors are `{"__type": "...", "message": "..."}` with a 4xx or 5xx status
//! ([`error`]). Field names are the services' own (camelCase); timestamps are seconds since
//! the epoch as JSON numbers in ECS and milliseconds as integers in CloudWatch Logs. STS is
//! a query API (form-encoded `Action=...&Version=2011-06-15`) answering XML ([`sts`]).
//!
//! Answers tolerate fields they do not know (the services add fields over time); optional
//! fields are left out when empty, as the services and their SDKs do.
//!
//! - [`ecs_taskdef`]: task definitions (Register, Deregister, Describe, List).
//! - [`ecs_task`]: tasks (RunTask, DescribeTasks, StopTask, ListTasks); with
//!   [`ecs_tags_exec`]: tags and ExecuteCommand.
//! - [`logs`]: CloudWatch Logs (log groups and streams, GetLogEvents, FilterLogEvents).
//! - [`sts`]: AssumeRoleWithWebIdentity and GetCallerIdentity, their XML answers and errors.
//! - [`error`]: the JSON error body and the codes the simulator and the provider share.

pub mod ecs_tags_exec;
pub mod ecs_task;
pub mod ecs_taskdef;
pub mod error;
pub mod logs;
pub mod sts;

/// The JSON 1.1 content type of ECS and CloudWatch Logs calls and answers.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The header naming the action of a JSON 1.1 call.
pub const TARGET_HEADER: &str = "x-amz-target";
/// `X-Amz-Target` of an ECS action is this, a dot, and the action's name.
pub const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// `X-Amz-Target` of a CloudWatch Logs action is this, a dot, and the action's name.
pub const LOGS_TARGET_PREFIX: &str = "Logs_20140328";
/// The SigV4 service names (the credential scope's third part).
pub const ECS_SIGNING_NAME: &str = "ecs";
pub const LOGS_SIGNING_NAME: &str = "logs";
pub const STS_SIGNING_NAME: &str = "sts";

/// Which JSON 1.1 API a target names, and the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Ecs(&'a str),
    Logs(&'a str),
}

impl<'a> Target<'a> {
    /// `AmazonEC2ContainerServiceV20141113.RunTask` -> `Ecs("RunTask")`; `None` for any
    /// other service or a target without an action.
    pub fn parse(target: &'a str) -> Option<Self> {
        let (service, action) = target.split_once('.')?;
        if action.is_empty() {
            return None;
        }
        match service {
            ECS_TARGET_PREFIX => Some(Self::Ecs(action)),
            LOGS_TARGET_PREFIX => Some(Self::Logs(action)),
            _ => None,
        }
    }

    /// The header value for this action.
    pub fn header(&self) -> String {
        match self {
            Self::Ecs(a) => format!("{ECS_TARGET_PREFIX}.{a}"),
            Self::Logs(a) => format!("{LOGS_TARGET_PREFIX}.{a}"),
        }
    }
}

/// A key and a value, as ECS writes environment variables and attachment details.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValuePair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl KeyValuePair {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }
}

/// An ECS resource tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_the_api_and_the_action() {
        assert_eq!(
            Target::parse("AmazonEC2ContainerServiceV20141113.RunTask"),
            Some(Target::Ecs("RunTask"))
        );
        assert_eq!(
            Target::parse("Logs_20140328.GetLogEvents"),
            Some(Target::Logs("GetLogEvents"))
        );
        assert_eq!(Target::parse("DynamoDB_20120810.GetItem"), None);
        assert_eq!(Target::parse("Logs_20140328."), None);
        assert_eq!(Target::parse("nonsense"), None);
        assert_eq!(
            Target::Ecs("StopTask").header(),
            "AmazonEC2ContainerServiceV20141113.StopTask"
        );
    }
}
