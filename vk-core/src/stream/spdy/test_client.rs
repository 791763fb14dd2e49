//! A minimal SPDY client for tests: opens streams the way moby/spdystream does and reads
//! whatever the server sends.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use super::codec::{FrameEncoder, FrameLimits, FramedRead};
use super::frame::{ControlHead, Data, Frame, Kind, StreamId};
use super::header_block::{HeaderBlock, HeaderDeflater};

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestClient<S> {
    reader: FramedRead<ReadHalf<S>>,
    writer: WriteHalf<S>,
    encoder: FrameEncoder,
    /// The client's own header compression (its encoder sends no header frames).
    deflater: HeaderDeflater,
    next_id: u32,
}

impl<S: AsyncRead + AsyncWrite> TestClient<S> {
    pub fn new(io: S) -> TestClient<S> {
        let (r, w) = tokio::io::split(io);
        TestClient {
            reader: FramedRead::new(r, FrameLimits::default()),
            writer: w,
            encoder: FrameEncoder::new(),
            deflater: HeaderDeflater::new(),
            next_id: 1,
        }
    }

    pub async fn send(&mut self, frame: impl Into<Frame>) {
        let mut buf = BytesMut::new();
        self.encoder
            .encode(&frame.into(), &mut buf)
            .expect("test frame encodes");
        self.send_raw(&buf).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("client writes");
        self.writer.flush().await.expect("client flushes");
    }

    /// Opens the next client stream with these headers.
    pub async fn open(&mut self, headers: &[(&str, &str)]) -> StreamId {
        let mut block = HeaderBlock::new();
        for (k, v) in headers {
            block.append(*k, *v);
        }
        let mut raw = Vec::new();
        block.encode(&mut raw).expect("test headers encode");
        self.open_with_block(&raw).await
    }

    /// Opens the next client stream with an uncompressed header block, valid or not.
    pub async fn open_with_block(&mut self, block: &[u8]) -> StreamId {
        let id = StreamId::from_wire(self.next_id);
        self.next_id += 2;
        let compressed = self.deflater.deflate(block).expect("deflates");
        let mut buf = BytesMut::new();
        ControlHead::new(Kind::SynStream, 0, 10 + compressed.len())
            .expect("fits")
            .encode(&mut buf);
        buf.put_u32(id.get());
        buf.put_u32(0);
        buf.put_u16(0);
        buf.put_slice(&compressed);
        self.send_raw(&buf).await;
        id
    }

    pub async fn data(&mut self, id: StreamId, payload: &[u8], fin: bool) {
        self.send(Data::new(id, Bytes::copy_from_slice(payload), fin))
            .await;
    }

    /// The next frame from the server; `None` when it closed the connection.
    pub async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, self.reader.next_frame())
            .await
            .expect("server answers in time")
            .expect("server frames decode")
    }

    /// Reads frames until the server closes, collecting each stream's DATA and FIN.
    pub async fn collect(&mut self) -> Transcript {
        let mut t = Transcript::default();
        while let Some(frame) = self.next().await {
            match &frame {
                Frame::Data(d) => {
                    t.data
                        .entry(d.stream_id)
                        .or_default()
                        .extend_from_slice(&d.payload);
                    if d.fin {
                        t.fin.push(d.stream_id);
                    }
                }
                _ => t.control.push(frame.clone()),
            }
        }
        t
    }

    /// Closes the client's write side (TCP FIN).
    pub async fn shutdown(&mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// What the server sent, by stream.
#[derive(Debug, Default)]
pub struct Transcript {
    pub data: HashMap<StreamId, Vec<u8>>,
    pub fin: Vec<StreamId>,
    pub control: Vec<Frame>,
}

impl Transcript {
    pub fn text(&self, id: StreamId) -> String {
        String::from_utf8_lossy(self.data.get(&id).map_or(&[][..], Vec::as_slice)).into_owned()
    }
}
