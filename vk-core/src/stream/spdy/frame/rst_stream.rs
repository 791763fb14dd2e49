//! RST_STREAM (type 3): ends a stream abnormally.
//!
//! ```text
//! | X | stream id (31) | status code (32) |
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::{ControlHead, FrameError, Kind, StreamId, expect_len, read_u32};

const KIND: &str = "RST_STREAM";

/// Why a stream was reset. Codes outside the table are kept as they came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: RstStatus = RstStatus(1);
    pub const INVALID_STREAM: RstStatus = RstStatus(2);
    pub const REFUSED_STREAM: RstStatus = RstStatus(3);
    pub const UNSUPPORTED_VERSION: RstStatus = RstStatus(4);
    pub const CANCEL: RstStatus = RstStatus(5);
    pub const INTERNAL_ERROR: RstStatus = RstStatus(6);
    pub const FLOW_CONTROL_ERROR: RstStatus = RstStatus(7);
    pub const STREAM_IN_USE: RstStatus = RstStatus(8);
    pub const STREAM_ALREADY_CLOSED: RstStatus = RstStatus(9);
    pub const INVALID_CREDENTIALS: RstStatus = RstStatus(10);
    pub const FRAME_TOO_LARGE: RstStatus = RstStatus(11);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "PROTOCOL_ERROR",
            2 => "INVALID_STREAM",
            3 => "REFUSED_STREAM",
            4 => "UNSUPPORTED_VERSION",
            5 => "CANCEL",
            6 => "INTERNAL_ERROR",
            7 => "FLOW_CONTROL_ERROR",
            8 => "STREAM_IN_USE",
            9 => "STREAM_ALREADY_CLOSED",
            10 => "INVALID_CREDENTIALS",
            11 => "FRAME_TOO_LARGE",
            _ => return None,
        })
    }
}

impl fmt::Display for RstStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "status {}", self.0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstStream {
    pub stream_id: StreamId,
    pub status: RstStatus,
}

impl RstStream {
    pub fn new(stream_id: StreamId, status: RstStatus) -> RstStream {
        RstStream { stream_id, status }
    }

    pub fn decode(payload: &[u8]) -> Result<RstStream, FrameError> {
        expect_len(payload, 8, KIND)?;
        let stream_id = StreamId::from_wire(read_u32(payload, 0, KIND)?);
        let status = RstStatus(read_u32(payload, 4, KIND)?);
        if stream_id.is_zero() {
            return Err(FrameError::malformed(KIND, "stream id 0"));
        }
        if status.0 == 0 {
            return Err(FrameError::malformed(KIND, "status 0"));
        }
        Ok(RstStream { stream_id, status })
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        ControlHead::new(Kind::RstStream, 0, 8)?.encode(dst);
        dst.put_u32(self.stream_id.get());
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
        let frame = RstStream::new(StreamId::from_wire(5), RstStatus::CANCEL);
        let mut dst = BytesMut::new();
        frame.encode(&mut dst).expect("encodes");
        assert_eq!(&dst[..], golden::RST_5_CANCEL);
        assert_eq!(
            RstStream::decode(golden::payload(golden::RST_5_CANCEL)).expect("decodes"),
            frame
        );
    }

    #[test]
    fn rejects_bad_frames() {
        assert!(RstStream::decode(&[0, 0, 0, 5, 0, 0, 0]).is_err());
        assert!(
            RstStream::decode(&[0, 0, 0, 5, 0, 0, 0, 0]).is_err(),
            "status 0"
        );
        assert!(
            RstStream::decode(&[0, 0, 0, 0, 0, 0, 0, 1]).is_err(),
            "stream 0"
        );
    }

    #[test]
    fn names_statuses() {
        assert_eq!(RstStatus::REFUSED_STREAM.to_string(), "REFUSED_STREAM");
        assert_eq!(RstStatus(42).to_string(), "status 42");
    }
}
