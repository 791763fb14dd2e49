//! Arbitrary bytes as consecutive compressed header blocks of one connection (the first byte
//! chooses where to split them): inflation must stay bounded and parsing must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vk_core::stream::spdy::header_block::{HeaderBlock, HeaderInflater};

const MAX_BLOCK: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let mut inflater = HeaderInflater::new(MAX_BLOCK);
    for block in [&rest[..split], &rest[split..]] {
        match inflater.inflate(block) {
            Ok(raw) => {
                assert!(raw.len() <= MAX_BLOCK);
                if let Ok(headers) = HeaderBlock::decode(&raw) {
                    // What decodes must encode again to the same bytes.
                    let mut again = Vec::new();
                    headers
                        .encode(&mut again)
                        .expect("decoded headers re-encode");
                    assert_eq!(again, raw);
                }
            }
            Err(_) => return,
        }
    }
});
