//! One call, from the request to its answer: which API (`X-Amz-Target` names an ECS or
//! CloudWatch Logs action; a form body with `Action` is STS), the signature (the
//! configured keys and STS's temporary ones), injected faults and the request rates
//! (`ThrottlingException`), then the action. Every answer carries `x-amzn-RequestId`.

use std::collections::HashMap;

use fargate::wire::error::codes;
use fargate::wire::sts::{self as sts_wire, XmlError};
use fargate::wire::{
    ECS_SIGNING_NAME, JSON_CONTENT_TYPE, LOGS_SIGNING_NAME, STS_SIGNING_NAME, Target,
};
use hyper::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::face::Face;
use super::sigv4::{self, AuthError, Secret, Signed};
use super::{logs, logs_read, run, tasks};
use crate::engine::faults::Injected;

/// An answer: status, content type, body, request id.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub request_id: String,
}

fn json(result: Result<String, ApiError>, request_id: String) -> Answer {
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(e) => (e.status, e.body()),
    };
    Answer {
        status,
        content_type: JSON_CONTENT_TYPE,
        body,
        request_id,
    }
}

/// The action's request; a body that does not fit names the field that does not.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body)?;
    let serde_json::Value::Object(fields) = &value else {
        return Err(ApiError::new(
            codes::SERIALIZATION,
            "The request body must be a JSON object.",
        ));
    };
    serde_json::from_value(value.clone()).map_err(|e| {
        // Every field has a default: alone, only a bad one fails.
        let bad = fields.iter().find(|(k, v)| {
            let alone = serde_json::json!({ k.as_str(): v });
            serde_json::from_value::<T>(alone).is_err()
        });
        let message = match bad {
            Some((field, _)) => format!("{field}: {e}"),
            None => e.to_string(),
        };
        ApiError::new(codes::SERIALIZATION, message)
    })
}

fn ok<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::new(codes::SERVER_EXCEPTION, e.to_string()))
}

/// The secret of access key `id`: a configured key, or one STS issued.
fn lookup(face: &Face, id: &str) -> Option<Secret> {
    face.config()
        .access_keys
        .get(id)
        .map(|secret| Secret {
            secret: secret.clone(),
            session_token: None,
            expires: None,
        })
        .or_else(|| face.sts.secret(id))
}

fn authenticate(face: &Face, req: &Signed<'_>, service: &str) -> Result<String, AuthError> {
    let config = face.config();
    sigv4::verify(
        req,
        &config.region,
        service,
        config.max_clock_skew_secs,
        jiff::Timestamp::now(),
        |id| lookup(face, id),
    )
}

async fn ecs(
    face: &Face,
    action: &str,
    body: &[u8],
    headers: &hyper::HeaderMap,
) -> Result<String, ApiError> {
    let now = Face::epoch(face.engine().now());
    let config = face.config();
    match action {
        "RegisterTaskDefinition" => {
            let mut defs = face.taskdefs();
            let r = defs.register(parse(body)?, config, now)?;
            ok(&fargate::wire::ecs_taskdef::TaskDefinitionResponse {
                task_definition: Some((*r.def).clone()),
                tags: r.tags.clone(),
            })
        }
        "DescribeTaskDefinition" => {
            let req: fargate::wire::ecs_taskdef::TaskDefinitionRequest = parse(body)?;
            let defs = face.taskdefs();
            let r = defs
                .find(&req.task_definition, true, config)
                .ok_or_else(|| ApiError::client("Unable to describe task definition."))?;
            let tags = req.include.iter().any(|i| i == "TAGS");
            ok(&fargate::wire::ecs_taskdef::TaskDefinitionResponse {
                task_definition: Some((*r.def).clone()),
                tags: if tags { r.tags.clone() } else { Vec::new() },
            })
        }
        "DeregisterTaskDefinition" => {
            let req: fargate::wire::ecs_taskdef::TaskDefinitionRequest = parse(body)?;
            let def = face
                .taskdefs()
                .deregister(&req.task_definition, config, now)?;
            ok(&fargate::wire::ecs_taskdef::TaskDefinitionResponse {
                task_definition: Some((*def).clone()),
                tags: Vec::new(),
            })
        }
        "ListTaskDefinitions" => ok(&face.taskdefs().list(&parse(body)?)?),
        "RunTask" => ok(&run::run_task(face, parse(body)?)?),
        "DescribeTasks" => ok(&tasks::describe(face, &parse(body)?)?),
        "StopTask" => ok(&tasks::stop(face, &parse(body)?)?),
        "ListTasks" => ok(&tasks::list(face, &parse(body)?)?),
        "TagResource" => tasks::tag(face, &parse(body)?).map(|()| "{}".into()),
        "UntagResource" => tasks::untag(face, &parse(body)?).map(|()| "{}".into()),
        "ListTagsForResource" => ok(&tasks::list_tags(face, &parse(body)?)?),
        "ExecuteCommand" => ok(&tasks::execute_command(
            face,
            &parse(body)?,
            &super::ssm::base(headers),
        )?),
        other => Err(ApiError::new(
            codes::UNKNOWN_OPERATION,
            format!("Unknown operation {other}"),
        )),
    }
}

