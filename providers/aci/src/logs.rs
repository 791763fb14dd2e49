//! Container logs through `GET …/containers/{c}/logs?tail=N&timestamps=true`. ACI has no
//! streaming call and no "since", so `follow` polls the tail.
//!
//! The rule that keeps a followed log free of repeats and gaps: every poll asks with
//! timestamps (cut off again unless the client asked for them). The follower remembers the
//! newest timestamp it sent and how many lines carried exactly that timestamp. A polled line
//! is new when its timestamp is later than that one, or equal and beyond that count; older
//! lines were sent before. A gap is possible only if more than the poll's tail
//! (`follow_tail`, default 1000 lines) were written between two polls: when a full poll holds
//! no line already sent, the follower says so in the stream's log (a warning) and doubles its
//! tail for the next polls (up to 10 000). Lines without a timestamp pass through as they are.
//! The stream ends after the container has terminated (or its group is gone) and one more
//! poll found nothing new.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use hyper::Method;
use jiff::Timestamp;
use vk_core::provider::{LogOptions, LogStream, ProviderError};

use crate::client::{ArmClient, Kind};
use crate::wire::{self, ContainerGroup, Logs, paths};

/// The most lines a poll asks for after a gap.
pub const MAX_FOLLOW_TAIL: u64 = 10_000;

/// One read of the container's log.
pub async fn read(
    client: &ArmClient,
    group: &str,
    container: &str,
    tail: Option<u64>,
) -> Result<String, ProviderError> {
    let path = paths::container_logs(
        &client.subscription_id,
        &client.resource_group,
        group,
        container,
    );
    let tail = tail.map(|t| t.to_string());
    let mut query = vec![(paths::query::TIMESTAMPS, "true")];
    if let Some(t) = &tail {
        query.push((paths::query::TAIL, t));
    }
    let url = client.url(&path, &query);
    let (logs, _) = client
        .json::<Logs>(Method::GET, &url, None::<&()>, Kind::Read)
        .await?;
    Ok(logs.content)
}

fn split(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((ts, text)) => match ts.parse() {
            Ok(t) => (Some(t), text),
            Err(_) => (None, line),
        },
        None => (line.parse().ok(), ""),
    }
}

/// The lines of `content` the client asked for (since, timestamps) as it sees them.
pub fn shape(content: &str, opts: &LogOptions) -> String {
    let mut out = String::new();
    for line in content.lines() {
        let (ts, text) = split(line);
        if let (Some(since), Some(ts)) = (opts.since, ts)
            && ts < since
        {
            continue;
        }
        out.push_str(if opts.timestamps || ts.is_none() {
            line
        } else {
            text
        });
        out.push('\n');
    }
    out
}

/// What a follower has sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Position {
    last: Option<Timestamp>,
    at_last: usize,
}

