//! SPDY/3 frames: one file per frame type, each with `decode` (from a payload that the codec
//! has already cut out of the byte stream) and `encode` (appending the whole frame to a buffer).
//!
//! Frames that carry a name/value header block (SYN_STREAM, SYN_REPLY, HEADERS) take the
//! connection's stateful [`HeaderInflater`](super::header_block::HeaderInflater) and
//! [`HeaderDeflater`](super::header_block::HeaderDeflater): SPDY compresses every header
//! block of one direction of a connection as a single zlib stream.
//!
//! Decoders never panic: every length is checked before it is used, and every failure is a
//! [`FrameError`] that says whether it breaks the session or only the stream.

mod data;
mod go_away;
mod head;
mod headers;
mod ping;
mod rst_stream;
mod settings;
mod stream_headers;
mod syn_reply;
mod syn_stream;
mod window_update;

pub use data::Data;
pub use go_away::{GoAway, GoAwayStatus};
pub use head::{ControlHead, DataHead, HEAD_LEN, Head, Kind, MAX_PAYLOAD_LEN, SPDY_VERSION};
pub use headers::Headers;
pub use ping::Ping;
pub use rst_stream::{RstStatus, RstStream};
pub use settings::{Setting, SettingId, Settings};
pub use syn_reply::SynReply;
pub use syn_stream::SynStream;
pub use window_update::{MAX_WINDOW, WindowUpdate};

use std::fmt;

use super::header_block::{CompressionError, HeaderBlockError};

/// A 31-bit stream identifier. Clients open odd ids, servers even ones; 0 is not a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u32);

impl StreamId {
    /// Not a stream: what GOAWAY carries when no stream was accepted, and what a session-wide
    /// WINDOW_UPDATE (SPDY/3.1) is addressed to.
    pub const ZERO: StreamId = StreamId(0);
    /// The largest id a 31-bit field can carry.
    pub const MAX: StreamId = StreamId(0x7fff_ffff);

    /// The id in a wire field whose top bit is reserved: that bit is ignored.
    pub fn from_wire(value: u32) -> StreamId {
        StreamId(value & 0x7fff_ffff)
    }

    /// `None` when the value does not fit in 31 bits.
    pub fn new(value: u32) -> Option<StreamId> {
        (value <= Self::MAX.0).then_some(StreamId(value))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Odd ids are opened by the client (the side that made the TCP connection).
    pub fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Any SPDY/3 frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream(SynStream),
    SynReply(SynReply),
    RstStream(RstStream),
    Settings(Settings),
    Ping(Ping),
    GoAway(GoAway),
    Headers(Headers),
    WindowUpdate(WindowUpdate),
    Data(Data),
    /// A control frame of a type this implementation does not know (NOOP from SPDY/2,
    /// CREDENTIAL, or a later extension). Its payload has been skipped; receivers ignore it.
    Unknown {
        kind: u16,
        flags: u8,
        length: u32,
    },
}

impl Frame {
    /// The stream the frame belongs to, if it belongs to one.
    pub fn stream_id(&self) -> Option<StreamId> {
        match self {
            Frame::SynStream(f) => Some(f.stream_id),
            Frame::SynReply(f) => Some(f.stream_id),
            Frame::RstStream(f) => Some(f.stream_id),
            Frame::Headers(f) => Some(f.stream_id),
            Frame::WindowUpdate(f) if !f.stream_id.is_zero() => Some(f.stream_id),
            Frame::Data(f) => Some(f.stream_id),
            _ => None,
        }
    }
}

impl From<SynStream> for Frame {
    fn from(f: SynStream) -> Frame {
        Frame::SynStream(f)
    }
}
impl From<SynReply> for Frame {
    fn from(f: SynReply) -> Frame {
        Frame::SynReply(f)
    }
}
impl From<RstStream> for Frame {
    fn from(f: RstStream) -> Frame {
        Frame::RstStream(f)
    }
}
impl From<Settings> for Frame {
    fn from(f: Settings) -> Frame {
        Frame::Settings(f)
    }
}
impl From<Ping> for Frame {
    fn from(f: Ping) -> Frame {
        Frame::Ping(f)
    }
}
impl From<GoAway> for Frame {
    fn from(f: GoAway) -> Frame {
        Frame::GoAway(f)
    }
}
impl From<Headers> for Frame {
    fn from(f: Headers) -> Frame {
        Frame::Headers(f)
    }
}
impl From<WindowUpdate> for Frame {
    fn from(f: WindowUpdate) -> Frame {
        Frame::WindowUpdate(f)
    }
}
impl From<Data> for Frame {
    fn from(f: Data) -> Frame {
        Frame::Data(f)
    }
}

/// Why a frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("unsupported SPDY version {0} (only 3 is spoken)")]
    UnsupportedVersion(u16),
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed {kind} frame: {reason}")]
    Malformed {
        kind: &'static str,
        reason: &'static str,
    },
    /// The connection's header compression state is broken: nothing after this can be read.
    #[error("header block compression: {0}")]
    Compression(#[from] CompressionError),
    /// The header block inflated fine but its contents are invalid. The compression state is
    /// intact, so only this stream is affected.
    #[error("invalid header block on stream {stream_id}: {source}")]
    HeaderBlock {
        stream_id: StreamId,
        source: HeaderBlockError,
    },
    /// A frame to be sent does not fit the wire format.
    #[error("cannot encode {kind} frame: {reason}")]
    Encode {
        kind: &'static str,
        reason: &'static str,
    },
}

impl FrameError {
    /// `Some` when the error only breaks one stream: the receiver answers with RST_STREAM
    /// and keeps the session. `None` means the session is unusable (send GOAWAY, close).
    pub fn stream_error(&self) -> Option<(StreamId, RstStatus)> {
        match self {
            FrameError::HeaderBlock { stream_id, .. } => {
                Some((*stream_id, RstStatus::PROTOCOL_ERROR))
            }
            _ => None,
        }
    }

