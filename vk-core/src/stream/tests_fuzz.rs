//! The streaming decoders fuzzed: what a client sends before any provider sees it.
//!
//! - SPDY/3.1 frames: valid frames of every kind (header blocks compressed with the
//!   connection's zlib state) mutated at random (bits flipped, bytes cut, lengths and versions
//!   changed, junk spliced in) and fed in random pieces. The decoder answers a frame, "more
//!   bytes", or an error, never a panic; never a frame over the limits; after an error that is
//!   not a stream error the connection is dropped, as the session does.
//! - WebSocket channel messages, for every subprotocol: random payloads decode to data of a
//!   channel the protocol has, a close of a known channel, a skip, or a fatal reason; what was
//!   encoded decodes to itself.
//! - The resize stream: random bytes and mutated `{"Width":..,"Height":..}` values; the
//!   decoder forwards only sizes that fit, stops at the first bad value, never panics.
//!
//! `cargo test` runs a few thousand cases from a fixed seed; `VK_FUZZ_SECONDS=600` runs each
//! test that long (see [`crate::fuzz`]).

use bytes::{Bytes, BytesMut};

use crate::fuzz::{Budget, Rng};
use crate::stream::spdy::codec::{FrameDecoder, FrameEncoder, FrameLimits};
use crate::stream::spdy::frame::{
    Data, Frame, Ping, RstStatus, RstStream, Setting, SettingId, Settings, StreamId, SynStream,
    WindowUpdate,
};
use crate::stream::spdy::header_block::HeaderBlock;
use crate::stream::websocket::Subprotocol;
use crate::stream::websocket::channel::{self, CHANNELS, Incoming};

fn stream_id(rng: &mut Rng) -> StreamId {
    StreamId::new(1 + rng.below(1000) as u32).expect("a small stream id")
}

/// One valid frame of a random kind.
fn valid_frame(rng: &mut Rng) -> Frame {
    match rng.below(6) {
        0 => {
            let mut headers = HeaderBlock::new();
            for _ in 0..rng.below(6) {
                // NUL separates a header's values on the wire: a value holds none and is not empty.
                let len = 1 + rng.below(40);
                let value: String = rng
                    .bytes(len)
                    .into_iter()
                    .map(|b| char::from(b' ' + b % 95))
                    .collect();
                headers.append(*rng.pick(&["streamtype", "port", "requestid", "x"]), value);
            }
            Frame::SynStream(SynStream::new(stream_id(rng), headers))
        }
        1 => {
            let len = rng.below(3000);
            Frame::Data(Data::new(
                stream_id(rng),
                Bytes::from(rng.bytes(len)),
                rng.one_in(3),
            ))
        }
        2 => Frame::Ping(Ping {
            id: rng.next_u64() as u32,
        }),
        3 => Frame::WindowUpdate(WindowUpdate {
            stream_id: stream_id(rng),
            delta: 1 + rng.below(1 << 20) as u32,
        }),
        4 => Frame::RstStream(RstStream::new(
            stream_id(rng),
            RstStatus(rng.below(12) as u32),
        )),
        _ => Frame::Settings(Settings {
            clear_persisted: rng.one_in(2),
            entries: (0..rng.below(4))
                .map(|_| Setting {
                    flags: rng.below(3) as u8,
                    id: SettingId(1 + rng.below(8) as u32),
                    value: rng.next_u64() as u32,
                })
                .collect(),
        }),
    }
}

