//! Arbitrary bytes as the byte stream of one SPDY connection: the decoder must return frames
//! or errors, never panic, and never allocate past its limits.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use vk_core::stream::spdy::codec::{FrameDecoder, FrameLimits};

fuzz_target!(|data: &[u8]| {
    let limits = FrameLimits {
        max_control_payload: 64 * 1024,
        max_data_payload: 64 * 1024,
        max_header_block: 64 * 1024,
    };
    let mut decoder = FrameDecoder::new(limits);
    // Feed the input in two pieces, as a socket would, to exercise partial frames.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut src = BytesMut::new();
    for piece in [&data[..split], &data[split..]] {
        src.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                // A stream error consumed its frame: decoding goes on, as the connection does.
                Err(e) if e.stream_error().is_some() => {}
                Err(_) => return,
            }
        }
    }
});
