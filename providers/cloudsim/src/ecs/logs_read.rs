//! Reading CloudWatch Logs: GetLogEvents pages a stream by position (a forward token
//! `f/N/s` reads from line N on, a backward token `b/N/s` the lines before N; a forward token
//! answered back means nothing new), FilterLogEvents merges a group's streams by time and
//! matches plain terms (every term must occur), paged by offset.

use fargate::wire::logs::{
    FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent, GetLogEventsRequest,
    GetLogEventsResponse, MAX_EVENTS, OutputLogEvent,
};
use jiff::Timestamp;

use super::error::ApiError;
use super::face::Face;
use super::log_groups::{ms, not_found};
use super::paging;

/// An answer carries at most this many bytes of events (messages plus 26 each).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

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
            .filter(|(_, s)| s.visible)
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
