//! CloudWatch Logs over the containers' output: a task's container whose definition logs
//! with awslogs has a stream `PREFIX/CONTAINER/TASK_ID` in its log group, reading the
//! engine's log of that container (kept after the task stopped). Log groups and streams are
//! created and described here; `logs_read` reads them. Timestamps are the engine's, in
//! milliseconds.

use std::sync::Arc;

use fargate::wire::error::codes;
use fargate::wire::logs::{
    CreateLogGroupRequest, CreateLogStreamRequest, DescribeLogGroupsRequest,
    DescribeLogGroupsResponse, DescribeLogStreamsRequest, DescribeLogStreamsResponse, LogGroup,
    LogStream,
};

use super::error::ApiError;
use super::face::Face;
use super::log_groups::{Stream, check_name, ms, not_found};
use super::paging;
use crate::engine::logstore::LogStore;

pub fn create_group(face: &Face, req: &CreateLogGroupRequest) -> Result<(), ApiError> {
    check_name("logGroupName", &req.log_group_name, 512, true)?;
    let mut logs = face.logs();
    if logs.has_group(&req.log_group_name) {
        return Err(ApiError::new(
            codes::RESOURCE_ALREADY_EXISTS,
            "The specified log group already exists",
        ));
    }
    logs.ensure_group(&req.log_group_name, face.engine().now());
    Ok(())
}

pub fn create_stream(face: &Face, req: &CreateLogStreamRequest) -> Result<(), ApiError> {
    check_name("logStreamName", &req.log_stream_name, 512, false)?;
    let now = face.engine().now();
    let max = face.config().max_log_lines;
    let mut logs = face.logs();
    let group = logs
        .groups
        .get_mut(&req.log_group_name)
        .ok_or_else(|| not_found("group"))?;
    if group.streams.contains_key(&req.log_stream_name) {
        return Err(ApiError::new(
            codes::RESOURCE_ALREADY_EXISTS,
            "The specified log stream already exists",
        ));
    }
    let store = Arc::new(LogStore::with_clock(max, face.engine().clock()));
    group.streams.insert(
        req.log_stream_name.clone(),
        Stream {
            created: ms(now),
            store,
            visible: true,
        },
    );
    Ok(())
}

pub fn describe_groups(
    face: &Face,
    req: &DescribeLogGroupsRequest,
) -> Result<DescribeLogGroupsResponse, ApiError> {
    let config = face.config();
    let groups: Vec<LogGroup> = face
        .logs()
        .groups
        .iter()
        .filter(|(name, _)| {
            req.log_group_name_prefix
                .as_deref()
                .is_none_or(|p| name.starts_with(p))
        })
        .map(|(name, g)| LogGroup {
            log_group_name: name.clone(),
            creation_time: Some(g.created),
            arn: Some(config.arn("logs", &format!("log-group:{name}:*"))),
            stored_bytes: Some(0),
        })
        .collect();
    let (log_groups, next_token) = paging::page(groups, req.next_token.as_deref(), req.limit, 50)?;
    Ok(DescribeLogGroupsResponse {
        log_groups,
        next_token,
    })
}

pub fn describe_streams(
    face: &Face,
    req: &DescribeLogStreamsRequest,
) -> Result<DescribeLogStreamsResponse, ApiError> {
    let config = face.config();
    let by_time = match req.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "orderBy: {other:?} is not LogStreamName or LastEventTime."
            )));
        }
    };
    if by_time && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let mut streams: Vec<LogStream> = {
        let logs = face.logs();
        let group = logs
            .groups
            .get(&req.log_group_name)
            .ok_or_else(|| not_found("group"))?;
        group
            .streams
            .iter()
            .filter(|(_, s)| s.visible)
            .filter(|(name, _)| {
                req.log_stream_name_prefix
                    .as_deref()
                    .is_none_or(|p| name.starts_with(p))
            })
            .map(|(name, s)| {
                let lines = s.store.indexed();
                LogStream {
                    log_stream_name: name.clone(),
                    creation_time: Some(s.created),
                    first_event_timestamp: lines.first().map(|l| ms(l.1)),
                    last_event_timestamp: lines.last().map(|l| ms(l.1)),
                    last_ingestion_time: lines.last().map(|l| ms(l.1)),
                    arn: Some(config.arn(
                        "logs",
                        &format!("log-group:{}:log-stream:{name}", req.log_group_name),
                    )),
                }
            })
            .collect()
    };
    if by_time {
        streams.sort_by_key(|s| s.last_event_timestamp.unwrap_or(0));
    }
    if req.descending == Some(true) {
        streams.reverse();
    }
    let (log_streams, next_token) =
        paging::page(streams, req.next_token.as_deref(), req.limit, 50)?;
    Ok(DescribeLogStreamsResponse {
        log_streams,
        next_token,
    })
}
