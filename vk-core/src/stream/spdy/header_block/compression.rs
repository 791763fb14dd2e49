//! Header block compression: one zlib stream per direction per connection, primed with the
//! SPDY/3 dictionary, with a SYNC_FLUSH after each block so every frame can be inflated on its
//! own.
//!
//! Inflation is bounded: a block that inflates past the configured size is an error, so a
//! small frame cannot make the server allocate without limit (a "zip bomb").

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::{SPDY3_DICTIONARY, SPDY3_DICTIONARY_ADLER32};

/// Default cap on one inflated header block.
pub const DEFAULT_MAX_HEADER_BLOCK: usize = 256 * 1024;

const SCRATCH_LEN: usize = 16 * 1024;

/// Why a header block could not be (de)compressed. Any of these breaks the connection: the
/// two ends' zlib states are no longer in step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    #[error("header block inflates past {max} bytes")]
    TooLarge { max: usize },
    #[error("zlib stream wants dictionary {found:#010x}, not the SPDY/3 one")]
    WrongDictionary { found: u32 },
    #[error("corrupt zlib data: {0}")]
    Corrupt(String),
    #[error("zlib stream already ended")]
    Ended,
    #[error("zlib compression failed: {0}")]
    Deflate(String),
}

/// The receiving side's zlib state for one connection.
pub struct HeaderInflater {
    zlib: Decompress,
    max_block: usize,
    ended: bool,
    scratch: Box<[u8]>,
}

impl std::fmt::Debug for HeaderInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderInflater")
            .field("total_in", &self.zlib.total_in())
            .field("total_out", &self.zlib.total_out())
            .field("max_block", &self.max_block)
            .finish()
    }
}

impl HeaderInflater {
    /// An inflater that refuses blocks larger than `max_block` bytes once inflated.
    pub fn new(max_block: usize) -> HeaderInflater {
        HeaderInflater {
            zlib: Decompress::new(true),
            max_block,
            ended: false,
            scratch: vec![0; SCRATCH_LEN].into_boxed_slice(),
        }
    }

    /// Inflates the compressed part of one frame.
    pub fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, CompressionError> {
        let mut out = Vec::new();
        if self.ended {
            return if input.is_empty() {
                Ok(out)
            } else {
                Err(CompressionError::Ended)
            };
        }
        loop {
            let (in_before, out_before) = (self.zlib.total_in(), self.zlib.total_out());
            let result = self
                .zlib
                .decompress(input, &mut self.scratch, FlushDecompress::Sync);
            let consumed = usize::try_from(self.zlib.total_in() - in_before).unwrap_or(usize::MAX);
            let produced =
                usize::try_from(self.zlib.total_out() - out_before).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            let chunk = self.scratch.get(..produced).unwrap_or_default();
            if out.len() + chunk.len() > self.max_block {
                return Err(CompressionError::TooLarge {
                    max: self.max_block,
                });
            }
            out.extend_from_slice(chunk);
            match result {
                Ok(Status::StreamEnd) => {
                    // The peer finished its zlib stream; later blocks cannot be read.
                    self.ended = true;
                    return if input.is_empty() {
                        Ok(out)
                    } else {
                        Err(CompressionError::Ended)
                    };
                }
                Ok(Status::Ok | Status::BufError) => {}
                Err(e) => match e.needs_dictionary() {
                    Some(SPDY3_DICTIONARY_ADLER32) => {
                        self.zlib
                            .set_dictionary(&SPDY3_DICTIONARY)
                            .map_err(|e| CompressionError::Corrupt(e.to_string()))?;
                        continue;
                    }
                    Some(found) => return Err(CompressionError::WrongDictionary { found }),
                    None => return Err(CompressionError::Corrupt(e.to_string())),
                },
            }
            let output_full = produced == self.scratch.len();
            if input.is_empty() && !output_full {
                return Ok(out);
            }
            if consumed == 0 && produced == 0 {
                return Err(CompressionError::Corrupt(
                    "inflater made no progress".to_owned(),
                ));
            }
        }
    }
}

/// The sending side's zlib state for one connection.
pub struct HeaderDeflater {
    zlib: Compress,
    primed: bool,
}

