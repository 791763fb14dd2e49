//! HEADERS (type 8): more headers for an open stream.
//!
//! The payload is a stream id and a header block ([`stream_headers`](super::stream_headers)).

use bytes::BytesMut;

use super::{FrameError, Kind, StreamId, stream_headers};
use crate::stream::spdy::header_block::{HeaderBlock, HeaderDeflater, HeaderInflater};

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
        let (stream_id, fin, headers) =
            stream_headers::decode(Kind::Headers, flags, payload, inflater)?;
        Ok(Headers {
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
            Kind::Headers,
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
    use bytes::BufMut;

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