/// A connection's worth of bytes: valid frames, some of them mutated.
fn spdy_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut encoder = FrameEncoder::new();
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(8) {
        let mut buf = BytesMut::new();
        encoder
            .encode(&valid_frame(rng), &mut buf)
            .expect("a valid frame encodes");
        let mut frame = buf.to_vec();
        match rng.below(8) {
            0 => {
                let at = rng.below(frame.len());
                frame[at] ^= 1 << rng.below(8);
            }
            1 => frame.truncate(rng.below(frame.len())),
            2 => {
                // The length field (bytes 5..8): anything up to 2^24-1.
                let len = rng.next_u64() as u32 & 0x00ff_ffff;
                frame[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
            }
            3 => {
                // The control bit, version and type.
                let junk = rng.bytes(4);
                frame[..4].copy_from_slice(&junk);
            }
            4 => {
                let at = rng.below(frame.len());
                let len = rng.below(64);
                frame.splice(at..at, rng.bytes(len));
            }
            _ => {}
        }
        out.extend(frame);
    }
    if rng.one_in(10) {
        let len = rng.below(200);
        out.extend(rng.bytes(len));
    }
    out
}

/// Feeds `bytes` to a decoder in random pieces. Err(reason) if the decoder broke a rule.
fn decode_spdy(rng: &mut Rng, bytes: &[u8], limits: FrameLimits) -> Result<usize, String> {
    let mut decoder = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut rest = bytes;
    let mut frames = 0;
    while !rest.is_empty() {
        let n = (1 + rng.below(700)).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(None) => {
                    if buf.len() != before {
                        return Err("Ok(None) consumed bytes".into());
                    }
                    break;
                }
                Ok(Some(frame)) => {
                    frames += 1;
                    if let Frame::Data(d) = &frame
                        && d.payload.len() > limits.max_data_payload
                    {
                        return Err(format!("a DATA frame of {} bytes", d.payload.len()));
                    }
                }
                // A stream error leaves the connection usable; anything else ends it.
                Err(e) if e.stream_error().is_some() => {}
                Err(_) => return Ok(frames),
            }
        }
    }
    Ok(frames)
}

#[test]
fn spdy_frames_mutated_at_random_never_break_the_decoder() {
    let mut budget = Budget::from_env(4000);
    let mut rng = budget.rng();
    let small = FrameLimits {
        max_control_payload: 8192,
        max_data_payload: 1024,
        max_header_block: 4096,
    };
    let (mut frames, mut failures) = (0, Vec::new());
    while budget.another() {
        let bytes = spdy_bytes(&mut rng);
        let limits = if rng.one_in(2) {
            small
        } else {
            FrameLimits::default()
        };
        match decode_spdy(&mut rng, &bytes, limits) {
            Ok(n) => frames += n,
            Err(why) => failures.push(format!("{why}: {:02x?}", &bytes[..bytes.len().min(64)])),
        }
        if failures.len() >= 5 {
            break;
        }
    }
    eprintln!(
        "[fuzz] SPDY frames: {} connections, {frames} frames decoded, seed {}, {} failures",
        budget.done(),
        budget.seed,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "seed {}:\n{}",
        budget.seed,
        failures.join("\n")
    );
}

const PROTOCOLS: [Subprotocol; 6] = [
    Subprotocol::Unnamed,
    Subprotocol::Channel,
    Subprotocol::Base64Channel,
    Subprotocol::V4Channel,
    Subprotocol::V4Base64Channel,
    Subprotocol::V5Channel,
];

/// A message as a client might send it: a channel byte (raw, as a digit, or the close signal)
/// and random data.
fn ws_payload(rng: &mut Rng) -> Vec<u8> {
    let mut payload = Vec::new();
    match rng.below(4) {
        0 => payload.push(rng.below(7) as u8),
        1 => payload.push(b'0' + rng.below(7) as u8),
        2 => payload.push(channel::CLOSE),
        _ => {}
    }
    let max = if rng.one_in(50) { 70_000 } else { 64 };
    let len = rng.below(max);
    if rng.one_in(2) {
        payload.extend(rng.bytes(len));
    } else {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        payload.extend((0..len).map(|_| *rng.pick(alphabet)));
    }
    payload
}

