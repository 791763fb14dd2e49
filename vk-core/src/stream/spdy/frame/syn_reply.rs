//! SYN_REPLY (type 2): the recipient accepts a stream.
//!
//! The payload is a stream id and a header block ([`stream_headers`](super::stream_headers)).

use bytes::BytesMut;

use super::{FrameError, Kind, StreamId, stream_headers};
use crate::stream::spdy::header_block::{HeaderBlock, HeaderDeflater, HeaderInflater};

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
        let (stream_id, fin, headers) =
            stream_headers::decode(Kind::SynReply, flags, payload, inflater)?;
        Ok(SynReply {
            stream_id,
            fin,
            headers,
        })
    }

    pub fn encode(
        &self,
        deflater: &mut HeaderDeflater,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        stream_headers::encode(
            Kind::SynReply,
            self.stream_id,
            self.fin,
            &self.headers,
            deflater,
            dst,
        )
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
