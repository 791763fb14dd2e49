//! WINDOW_UPDATE (type 9): the receiver lets the sender send `delta` more bytes of DATA on a
//! stream, or (SPDY/3.1) on the whole session when the stream id is 0.
//!
//! ```text
//! | X | stream id (31) | X | delta window size (31) |
//! ```

use bytes::{BufMut, BytesMut};

use super::{ControlHead, FrameError, Kind, StreamId, expect_len, read_u32};

const KIND: &str = "WINDOW_UPDATE";

/// A send window may never exceed 2^31-1.
pub const MAX_WINDOW: u32 = 0x7fff_ffff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// 0 for the session window (SPDY/3.1).
    pub stream_id: StreamId,
    /// 1 to 2^31-1; 0 decodes (the connection judges it) but is not legal.
    pub delta: u32,
}

impl WindowUpdate {
    pub fn decode(payload: &[u8]) -> Result<WindowUpdate, FrameError> {
        expect_len(payload, 8, KIND)?;
        Ok(WindowUpdate {
            stream_id: StreamId::from_wire(read_u32(payload, 0, KIND)?),
            delta: read_u32(payload, 4, KIND)? & MAX_WINDOW,
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        if self.delta == 0 || self.delta > MAX_WINDOW {
            return Err(FrameError::Encode {
                kind: KIND,
                reason: "delta outside 1..=2^31-1",
            });
        }
        ControlHead::new(Kind::WindowUpdate, 0, 8)?.encode(dst);
        dst.put_u32(self.stream_id.get());
        dst.put_u32(self.delta);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    #[test]
    fn golden_bytes() {
        let frame = WindowUpdate {
            stream_id: StreamId::from_wire(3),
            delta: 0x8000,
        };
        let mut dst = BytesMut::new();
        frame.encode(&mut dst).expect("encodes");
        assert_eq!(&dst[..], golden::WINDOW_UPDATE_3_32K);
        assert_eq!(
            WindowUpdate::decode(golden::payload(golden::WINDOW_UPDATE_3_32K)).expect("decodes"),
            frame
        );
    }

    #[test]
    fn session_update_and_bad_lengths() {
        let frame = WindowUpdate::decode(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).expect("decodes");
        assert!(frame.stream_id.is_zero());
        assert_eq!(frame.delta, MAX_WINDOW, "reserved bit ignored");
        assert!(WindowUpdate::decode(&[0; 4]).is_err());
        let zero = WindowUpdate {
            stream_id: StreamId::from_wire(1),
            delta: 0,
        };
        assert!(zero.encode(&mut BytesMut::new()).is_err());
    }
}
