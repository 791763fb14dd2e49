//! CloudWatch Logs over the containers' output: a task's container whose definition logs
//! with awslogs has a stream `PREFIX/CONTAINER/TASK_ID` in its log group, reading the
//! engine's log of that container (kept after the task stopped). GetLogEvents pages by
//! position: a forward token `f/N/s` reads from line N on, a backward token `b/N/s` the lines
//! before N; a forward token answered back means nothing new (no repeats, no gaps).
//! Timestamps are the engine's, in milliseconds. FilterLogEvents matches plain terms only.

use std::collections::BTreeMap;
use std::sync::Arc;

use fargate::wire::error::codes;
use fargate::wire::logs::{
    CreateLogGroupRequest, CreateLogStreamRequest, DescribeLogGroupsRequest,
    DescribeLogGroupsResponse, DescribeLogStreamsRequest, DescribeLogStreamsResponse,
    FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent, GetLogEventsRequest,
    GetLogEventsResponse, LogGroup, LogStream, MAX_EVENTS, OutputLogEvent,
};
use jiff::Timestamp;

use super::error::ApiError;
use super::face::Face;
use super::paging;
use crate::engine::logstore::LogStore;

/// An answer carries at most this many bytes of events (messages plus 26 each).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

struct Stream {
    created: i64,
    store: Arc<LogStore>,
}

struct Group {
    created: i64,
    streams: BTreeMap<String, Stream>,
}

#[derive(Default)]
pub struct Logs {
    groups: BTreeMap<String, Group>,
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        codes::RESOURCE_NOT_FOUND,
        format!("The specified log {what} does not exist."),
    )
}

fn check_name(field: &str, name: &str, max: usize, group: bool) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && if group {
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b))
        } else {
            !name.contains(':') && !name.contains('*')
        };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field}: {name:?} is not a valid name (1 to {max} characters{}).",
            if group {
                " of [.-_/#A-Za-z0-9]"
            } else {
                ", no ':' or '*'"
            }
        )))
    }
}

impl Logs {
    pub fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    pub fn ensure_group(&mut self, name: &str, now: Timestamp) {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                created: ms(now),
                streams: BTreeMap::new(),
            });
    }

    /// A task container's stream, reading `store`.
    pub fn attach(&mut self, group: &str, stream: &str, store: Arc<LogStore>, now: Timestamp) {
        self.ensure_group(group, now);
        if let Some(g) = self.groups.get_mut(group) {
            g.streams.insert(
                stream.to_string(),
                Stream {
                    created: ms(now),
                    store,
                },
            );
        }
    }

    fn stream(&self, group: &str, stream: &str) -> Result<&Stream, ApiError> {
        self.groups
            .get(group)
            .ok_or_else(|| not_found("group"))?
            .streams
            .get(stream)
            .ok_or_else(|| not_found("stream"))
    }
}

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

fn position(token: &str) -> Option<(bool, u64)> {
    let (dir, rest) = token.split_once('/')?;
    let n = rest.strip_suffix("/s")?.parse().ok()?;
    match dir {
        "f" => Some((true, n)),
        "b" => Some((false, n)),
        _ => None,
    }
}

fn forward(n: u64) -> String {
    format!("f/{n:020}/s")
}

fn backward(n: u64) -> String {
    format!("b/{n:020}/s")
}

fn limit(limit: Option<i32>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(MAX_EVENTS),
        Some(n) if n >= 1 && n as usize <= MAX_EVENTS => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!(
            "limit: {n} is not from 1 to {MAX_EVENTS}."
        ))),
    }
}

pub fn get_events(
    face: &Face,
    req: &GetLogEventsRequest,
) -> Result<GetLogEventsResponse, ApiError> {
    let limit = limit(req.limit)?;
    let lines = face
        .logs()
        .stream(&req.log_group_name, &req.log_stream_name)?
        .store
        .indexed();
    let in_time = |at: Timestamp| {
        req.start_time.is_none_or(|s| ms(at) >= s) && req.end_time.is_none_or(|e| ms(at) < e)
    };
    let end = lines.last().map_or(0, |l| l.0 + 1);
    let (from_head, at) = match req.next_token.as_deref() {
        Some(t) => {
            position(t).ok_or_else(|| ApiError::invalid("The specified nextToken is invalid."))?
        }
        None if req.start_from_head == Some(true) => (true, 0),
        None => (false, end),
    };
    let chosen: Vec<&(u64, Timestamp, String)> = if from_head {
        lines.iter().filter(|l| l.0 >= at && in_time(l.1)).collect()
    } else {
        let mut before: Vec<_> = lines
            .iter()
            .filter(|l| l.0 < at && in_time(l.1))
            .rev()
            .collect();
        before.truncate(limit);
        before.reverse();
        before
    };
    // As many as fit, from the start (forward) or kept from the end (backward).
    let mut bytes = 0;
    let mut events: Vec<&(u64, Timestamp, String)> = Vec::new();
    let ordered: Box<dyn Iterator<Item = _>> = if from_head {
        Box::new(chosen.iter())
    } else {
        Box::new(chosen.iter().rev())
    };
    for l in ordered {
        bytes += l.2.len() + 26;
        if events.len() >= limit || bytes > MAX_ANSWER_BYTES {
            break;
        }
        events.push(l);
    }
    if !from_head {
        events.reverse();
    }
    let (next_forward, next_backward) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (last.0 + 1, first.0),
        _ => (at, at),
    };
    Ok(GetLogEventsResponse {
        events: events
            .iter()
            .map(|l| OutputLogEvent {
                timestamp: ms(l.1),
                message: l.2.clone(),
                ingestion_time: Some(ms(l.1)),
            })
            .collect(),
        next_forward_token: Some(forward(next_forward)),
        next_backward_token: Some(backward(next_backward)),
    })
}

pub fn filter_events(
    face: &Face,
    req: &FilterLogEventsRequest,
) -> Result<FilterLogEventsResponse, ApiError> {
    let limit = limit(req.limit)?;
    if !req.log_stream_names.is_empty() && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "logStreamNames and logStreamNamePrefix cannot be given together.",
        ));
    }
    let terms: Vec<&str> = req
        .filter_pattern
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let mut events: Vec<FilteredLogEvent> = {
        let logs = face.logs();
        let group = logs
            .groups
            .get(&req.log_group_name)
            .ok_or_else(|| not_found("group"))?;
        group
            .streams
            .iter()
            .filter(|(name, _)| {
                (req.log_stream_names.is_empty() || req.log_stream_names.contains(name))
                    && req
                        .log_stream_name_prefix
                        .as_deref()
                        .is_none_or(|p| name.starts_with(p))
            })
            .flat_map(|(name, s)| {
                s.store
                    .indexed()
                    .into_iter()
                    .map(move |(i, at, message)| FilteredLogEvent {
                        log_stream_name: Some(name.clone()),
                        timestamp: ms(at),
                        ingestion_time: Some(ms(at)),
                        event_id: Some(format!("{}-{name}-{i}", ms(at))),
                        message,
                    })
            })
            .filter(|e| {
                req.start_time.is_none_or(|s| e.timestamp >= s)
                    && req.end_time.is_none_or(|end| e.timestamp < end)
                    && terms
                        .iter()
                        .all(|t| e.message.contains(t.trim_matches('"')))
            })
            .collect()
    };
    events.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then(a.event_id.cmp(&b.event_id))
    });
    let (events, next_token) = paging::page(
        events,
        req.next_token.as_deref(),
        Some(limit as i32),
        MAX_EVENTS,
    )?;
    Ok(FilterLogEventsResponse { events, next_token })
}