    fn malformed(kind: &'static str, reason: &'static str) -> FrameError {
        FrameError::Malformed { kind, reason }
    }
}

/// Reads a big-endian u32 at `at`; callers check the length first, this checks again.
fn read_u32(src: &[u8], at: usize, kind: &'static str) -> Result<u32, FrameError> {
    src.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or(FrameError::malformed(kind, "truncated"))
}

/// Fails unless a fixed-size control frame has exactly `expected` payload bytes.
fn expect_len(src: &[u8], expected: usize, kind: &'static str) -> Result<(), FrameError> {
    if src.len() == expected {
        Ok(())
    } else {
        Err(FrameError::malformed(kind, "wrong length"))
    }
}

/// Compresses `headers` for a frame on `stream_id`.
fn deflate_block(
    headers: &super::header_block::HeaderBlock,
    deflater: &mut super::header_block::HeaderDeflater,
    stream_id: StreamId,
) -> Result<Vec<u8>, FrameError> {
    let mut block = Vec::new();
    headers
        .encode(&mut block)
        .map_err(|source| FrameError::HeaderBlock { stream_id, source })?;
    Ok(deflater.deflate(&block)?)
}

/// Inflates and parses the header block of a frame on `stream_id`. Inflation errors break the
/// session; a block that inflates but does not parse only breaks the stream.
fn inflate_block(
    compressed: &[u8],
    inflater: &mut super::header_block::HeaderInflater,
    stream_id: StreamId,
) -> Result<super::header_block::HeaderBlock, FrameError> {
    let block = inflater.inflate(compressed)?;
    super::header_block::HeaderBlock::decode(&block)
        .map_err(|source| FrameError::HeaderBlock { stream_id, source })
}

/// Flag shared by SYN_STREAM, SYN_REPLY, HEADERS and DATA: the sender's last frame on the stream.
pub const FLAG_FIN: u8 = 0x01;

#[cfg(test)]
pub(crate) mod golden {
    //! Frames written by moby/spdystream v0.5.1's framer (the client kube-apiserver uses),
    //! in this order on one connection, so the header blocks share one zlib stream.

    pub const SYN_STREAM_1_ERROR: &[u8] = &[
        0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x62, 0x60, 0x60, 0x60, 0x04, 0xa7,
        0xb3, 0x92, 0xa2, 0xd4, 0xc4, 0x5c, 0x68, 0x51, 0xc2, 0x9a, 0x0a, 0x0a, 0x68, 0x00, 0x00,
        0x00, 0x00, 0xff, 0xff,
    ];
    pub const SYN_STREAM_3_STDIN_FIN: &[u8] = &[
        0x80, 0x03, 0x00, 0x01, 0x01, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xc2, 0x2e, 0x55, 0x5c, 0x92, 0x92, 0x99, 0x07, 0x00, 0x00, 0x00, 0xff,
        0xff,
    ];
    pub const SYN_REPLY_1_EMPTY: &[u8] = &[
        0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x01, 0x62, 0x60, 0x60,
        0x60, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    ];
    pub const HEADERS_1_PORTS: &[u8] = &[
        0x80, 0x03, 0x00, 0x08, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x01, 0x82, 0x4a, 0xb3,
        0x14, 0xe4, 0x17, 0x81, 0x0b, 0x19, 0x0b, 0x03, 0x06, 0x0b, 0x03, 0x0b, 0x03, 0x00, 0x00,
        0x00, 0x00, 0xff, 0xff,
    ];
    pub const RST_5_CANCEL: &[u8] = &[
        0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
        0x05,
    ];
    pub const PING_1: &[u8] = &[
        0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
    ];
    pub const GOAWAY_7_OK: &[u8] = &[
        0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
        0x00,
    ];
    pub const WINDOW_UPDATE_3_32K: &[u8] = &[
        0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x80,
        0x00,
    ];
    /// INITIAL_WINDOW_SIZE = 65536, then MAX_CONCURRENT_STREAMS = 100 with FLAG_PERSIST_VALUE.
    pub const SETTINGS_IWS_MAXSTREAMS: &[u8] = &[
        0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x64,
    ];
    pub const DATA_3_FIN_HI: &[u8] = &[0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x02, 0x68, 0x69];

    /// The payload of a frame: everything after the 8-byte header.
    pub fn payload(frame: &[u8]) -> &[u8] {
        &frame[super::HEAD_LEN..]
    }
}
