//! One WebSocket message ↔ one channel's bytes, in binary or base64 form.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Message;

use super::Subprotocol;

pub(crate) const STDIN: u8 = 0;
pub(crate) const STDOUT: u8 = 1;
pub(crate) const STDERR: u8 = 2;
pub(crate) const ERROR: u8 = 3;
pub(crate) const RESIZE: u8 = 4;
/// Channels a remotecommand connection has.
pub(crate) const CHANNELS: u8 = 5;
/// v5: `[CLOSE, channel]` half-closes a client channel.
pub(crate) const CLOSE: u8 = 255;

/// The message carrying `data` on `channel`.
pub(crate) fn encode(protocol: Subprotocol, channel: u8, data: &[u8]) -> Message {
    if protocol.is_base64() {
        let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
        text.push(char::from(b'0' + channel));
        STANDARD.encode_string(data, &mut text);
        Message::text(text)
    } else {
        let mut frame = BytesMut::with_capacity(1 + data.len());
        frame.put_u8(channel);
        frame.put_slice(data);
        Message::Binary(frame.freeze())
    }
}

/// What a client's data message asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Bytes for a channel (possibly one the session does not read: then they are dropped).
    Data { channel: u8, data: Bytes },
    /// v5: the client will send nothing more on this channel.
    CloseChannel(u8),
    /// Nothing to do: an empty message, an unknown channel, bad base64 (wsstream logs and
    /// skips these).
    Skip,
    /// A malformed CLOSE signal: wsstream ends the connection.
    Fatal(String),
}

/// Reads a text or binary message's payload (wsstream takes both alike).
pub(crate) fn decode(protocol: Subprotocol, payload: Bytes) -> Incoming {
    let Some(&first) = payload.first() else {
        return Incoming::Skip;
    };
    if protocol.supports_stream_close() && first == CLOSE {
        return match payload.get(1..) {
            Some([channel]) if *channel < CHANNELS => Incoming::CloseChannel(*channel),
            Some([channel]) => {
                Incoming::Fatal(format!("close signal for unknown channel {channel}"))
            }
            _ => Incoming::Fatal(format!(
                "a close signal takes one channel byte, got {}",
                payload.len() - 1
            )),
        };
    }
    let channel = if protocol.is_base64() {
        first.wrapping_sub(b'0')
    } else {
        first
    };
    if channel >= CHANNELS {
        return Incoming::Skip;
    }
    let data = payload.slice(1..);
    if protocol.is_base64() {
        match STANDARD.decode(&data) {
            Ok(decoded) => Incoming::Data {
                channel,
                data: Bytes::from(decoded),
            },
            Err(_) => Incoming::Skip,
        }
    } else {
        Incoming::Data { channel, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(m: Message) -> Vec<u8> {
        m.into_data().to_vec()
    }

    #[test]
    fn binary_and_base64_framing_match_the_wsstream_examples() {
        assert_eq!(
            payload(encode(Subprotocol::Channel, STDOUT, b"\n")),
            vec![1, 10]
        );
        // wsstream's example: "\n" on stdout is "1Cg==".
        let m = encode(Subprotocol::Base64Channel, STDOUT, b"\n");
        assert!(m.is_text());
        assert_eq!(payload(m), b"1Cg==");
        assert_eq!(
            payload(encode(Subprotocol::V4Base64Channel, ERROR, b"")),
            b"3"
        );
        assert_eq!(
            decode(Subprotocol::Base64Channel, Bytes::from_static(b"0Zm9vCg==")),
            Incoming::Data {
                channel: STDIN,
                data: Bytes::from_static(b"foo\n")
            }
        );
        assert_eq!(
            decode(
                Subprotocol::V4Channel,
                Bytes::from_static(&[0, 102, 111, 111])
            ),
            Incoming::Data {
                channel: STDIN,
                data: Bytes::from_static(b"foo")
            }
        );
    }

    #[test]
    fn close_signal_is_v5_only_and_strict() {
        assert_eq!(
            decode(Subprotocol::V5Channel, Bytes::from_static(&[255, 0])),
            Incoming::CloseChannel(STDIN)
        );
        assert!(matches!(
            decode(Subprotocol::V5Channel, Bytes::from_static(&[255, 0, 1])),
            Incoming::Fatal(_)
        ));
        assert!(matches!(
            decode(Subprotocol::V5Channel, Bytes::from_static(&[255, 9])),
            Incoming::Fatal(_)
        ));
        // Before v5, 255 is just a channel nobody has.
        assert_eq!(
            decode(Subprotocol::V4Channel, Bytes::from_static(&[255, 0])),
            Incoming::Skip
        );
    }

    #[test]
    fn empty_unknown_and_undecodable_messages_are_skipped() {
        assert_eq!(decode(Subprotocol::Channel, Bytes::new()), Incoming::Skip);
        assert_eq!(
            decode(Subprotocol::Channel, Bytes::from_static(&[7, 1])),
            Incoming::Skip
        );
        assert_eq!(
            decode(Subprotocol::Base64Channel, Bytes::from_static(b"0***")),
            Incoming::Skip
        );
    }
}
