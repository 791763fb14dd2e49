//! Name/value header blocks (SPDY/3 section 2.6.10) and their zlib compression.
//!
//! ```text
//! | number of pairs (32) | name len (32) | name | value len (32) | value | ... |
//! ```
//!
//! Names are non-empty lowercase ASCII; a name appears once, and several values travel as one
//! value joined by NUL bytes. The block is compressed with one zlib stream per direction per
//! connection ([`HeaderDeflater`], [`HeaderInflater`]).

mod compression;
mod dictionary;

pub use compression::{CompressionError, DEFAULT_MAX_HEADER_BLOCK, HeaderDeflater, HeaderInflater};
pub use dictionary::{SPDY3_DICTIONARY, SPDY3_DICTIONARY_ADLER32};

/// What is wrong with a header block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderBlockError {
    #[error("header block is truncated")]
    Truncated,
    #[error("{0} bytes after the last name/value pair")]
    TrailingBytes(usize),
    #[error("header block claims {0} pairs, more than it can hold")]
    TooManyPairs(u32),
    #[error("empty header name")]
    EmptyName,
    #[error("header name {0:?} is not lowercase ASCII without NUL")]
    InvalidName(String),
    #[error("header name {0:?} appears twice")]
    DuplicateName(String),
    #[error("value of header {0:?} has an empty NUL-separated part")]
    EmptyValuePart(String),
    #[error("value of header {0:?} is not UTF-8")]
    ValueNotUtf8(String),
    #[error("value of header {0:?} contains NUL")]
    ValueContainsNul(String),
    #[error("header {0:?} has no value")]
    NoValue(String),
    #[error("header block longer than 2^32-1 bytes")]
    TooLong,
}

/// The headers of a stream, in the order they were received or added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    entries: Vec<(String, Vec<String>)>,
}

impl HeaderBlock {
    pub fn new() -> HeaderBlock {
        HeaderBlock::default()
    }

    /// Adds `value` to header `name` (lowercased, as SPDY requires), after any earlier values.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into().to_ascii_lowercase();
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => self.entries.push((name, vec![value])),
        }
        self
    }

    /// The first value of `name` (matched without regard to ASCII case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).first().map(String::as_str)
    }

    /// All values of `name` (matched without regard to ASCII case).
    pub fn get_all(&self, name: &str) -> &[String] {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the uncompressed block to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) -> Result<(), HeaderBlockError> {
        put_len(dst, self.entries.len())?;
        for (name, values) in &self.entries {
            check_name(name.as_bytes())?;
            let Some((first, rest)) = values.split_first() else {
                return Err(HeaderBlockError::NoValue(name.clone()));
            };
            if values.iter().any(|v| v.contains('\0')) {
                return Err(HeaderBlockError::ValueContainsNul(name.clone()));
            }
            if !rest.is_empty() && values.iter().any(String::is_empty) {
                return Err(HeaderBlockError::EmptyValuePart(name.clone()));
            }
            put_len(dst, name.len())?;
            dst.extend_from_slice(name.as_bytes());
            let value_len = values.iter().map(String::len).sum::<usize>() + rest.len();
            put_len(dst, value_len)?;
            dst.extend_from_slice(first.as_bytes());
            for v in rest {
                dst.push(0);
                dst.extend_from_slice(v.as_bytes());
            }
        }
        Ok(())
    }

    /// Parses an uncompressed block. Every length is checked against what is left, so a
    /// hostile count or length cannot make this allocate more than the block's own size.
    pub fn decode(src: &[u8]) -> Result<HeaderBlock, HeaderBlockError> {
        let mut rest = src;
        let count = take_u32(&mut rest)?;
        // Each pair needs at least two length fields.
        if u64::from(count) * 8 > rest.len() as u64 {
            return Err(HeaderBlockError::TooManyPairs(count));
        }
        let mut entries: Vec<(String, Vec<String>)> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let name = take_bytes(&mut rest)?;
            check_name(name)?;
            // check_name admits ASCII only, so this conversion cannot fail.
            let name = String::from_utf8_lossy(name).into_owned();
            if entries.iter().any(|(n, _)| *n == name) {
                return Err(HeaderBlockError::DuplicateName(name));
            }
            let raw = take_bytes(&mut rest)?;
            let values = if raw.is_empty() {
                vec![String::new()]
            } else {
                let mut values = Vec::new();
                for part in raw.split(|&b| b == 0) {
                    if part.is_empty() {
                        return Err(HeaderBlockError::EmptyValuePart(name));
                    }
                    match std::str::from_utf8(part) {
                        Ok(v) => values.push(v.to_owned()),
                        Err(_) => return Err(HeaderBlockError::ValueNotUtf8(name)),
                    }
                }
                values
            };
            entries.push((name, values));
        }
        if !rest.is_empty() {
            return Err(HeaderBlockError::TrailingBytes(rest.len()));
        }
        Ok(HeaderBlock { entries })
    }
}

