//! CloudWatch Logs on the wire (`Logs_20140328.<Action>`): log groups and streams,
//! GetLogEvents with its forward and backward tokens, FilterLogEvents across a group's
//! streams. Times are milliseconds since the epoch.
//!
//! Reading a stream to its end: call GetLogEvents with `startFromHead` and then each answer's
//! `nextForwardToken`; an answer whose forward token is the one sent has nothing new.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most events one GetLogEvents or FilterLogEvents answers.
pub const MAX_EVENTS: usize = 10_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupRequest {
    #[serde(default)]
    pub log_group_name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogStreamRequest {
    #[serde(default)]
    pub log_group_name: String,
    #[serde(default)]
    pub log_stream_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group_name_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    #[serde(default)]
    pub log_group_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsResponse {
    #[serde(default)]
    pub log_groups: Vec<LogGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsRequest {
    #[serde(default)]
    pub log_group_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name_prefix: Option<String>,
    /// `LogStreamName` (the default) or `LastEventTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descending: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// 1 to 50; absent: 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStream {
    #[serde(default)]
    pub log_stream_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ingestion_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsResponse {
    #[serde(default)]
    pub log_streams: Vec<LogStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsRequest {
    #[serde(default)]
    pub log_group_name: String,
    #[serde(default)]
    pub log_stream_name: String,
    /// Events at or after this (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Events before this (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// 1 to 10 000; absent: as many as fit in 1 MB, at most 10 000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    /// Without a token: the oldest events first (`true`) or the newest (`false`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from_head: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent {
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_time: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsResponse {
    #[serde(default)]
    pub events: Vec<OutputLogEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_forward_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_backward_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsRequest {
    #[serde(default)]
    pub log_group_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_stream_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// The simulator understands plain terms only (every term must occur).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsResponse {
    #[serde(default)]
    pub events: Vec<FilteredLogEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_with_their_tokens() {
        let json = r#"{"events": [{"timestamp": 1700000000123, "message": "hi", "ingestionTime": 1700000000200}],
            "nextForwardToken": "f/1/s", "nextBackwardToken": "b/0/s"}"#;
        let answer: GetLogEventsResponse = serde_json::from_str(json).unwrap();
        assert_eq!(answer.events[0].timestamp, 1_700_000_000_123);
        assert_eq!(answer.next_forward_token.as_deref(), Some("f/1/s"));
        let request = GetLogEventsRequest {
            log_group_name: "g".into(),
            log_stream_name: "s".into(),
            start_from_head: Some(true),
            ..Default::default()
        };
        let body = serde_json::to_value(&request).unwrap();
        assert_eq!(body["startFromHead"], true);
        assert!(body.get("nextToken").is_none());
    }
}
