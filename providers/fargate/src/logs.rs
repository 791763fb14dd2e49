//! Container logs from CloudWatch Logs: the awslogs driver writes container `c` of task `t`
//! to stream `<prefix>/<c>/<t>` of the configured group, and `GetLogEvents` reads it.
//!
//! - A one-shot read without `--tail` reads from the head, following `nextForwardToken` until
//!   an answer hands back the token it was sent (nothing more); with `--tail N` it asks for
//!   the newest N events (`startFromHead: false`, `limit: N`); `--since` is `startTime`.
//! - `--follow` reads as above, then keeps asking with the last `nextForwardToken`: each
//!   event is read exactly once, so nothing repeats and nothing is skipped. While nothing new
//!   arrives it waits `log_poll_interval_ms` between polls; it ends once the container has
//!   stopped (or its task is gone) and one more poll found nothing new.
//! - `--timestamps` prefixes each line with the event's time (RFC 3339, nanoseconds, as the
//!   kubelet writes it); `--limit-bytes` cuts the stream after that many bytes.
//! - A stream that does not exist yet (the container has not started) reads as empty.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use vk_core::provider::{LogOptions, LogStream, ProviderError};

use crate::client::{Api, AwsClient, FargateError};
use crate::wire::logs::{GetLogEventsRequest, GetLogEventsResponse, MAX_EVENTS, OutputLogEvent};

/// Where a container's events are.
#[derive(Clone, Debug)]
pub struct Source {
    pub group: String,
    pub stream: String,
}

impl Source {
    pub fn new(group: &str, prefix: &str, container: &str, task_arn: &str) -> Self {
        let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
        Self {
            group: group.to_string(),
            stream: format!("{prefix}/{container}/{task_id}"),
        }
    }
}

/// Says whether the container has stopped for good (or its task is gone).
pub type Finished = Arc<dyn Fn() -> bool + Send + Sync>;

/// One line as the client sees it.
pub fn line(e: &OutputLogEvent, timestamps: bool) -> String {
    let mut out = String::new();
    if timestamps && let Ok(t) = jiff::Timestamp::from_millisecond(e.timestamp) {
        out.push_str(&format!("{t:.9} "));
    }
    out.push_str(e.message.strip_suffix('\n').unwrap_or(&e.message));
    out.push('\n');
    out
}

async fn get(
    client: &AwsClient,
    request: &GetLogEventsRequest,
) -> Result<Option<GetLogEventsResponse>, FargateError> {
    match client
        .call::<_, GetLogEventsResponse>(Api::Logs, "GetLogEvents", request)
        .await
    {
        Ok(answer) => Ok(Some(answer)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first read: the events the options ask for, and the token to go on from (`None`: the
/// stream does not exist yet).
async fn first(
    client: &AwsClient,
    source: &Source,
    opts: &LogOptions,
) -> Result<(Vec<OutputLogEvent>, Option<String>), FargateError> {
    let mut request = GetLogEventsRequest {
        log_group_name: source.group.clone(),
        log_stream_name: source.stream.clone(),
        start_time: opts.since.map(|s| s.as_millisecond()),
        ..Default::default()
    };
    if let Some(tail) = opts.tail_lines {
        if tail == 0 {
            // Nothing old: only the token after the newest event.
            request.limit = Some(1);
            request.start_from_head = Some(false);
            let Some(answer) = get(client, &request).await? else {
                return Ok((Vec::new(), None));
            };
            return Ok((Vec::new(), answer.next_forward_token));
        }
        request.limit = Some(i32::try_from(tail.min(MAX_EVENTS as u64)).unwrap_or(10_000));
        request.start_from_head = Some(false);
        let Some(answer) = get(client, &request).await? else {
            return Ok((Vec::new(), None));
        };
        return Ok((answer.events, answer.next_forward_token));
    }
    request.start_from_head = Some(true);
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        request.next_token = token.clone();
        let Some(answer) = get(client, &request).await? else {
            return Ok((events, None));
        };
        let empty = answer.events.is_empty();
        events.extend(answer.events);
        let next = answer.next_forward_token;
        if empty || next.is_none() || next == token {
            return Ok((events, next.or(token)));
        }
        token = next;
    }
}

/// A one-shot read.
pub async fn read(
    client: &AwsClient,
    source: &Source,
    opts: &LogOptions,
) -> Result<String, ProviderError> {
    let (events, _) = first(client, source, opts).await?;
    Ok(events.iter().map(|e| line(e, opts.timestamps)).collect())
}

struct Follower {
    client: Arc<AwsClient>,
    source: Source,
    opts: LogOptions,
    token: Option<String>,
    started: bool,
    last_poll: bool,
    done: bool,
    remaining: Option<u64>,
    interval: Duration,
    finished: Finished,
}

impl Follower {
    async fn poll(&mut self) -> Result<String, ProviderError> {
        if !self.started {
            let (events, token) = first(&self.client, &self.source, &self.opts).await?;
            if token.is_some() {
                self.started = true;
                self.token = token;
            }
            return Ok(events
                .iter()
                .map(|e| line(e, self.opts.timestamps))
                .collect());
        }
        let mut out = String::new();
        loop {
            let request = GetLogEventsRequest {
                log_group_name: self.source.group.clone(),
                log_stream_name: self.source.stream.clone(),
                next_token: self.token.clone(),
                start_from_head: Some(true),
                ..Default::default()
            };
            let Some(answer) = get(&self.client, &request).await? else {
                return Ok(out);
            };
            let empty = answer.events.is_empty();
            for e in &answer.events {
                out.push_str(&line(e, self.opts.timestamps));
            }
            let same =
                answer.next_forward_token.is_none() || answer.next_forward_token == self.token;
            if answer.next_forward_token.is_some() {
                self.token = answer.next_forward_token;
            }
            if empty || same {
                return Ok(out);
            }
        }
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
        let mut cut = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        while !chunk.is_char_boundary(cut) {
            cut -= 1;
        }
        chunk.truncate(cut);
        self.remaining = Some(0);
        self.done = true;
        chunk
    }

    async fn next(&mut self) -> Option<Result<Bytes, ProviderError>> {
        loop {
            if self.done {
                return None;
            }
            // Asked before the poll: a stop seen here was after everything the poll reads.
            let finished = (self.finished)();
            let chunk = match self.poll().await {
                Ok(c) => c,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if !chunk.is_empty() {
                let chunk = self.limit(chunk);
                return Some(Ok(Bytes::from(chunk)));
            }
            if finished {
                if self.last_poll {
                    return None;
                }
                self.last_poll = true;
                continue;
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

/// Follow the container's stream until it has stopped.
pub fn follow(
    client: Arc<AwsClient>,
    source: Source,
    opts: LogOptions,
    interval: Duration,
    finished: Finished,
) -> LogStream {
    let follower = Follower {
        client,
        source,
        remaining: opts.limit_bytes,
        opts,
        token: None,
        started: false,
        last_poll: false,
        done: false,
        interval,
        finished,
    };
    futures::stream::unfold(follower, |mut f| async move {
        let item = f.next().await?;
        Some((item, f))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_kubelets_timestamps_when_asked() {
        let e = OutputLogEvent {
            timestamp: 1_700_000_000_123,
            message: "hello\n".into(),
            ingestion_time: None,
        };
        assert_eq!(line(&e, false), "hello\n");
        assert_eq!(line(&e, true), "2023-11-14T22:13:20.123000000Z hello\n");
        let s = Source::new("g", "vk", "app", "arn:aws:ecs:r:1:task/c/abc");
        assert_eq!(s.stream, "vk/app/abc");
    }
}