fn check_name(name: &[u8]) -> Result<(), HeaderBlockError> {
    if name.is_empty() {
        return Err(HeaderBlockError::EmptyName);
    }
    if name
        .iter()
        .any(|&b| b == 0 || !b.is_ascii() || b.is_ascii_uppercase())
    {
        return Err(HeaderBlockError::InvalidName(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    Ok(())
}

fn put_len(dst: &mut Vec<u8>, len: usize) -> Result<(), HeaderBlockError> {
    let len = u32::try_from(len).map_err(|_| HeaderBlockError::TooLong)?;
    dst.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, HeaderBlockError> {
    let (head, tail) = rest
        .split_first_chunk::<4>()
        .ok_or(HeaderBlockError::Truncated)?;
    *rest = tail;
    Ok(u32::from_be_bytes(*head))
}

fn take_bytes<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], HeaderBlockError> {
    let len = take_u32(rest)? as usize;
    if len > rest.len() {
        return Err(HeaderBlockError::Truncated);
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_golden_block() {
        let mut block = HeaderBlock::new();
        block.append("streamType", "error");
        let mut dst = Vec::new();
        block.encode(&mut dst).expect("valid");
        assert_eq!(
            dst,
            b"\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x05error".to_vec()
        );
    }

    #[test]
    fn joins_and_splits_multiple_values_with_nul() {
        let mut block = HeaderBlock::new();
        block
            .append("port", "80")
            .append("port", "8080")
            .append("x", "");
        let mut dst = Vec::new();
        block.encode(&mut dst).expect("valid");
        assert_eq!(
            dst,
            b"\0\0\0\x02\0\0\0\x04port\0\0\0\x0780\08080\0\0\0\x01x\0\0\0\0".to_vec()
        );
        let back = HeaderBlock::decode(&dst).expect("decodes");
        assert_eq!(back.get_all("port"), ["80", "8080"]);
        assert_eq!(back.get("X"), Some(""));
        assert_eq!(back, block);
    }

    #[test]
    fn empty_block_round_trips() {
        let mut dst = Vec::new();
        HeaderBlock::new().encode(&mut dst).expect("valid");
        assert_eq!(dst, vec![0, 0, 0, 0]);
        assert!(HeaderBlock::decode(&dst).expect("decodes").is_empty());
    }

    #[test]
    fn rejects_invalid_blocks() {
        let cases: &[(&[u8], HeaderBlockError)] = &[
            (b"", HeaderBlockError::Truncated),
            (b"\0\0\0\x01\0\0\0\x01", HeaderBlockError::TooManyPairs(1)),
            (
                b"\xff\xff\xff\xff\0\0\0\0\0\0\0\0",
                HeaderBlockError::TooManyPairs(u32::MAX),
            ),
            (
                b"\0\0\0\x01\0\0\0\x20a\0\0\0\0\0\0\0\0",
                HeaderBlockError::Truncated,
            ),
            (b"\0\0\0\x01\0\0\0\0\0\0\0\0", HeaderBlockError::EmptyName),
            (
                b"\0\0\0\x01\0\0\0\x01A\0\0\0\0",
                HeaderBlockError::InvalidName("A".into()),
            ),
            (
                b"\0\0\0\x02\0\0\0\x01a\0\0\0\0\0\0\0\x01a\0\0\0\0",
                HeaderBlockError::DuplicateName("a".into()),
            ),
            (
                b"\0\0\0\x01\0\0\0\x01a\0\0\0\x02x\0",
                HeaderBlockError::EmptyValuePart("a".into()),
            ),
            (
                b"\0\0\0\x01\0\0\0\x01a\0\0\0\x01\xff",
                HeaderBlockError::ValueNotUtf8("a".into()),
            ),
            (b"\0\0\0\0z", HeaderBlockError::TrailingBytes(1)),
        ];
        for (raw, want) in cases {
            assert_eq!(HeaderBlock::decode(raw).as_ref(), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn refuses_to_encode_what_cannot_be_decoded() {
        let mut nul = HeaderBlock::new();
        nul.append("a", "x\0y");
        assert!(nul.encode(&mut Vec::new()).is_err());
        let mut empty_part = HeaderBlock::new();
        empty_part.append("a", "").append("a", "b");
        assert!(empty_part.encode(&mut Vec::new()).is_err());
    }
}
