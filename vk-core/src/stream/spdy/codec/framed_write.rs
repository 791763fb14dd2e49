//! Writing frames to an `AsyncWrite`.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::FrameEncoder;
use crate::stream::spdy::frame::{Frame, FrameError};

/// Frames to a byte stream: frames are encoded into a buffer, and [`FramedWrite::flush`]
/// writes the buffer out, so a burst of frames costs one write.
#[derive(Debug)]
pub struct FramedWrite<W> {
    io: W,
    buf: BytesMut,
    encoder: FrameEncoder,
}

impl<W: AsyncWrite + Unpin> FramedWrite<W> {
    pub fn new(io: W) -> FramedWrite<W> {
        FramedWrite {
            io,
            buf: BytesMut::with_capacity(16 * 1024),
            encoder: FrameEncoder::new(),
        }
    }

    /// Encodes `frame` into the write buffer.
    pub fn buffer(&mut self, frame: &Frame) -> Result<(), FrameError> {
        self.encoder.encode(frame, &mut self.buf)
    }

    /// Bytes waiting to be written.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes out everything buffered. Cancel-safe: what was not written stays buffered.
    pub async fn flush(&mut self) -> io::Result<()> {
        while !self.buf.is_empty() {
            if self.io.write_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        self.io.flush().await
    }

    /// Flushes, then closes the write side (TCP FIN).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.io.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::stream::spdy::frame::{Ping, golden};

    #[tokio::test]
    async fn buffers_then_writes_once() {
        let (tx, mut rx) = tokio::io::duplex(64);
        let mut write = FramedWrite::new(tx);
        write.buffer(&Frame::Ping(Ping { id: 1 })).expect("encodes");
        write.buffer(&Frame::Ping(Ping { id: 1 })).expect("encodes");
        assert_eq!(write.buffered(), 24);
        write.shutdown().await.expect("writes");
        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.expect("reads");
        assert_eq!(got, [golden::PING_1, golden::PING_1].concat());
    }
}