fn logs_action(face: &Face, action: &str, body: &[u8]) -> Result<String, ApiError> {
    match action {
        "CreateLogGroup" => logs::create_group(face, &parse(body)?).map(|()| "{}".into()),
        "CreateLogStream" => logs::create_stream(face, &parse(body)?).map(|()| "{}".into()),
        "DescribeLogGroups" => ok(&logs::describe_groups(face, &parse(body)?)?),
        "DescribeLogStreams" => ok(&logs::describe_streams(face, &parse(body)?)?),
        "GetLogEvents" => ok(&logs_read::get_events(face, &parse(body)?)?),
        "FilterLogEvents" => ok(&logs_read::filter_events(face, &parse(body)?)?),
        other => Err(ApiError::new(
            codes::UNKNOWN_OPERATION,
            format!("Unknown operation {other}"),
        )),
    }
}

/// A JSON 1.1 call (ECS or CloudWatch Logs).
pub async fn handle_json(face: &Face, target: Target<'_>, req: &Signed<'_>) -> Answer {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (service, is_ecs) = match target {
        Target::Ecs(_) => (ECS_SIGNING_NAME, true),
        Target::Logs(_) => (LOGS_SIGNING_NAME, false),
    };
    if let Err(e) = authenticate(face, req, service) {
        return json(Err(e.into()), request_id);
    }
    let faults = face.engine().faults();
    let rate_ok = match target {
        Target::Ecs("RunTask") => true,
        Target::Ecs(_) => face.rates.ecs_api.admit(),
        Target::Logs(_) => face.rates.logs_api.admit(),
    };
    if faults.take_throttle() || !rate_ok {
        return json(Err(ApiError::throttled()), request_id);
    }
    let server_error = || {
        if is_ecs {
            ApiError::new(
                codes::SERVER_EXCEPTION,
                "The server encountered an internal error.",
            )
        } else {
            ApiError::new(
                codes::SERVICE_UNAVAILABLE,
                "The service is unavailable. Try again later.",
            )
        }
    };
    let injected = faults.roll_error();
    if injected == Some(Injected::BeforeAction) {
        return json(Err(server_error()), request_id);
    }
    let result = match target {
        Target::Ecs(action) => ecs(face, action, req.body, req.headers).await,
        Target::Logs(action) => logs_action(face, action, req.body),
    };
    if injected == Some(Injected::AfterAction) {
        return json(Err(server_error()), request_id);
    }
    json(result, request_id)
}

fn xml(result: Result<String, (XmlError, u16)>, request_id: String) -> Answer {
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err((e, status)) => (status, e.to_xml(&request_id)),
    };
    Answer {
        status,
        content_type: "text/xml",
        body,
        request_id,
    }
}

fn sts_auth_error(e: AuthError) -> (XmlError, u16) {
    let (code, message) = match e {
        AuthError::Missing => (
            sts_wire::codes::MISSING_AUTHENTICATION_TOKEN,
            "Request is missing Authentication Token".to_string(),
        ),
        AuthError::Incomplete(m) => (sts_wire::codes::MISSING_AUTHENTICATION_TOKEN, m),
        AuthError::UnknownKey | AuthError::BadToken => (
            sts_wire::codes::INVALID_CLIENT_TOKEN_ID,
            "The security token included in the request is invalid.".to_string(),
        ),
        AuthError::Expired => (
            sts_wire::codes::EXPIRED_SECURITY_TOKEN,
            "The security token included in the request is expired".to_string(),
        ),
        AuthError::Signature(m) => (sts_wire::codes::SIGNATURE_DOES_NOT_MATCH, m),
    };
    (
        XmlError {
            sender: true,
            code: code.0.into(),
            message,
        },
        code.1,
    )
}

/// An STS query call: parameters from the query and the form body.
pub fn handle_sts(face: &Face, req: &Signed<'_>) -> Answer {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut params: HashMap<String, String> = sigv4::form_pairs(req.query).collect();
    params.extend(sigv4::form_pairs(&String::from_utf8_lossy(req.body)));
    let account = face.config().account_id.clone();
    let action = params.get("Action").cloned().unwrap_or_default();
    if face.engine().faults().take_throttle() {
        let e = sts_wire::codes::THROTTLING;
        return xml(
            Err((
                XmlError {
                    sender: true,
                    code: e.0.into(),
                    message: "Rate exceeded".into(),
                },
                e.1,
            )),
            request_id,
        );
    }
    let result = match action.as_str() {
        sts_wire::ASSUME_ROLE_WITH_WEB_IDENTITY => face
            .sts
            .assume_role_with_web_identity(&params, &account, jiff::Timestamp::now())
            .map(|r| r.to_xml(&request_id)),
        sts_wire::GET_CALLER_IDENTITY => authenticate(face, req, STS_SIGNING_NAME)
            .map_err(sts_auth_error)
            .map(|key| {
                face.sts
                    .identity(&key, &account)
                    .unwrap_or_else(|| sts_wire::CallerIdentity {
                        user_id: key.clone(),
                        account: account.clone(),
                        arn: format!("arn:aws:iam::{account}:user/{key}"),
                    })
            })
            .map(|me| me.to_xml(&request_id)),
        other => {
            let e = sts_wire::codes::INVALID_ACTION;
            Err((
                XmlError {
                    sender: true,
                    code: e.0.into(),
                    message: format!(
                        "Could not find operation {other} for version {}",
                        sts_wire::VERSION
                    ),
                },
                e.1,
            ))
        }
    };
    xml(result, request_id)
}

/// Which API a request is for: a JSON 1.1 target, or STS (a form).
pub fn route(headers: &HeaderMap) -> Option<Option<Target<'_>>> {
    match headers.get(fargate::wire::TARGET_HEADER) {
        Some(v) => Some(Some(Target::parse(v.to_str().ok()?)?)),
        None => Some(None),
    }
}
