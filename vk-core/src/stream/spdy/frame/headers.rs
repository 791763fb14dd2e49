//! HEADERS (type 8): more headers for an open stream.
//!
//! ```text
//! | X | stream id (31) | name/value header block (compressed) ... |
//! ```

use bytes::{BufMut, BytesMut};

use super::{
    ControlHead, FLAG_FIN, FrameError, Kind, StreamId, deflate_block, inflate_block, read_u32,
};
use crate::stream::spdy::header_block::{HeaderBlock, HeaderDeflater, HeaderInflater};

const KIND: &str = "HEADERS";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    pub stream_id: StreamId,
    pub fin: bool,
    pub headers: HeaderBlock,
}

impl Headers {
    pub fn decode(
        flags: u8,
        payload: &[u8],
        inflater: &mut HeaderInflater,
    ) -> Result<Headers, FrameError> {
        if payload.len() < 4 {
            return Err(FrameError::malformed(KIND, "shorter than 4 bytes"));
        }
        let stream_id = StreamId::from_wire(read_u32(payload, 0, KIND)?);
        let headers = inflate_block(&payload[4..], inflater, stream_id);
        if stream_id.is_zero() {
            return Err(FrameError::malformed(KIND, "stream id 0"));
        }
        Ok(Headers {
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
        ControlHead::new(Kind::Headers, flags, 4 + block.len())?.encode(dst);
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
    fn round_trips_with_fin_and_multiple_values() {
        let mut headers = HeaderBlock::new();
        headers.append("port", "80").append("port", "8080");
        let frame = Headers {
            stream_id: StreamId::from_wire(3),
            fin: true,
            headers,
        };
        let mut dst = BytesMut::new();
        frame
            .encode(&mut HeaderDeflater::new(), &mut dst)
            .expect("encodes");
        assert_eq!(&dst[..5], &[0x80, 0x03, 0x00, 0x08, 0x01]);
        assert_eq!(&dst[8..12], &[0, 0, 0, 3]);
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert_eq!(
            Headers::decode(dst[4], &dst[8..], &mut inflater).expect("decodes"),
            frame
        );
    }

    #[test]
    fn rejects_zero_stream_id() {
        let mut dst = BytesMut::new();
        let mut deflater = HeaderDeflater::new();
        let block = deflater.deflate(&[0, 0, 0, 0]).expect("deflates");
        dst.put_u32(0);
        dst.put_slice(&block);
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert!(Headers::decode(0, &dst, &mut inflater).is_err());
    }
}
