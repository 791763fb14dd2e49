//! SYN_STREAM (type 1): opens a stream.
//!
//! ```text
//! | X | stream id (31) | X | associated-to stream id (31) |
//! | priority (3) | unused (5) | slot (8) | name/value header block (compressed) ... |
//! ```

use bytes::{BufMut, BytesMut};

use super::{
    ControlHead, FLAG_FIN, FrameError, Kind, StreamId, deflate_block, inflate_block, read_u32,
};
use crate::stream::spdy::header_block::{HeaderBlock, HeaderDeflater, HeaderInflater};

/// The receiver starts half-closed: only the creator sends on the stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const KIND: &str = "SYN_STREAM";
const FIXED_LEN: usize = 10;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynStream {
    pub stream_id: StreamId,
    /// Non-zero for server push; unused by Kubernetes.
    pub associated_to: StreamId,
    /// 0 (highest) to 7.
    pub priority: u8,
    pub slot: u8,
    pub fin: bool,
    pub unidirectional: bool,
    pub headers: HeaderBlock,
}

impl SynStream {
    pub fn new(stream_id: StreamId, headers: HeaderBlock) -> SynStream {
        SynStream {
            stream_id,
            headers,
            ..SynStream::default()
        }
    }

    pub fn decode(
        flags: u8,
        payload: &[u8],
        inflater: &mut HeaderInflater,
    ) -> Result<SynStream, FrameError> {
        if payload.len() < FIXED_LEN {
            return Err(FrameError::malformed(KIND, "shorter than 10 bytes"));
        }
        let stream_id = StreamId::from_wire(read_u32(payload, 0, KIND)?);
        let associated_to = StreamId::from_wire(read_u32(payload, 4, KIND)?);
        // Inflate before judging the rest, so the zlib state stays in step with the peer's.
        let headers = inflate_block(&payload[FIXED_LEN..], inflater, stream_id);
        if stream_id.is_zero() {
            return Err(FrameError::malformed(KIND, "stream id 0"));
        }
        Ok(SynStream {
            stream_id,
            associated_to,
            priority: payload[8] >> 5,
            slot: payload[9],
            fin: flags & FLAG_FIN != 0,
            unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
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
        let mut flags = 0;
        if self.fin {
            flags |= FLAG_FIN;
        }
        if self.unidirectional {
            flags |= FLAG_UNIDIRECTIONAL;
        }
        ControlHead::new(Kind::SynStream, flags, FIXED_LEN + block.len())?.encode(dst);
        dst.put_u32(self.stream_id.get());
        dst.put_u32(self.associated_to.get());
        dst.put_u8((self.priority & 0x07) << 5);
        dst.put_u8(self.slot);
        dst.put_slice(&block);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;
    use crate::stream::spdy::header_block::DEFAULT_MAX_HEADER_BLOCK;

    #[test]
    fn decodes_spdystream_golden_frame() {
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        let frame = SynStream::decode(
            0,
            golden::payload(golden::SYN_STREAM_1_ERROR),
            &mut inflater,
        )
        .expect("decodes");
        let mut headers = HeaderBlock::new();
        headers.append("streamtype", "error");
        assert_eq!(frame, SynStream::new(StreamId::from_wire(1), headers));
        let next = SynStream::decode(
            FLAG_FIN,
            golden::payload(golden::SYN_STREAM_3_STDIN_FIN),
            &mut inflater,
        )
        .expect("decodes");
        assert!(next.fin);
        assert_eq!(next.headers.get("streamType"), Some("stdin"));
    }

    #[test]
    fn encodes_fixed_fields_and_round_trips() {
        let mut headers = HeaderBlock::new();
        headers.append("streamtype", "data").append("port", "8080");
        let frame = SynStream {
            stream_id: StreamId::from_wire(5),
            associated_to: StreamId::from_wire(2),
            priority: 7,
            slot: 1,
            fin: true,
            unidirectional: true,
            headers,
        };
        let mut dst = BytesMut::new();
        frame
            .encode(&mut HeaderDeflater::new(), &mut dst)
            .expect("encodes");
        assert_eq!(&dst[..4], &[0x80, 0x03, 0x00, 0x01]);
        assert_eq!(dst[4], 0x03, "FIN | UNIDIRECTIONAL");
        assert_eq!(
            &dst[8..18],
            &[0, 0, 0, 5, 0, 0, 0, 2, 0xe0, 0x01],
            "ids, priority, slot"
        );
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert_eq!(
            SynStream::decode(dst[4], &dst[8..], &mut inflater).expect("decodes"),
            frame
        );
    }

    #[test]
    fn rejects_short_and_zero_id_frames() {
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert!(SynStream::decode(0, &[0; 9], &mut inflater).is_err());
        let mut zero = golden::payload(golden::SYN_STREAM_1_ERROR).to_vec();
        zero[3] = 0;
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert!(matches!(
            SynStream::decode(0, &zero, &mut inflater),
            Err(FrameError::Malformed { .. })
        ));
    }

    #[test]
    fn bad_header_block_is_a_stream_error() {
        let mut deflater = HeaderDeflater::new();
        let compressed = deflater
            .deflate(b"\0\0\0\x01\0\0\0\x01A\0\0\0\0")
            .expect("deflates");
        let mut payload = vec![0, 0, 0, 9, 0, 0, 0, 0, 0, 0];
        payload.extend_from_slice(&compressed);
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        let err = SynStream::decode(0, &payload, &mut inflater).expect_err("invalid name");
        assert_eq!(
            err.stream_error(),
            Some((
                StreamId::from_wire(9),
                super::super::RstStatus::PROTOCOL_ERROR
            ))
        );
    }
}
