//! The payload SYN_REPLY and HEADERS share:
//!
//! ```text
//! | X | stream id (31) | name/value header block (compressed) ... |
//! ```

use bytes::{BufMut, BytesMut};

use super::{
    ControlHead, FLAG_FIN, FrameError, Kind, StreamId, deflate_block, inflate_block, read_u32,
};
use crate::stream::spdy::header_block::{HeaderBlock, HeaderDeflater, HeaderInflater};

/// Decodes the payload of a `kind` frame: (stream id, FIN, headers).
pub(super) fn decode(
    kind: Kind,
    flags: u8,
    payload: &[u8],
    inflater: &mut HeaderInflater,
) -> Result<(StreamId, bool, HeaderBlock), FrameError> {
    let name = kind.name();
    if payload.len() < 4 {
        return Err(FrameError::malformed(name, "shorter than 4 bytes"));
    }
    let stream_id = StreamId::from_wire(read_u32(payload, 0, name)?);
    // Inflated before any check: the block belongs to the connection's zlib stream.
    let headers = inflate_block(&payload[4..], inflater, stream_id);
    if stream_id.is_zero() {
        return Err(FrameError::malformed(name, "stream id 0"));
    }
    Ok((stream_id, flags & FLAG_FIN != 0, headers?))
}

/// Appends a whole `kind` frame to `dst`.
pub(super) fn encode(
    kind: Kind,
    stream_id: StreamId,
    fin: bool,
    headers: &HeaderBlock,
    deflater: &mut HeaderDeflater,
    dst: &mut BytesMut,
) -> Result<(), FrameError> {
    if stream_id.is_zero() {
        return Err(FrameError::Encode {
            kind: kind.name(),
            reason: "stream id 0",
        });
    }
    let block = deflate_block(headers, deflater, stream_id)?;
    let flags = if fin { FLAG_FIN } else { 0 };
    ControlHead::new(kind, flags, 4 + block.len())?.encode(dst);
    dst.put_u32(stream_id.get());
    dst.put_slice(&block);
    Ok(())
}