impl Position {
    /// The lines of `content` not sent yet (timestamped as they came), and whether the poll
    /// overlapped what was sent (false: a gap is possible).
    pub fn take_new(&mut self, content: &str) -> (String, bool) {
        let mut out = String::new();
        let mut overlapped = self.last.is_none();
        let mut seen_at_last = 0usize;
        for line in content.lines() {
            let (ts, _) = split(line);
            let Some(ts) = ts else {
                out.push_str(line);
                out.push('\n');
                continue;
            };
            match self.last {
                Some(last) if ts < last => {
                    overlapped = true;
                    continue;
                }
                Some(last) if ts == last => {
                    overlapped = true;
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
            out.push_str(line);
            out.push('\n');
        }
        (out, overlapped || content.is_empty())
    }
}

struct Follower {
    client: Arc<ArmClient>,
    group: String,
    container: String,
    opts: LogOptions,
    position: Position,
    first: bool,
    last_poll: bool,
    tail: u64,
    remaining: Option<u64>,
    interval: Duration,
}

impl Follower {
    async fn poll(&mut self) -> Result<String, ProviderError> {
        let tail = if self.first {
            self.opts.tail_lines
        } else {
            Some(self.tail)
        };
        let content = read(&self.client, &self.group, &self.container, tail).await?;
        let first = std::mem::replace(&mut self.first, false);
        let (new, overlapped) = self.position.take_new(&content);
        let lines = content.lines().count() as u64;
        if !first && !overlapped && lines >= self.tail {
            tracing::warn!(group = %self.group, container = %self.container, tail = self.tail,
                "more log lines than one poll reads arrived between two polls; some may be missing");
            self.tail = (self.tail * 2).min(MAX_FOLLOW_TAIL);
        }
        Ok(shape(&new, &self.opts))
    }

    async fn finished(&self) -> Result<bool, ProviderError> {
        let url = self.client.url(&self.client.group_path(&self.group), &[]);
        let group = match self
            .client
            .json::<ContainerGroup>(Method::GET, &url, None::<&()>, Kind::Read)
            .await
        {
            Ok((g, _)) => g,
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let p = &group.properties;
        let view = p
            .containers
            .iter()
            .find(|c| c.name == self.container)
            .map(|c| c.properties.instance_view.as_ref())
            .or_else(|| {
                p.init_containers
                    .iter()
                    .find(|c| c.name == self.container)
                    .map(|c| c.properties.instance_view.as_ref())
            });
        let Some(view) = view else { return Ok(true) };
        let state = view
            .and_then(|v| v.current_state.as_ref())
            .and_then(|s| s.state.as_deref());
        Ok(state == Some(wire::container_state::TERMINATED))
    }

    fn limit(&mut self, mut chunk: String) -> String {
        let Some(remaining) = self.remaining else {
            return chunk;
        };
        let len = chunk.len() as u64;
        if len < remaining {
            self.remaining = Some(remaining - len);
            return chunk;
        }
        let mut cut = usize::try_from(remaining).unwrap_or(chunk.len());
        while !chunk.is_char_boundary(cut) {
            cut -= 1;
        }
        chunk.truncate(cut);
        self.remaining = Some(0);
        chunk
    }

    async fn next(&mut self) -> Option<Result<String, ProviderError>> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            match self.poll().await {
                Err(e) => return Some(Err(e)),
                Ok(chunk) if !chunk.is_empty() => return Some(Ok(self.limit(chunk))),
                Ok(_) => {}
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

/// A stream following the container's log until it terminates.
pub fn follow(
    client: Arc<ArmClient>,
    group: String,
    container: String,
    opts: LogOptions,
    interval: Duration,
    follow_tail: u64,
) -> LogStream {
    let follower = Follower {
        client,
        group,
        container,
        remaining: opts.limit_bytes,
        opts,
        position: Position::default(),
        first: true,
        last_poll: false,
        tail: follow_tail.clamp(1, MAX_FOLLOW_TAIL),
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
    fn positions_send_each_line_once() {
        let mut p = Position::default();
        let first = "2026-01-01T00:00:01.5Z a\n2026-01-01T00:00:02Z b\n2026-01-01T00:00:02Z b\n";
        assert_eq!(p.take_new(first).0, first);
        let second = "2026-01-01T00:00:02Z b\n2026-01-01T00:00:02Z b\n2026-01-01T00:00:02Z b\n2026-01-01T00:00:03Z c\n";
        let (new, overlapped) = p.take_new(second);
        assert_eq!(new, "2026-01-01T00:00:02Z b\n2026-01-01T00:00:03Z c\n");
        assert!(overlapped);
        assert_eq!(p.take_new(second).0, "");
        // A poll with nothing already sent: a gap is possible.
        let (new, overlapped) = p.take_new("2026-01-01T00:00:09Z z\n");
        assert_eq!(new, "2026-01-01T00:00:09Z z\n");
        assert!(!overlapped);
    }

    #[test]
    fn shaping_cuts_timestamps_and_applies_since() {
        let content = "2026-01-01T00:00:01Z a\n2026-01-01T00:00:03Z b\nplain\n";
        let opts = LogOptions {
            since: Some("2026-01-01T00:00:02Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(shape(content, &opts), "b\nplain\n");
        let opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(shape(content, &opts), content);
    }
}
