//! Turning bytes into frames and back.
//!
//! [`FrameDecoder`] and [`FrameEncoder`] are synchronous and own the connection's header
//! compression state; [`FramedRead`] and [`FramedWrite`] drive them over tokio I/O.

mod framed_read;
mod framed_write;

pub use framed_read::{FramedRead, ReadError};
pub use framed_write::FramedWrite;

use bytes::{Buf, BytesMut};

use super::frame::{
    Data, Frame, FrameError, GoAway, HEAD_LEN, Head, Headers, Kind, MAX_PAYLOAD_LEN, Ping,
    RstStream, SPDY_VERSION, Settings, SynReply, SynStream, WindowUpdate,
};
use super::header_block::{DEFAULT_MAX_HEADER_BLOCK, HeaderDeflater, HeaderInflater};

/// Size limits applied while reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest control frame payload accepted. The spec requires at least 8192.
    pub max_control_payload: usize,
    /// Largest DATA payload accepted. moby/spdystream writes one frame per `Write`, so a
    /// client-go caller with a large in-memory stdin sends frames up to the 2^24-1 maximum.
    pub max_data_payload: usize,
    /// Largest header block once inflated.
    pub max_header_block: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_control_payload: 1024 * 1024,
            max_data_payload: MAX_PAYLOAD_LEN,
            max_header_block: DEFAULT_MAX_HEADER_BLOCK,
        }
    }
}

/// Cuts frames out of a byte buffer and decodes them, inflating header blocks with the
/// connection's zlib state.
#[derive(Debug)]
pub struct FrameDecoder {
    inflater: HeaderInflater,
    limits: FrameLimits,
}

impl FrameDecoder {
    pub fn new(limits: FrameLimits) -> FrameDecoder {
        FrameDecoder {
            inflater: HeaderInflater::new(limits.max_header_block),
            limits,
        }
    }

    /// Decodes the frame at the front of `src`, removing its bytes, or returns `Ok(None)`
    /// (leaving `src` alone) until the whole frame has arrived.
    ///
    /// After an error whose [`FrameError::stream_error`] is `Some`, the frame has been
    /// consumed and decoding can go on; after any other error the session is lost.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(head) = src.first_chunk::<HEAD_LEN>().copied() else {
            return Ok(None);
        };
        let head = Head::parse(head);
        let len = head.payload_len();
        let max = match head {
            Head::Control(_) => self.limits.max_control_payload,
            Head::Data(_) => self.limits.max_data_payload,
        };
        if len > max {
            return Err(FrameError::TooLarge { len, max });
        }
        if let Head::Control(h) = head
            && h.version != SPDY_VERSION
        {
            return Err(FrameError::UnsupportedVersion(h.version));
        }
        if src.len() < HEAD_LEN + len {
            src.reserve(HEAD_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(HEAD_LEN);
        let payload = src.split_to(len).freeze();
        let frame = match head {
            Head::Data(h) => Frame::Data(Data::decode(h, payload)?),
            Head::Control(h) => match Kind::from_u16(h.kind) {
                Some(Kind::SynStream) => {
                    Frame::SynStream(SynStream::decode(h.flags, &payload, &mut self.inflater)?)
                }
                Some(Kind::SynReply) => {
                    Frame::SynReply(SynReply::decode(h.flags, &payload, &mut self.inflater)?)
                }
                Some(Kind::Headers) => {
                    Frame::Headers(Headers::decode(h.flags, &payload, &mut self.inflater)?)
                }
                Some(Kind::RstStream) => Frame::RstStream(RstStream::decode(&payload)?),
                Some(Kind::Settings) => Frame::Settings(Settings::decode(h.flags, &payload)?),
                Some(Kind::Ping) => Frame::Ping(Ping::decode(&payload)?),
                Some(Kind::GoAway) => Frame::GoAway(GoAway::decode(&payload)?),
                Some(Kind::WindowUpdate) => Frame::WindowUpdate(WindowUpdate::decode(&payload)?),
                None => Frame::Unknown {
                    kind: h.kind,
                    flags: h.flags,
                    length: h.length,
                },
            },
        };
        Ok(Some(frame))
    }
}

/// Encodes frames, compressing header blocks with the connection's zlib state.
#[derive(Debug, Default)]
pub struct FrameEncoder {
    deflater: HeaderDeflater,
}

impl FrameEncoder {
    pub fn new() -> FrameEncoder {
        FrameEncoder::default()
    }

    /// Appends `frame` to `dst`. On error nothing was appended (but a header block may have
    /// gone through the deflater: the connection should then be closed).
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let start = dst.len();
        let result = match frame {
            Frame::SynStream(f) => f.encode(&mut self.deflater, dst),
            Frame::SynReply(f) => f.encode(&mut self.deflater, dst),
            Frame::Headers(f) => f.encode(&mut self.deflater, dst),
            Frame::RstStream(f) => f.encode(dst),
            Frame::Settings(f) => f.encode(dst),
            Frame::Ping(f) => f.encode(dst),
            Frame::GoAway(f) => f.encode(dst),
            Frame::WindowUpdate(f) => f.encode(dst),
            Frame::Data(f) => f.encode(dst),
            Frame::Unknown { .. } => Err(FrameError::Encode {
                kind: "unknown",
                reason: "frames of unknown type are not sent",
            }),
        };
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::stream::spdy::frame::{GoAwayStatus, RstStatus, StreamId, golden};
    use crate::stream::spdy::header_block::HeaderBlock;

    fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Vec<Frame> {
        let mut src = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut src).expect("decodes") {
            frames.push(frame);
        }
        assert!(src.is_empty(), "{} bytes left", src.len());
        frames
    }

    #[test]
    fn decodes_a_spdystream_session_byte_by_byte() {
        let session: Vec<u8> = [
            golden::SYN_STREAM_1_ERROR,
            golden::SYN_STREAM_3_STDIN_FIN,
            golden::SYN_REPLY_1_EMPTY,
            golden::HEADERS_1_PORTS,
            golden::RST_5_CANCEL,
            golden::PING_1,
            golden::GOAWAY_7_OK,
            golden::WINDOW_UPDATE_3_32K,
            golden::SETTINGS_IWS_MAXSTREAMS,
            golden::DATA_3_FIN_HI,
        ]
        .concat();
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        let mut src = BytesMut::new();
        let mut frames = Vec::new();
        for &byte in &session {
            src.extend_from_slice(&[byte]);
            if let Some(frame) = decoder.decode(&mut src).expect("decodes") {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 10);
        let stream = |n| StreamId::from_wire(n);
        assert!(
            matches!(&frames[0], Frame::SynStream(f) if f.headers.get("streamtype") == Some("error"))
        );
        assert!(matches!(&frames[1], Frame::SynStream(f) if f.fin && f.stream_id == stream(3)));
        assert_eq!(frames[2], Frame::SynReply(SynReply::new(stream(1))));
        assert!(
            matches!(&frames[3], Frame::Headers(f) if f.headers.get_all("port") == ["80", "8080"])
        );
        assert_eq!(
            frames[4],
            Frame::RstStream(RstStream::new(stream(5), RstStatus::CANCEL))
        );
        assert_eq!(frames[5], Frame::Ping(Ping { id: 1 }));
        assert_eq!(
            frames[6],
            Frame::GoAway(GoAway {
                last_good_stream_id: stream(7),
                status: GoAwayStatus::OK
            })
        );
        assert!(matches!(&frames[9], Frame::Data(d) if d.fin && d.payload == "hi"));
    }

    #[test]
    fn encoder_output_decodes_across_one_compression_context() {
        let mut encoder = FrameEncoder::new();
        let mut dst = BytesMut::new();
        let mut frames = Vec::new();
        for (i, kind) in ["error", "stdin", "stdout", "stderr", "resize"]
            .iter()
            .enumerate()
        {
            let mut headers = HeaderBlock::new();
            headers.append("streamtype", *kind);
            frames.push(Frame::SynStream(SynStream::new(
                StreamId::from_wire(2 * i as u32 + 1),
                headers,
            )));
        }
        frames.push(Frame::Data(Data::new(
            StreamId::from_wire(3),
            Bytes::from_static(b"x"),
            false,
        )));
        for frame in &frames {
            encoder.encode(frame, &mut dst).expect("encodes");
        }
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        assert_eq!(decode_all(&mut decoder, &dst), frames);
    }

    #[test]
    fn enforces_limits_before_buffering_the_payload() {
        let limits = FrameLimits {
            max_control_payload: 8192,
            max_data_payload: 16,
            max_header_block: 1024,
        };
        let mut decoder = FrameDecoder::new(limits);
        let mut src = BytesMut::from(&[0u8, 0, 0, 1, 0, 0, 0, 17][..]);
        assert!(matches!(
            decoder.decode(&mut src),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
        let mut src = BytesMut::from(&[0x80u8, 3, 0, 1, 0, 0x01, 0, 1][..]);
        assert!(matches!(
            decoder.decode(&mut src),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejects_other_versions_and_skips_unknown_types() {
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        let mut src = BytesMut::from(&[0x80u8, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(
            decoder.decode(&mut src),
            Err(FrameError::UnsupportedVersion(2))
        ));
        let frames = decode_all(
            &mut decoder,
            &[
                0x80, 3, 0, 10, 0, 0, 0, 2, 0xaa, 0xbb, 0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 3,
            ],
        );
        assert_eq!(
            frames,
            vec![
                Frame::Unknown {
                    kind: 10,
                    flags: 0,
                    length: 2
                },
                Frame::Ping(Ping { id: 3 })
            ]
        );
    }

    #[test]
    fn stream_level_header_errors_leave_the_decoder_usable() {
        let mut deflater = HeaderDeflater::new();
        let mut src = BytesMut::new();
        // A SYN_STREAM whose block has an uppercase name, then a valid PING.
        let block = deflater
            .deflate(b"\0\0\0\x01\0\0\0\x01A\0\0\0\0")
            .expect("deflates");
        src.extend_from_slice(&[0x80, 3, 0, 1, 0, 0, 0, (10 + block.len()) as u8]);
        src.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        src.extend_from_slice(&block);
        src.extend_from_slice(golden::PING_1);
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        let err = decoder.decode(&mut src).expect_err("bad header name");
        assert_eq!(
            err.stream_error(),
            Some((StreamId::from_wire(1), RstStatus::PROTOCOL_ERROR))
        );
        assert_eq!(
            decoder.decode(&mut src).expect("decodes"),
            Some(Frame::Ping(Ping { id: 1 }))
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut decoder = FrameDecoder::new(FrameLimits::default());
            let mut bytes = Vec::new();
            let len = (seed % 96) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            // Make control frames with version 3 common.
            if bytes.len() > 8 && seed.is_multiple_of(2) {
                bytes[0] = 0x80;
                bytes[1] = 3;
                bytes[5] = 0;
            }
            let mut src = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decoder.decode(&mut src) {}
        }
    }
}
