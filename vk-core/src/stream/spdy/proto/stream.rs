//! Stream handles: what the application reads from and writes to.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::state::{Reset, Shared};
use crate::stream::spdy::frame::{Data, RstStatus, StreamId};
use crate::stream::spdy::header_block::HeaderBlock;

/// A stream the peer opened: its headers and both directions.
///
/// Reading yields the peer's DATA until its FIN; writing sends DATA (waiting for flow-control
/// windows when the peer keeps them) and `shutdown` sends FIN. Dropping the write half sends
/// FIN too, so a writer that just goes away ends the stream cleanly for the peer.
#[derive(Debug)]
pub struct SpdyStream {
    headers: HeaderBlock,
    recv: RecvStream,
    send: SendStream,
}

impl SpdyStream {
    pub(super) fn new(shared: Arc<Shared>, id: StreamId, headers: HeaderBlock) -> SpdyStream {
        SpdyStream {
            headers,
            recv: RecvStream {
                shared: shared.clone(),
                id,
            },
            send: SendStream { shared, id },
        }
    }

    pub fn id(&self) -> StreamId {
        self.send.id
    }

    /// The headers of the peer's SYN_STREAM.
    pub fn headers(&self) -> &HeaderBlock {
        &self.headers
    }

    /// Separates the two directions so they can be used from different tasks.
    pub fn split(self) -> (RecvStream, SendStream) {
        (self.recv, self.send)
    }

    /// Ends the stream in both directions with RST_STREAM.
    pub fn reset(&self, status: RstStatus) {
        self.send.reset(status);
    }
}

impl AsyncRead for SpdyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for SpdyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

/// The receiving direction of a stream.
pub struct RecvStream {
    shared: Arc<Shared>,
    id: StreamId,
}

impl std::fmt::Debug for RecvStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvStream").field("id", &self.id).finish()
    }
}

impl RecvStream {
    pub fn id(&self) -> StreamId {
        self.id
    }
}

impl AsyncRead for RecvStream {
    /// Ends (reads 0 bytes) at the peer's FIN or when the session ends; fails if the stream
    /// was reset.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let shared = &self.shared;
        let mut st = shared.lock();
        let Some(slot) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Ok(()));
        };
        if let Some(front) = slot.recv_buf.front_mut() {
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                slot.recv_buf.pop_front();
            }
            slot.recv_buffered -= n;
            shared.credit(&mut st, self.id, n);
            drop(st);
            shared.recv_space.notify_one();
            return Poll::Ready(Ok(()));
        }
        if slot.recv_fin {
            return Poll::Ready(Ok(()));
        }
        match slot.reset {
            Some(Reset::Remote(status)) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    format!("stream reset by peer: {status}"),
                )));
            }
            Some(Reset::Local(status)) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("stream reset: {status}"),
                )));
            }
            None => {}
        }
        if st.closed.is_some() {
            return Poll::Ready(Ok(()));
        }
        if let Some(slot) = st.streams.get_mut(&self.id) {
            slot.recv_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        let shared = &self.shared;
        let mut st = shared.lock();
        let Some(slot) = st.streams.get_mut(&self.id) else {
            return;
        };
        slot.recv_handle = false;
        // Nobody will read what is buffered: give it back to the peer's windows.
        let dropped = std::mem::take(&mut slot.recv_buffered);
        slot.recv_buf.clear();
        shared.credit(&mut st, self.id, dropped);
        shared.maybe_remove(&mut st, self.id);
        drop(st);
        shared.recv_space.notify_one();
    }
}

/// The sending direction of a stream.
pub struct SendStream {
    shared: Arc<Shared>,
    id: StreamId,
}

impl std::fmt::Debug for SendStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendStream").field("id", &self.id).finish()
    }
}

impl SendStream {
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Ends the stream in both directions with RST_STREAM.
    pub fn reset(&self, status: RstStatus) {
        let mut st = self.shared.lock();
        self.shared.reset_stream(&mut st, self.id, status);
    }
}

fn closed(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, msg)
}

impl AsyncWrite for SendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let shared = &self.shared;
        let mut st = shared.lock();
        if st.write_shut || st.closed.is_some() {
            return Poll::Ready(Err(closed("SPDY connection closed")));
        }
        let (stream_flow, session_flow) = shared.flow(&st);
        let session_window = st.session_send_window;
        let over_budget = st.queued_data >= shared.config.send_buffer;
        let Some(slot) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Err(closed("stream closed")));
        };
        match slot.reset {
            Some(Reset::Remote(status)) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    format!("stream reset by peer: {status}"),
                )));
            }
            Some(Reset::Local(_)) => return Poll::Ready(Err(closed("stream reset"))),
            None => {}
        }
        if slot.send_fin {
            return Poll::Ready(Err(closed("stream already closed for writing")));
        }
        let mut n = buf.len().min(shared.config.max_send_frame.max(1));
        let mut window = i64::MAX;
        if stream_flow {
            window = window.min(slot.send_window);
        }
        if session_flow {
            window = window.min(session_window);
        }
        if window <= 0 {
            slot.send_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if over_budget {
            st.budget_waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        n = n.min(usize::try_from(window).unwrap_or(usize::MAX));
        let data = Data::new(self.id, Bytes::copy_from_slice(&buf[..n]), false);
        shared.send_data(&mut st, data);
        Poll::Ready(Ok(n))
    }

    /// Frames are handed to the connection's writer as they are written; there is nothing
    /// more to flush per stream.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends FIN.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shared = &self.shared;
        let mut st = shared.lock();
        let Some(slot) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Ok(()));
        };
        if slot.send_fin || slot.reset.is_some() {
            return Poll::Ready(Ok(()));
        }
        slot.send_fin = true;
        shared.send(&mut st, Data::new(self.id, Bytes::new(), true).into());
        shared.maybe_remove(&mut st, self.id);
        Poll::Ready(Ok(()))
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        let shared = &self.shared;
        let mut st = shared.lock();
        let Some(slot) = st.streams.get_mut(&self.id) else {
            return;
        };
        slot.send_handle = false;
        if !slot.send_fin && slot.reset.is_none() {
            slot.send_fin = true;
            shared.send(&mut st, Data::new(self.id, Bytes::new(), true).into());
        }
        shared.maybe_remove(&mut st, self.id);
    }
}
