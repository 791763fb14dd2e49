//! Container logs through `DescribeContainerLog`. The service has no streaming call, so
//! `follow` polls: each poll asks for the lines since the newest one already sent (StartTime,
//! to the second, with timestamps on), drops those already sent, and the stream ends once the
//! container has terminated and a last poll found nothing new.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use jiff::Timestamp;
use vk_core::provider::{LogOptions, LogStream, ProviderError};

use crate::client::EciClient;
use crate::wire::api::container_state;
use crate::wire::request::{DescribeContainerGroups, DescribeContainerLog};

/// The service returns at most this many lines per call.
pub const MAX_TAIL: u32 = 2000;
/// ... and at most this many bytes.
pub const MAX_LIMIT_BYTES: u64 = 1024 * 1024;

/// The request for a one-shot read with the caller's options.
pub fn request(group_id: &str, container: &str, opts: &LogOptions) -> DescribeContainerLog {
    DescribeContainerLog {
        region_id: String::new(),
        container_group_id: group_id.to_string(),
        container_name: container.to_string(),
        tail: opts
            .tail_lines
            .map(|t| u32::try_from(t).unwrap_or(MAX_TAIL).min(MAX_TAIL)),
        start_time: opts.since.map(|t| t.to_string()),
        since_seconds: None,
        limit_bytes: opts.limit_bytes.map(|b| b.clamp(1, MAX_LIMIT_BYTES)),
        timestamps: opts.timestamps,
        last_time: opts.previous,
    }
}

/// What a follower has already sent: the newest line's time, and how many lines carried
/// exactly that time (a later poll starting at that second returns them again).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Position {
    last: Option<Timestamp>,
    at_last: usize,
}

impl Position {
    /// Keep the lines of `content` (timestamped) not sent yet; `with_timestamps` keeps the
    /// timestamp in front of each line, else it is cut off.
    pub fn take_new(&mut self, content: &str, with_timestamps: bool) -> String {
        let mut out = String::new();
        let mut seen_at_last = 0usize;
        for line in content.lines() {
            let (ts, text) = match line.split_once(' ') {
                Some((ts, text)) => (ts.parse::<Timestamp>().ok(), text),
                None => (line.parse::<Timestamp>().ok(), ""),
            };
            let Some(ts) = ts else {
                // Not timestamped: nothing to de-duplicate by; pass it on.
                out.push_str(line);
                out.push('\n');
                continue;
            };
            match self.last {
                Some(last) if ts < last => continue,
                Some(last) if ts == last => {
                    seen_at_last += 1;
                    if seen_at_last <= self.at_last {
                        continue;
                    }
                    self.at_last += 1;
                }
                _ => {
                    self.last = Some(ts);
                    self.at_last = 1;
                    seen_at_last = 1;
                }
            }
            if with_timestamps {
                out.push_str(line);
            } else {
                out.push_str(text);
            }
            out.push('\n');
        }
        out
    }

    /// The StartTime of the next poll: the newest line's second.
    fn start_time(&self) -> Option<String> {
        self.last
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    }
}

struct Follower {
    client: Arc<EciClient>,
    group_id: String,
    container: String,
    opts: LogOptions,
    position: Position,
    first: bool,
    /// Set once the container was seen terminated: one more poll, then the end.
    last_poll: bool,
    remaining: Option<u64>,
    interval: Duration,
}

impl Follower {
    async fn poll(&mut self) -> Result<String, ProviderError> {
        let mut req = request(&self.group_id, &self.container, &self.opts);
        req.timestamps = true;
        req.limit_bytes = Some(MAX_LIMIT_BYTES);
        if self.first {
            self.first = false;
        } else {
            req.tail = Some(MAX_TAIL);
            req.start_time = self.position.start_time().or(req.start_time);
        }
        let answer = self.client.send(&req).await?;
        Ok(self
            .position
            .take_new(&answer.content, self.opts.timestamps))
    }

