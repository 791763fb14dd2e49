//! Container logs of the mock. Each run of a container (first start, then every restart) owns
//! a [`LogRun`]: timestamped lines in a `watch` channel, so a follower is woken on every new
//! line without the provider's state lock, and reads only what it has not sent yet. The
//! stream ends when the run is closed (the container terminated) or dropped (the instance was
//! deleted).

use std::collections::VecDeque;
use std::io::Write as _;

use bytes::Bytes;
use futures::StreamExt as _;
use jiff::Timestamp;
use tokio::sync::watch;
use vk_core::provider::{LogOptions, LogStream};

/// Oldest lines of a run are dropped past this, so a container running for days stays small.
const MAX_LINES_PER_RUN: usize = 50_000;
/// A non-follow read is sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct RunLog {
    /// Absolute index of `lines[0]`: lines dropped from the front keep followers' positions.
    first: u64,
    lines: VecDeque<(Timestamp, String)>,
    closed: bool,
}

impl RunLog {
    fn end(&self) -> u64 {
        self.first.saturating_add(self.lines.len() as u64)
    }
}

/// The log of one container run.
pub(crate) struct LogRun {
    tx: watch::Sender<RunLog>,
}

impl Default for LogRun {
    fn default() -> Self {
        Self::new()
    }
}

impl LogRun {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(RunLog::default());
        Self { tx }
    }

    /// Append a line; ignored once the run is closed.
    pub fn push(&self, at: Timestamp, line: String) {
        self.tx.send_if_modified(|log| {
            if log.closed {
                return false;
            }
            log.lines.push_back((at, line));
            if log.lines.len() > MAX_LINES_PER_RUN {
                log.lines.pop_front();
                log.first = log.first.saturating_add(1);
            }
            true
        });
    }

    /// No more lines: followers end once they have read everything.
    pub fn close(&self) {
        self.tx
            .send_if_modified(|log| !std::mem::replace(&mut log.closed, true));
    }

    /// The run's lines selected by `opts` (everything but `previous`, which picks the run).
    pub fn stream(&self, opts: &LogOptions) -> LogStream {
        let mut rx = self.tx.subscribe();
        let next = {
            let log = rx.borrow_and_update();
            start_index(&log, opts.tail_lines, opts.since)
        };
        let reader = Reader {
            rx,
            next,
            since: opts.since,
            timestamps: opts.timestamps,
            follow: opts.follow,
            remaining: opts.limit_bytes,
        };
        futures::stream::unfold(Some(reader), |state| async move {
            let mut reader = state?;
            if reader.remaining == Some(0) {
                return None;
            }
            loop {
                let (chunk, drained) = reader.read_chunk();
                if !chunk.is_empty() {
                    let (chunk, last) = reader.limit(chunk);
                    let next = if last { None } else { Some(reader) };
                    return Some((Ok(Bytes::from(chunk)), next));
                }
                if drained || !reader.follow {
                    return None;
                }
                if reader.rx.changed().await.is_err() {
                    // The run was dropped with its instance: send what is left, then end.
                    reader.follow = false;
                }
            }
        })
        .boxed()
    }

    #[cfg(test)]
    pub fn lines(&self) -> Vec<String> {
        self.tx
            .borrow()
            .lines
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }
}

/// Where a read starts: the oldest line not older than `since`, or fewer with `tail_lines`.
fn start_index(log: &RunLog, tail_lines: Option<u64>, since: Option<Timestamp>) -> u64 {
    let Some(tail) = tail_lines else {
        return log.first;
    };
    let mut start = log.end();
    let mut kept = 0u64;
    for (i, (at, _)) in log.lines.iter().enumerate().rev() {
        if kept >= tail {
            break;
        }
        if since.is_none_or(|s| *at >= s) {
            kept += 1;
            start = log.first.saturating_add(i as u64);
        }
    }
    start
}

struct Reader {
    rx: watch::Receiver<RunLog>,
    /// Absolute index of the next line to send.
    next: u64,
    since: Option<Timestamp>,
    timestamps: bool,
    follow: bool,
    /// Bytes still allowed by `limit_bytes`.
    remaining: Option<u64>,
}

impl Reader {
    /// The next formatted lines, and whether the run is closed and read to its end.
    fn read_chunk(&mut self) -> (Vec<u8>, bool) {
        let log = self.rx.borrow_and_update();
        let start = self.next.max(log.first);
        let skip = usize::try_from(start - log.first).unwrap_or(usize::MAX);
        let mut next = start;
        let mut buf = Vec::new();
        for (at, line) in log.lines.iter().skip(skip) {
            next += 1;
            if self.since.is_some_and(|s| *at < s) {
                continue;
            }
            if self.timestamps {
                // RFC 3339 with nanoseconds, trailing zeros trimmed, like the kubelet.
                let _ = write!(buf, "{at} ");
            }
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            if buf.len() >= CHUNK_BYTES {
                break;
            }
        }
        self.next = next;
        (buf, log.closed && next >= log.end())
    }

    /// Cut the chunk at `limit_bytes`; `true` when the limit is reached.
    fn limit(&mut self, mut chunk: Vec<u8>) -> (Vec<u8>, bool) {
        let Some(remaining) = self.remaining else {
            return (chunk, false);
        };
        let len = chunk.len() as u64;
        if len >= remaining {
            chunk.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
            self.remaining = Some(0);
            (chunk, true)
        } else {
            self.remaining = Some(remaining - len);
            (chunk, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::TryStreamExt as _;

    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    async fn read(stream: LogStream) -> String {
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        String::from_utf8(chunks.concat()).unwrap()
    }

    fn run_with(n: i64) -> LogRun {
        let run = LogRun::new();
        for i in 0..n {
            run.push(ts(i), format!("l{i}"));
        }
        run
    }

    #[tokio::test]
    async fn tail_since_limit_timestamps() {
        let run = run_with(5);
        let all = read(run.stream(&LogOptions::default())).await;
        assert_eq!(all, "l0\nl1\nl2\nl3\nl4\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(read(run.stream(&tail)).await, "l3\nl4\n");
        let since = LogOptions {
            since: Some(ts(3)),
            tail_lines: Some(10),
            ..Default::default()
        };
        assert_eq!(read(run.stream(&since)).await, "l3\nl4\n");
        let limit = LogOptions {
            limit_bytes: Some(7),
            ..Default::default()
        };
        assert_eq!(read(run.stream(&limit)).await, "l0\nl1\nl");
        let stamped = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(
            read(run.stream(&stamped)).await,
            "2023-11-14T22:13:24Z l4\n"
        );
        let zero = LogOptions {
            tail_lines: Some(0),
            ..Default::default()
        };
        assert_eq!(read(run.stream(&zero)).await, "");
    }

    #[tokio::test]
    async fn follow_until_closed_or_dropped() {
        let run = std::sync::Arc::new(run_with(1));
        let follow = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut stream = run.stream(&follow);
        assert_eq!(stream.next().await.unwrap().unwrap(), "l0\n");
        let writer = run.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            writer.push(ts(1), "l1".into());
            writer.close();
        });
        assert_eq!(read(stream).await, "l1\n");

        let run = run_with(1);
        let stream = run.stream(&follow);
        drop(run);
        assert_eq!(read(stream).await, "l0\n");
    }

    #[test]
    fn old_lines_are_dropped() {
        let run = run_with(MAX_LINES_PER_RUN as i64 + 3);
        let lines = run.lines();
        assert_eq!(lines.len(), MAX_LINES_PER_RUN);
        assert_eq!(lines[0], "l3");
    }
}
