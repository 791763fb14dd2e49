//! The benchmark's provider: one container whose `follow` log is generated while it is read.
//! Every chunk is made when the server polls for the next one, so nothing is buffered ahead
//! of the consumer and the process holds at most one chunk of log at a time.

use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use jiff::Timestamp;
use vk_core::provider::{
    ExecIo, ExecOutcome, InstanceStatus, LogOptions, LogStream, NodeCapacity, PodRef, PodStats,
    Provider, ProviderError, ResolvedPod, StatusSource,
};

/// Every line is this long, newline included (like a verbose build log line).
pub const LINE_BYTES: usize = 100;

/// Writes `total` bytes of timestamped lines, `chunk` bytes (whole lines) per stream item.
pub struct Generator {
    pub total: u64,
    pub chunk: usize,
}

impl Generator {
    pub fn new(total: u64, chunk: usize) -> Self {
        Self {
            total,
            chunk: chunk.max(LINE_BYTES),
        }
    }

    fn stream(&self) -> LogStream {
        let lines_per_chunk = (self.chunk / LINE_BYTES).max(1);
        let state = (self.total, 0u64);
        futures::stream::unfold(state, move |(remaining, seq)| async move {
            if remaining == 0 {
                return None;
            }
            let (bytes, next_seq) = chunk_of_lines(seq, lines_per_chunk, remaining);
            let left = remaining - bytes.len() as u64;
            Some((Ok(bytes), (left, next_seq)))
        })
        .boxed()
    }
}

/// Lines `seq..seq + lines` stamped with the current time, cut to at most `remaining` bytes;
/// a cut line still ends with a newline. The lines of one chunk share a timestamp, as lines
/// a container writes within the same microsecond would.
fn chunk_of_lines(seq: u64, lines: usize, remaining: u64) -> (Bytes, u64) {
    let stamp = Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let mut buf = BytesMut::with_capacity(lines * LINE_BYTES);
    let mut line = String::with_capacity(LINE_BYTES);
    let mut seq = seq;
    for _ in 0..lines {
        line.clear();
        // Writing to a String cannot fail.
        let _ = write!(line, "{stamp} INFO build step line {seq:>12} ");
        while line.len() < LINE_BYTES - 1 {
            line.push('.');
        }
        line.truncate(LINE_BYTES - 1);
        line.push('\n');
        buf.put_slice(line.as_bytes());
        seq += 1;
    }
    let limit = usize::try_from(remaining).unwrap_or(usize::MAX);
    if buf.len() > limit {
        buf.truncate(limit);
        if let Some(last) = buf.last_mut() {
            *last = b'\n';
        }
    }
    (buf.freeze(), seq)
}

#[async_trait]
impl Provider for Generator {
    fn name(&self) -> &str {
        "bench"
    }

    async fn create(&self, _: &ResolvedPod) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn update(&self, _: &ResolvedPod) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete(&self, _: &PodRef, _: Duration) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        Ok(vec![])
    }

    fn status_source(&self) -> StatusSource {
        StatusSource::Poll(Duration::from_secs(3600))
    }

    async fn logs(
        &self,
        _pod: &PodRef,
        _container: &str,
        opts: &LogOptions,
    ) -> Result<LogStream, ProviderError> {
        if !opts.follow {
            return Err(ProviderError::Unsupported(
                "the benchmark container is only followed (follow=true)".into(),
            ));
        }
        Ok(self.stream())
    }

    fn capacity(&self) -> NodeCapacity {
        NodeCapacity {
            cpu_millis: 8000,
            memory_bytes: 32 << 30,
            pods: 10,
            ephemeral_storage_bytes: 100 << 30,
        }
    }

    async fn ping(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        Ok(vec![])
    }

    async fn exec(
        &self,
        _pod: &PodRef,
        _container: &str,
        _command: Vec<String>,
        _io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        Err(ProviderError::Unsupported(
            "the log benchmark's provider only produces logs".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generates_exactly_the_bytes_asked_in_whole_lines() {
        let generator = Generator::new(10 * LINE_BYTES as u64 + 42, 4 * LINE_BYTES);
        let chunks: Vec<Bytes> = generator
            .stream()
            .map(|c| c.unwrap())
            .collect::<Vec<_>>()
            .await;
        assert_eq!(chunks.len(), 3);
        let all: Vec<u8> = chunks.concat();
        assert_eq!(all.len(), 10 * LINE_BYTES + 42);
        assert_eq!(all.iter().filter(|b| **b == b'\n').count(), 11);
        let text = String::from_utf8(all).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(first.len(), LINE_BYTES - 1);
        let (stamp, rest) = first.split_once(' ').unwrap();
        assert!(stamp.parse::<Timestamp>().is_ok(), "{stamp}");
        assert!(rest.starts_with("INFO build step line            0 "));
        assert!(text.lines().nth(9).unwrap().contains(" line            9 "));
        assert!(text.ends_with('\n'));
    }
}
