//! The 8-byte header every frame starts with.
//!
//! ```text
//! control: |1| version (15) | type (16) |   data: |0| stream id (31) |
//!          | flags (8) | length (24)    |         | flags (8) | length (24) |
//! ```

use bytes::{BufMut, BytesMut};

use super::{FrameError, StreamId};

/// The only version spoken here. SPDY/3.1 changed flow control, not the framing, so its
/// frames still say 3.
pub const SPDY_VERSION: u16 = 3;
/// Length of the common frame header.
pub const HEAD_LEN: usize = 8;
/// The largest payload the 24-bit length field can describe.
pub const MAX_PAYLOAD_LEN: usize = 0x00ff_ffff;

const CONTROL_BIT: u32 = 0x8000_0000;

/// A parsed frame header: the first 8 bytes of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    Control(ControlHead),
    Data(DataHead),
}

impl Head {
    /// Parses a frame header; every bit pattern is a header, so this cannot fail (the version
    /// and type are checked by whoever interprets the payload).
    pub fn parse(src: [u8; HEAD_LEN]) -> Head {
        let first = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let flags = src[4];
        let length = u32::from_be_bytes([0, src[5], src[6], src[7]]);
        if first & CONTROL_BIT != 0 {
            Head::Control(ControlHead {
                version: ((first >> 16) & 0x7fff) as u16,
                kind: (first & 0xffff) as u16,
                flags,
                length,
            })
        } else {
            Head::Data(DataHead {
                stream_id: StreamId::from_wire(first),
                flags,
                length,
            })
        }
    }

    /// Number of payload bytes after the header.
    pub fn payload_len(&self) -> usize {
        match self {
            Head::Control(h) => h.length as usize,
            Head::Data(h) => h.length as usize,
        }
    }
}

/// Control frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    SynStream = 1,
    SynReply = 2,
    RstStream = 3,
    Settings = 4,
    Ping = 6,
    GoAway = 7,
    Headers = 8,
    WindowUpdate = 9,
}

impl Kind {
    pub fn from_u16(v: u16) -> Option<Kind> {
        Some(match v {
            1 => Kind::SynStream,
            2 => Kind::SynReply,
            3 => Kind::RstStream,
            4 => Kind::Settings,
            6 => Kind::Ping,
            7 => Kind::GoAway,
            8 => Kind::Headers,
            9 => Kind::WindowUpdate,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::SynStream => "SYN_STREAM",
            Kind::SynReply => "SYN_REPLY",
            Kind::RstStream => "RST_STREAM",
            Kind::Settings => "SETTINGS",
            Kind::Ping => "PING",
            Kind::GoAway => "GOAWAY",
            Kind::Headers => "HEADERS",
            Kind::WindowUpdate => "WINDOW_UPDATE",
        }
    }
}

/// Header of a control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlHead {
    pub version: u16,
    pub kind: u16,
    pub flags: u8,
    pub length: u32,
}

impl ControlHead {
    /// A version-3 header for a frame of `kind` with a `length`-byte payload.
    pub fn new(kind: Kind, flags: u8, length: usize) -> Result<ControlHead, FrameError> {
        if length > MAX_PAYLOAD_LEN {
            return Err(FrameError::Encode {
                kind: kind.name(),
                reason: "payload longer than 2^24-1 bytes",
            });
        }
        Ok(ControlHead {
            version: SPDY_VERSION,
            kind: kind as u16,
            flags,
            length: length as u32,
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u32(CONTROL_BIT | (u32::from(self.version & 0x7fff) << 16) | u32::from(self.kind));
        dst.put_u32((u32::from(self.flags) << 24) | (self.length & 0x00ff_ffff));
    }
}

/// Header of a data frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHead {
    pub stream_id: StreamId,
    pub flags: u8,
    pub length: u32,
}

impl DataHead {
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u32(self.stream_id.get());
        dst.put_u32((u32::from(self.flags) << 24) | (self.length & 0x00ff_ffff));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_control_head() {
        let head = Head::parse([0x80, 0x03, 0x00, 0x01, 0x01, 0x00, 0x01, 0x02]);
        assert_eq!(
            head,
            Head::Control(ControlHead {
                version: 3,
                kind: 1,
                flags: 1,
                length: 0x102
            })
        );
        assert_eq!(head.payload_len(), 0x102);
    }

    #[test]
    fn parses_data_head_ignoring_nothing_but_the_control_bit() {
        let head = Head::parse([0x00, 0x00, 0x00, 0x05, 0x01, 0xff, 0xff, 0xff]);
        assert_eq!(
            head,
            Head::Data(DataHead {
                stream_id: StreamId::from_wire(5),
                flags: 1,
                length: 0xff_ffff
            })
        );
    }

    #[test]
    fn encodes_control_head() {
        let mut dst = BytesMut::new();
        ControlHead::new(Kind::Ping, 0, 4)
            .expect("fits")
            .encode(&mut dst);
        assert_eq!(&dst[..], &[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04]);
    }

    #[test]
    fn refuses_payloads_the_length_field_cannot_carry() {
        assert!(ControlHead::new(Kind::Headers, 0, MAX_PAYLOAD_LEN + 1).is_err());
    }
}
