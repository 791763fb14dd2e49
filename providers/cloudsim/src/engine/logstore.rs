//! The log of one container run: timestamped lines (stdout and stderr interleaved as they
//! arrived), capped so a chatty container stays small. A face reads it two ways: a selection
//! (ECI's DescribeContainerLog) or a stream with the kubelet's options, which can follow the
//! run: lines live in a `watch` channel, so a follower is woken on every new line without the
//! engine's lock and reads only what it has not sent yet. A stream ends when the run is closed
//! (the container terminated) or its store dropped (the group went away).

use std::collections::VecDeque;
use std::io::Write as _;

use bytes::Bytes;
use futures::StreamExt as _;
use jiff::Timestamp;
use tokio::sync::watch;
use vk_core::provider::{LogOptions, LogStream};

use super::clock::Clock;

/// A line longer than this is split, as container runtimes do.
const MAX_LINE: usize = 16 * 1024;
/// A non-follow read is sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Lines {
    /// Absolute index of `lines[0]`: lines dropped from the front keep followers' positions.
    first: u64,
    lines: VecDeque<(Timestamp, String)>,
    closed: bool,
}

impl Lines {
    fn end(&self) -> u64 {
        self.first.saturating_add(self.lines.len() as u64)
    }
}

#[derive(Debug)]
pub struct LogStore {
    tx: watch::Sender<Lines>,
    max_lines: usize,
    clock: Clock,
}

impl LogStore {
    pub fn new(max_lines: usize) -> Self {
        Self::with_clock(max_lines, Clock::new())
    }

    /// A store whose lines are stamped by `clock` (the engine's).
    pub fn with_clock(max_lines: usize, clock: Clock) -> Self {
        Self {
            tx: watch::channel(Lines::default()).0,
            max_lines: max_lines.max(1),
            clock,
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn push(&self, line: &str) {
        self.push_at(self.clock.now(), line);
    }

    /// Append a line (split when too long); ignored once the run is closed.
    pub fn push_at(&self, at: Timestamp, line: &str) {
        let max_lines = self.max_lines;
        self.tx.send_if_modified(|log| {
            if log.closed {
                return false;
            }
            let mut rest = line;
            loop {
                let mut cut = rest.len().min(MAX_LINE);
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                log.lines.push_back((at, rest[..cut].to_string()));
                if log.lines.len() > max_lines {
                    log.lines.pop_front();
                    log.first = log.first.saturating_add(1);
                }
                rest = &rest[cut..];
                if rest.is_empty() {
                    break;
                }
            }
            true
        });
    }

    /// No more lines: followers end once they have read everything.
    pub fn close(&self) {
        self.tx
            .send_if_modified(|log| !std::mem::replace(&mut log.closed, true));
    }

    /// The lines at or after `since`, the last `tail` of them.
    pub fn select(
        &self,
        since: Option<Timestamp>,
        tail: Option<usize>,
    ) -> Vec<(Timestamp, String)> {
        let log = self.tx.borrow();
        let selected: Vec<_> = log
            .lines
            .iter()
            .filter(|(at, _)| since.is_none_or(|s| *at >= s))
            .cloned()
            .collect();
        match tail {
            Some(n) if n < selected.len() => selected[selected.len() - n..].to_vec(),
            _ => selected,
        }
    }

    /// Every line kept, each with its absolute index (lines dropped from the front keep
    /// their indices taken), for readers that page by position (CloudWatch Logs' tokens).
    pub fn indexed(&self) -> Vec<(u64, Timestamp, String)> {
        let log = self.tx.borrow();
        log.lines
            .iter()
            .enumerate()
            .map(|(i, (at, line))| (log.first.saturating_add(i as u64), *at, line.clone()))
            .collect()
    }

    /// The lines selected by the kubelet's `opts` (all but `previous`, which picks the run) as
    /// bytes, following the run with `follow`.
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
                    // The store was dropped with its group: send what is left, then end.
                    reader.follow = false;
                }
            }
        })
        .boxed()
    }
}

/// Where a read starts: the oldest line not older than `since`, or fewer with `tail_lines`.
fn start_index(log: &Lines, tail_lines: Option<u64>, since: Option<Timestamp>) -> u64 {
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
    rx: watch::Receiver<Lines>,
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
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn select_since_and_tail_and_cap() {
        let store = LogStore::new(3);
        for i in 0..4 {
            store.push_at(ts(i), &format!("l{i}"));
        }
        let all: Vec<String> = store.select(None, None).into_iter().map(|l| l.1).collect();
        assert_eq!(all, ["l1", "l2", "l3"]);
        let since: Vec<String> = store
            .select(Some(ts(2)), None)
            .into_iter()
            .map(|l| l.1)
            .collect();
        assert_eq!(since, ["l2", "l3"]);
        assert_eq!(store.select(None, Some(1))[0].1, "l3");
        assert!(store.select(None, Some(0)).is_empty());
    }

    #[test]
    fn long_lines_are_split() {
        let store = LogStore::new(10);
        store.push(&"é".repeat(MAX_LINE));
        let lines = store.select(None, None);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|(_, l)| l.len() <= MAX_LINE));
    }

    async fn read(stream: LogStream) -> String {
        use futures::TryStreamExt as _;
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        String::from_utf8(chunks.concat()).unwrap()
    }

    fn store_with(n: i64) -> LogStore {
        let store = LogStore::new(100);
        for i in 0..n {
            store.push_at(ts(i), &format!("l{i}"));
        }
        store
    }

    #[tokio::test]
    async fn stream_tail_since_limit_timestamps() {
        let store = store_with(5);
        let all = read(store.stream(&LogOptions::default())).await;
        assert_eq!(all, "l0\nl1\nl2\nl3\nl4\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(read(store.stream(&tail)).await, "l3\nl4\n");
        let since = LogOptions {
            since: Some(ts(3)),
            tail_lines: Some(10),
            ..Default::default()
        };
        assert_eq!(read(store.stream(&since)).await, "l3\nl4\n");
        let limit = LogOptions {
            limit_bytes: Some(7),
            ..Default::default()
        };
        assert_eq!(read(store.stream(&limit)).await, "l0\nl1\nl");
        let stamped = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(
            read(store.stream(&stamped)).await,
            "2023-11-14T22:13:24Z l4\n"
        );
        let zero = LogOptions {
            tail_lines: Some(0),
            ..Default::default()
        };
        assert_eq!(read(store.stream(&zero)).await, "");
    }

    #[tokio::test]
    async fn a_follower_ends_when_the_run_closes_or_goes() {
        let store = std::sync::Arc::new(store_with(1));
        let follow = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut stream = store.stream(&follow);
        assert_eq!(stream.next().await.unwrap().unwrap(), "l0\n");
        let writer = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            writer.push_at(ts(1), "l1");
            writer.close();
            writer.push_at(ts(2), "after the close");
        });
        assert_eq!(read(stream).await, "l1\n");

        let store = store_with(1);
        let stream = store.stream(&follow);
        drop(store);
        assert_eq!(read(stream).await, "l0\n");
    }

    #[test]
    fn a_follower_keeps_its_place_when_old_lines_go() {
        let store = LogStore::new(2);
        for i in 0..3 {
            store.push_at(ts(i), &format!("l{i}"));
        }
        let log = store.tx.borrow();
        assert_eq!((log.first, log.end()), (1, 3));
    }
}
