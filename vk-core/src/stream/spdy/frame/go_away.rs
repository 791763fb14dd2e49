//! GOAWAY (type 7): the sender takes no new streams after `last_good_stream_id`.
//!
//! ```text
//! | X | last-good-stream-id (31) | status code (32) |
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::{ControlHead, FrameError, Kind, StreamId, expect_len, read_u32};

const KIND: &str = "GOAWAY";

/// Why the session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: GoAwayStatus = GoAwayStatus(0);
    pub const PROTOCOL_ERROR: GoAwayStatus = GoAwayStatus(1);
    /// 2 as in Chromium, moby/spdystream and OkHttp; the IETF draft text says 11.
    pub const INTERNAL_ERROR: GoAwayStatus = GoAwayStatus(2);
}

impl fmt::Display for GoAwayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("OK"),
            1 => f.write_str("PROTOCOL_ERROR"),
            2 | 11 => f.write_str("INTERNAL_ERROR"),
            n => write!(f, "status {n}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoAway {
    pub last_good_stream_id: StreamId,
    pub status: GoAwayStatus,
}

impl GoAway {
    pub fn decode(payload: &[u8]) -> Result<GoAway, FrameError> {
        expect_len(payload, 8, KIND)?;
        Ok(GoAway {
            last_good_stream_id: StreamId::from_wire(read_u32(payload, 0, KIND)?),
            status: GoAwayStatus(read_u32(payload, 4, KIND)?),
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        ControlHead::new(Kind::GoAway, 0, 8)?.encode(dst);
        dst.put_u32(self.last_good_stream_id.get());
        dst.put_u32(self.status.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    #[test]
    fn golden_bytes() {
        let frame = GoAway {
            last_good_stream_id: StreamId::from_wire(7),
            status: GoAwayStatus::OK,
        };
        let mut dst = BytesMut::new();
        frame.encode(&mut dst).expect("encodes");
        assert_eq!(&dst[..], golden::GOAWAY_7_OK);
        assert_eq!(
            GoAway::decode(golden::payload(golden::GOAWAY_7_OK)).expect("decodes"),
            frame
        );
    }

    #[test]
    fn rejects_spdy2_length() {
        // SPDY/2's GOAWAY had no status: 4 bytes.
        assert!(GoAway::decode(&[0, 0, 0, 7]).is_err());
    }

    #[test]
    fn ignores_reserved_bit() {
        let frame = GoAway::decode(&[0x80, 0, 0, 3, 0, 0, 0, 2]).expect("decodes");
        assert_eq!(frame.last_good_stream_id.get(), 3);
        assert_eq!(frame.status.to_string(), "INTERNAL_ERROR");
    }
}
