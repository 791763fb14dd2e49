//! The API face: common parameters and the signature checked on every call, the actions
//! dispatched to the engine, and every answer (success or error) carrying a RequestId.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::auth::{Call, Nonces, authenticate};
use super::create_extras::GroupExtras;
use super::error::{Answer, ApiError, error_body};
use super::exec_session::{EXEC_PATH, PendingExec};
use super::face::Face;
use super::ids::request_id;
use super::placement::PlacementFilter;
use super::sts::Sts;
use super::{network, quota};
use crate::engine::faults::Injected;
use eci::wire::api::{
    CreateContainerGroupResponse, DescribeContainerLogResponse, ExecContainerCommandResponse,
    RequestIdResponse, errors,
};
use eci::wire::metrics::DescribeMultiContainerGroupMetric;
use eci::wire::params::Params;
use eci::wire::request::{
    CreateContainerGroup, DescribeContainerGroups, DescribeContainerLog, ExecContainerCommand,
    UpdateContainerGroup,
};
use eci::wire::request_image_cache::{
    CreateImageCache, DeleteImageCache, DescribeImageCaches, UpdateImageCache,
};

fn ok<T: Serialize>(body: &T) -> Result<String, ApiError> {
    serde_json::to_string(body).map_err(|e| ApiError::new(errors::INTERNAL_ERROR, e.to_string()))
}

fn is_write(action: &str) -> bool {
    matches!(
        action,
        "CreateContainerGroup" | "DeleteContainerGroup" | "DeleteContainerGroups"
    )
}

/// Actions that change groups (the state file is written after them).
fn changes_groups(action: &str) -> bool {
    is_write(action)
        || matches!(
            action,
            "RestartContainerGroup"
                | "UpdateContainerGroup"
                | "CreateImageCache"
                | "UpdateImageCache"
                | "DeleteImageCache"
        )
}

/// A `DryRun=true` create whose checks all passed.
const DRY_RUN_OPERATION: errors::Code = ("DryRunOperation", 400);

/// Run the action; the JSON body of the success answer (its RequestId set by the caller).
pub(super) async fn dispatch(
    face: &Face,
    action: &str,
    p: &Params,
    host: &str,
) -> Result<String, ApiError> {
    match action {
        "CreateContainerGroup" => {
            let req = CreateContainerGroup::decode(p)?;
            let extras = GroupExtras::decode(p)?;
            if extras.dry_run {
                // Every check a create makes, then ECI's "passed" answer, which is an error.
                face.check_create(&req, &extras)?;
                return Err(ApiError::new(
                    DRY_RUN_OPERATION,
                    "Request validation has been passed with DryRun flag set.",
                ));
            }
            let id = face.create_from(req, extras, p)?;
            ok(&CreateContainerGroupResponse {
                request_id: String::new(),
                container_group_id: id,
            })
        }
        "DescribeContainerGroups" => ok(&face.describe(
            &DescribeContainerGroups::decode(p)?,
            &PlacementFilter::decode(p)?,
        )?),
        "DescribeContainerGroupStatus" => {
            let q = DescribeContainerGroups::decode(p)?;
            let placement = PlacementFilter::decode(p)?;
            ok(&face.describe_status(&q, &placement, p.parse("SinceSecond")?)?)
        }
        "DescribeContainerGroupEvents" => ok(&face.describe_events(p)?),
        "DescribeContainerGroupMetric" => ok(&face.group_metric(p).await?),
        "DescribeRegions" => ok(&super::regions::describe(
            &face.config().region_id,
            &face.config().network,
        )),
        "DeleteContainerGroups" => {
            face.delete_many(p)?;
            ok(&RequestIdResponse::default())
        }
        "DeleteContainerGroup" => {
            face.engine().delete(p.required("ContainerGroupId")?)?;
            ok(&RequestIdResponse::default())
        }
        "RestartContainerGroup" => {
            face.engine().restart(p.required("ContainerGroupId")?)?;
            ok(&RequestIdResponse::default())
        }
        "UpdateContainerGroup" => {
            let req = UpdateContainerGroup::decode(p)?;
            face.engine()
                .update(
                    &req.container_group_id,
                    super::to_engine::volumes(&req.volumes)?,
                )
                .await?;
            ok(&RequestIdResponse::default())
        }
        "DescribeMultiContainerGroupMetric" => {
            let q = DescribeMultiContainerGroupMetric::decode(p)?;
            ok(&face.multi_metric(&q).await?)
        }
        "DescribeContainerLog" => {
            let q = DescribeContainerLog::decode(p)?;
            ok(&DescribeContainerLogResponse {
                request_id: String::new(),
                content: log_content(face, &q)?,
                container_name: q.container_name,
            })
        }
        "ExecContainerCommand" => {
            let q = ExecContainerCommand::decode(p)?;
            let (group, container, _) = face
                .engine()
                .exec_target(&q.container_group_id, &q.container_name)?;
            if !q.sync {
                let token = face.exec_sessions().issue(
                    PendingExec {
                        group_id: q.container_group_id,
                        container: q.container_name,
                        command: q.command,
                        tty: q.tty,
                        stdin: q.stdin,
                    },
                    Duration::from_millis(face.config().exec_token_ttl_ms),
                );
                return ok(&ExecContainerCommandResponse {
                    web_socket_uri: format!("ws://{host}{EXEC_PATH}?s={token}"),
                    ..Default::default()
                });
            }
            let output = face
                .engine()
                .executor()
                .exec(&group, &container, &q.command)
                .await
                .map_err(|e| ApiError::new(errors::INTERNAL_ERROR, e.to_string()))?;
            ok(&ExecContainerCommandResponse {
                sync_response: String::from_utf8_lossy(&output.output).into_owned(),
                ..Default::default()
            })
        }
        "CreateImageCache" => ok(&face.create_image_cache(CreateImageCache::decode(p)?)?),
        "DescribeImageCaches" => ok(&face.describe_image_caches(&DescribeImageCaches::decode(p)?)?),
        "UpdateImageCache" => {
            face.update_image_cache(UpdateImageCache::decode(p)?)?;
            ok(&RequestIdResponse::default())
        }
        "DeleteImageCache" => {
            face.delete_image_cache(&DeleteImageCache::decode(p)?.image_cache_id)?;
            ok(&RequestIdResponse::default())
        }
        // The zones, the account's network and quotas (`vk doctor` asks).
        a if network::handles(a) => {
            network::dispatch(&face.config().network, &face.config().region_id, a, p)
        }
        quota::LIST_PRODUCT_QUOTAS => quota::list_product_quotas(
            &face.config().quota_center,
            &face.config().region_id,
            quota::used_vcpu(face.engine()),
            p,
        ),
        other => Err(ApiError::new(
            errors::INVALID_ACTION,
            format!("Specified api {other:?} is not found, please check your url and method."),
        )),
    }
}