impl std::fmt::Debug for HeaderDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDeflater")
            .field("total_in", &self.zlib.total_in())
            .field("total_out", &self.zlib.total_out())
            .finish()
    }
}

impl Default for HeaderDeflater {
    fn default() -> Self {
        HeaderDeflater::new()
    }
}

impl HeaderDeflater {
    pub fn new() -> HeaderDeflater {
        HeaderDeflater {
            zlib: Compress::new(Compression::default(), true),
            primed: false,
        }
    }

    /// Compresses one header block, ending with a SYNC_FLUSH so the receiver can inflate it
    /// without the next one.
    pub fn deflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, CompressionError> {
        if !self.primed {
            // Must precede the first output so the zlib header carries the dictionary id.
            self.zlib
                .set_dictionary(&SPDY3_DICTIONARY)
                .map_err(|e| CompressionError::Deflate(e.to_string()))?;
            self.primed = true;
        }
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let in_before = self.zlib.total_in();
            self.zlib
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| CompressionError::Deflate(e.to_string()))?;
            let consumed = usize::try_from(self.zlib.total_in() - in_before).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            // zlib has flushed everything once it returns with output space to spare.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_blocks_across_one_stream() {
        let mut deflater = HeaderDeflater::new();
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        let blocks: Vec<Vec<u8>> = vec![
            b"\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x05error".to_vec(),
            b"\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x05stdin".to_vec(),
            vec![0, 0, 0, 0],
            vec![7; 100_000],
        ];
        for (i, block) in blocks.iter().enumerate() {
            let compressed = deflater.deflate(block).expect("deflates");
            if i == 0 {
                // zlib header: deflate, 32K window, FDICT set, then the dictionary id.
                assert_eq!(compressed[0], 0x78);
                assert_eq!(compressed[1] & 0x20, 0x20);
                assert_eq!(&compressed[2..6], &SPDY3_DICTIONARY_ADLER32.to_be_bytes());
            }
            assert!(compressed.ends_with(&[0, 0, 0xff, 0xff]), "sync flush");
            assert_eq!(&inflater.inflate(&compressed).expect("inflates"), block);
        }
    }

    /// Bytes produced by Go's compress/zlib (as used by moby/spdystream) for the header block
    /// `streamtype: error` with the SPDY/3 dictionary, level 9, followed by a Flush.
    #[test]
    fn inflates_output_of_other_implementations() {
        let go = [
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x62, 0x60, 0x60, 0x60, 0x04, 0xa7, 0xb3, 0x92,
            0xa2, 0xd4, 0xc4, 0x5c, 0x68, 0x51, 0xc2, 0x9a, 0x0a, 0x0a, 0x68, 0x00, 0x00, 0x00,
            0x00, 0xff, 0xff,
        ];
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert_eq!(
            inflater.inflate(&go).expect("inflates"),
            b"\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x05error"
        );
    }

    #[test]
    fn caps_inflated_size() {
        let mut deflater = HeaderDeflater::new();
        let bomb = deflater.deflate(&vec![0; 1 << 20]).expect("deflates");
        assert!(bomb.len() < 4096, "compresses well: {}", bomb.len());
        let mut inflater = HeaderInflater::new(64 * 1024);
        assert_eq!(
            inflater.inflate(&bomb),
            Err(CompressionError::TooLarge { max: 64 * 1024 })
        );
    }

    #[test]
    fn rejects_garbage_and_foreign_dictionaries() {
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert!(matches!(
            inflater.inflate(&[0xde, 0xad, 0xbe, 0xef]),
            Err(CompressionError::Corrupt(_))
        ));
        // A valid zlib header naming another dictionary.
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert_eq!(
            inflater.inflate(&[0x78, 0xbb, 0x00, 0x00, 0x00, 0x01, 0x00]),
            Err(CompressionError::WrongDictionary { found: 1 })
        );
    }

    #[test]
    fn empty_input_inflates_to_nothing() {
        let mut inflater = HeaderInflater::new(DEFAULT_MAX_HEADER_BLOCK);
        assert_eq!(inflater.inflate(&[]), Ok(Vec::new()));
    }
}
