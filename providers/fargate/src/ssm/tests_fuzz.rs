//! Hostile frames for the codec and the sequencing: random bytes, good frames with bytes
//! flipped, cut short or grown, header and payload lengths at their extremes. Nothing
//! panics; what decodes encodes back to a frame that decodes the same; the receiving side
//! never hands on a sequence number twice or out of order.
//!
//! `cargo test` runs 20 000 frames from a fixed seed; `VK_FUZZ_SECONDS=N` runs that long
//! from a seed of the clock (printed; `VK_FUZZ_SEED` replays one).

use vk_core::fuzz::{Budget, Rng};

use super::codec::{AgentMessage, message_type, payload};
use super::stream::Inbound;

fn good(rng: &mut Rng) -> AgentMessage {
    let kinds: [&str; 6] = [
        message_type::INPUT_STREAM_DATA,
        message_type::OUTPUT_STREAM_DATA,
        message_type::ACKNOWLEDGE,
        message_type::CHANNEL_CLOSED,
        "",
        "a_type_that_is_longer_than_its_thirty_two_byte_field",
    ];
    let len = if rng.one_in(20) {
        70_000
    } else {
        rng.below(300)
    };
    let mut m = AgentMessage::stream(
        kinds[rng.below(kinds.len())],
        rng.below(40) as i64 - 5,
        rng.below(14) as u32,
        rng.bytes(len),
    );
    if rng.one_in(10) {
        m.sequence_number = i64::MAX - rng.below(3) as i64;
    }
    m
}

fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    match rng.below(7) {
        0 => {
            let n = rng.below(frame.len() + 1);
            frame.truncate(n);
        }
        1 => {
            for _ in 0..1 + rng.below(8) {
                if !frame.is_empty() {
                    let i = rng.below(frame.len());
                    frame[i] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            let v = *rng.pick(&[0u32, 1, 115, 116, 117, 119, 120, u32::MAX, u32::MAX - 3]);
            if frame.len() >= 4 {
                frame[0..4].copy_from_slice(&v.to_be_bytes());
            }
        }
        3 => {
            let v = *rng.pick(&[0u32, 1, 1 << 20, u32::MAX, u32::MAX - 120]);
            if frame.len() >= 120 {
                frame[116..120].copy_from_slice(&v.to_be_bytes());
            }
        }
        4 => {
            let n = rng.below(64);
            frame.extend(rng.bytes(n))
        }
        5 => {
            let n = rng.below(400);
            *frame = rng.bytes(n)
        }
        _ => {}
    }
}

#[test]
fn hostile_frames_never_panic_and_what_decodes_round_trips() {
    let mut budget = Budget::from_env(20_000);
    let mut rng = budget.rng();
    let mut inbound = Inbound::new(64 * 1024);
    let mut handed = Vec::new();
    let mut decoded = 0u64;
    while budget.another() {
        let mut frame = good(&mut rng).encode();
        mutate(&mut rng, &mut frame);
        let Ok(m) = AgentMessage::decode(&frame) else {
            continue;
        };
        decoded += 1;
        let again = AgentMessage::decode(&m.encode()).expect("an encoded message decodes");
        assert_eq!(again.payload, m.payload);
        assert_eq!(again.sequence_number, m.sequence_number);
        assert_eq!(again.message_id, m.message_id);
        let _ = m.digest_ok();
        if m.message_type == message_type::OUTPUT_STREAM_DATA && m.payload_type == payload::OUTPUT {
            for r in inbound.accept(m).ready {
                handed.push(r.sequence_number);
            }
        }
    }
    assert!(
        handed.windows(2).all(|w| w[1] == w[0] + 1),
        "handed on in order, each once: {handed:?}"
    );
    println!(
        "ssm codec fuzz: {} frames, {decoded} decoded, seed {}",
        budget.done(),
        budget.seed
    );
}
