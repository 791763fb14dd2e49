//! The server side of a SPDY/3.1 session: stream state, flow control and the tasks that move
//! frames between the socket and the streams.
//!
//! One task reads frames and routes them to streams; another writes whatever streams and the
//! reader queue for it. Streams share one lock with both, and never hold it across an await.

mod connection;
mod recv;
mod state;
mod stream;

#[cfg(test)]
mod tests;

pub use connection::SpdyConnection;
pub use stream::{RecvStream, SendStream, SpdyStream};

use std::fmt;
use std::time::Duration;

use super::codec::FrameLimits;

/// The window both directions start with, per stream and (SPDY/3.1) per session.
pub const DEFAULT_WINDOW: u32 = 64 * 1024;

/// When this server holds back DATA for the peer's receive windows.
///
/// moby/spdystream (kube-apiserver's client) implements no flow control: it never sends
/// WINDOW_UPDATE and ignores ours. Honouring the 64 KiB default windows against it would stall
/// every stream after 64 KiB, so by default windows are only enforced once the peer shows that
/// it keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowControl {
    /// Stream windows count once the peer sends a stream WINDOW_UPDATE or announces
    /// INITIAL_WINDOW_SIZE; the session window once it sends a session (stream 0) update.
    /// Windows are tracked from the start either way, so late enforcement is exact.
    #[default]
    Auto,
    /// Enforce stream and session windows from the first byte (a strict SPDY/3.1 peer).
    Always,
    /// Never wait for windows.
    Never,
}

/// Settings of one SPDY connection.
#[derive(Clone, Debug)]
pub struct SpdyConfig {
    /// Streams open at once; further SYN_STREAMs get RST_STREAM REFUSED_STREAM.
    pub max_concurrent_streams: usize,
    /// Close the session after this long without a frame in either direction (the kubelet's
    /// streaming idle timeout). Clients keep sessions alive with PINGs.
    pub idle_timeout: Option<Duration>,
    pub limits: FrameLimits,
    pub flow_control: FlowControl,
    /// Bytes buffered per stream for a reader that is slower than the peer. A peer without
    /// flow control is then slowed down through TCP: the connection stops reading.
    pub stream_recv_buffer: usize,
    /// Largest DATA frame this side sends.
    pub max_send_frame: usize,
    /// Bytes queued for the socket across all streams before writers wait.
    pub send_buffer: usize,
    /// After a close, how long to let queued frames go out and wait for the peer to close
    /// first (closing with unread input would reset the TCP connection and lose our last
    /// frames).
    pub close_linger: Duration,
}

impl Default for SpdyConfig {
    fn default() -> Self {
        SpdyConfig {
            max_concurrent_streams: 100,
            idle_timeout: None,
            limits: FrameLimits::default(),
            flow_control: FlowControl::Auto,
            stream_recv_buffer: DEFAULT_WINDOW as usize,
            max_send_frame: 32 * 1024,
            send_buffer: 256 * 1024,
            close_linger: Duration::from_secs(5),
        }
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// This side closed it ([`SpdyConnection::close`], or the connection was dropped).
    Local,
    /// The peer closed the TCP connection.
    PeerClosed,
    /// No frame moved for [`SpdyConfig::idle_timeout`].
    IdleTimeout,
    /// The peer broke the protocol; a GOAWAY with PROTOCOL_ERROR was sent.
    Protocol(String),
    /// Reading or writing the socket failed.
    Io(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed by this side"),
            CloseReason::PeerClosed => f.write_str("closed by the peer"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseReason::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}
