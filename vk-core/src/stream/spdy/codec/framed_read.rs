//! Reading frames from an `AsyncRead`.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{FrameDecoder, FrameLimits};
use crate::stream::spdy::frame::{Frame, FrameError};

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("connection closed in the middle of a frame")]
    TruncatedFrame,
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Frames from a byte stream.
#[derive(Debug)]
pub struct FramedRead<R> {
    io: R,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl<R: AsyncRead + Unpin> FramedRead<R> {
    pub fn new(io: R, limits: FrameLimits) -> FramedRead<R> {
        FramedRead {
            io,
            buf: BytesMut::with_capacity(16 * 1024),
            decoder: FrameDecoder::new(limits),
        }
    }

    /// The next frame, or `Ok(None)` when the peer closed the connection between frames.
    ///
    /// Cancel-safe: bytes read before a cancellation stay buffered for the next call. After
    /// an error that is a stream error ([`FrameError::stream_error`]) reading can go on.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::TruncatedFrame)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::stream::spdy::frame::{Ping, golden};

    #[tokio::test]
    async fn reads_frames_split_across_writes() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut read = FramedRead::new(rx, FrameLimits::default());
        let writer = tokio::spawn(async move {
            for chunk in [&golden::PING_1[..5], &golden::PING_1[5..], golden::PING_1] {
                tx.write_all(chunk).await.expect("writes");
                tokio::task::yield_now().await;
            }
        });
        for _ in 0..2 {
            assert_eq!(
                read.next_frame().await.expect("reads"),
                Some(Frame::Ping(Ping { id: 1 }))
            );
        }
        writer.await.expect("writer");
        assert_eq!(read.next_frame().await.expect("clean eof"), None);
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(&golden::PING_1[..9]).await.expect("writes");
        drop(tx);
        let mut read = FramedRead::new(rx, FrameLimits::default());
        assert!(matches!(
            read.next_frame().await,
            Err(ReadError::TruncatedFrame)
        ));
    }
}