    /// Is the container done (terminated, or its group gone)?
    async fn finished(&self) -> Result<bool, ProviderError> {
        let answer = self
            .client
            .send(&DescribeContainerGroups {
                container_group_ids: vec![self.group_id.clone()],
                ..Default::default()
            })
            .await?;
        let Some(group) = answer
            .container_groups
            .iter()
            .find(|g| g.container_group_id == self.group_id)
        else {
            return Ok(true);
        };
        let state = group
            .containers
            .iter()
            .chain(&group.init_containers)
            .find(|c| c.name == self.container)
            .map(|c| c.current_state.state.as_str());
        Ok(match state {
            None => true,
            Some(s) => matches!(
                s,
                container_state::TERMINATED | "Succeeded" | "Failed" | "Completed"
            ),
        })
    }

    /// Cut at `limit_bytes`; `true` when the limit is reached.
    fn limit(&mut self, mut chunk: String) -> (String, bool) {
        let Some(remaining) = self.remaining else {
            return (chunk, false);
        };
        let len = chunk.len() as u64;
        if len < remaining {
            self.remaining = Some(remaining - len);
            return (chunk, false);
        }
        let mut cut = usize::try_from(remaining).unwrap_or(chunk.len());
        while !chunk.is_char_boundary(cut) {
            cut -= 1;
        }
        chunk.truncate(cut);
        self.remaining = Some(0);
        (chunk, true)
    }

    /// The next chunk, or `None` at the end.
    async fn next(&mut self) -> Option<Result<String, ProviderError>> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            let chunk = match self.poll().await {
                Ok(chunk) => chunk,
                Err(e) => return Some(Err(e)),
            };
            if !chunk.is_empty() {
                let (chunk, done) = self.limit(chunk);
                if done {
                    self.remaining = Some(0);
                }
                return Some(Ok(chunk));
            }
            if self.last_poll {
                return None;
            }
            match self.finished().await {
                Ok(true) => self.last_poll = true,
                Ok(false) => tokio::time::sleep(self.interval).await,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A stream that follows the container's log until it terminates.
pub fn follow(
    client: Arc<EciClient>,
    group_id: String,
    container: String,
    opts: LogOptions,
    interval: Duration,
) -> LogStream {
    let follower = Follower {
        client,
        group_id,
        container,
        remaining: opts.limit_bytes,
        opts,
        position: Position::default(),
        first: true,
        last_poll: false,
        interval,
    };
    futures::stream::unfold(follower, |mut f| async move {
        let item = f.next().await?;
        Some((item.map(Bytes::from), f))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_drop_lines_already_sent() {
        let mut p = Position::default();
        let first = "2024-01-01T00:00:01.5Z a\n2024-01-01T00:00:02Z b\n2024-01-01T00:00:02Z b\n";
        assert_eq!(p.take_new(first, false), "a\nb\nb\n");
        assert_eq!(p.start_time().as_deref(), Some("2024-01-01T00:00:02Z"));
        // The next poll starts at that second and returns both b's again, and a third.
        let second = "2024-01-01T00:00:02Z b\n2024-01-01T00:00:02Z b\n2024-01-01T00:00:02Z b\n2024-01-01T00:00:03Z c\n";
        assert_eq!(
            p.take_new(second, true),
            "2024-01-01T00:00:02Z b\n2024-01-01T00:00:03Z c\n"
        );
        assert_eq!(p.take_new(second, true), "");
        // Older lines are never repeated; lines without a timestamp pass.
        assert_eq!(
            p.take_new("2023-01-01T00:00:00Z old\nplain\n", false),
            "plain\n"
        );
    }

    #[test]
    fn one_shot_requests_respect_the_service_limits() {
        let opts = LogOptions {
            tail_lines: Some(10_000),
            limit_bytes: Some(u64::MAX),
            previous: true,
            timestamps: true,
            since: Some("2024-01-01T00:00:00Z".parse().unwrap()),
            follow: false,
        };
        let req = request("eci-1", "c", &opts);
        assert_eq!(req.tail, Some(MAX_TAIL));
        assert_eq!(req.limit_bytes, Some(MAX_LIMIT_BYTES));
        assert!(req.last_time && req.timestamps);
        assert_eq!(req.start_time.as_deref(), Some("2024-01-01T00:00:00Z"));
    }
}
