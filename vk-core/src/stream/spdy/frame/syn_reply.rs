//! SYN_REPLY (type 2): the recipient accepts a stream.
//!
//! ```text
//! | X | stream id (31) | name/value header block (compressed) ... |
//! ```

use bytes::{BufMut, BytesMut};

use super::{
    ControlHead, FLAG_FIN, FrameError, Kind, StreamId, deflate_block, inflate_block, read_u32,
};
use crate::stream::spdy::header_block::{HeaderBlock, HeaderDeflater, HeaderInflater};

const KIND: &str = "SYN_REPLY";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynReply {
    pub stream_id: StreamId,
    pub fin: bool,
    pub headers: HeaderBlock,
}

impl SynReply {
    pub fn new(stream_id: StreamId) -> SynReply {
        SynReply {
            stream_id,
            ..SynReply::default()
        }
    }

    pub fn decode(
        flags: u8,
        payload: &[u8],
        inflater: &mut HeaderInflater,
    ) -> Result<SynReply, FrameError> {
        if payload.len() < 4 {
            return Err(FrameError::malformed(KIND, "shorter than 4 bytes"));
        }
        let stream_id = StreamId::from_wire(read_u32(payload, 0, KIND)?);
        let headers = inflate_block(&payload[4..], inflater, stream_id);
        if stream_id.is_zero() {
            return Err(FrameError::malformed(KIND, "stream id 0"));
        }
        Ok(SynReply {
            stream_id,
            fin: flags & FLAG_FIN != 0,
            headers: headers?,
        })
    }

    pub fn encode(
        &self,
        deflater: &mut HeaderDeflater,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        if self.stream_id.is_zero() {
            return Err(FrameError::Encode {
                kind: KIND,
                reason: "stream id 0",
            });
        }
        let block = deflate_block(&self.headers, deflater, self.stream_id)?;
        let flags = if self.fin { FLAG_FIN } else { 0 };
        ControlHead::new(Kind::SynReply, flags, 4 + block.len())?.encode(dst);
        dst.put_u32(self.stream_id.get());
        dst.put_slice(&block);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::spdy::header_block::DEFAULT_MAX_HEADER_BLOCK;

    #[test]
    fn first_reply_of_a_connection_has_golden_prefix_and_round_trips() {
        let mut dst = BytesMut::new();
        let reply = SynReply::new(StreamId::from_wire(1));
        reply
            .encode(&mut HeaderDeflater::new(), &mut dst)
            .expect("encodes");
        assert_eq!(&dst[..4], &[0x80, 0x03, 0x00, 0x02]);
        assert_eq!(dst[4], 0);
        assert_eq!(&dst[8..12], &[0, 0, 0, 1]);
        assert_eq!(
            u32::from_be_bytes([0, dst[5], dst[6], dst[7]]) as usize,
            dst.len() - 8
        );
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert_eq!(
            SynReply::decode(dst[4], &dst[8..], &mut inflater).expect("decodes"),
            reply
        );
    }

    #[test]
    fn rejects_short_frames() {
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert!(SynReply::decode(0, &[0, 0, 1], &mut inflater).is_err());
    }
}
