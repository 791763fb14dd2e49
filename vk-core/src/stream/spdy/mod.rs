//! A server-side SPDY/3.1 implementation, in layers:
//!
//! - [`frame`]: every frame type, decoded from and encoded to bytes;
//! - [`header_block`]: name/value blocks and their per-connection zlib compression;
//! - [`codec`]: frames read from / written to tokio I/O, with size limits;
//! - [`SpdyConnection`] / [`SpdyStream`]: the session, its streams and flow control;
//! - [`upgrade`]: the HTTP/1.1 `Upgrade: SPDY/3.1` handshake with hyper.
//!
//! The peer is moby/spdystream, as used by kube-apiserver and client-go. It implements no flow
//! control (see [`FlowControl`]), writes one DATA frame per `Write` call (up to 16 MiB), and
//! opens every stream itself: this server only ever accepts.

pub mod codec;
pub mod frame;
pub mod header_block;
mod proto;
pub mod upgrade;

pub use proto::{
    CloseReason, DEFAULT_WINDOW, FlowControl, RecvStream, SendStream, SpdyConfig, SpdyConnection,
    SpdyStream,
};

#[cfg(test)]
pub(crate) mod test_client;