#[test]
fn websocket_channel_messages_decode_to_a_known_channel_or_a_reason() {
    let mut budget = Budget::from_env(20_000);
    let mut rng = budget.rng();
    let mut failures = Vec::new();
    while budget.another() {
        let protocol = *rng.pick(&PROTOCOLS);
        let payload = ws_payload(&mut rng);
        let bad = match channel::decode(protocol, Bytes::from(payload.clone())) {
            Incoming::Data { channel, data } => {
                let raw_matches = protocol.is_base64() || data[..] == payload[1..];
                (channel >= CHANNELS || !raw_matches).then(|| format!("channel {channel}"))
            }
            Incoming::CloseChannel(c) => (!protocol.supports_stream_close() || c >= CHANNELS)
                .then(|| format!("close of {c} on {protocol:?}")),
            Incoming::Skip => None,
            Incoming::Fatal(reason) => (!protocol.supports_stream_close() || reason.is_empty())
                .then(|| format!("fatal {reason:?} on {protocol:?}")),
        };
        // What the server encodes, a client decodes back (the framing is symmetric).
        let ch = rng.below(CHANNELS as usize) as u8;
        let len = rng.below(100);
        let data = rng.bytes(len);
        let round = match channel::encode(protocol, ch, &data) {
            tokio_tungstenite::tungstenite::Message::Binary(b) => b,
            tokio_tungstenite::tungstenite::Message::Text(t) => Bytes::from(t.as_str().to_owned()),
            other => panic!("encode made {other:?}"),
        };
        let back = channel::decode(protocol, round);
        let lost = back
            != Incoming::Data {
                channel: ch,
                data: Bytes::from(data.clone()),
            };
        if lost && !(data.is_empty() && back == Incoming::Skip) {
            failures.push(format!("{protocol:?} channel {ch}: {back:?}"));
        }
        if let Some(why) = bad {
            failures.push(format!(
                "{protocol:?} {:02x?}: {why}",
                &payload[..payload.len().min(16)]
            ));
        }
        if failures.len() >= 5 {
            break;
        }
    }
    eprintln!(
        "[fuzz] WebSocket channel messages: {} cases, seed {}, {} failures",
        budget.done(),
        budget.seed,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "seed {}:\n{}",
        budget.seed,
        failures.join("\n")
    );
}

/// A resize stream: sizes, some of them broken, in random pieces.
fn resize_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(5) {
        let w = *rng.pick(&[
            "80", "0", "65535", "65536", "-1", "1e3", "\"80\"", "null", "8.5",
        ]);
        let h = *rng.pick(&["24", "1", "70000", "true", "[]", "{}"]);
        let key = *rng.pick(&["Width", "width", "WIDTH", "Widht"]);
        let mut value = format!("{{\"{key}\":{w},\"Height\":{h}}}").into_bytes();
        if rng.one_in(4) {
            let at = rng.below(value.len());
            value[at] = rng.next_u64() as u8;
        }
        if rng.one_in(10) {
            let len = rng.below(80);
            value = rng.bytes(len);
        }
        out.extend(value);
        let gap: &[u8] = match rng.below(3) {
            0 => b"\n",
            1 => b"",
            _ => b" \t",
        };
        out.extend_from_slice(gap);
    }
    out
}

#[tokio::test]
async fn resize_streams_forward_only_sizes_that_fit() {
    use tokio::io::AsyncWriteExt;
    let mut budget = Budget::from_env(3000);
    let mut rng = budget.rng();
    let mut sizes = 0;
    while budget.another() {
        let bytes = resize_bytes(&mut rng);
        let (mut client, server) = tokio::io::duplex(64);
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let reader = tokio::spawn(crate::stream::remotecommand::resize::forward(server, tx));
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(20)).min(rest.len());
            // The reader may have stopped at a bad value; then writes fail, as for a client.
            if client.write_all(&rest[..n]).await.is_err() {
                break;
            }
            rest = &rest[n..];
            while let Ok(size) = rx.try_recv() {
                let _ = size;
                sizes += 1;
            }
        }
        drop(client);
        reader.await.expect("the resize reader does not panic");
        while rx.recv().await.is_some() {
            sizes += 1;
        }
    }
    eprintln!(
        "[fuzz] resize streams: {} cases, {sizes} sizes forwarded, seed {}",
        budget.done(),
        budget.seed
    );
}