/// The selected lines of a container's log, as DescribeContainerLog answers them.
fn log_content(face: &Face, q: &DescribeContainerLog) -> Result<String, ApiError> {
    let config = face.config();
    let Some(store) = face
        .engine()
        .log(&q.container_group_id, &q.container_name, q.last_time)?
    else {
        return Ok(String::new());
    };
    let mut since = match &q.start_time {
        None => None,
        Some(s) => Some(s.parse::<Timestamp>().map_err(|_| {
            ApiError::new(
                errors::INVALID_PARAMETER,
                "The specified StartTime is not RFC 3339.",
            )
        })?),
    };
    if let Some(secs) = q.since_seconds {
        let cutoff = Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(
                i64::try_from(secs).unwrap_or(i64::MAX),
            ))
            .ok();
        since = since.max(cutoff);
    }
    let tail = q
        .tail
        .unwrap_or(config.log_default_tail)
        .min(config.log_max_tail) as usize;
    let limit = q.limit_bytes.unwrap_or(1024 * 1024);
    if !(1..=1024 * 1024).contains(&limit) {
        return Err(ApiError::new(
            errors::INVALID_PARAMETER,
            "LimitBytes must be from 1 to 1048576.",
        ));
    }
    let mut out = String::new();
    for (at, line) in store.select(since, Some(tail)) {
        if q.timestamps {
            out.push_str(&at.to_string());
            out.push(' ');
        }
        out.push_str(&line);
        out.push('\n');
        if out.len() as u64 >= limit {
            let mut cut = usize::try_from(limit).unwrap_or(out.len());
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            break;
        }
    }
    Ok(out)
}

/// Put the RequestId into a success body.
fn with_request_id(body: String, request_id: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("RequestId".into(), request_id.into());
            serde_json::Value::Object(map).to_string()
        }
        _ => body,
    }
}

/// Answer one API call: authenticate, apply throttling and injected faults, run the action.
pub async fn handle(
    face: &Face,
    nonces: &Nonces,
    sts: &Sts,
    call: &Call<'_>,
    host: &str,
) -> Answer {
    let request_id = request_id();
    let fail = |e: ApiError| Answer {
        status: e.status,
        body: error_body(&e, &request_id, host),
    };
    let action = match authenticate(face, nonces, sts, call) {
        Ok(caller) => caller.action,
        Err(e) => return fail(e),
    };
    let action = action.as_str();
    let faults = face.faults();
    if faults.take_throttle() || (is_write(action) && !face.take_quota()) {
        return fail(ApiError::new(
            errors::THROTTLING,
            "Request was denied due to user flow control.",
        ));
    }
    let injected = faults.roll_error();
    let server_error = || {
        if rand::random::<bool>() {
            ApiError::new(
                errors::INTERNAL_ERROR,
                "The request processing has failed due to some unknown error, exception or failure.",
            )
        } else {
            ApiError::new(
                errors::SERVICE_UNAVAILABLE,
                "The request has failed due to a temporary failure of the server.",
            )
        }
    };
    if injected == Some(Injected::BeforeAction) {
        return fail(server_error());
    }
    let result = dispatch(face, action, call.params, host).await;
    if changes_groups(action) {
        // Kept before the answer, as a cloud commits a change before it acknowledges it.
        face.save_state();
    }
    if injected == Some(Injected::AfterAction) {
        return fail(server_error());
    }
    match result {
        Ok(body) => Answer {
            status: 200,
            body: with_request_id(body, &request_id),
        },
        Err(e) => fail(e),
    }
}
