//! DATA frames: stream payload.
//!
//! ```text
//! | 0 | stream id (31) | flags (8) | length (24) | data ... |
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::{DataHead, FLAG_FIN, FrameError, MAX_PAYLOAD_LEN, StreamId};

const KIND: &str = "DATA";

/// The payload is zlib-compressed (SPDY/3 draft; no Kubernetes client sends it).
pub const FLAG_COMPRESS: u8 = 0x02;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Data {
    pub stream_id: StreamId,
    pub fin: bool,
    pub compressed: bool,
    pub payload: Bytes,
}

impl Data {
    pub fn new(stream_id: StreamId, payload: Bytes, fin: bool) -> Data {
        Data {
            stream_id,
            fin,
            compressed: false,
            payload,
        }
    }

    pub fn decode(head: DataHead, payload: Bytes) -> Result<Data, FrameError> {
        if head.stream_id.is_zero() {
            return Err(FrameError::malformed(KIND, "stream id 0"));
        }
        Ok(Data {
            stream_id: head.stream_id,
            fin: head.flags & FLAG_FIN != 0,
            compressed: head.flags & FLAG_COMPRESS != 0,
            payload,
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        if self.stream_id.is_zero() {
            return Err(FrameError::Encode {
                kind: KIND,
                reason: "stream id 0",
            });
        }
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(FrameError::Encode {
                kind: KIND,
                reason: "payload longer than 2^24-1 bytes",
            });
        }
        let mut flags = 0;
        if self.fin {
            flags |= FLAG_FIN;
        }
        if self.compressed {
            flags |= FLAG_COMPRESS;
        }
        DataHead {
            stream_id: self.stream_id,
            flags,
            length: self.payload.len() as u32,
        }
        .encode(dst);
        dst.put_slice(&self.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Head, golden};
    use super::*;

    #[test]
    fn golden_bytes() {
        let frame = Data::new(StreamId::from_wire(3), Bytes::from_static(b"hi"), true);
        let mut dst = BytesMut::new();
        frame.encode(&mut dst).expect("encodes");
        assert_eq!(&dst[..], golden::DATA_3_FIN_HI);
        let Head::Data(head) = Head::parse(dst[..8].try_into().expect("8 bytes")) else {
            panic!("not a data frame");
        };
        assert_eq!(
            Data::decode(head, Bytes::copy_from_slice(&dst[8..])).expect("decodes"),
            frame
        );
    }

    #[test]
    fn empty_fin_frame() {
        let mut dst = BytesMut::new();
        Data::new(StreamId::from_wire(1), Bytes::new(), true)
            .encode(&mut dst)
            .expect("encodes");
        assert_eq!(&dst[..], &[0, 0, 0, 1, 1, 0, 0, 0]);
    }

    #[test]
    fn rejects_stream_zero() {
        let head = DataHead {
            stream_id: StreamId::ZERO,
            flags: 0,
            length: 0,
        };
        assert!(Data::decode(head, Bytes::new()).is_err());
        assert!(Data::default().encode(&mut BytesMut::new()).is_err());
    }
}
