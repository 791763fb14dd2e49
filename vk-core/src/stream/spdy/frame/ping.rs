//! PING (type 6): the receiver echoes it. Clients use odd ids, servers even ones.
//!
//! ```text
//! | id (32) |
//! ```

use bytes::{BufMut, BytesMut};

use super::{ControlHead, FrameError, Kind, expect_len, read_u32};

const KIND: &str = "PING";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    pub id: u32,
}

impl Ping {
    /// A ping the peer started (and expects back): odd ids come from clients.
    pub fn is_from_client(self) -> bool {
        self.id % 2 == 1
    }

    pub fn decode(payload: &[u8]) -> Result<Ping, FrameError> {
        expect_len(payload, 4, KIND)?;
        Ok(Ping {
            id: read_u32(payload, 0, KIND)?,
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        ControlHead::new(Kind::Ping, 0, 4)?.encode(dst);
        dst.put_u32(self.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    #[test]
    fn golden_bytes() {
        let mut dst = BytesMut::new();
        Ping { id: 1 }.encode(&mut dst).expect("encodes");
        assert_eq!(&dst[..], golden::PING_1);
        let ping = Ping::decode(golden::payload(golden::PING_1)).expect("decodes");
        assert_eq!(ping, Ping { id: 1 });
        assert!(ping.is_from_client());
    }

    #[test]
    fn rejects_wrong_length() {
        assert!(Ping::decode(&[0, 0, 0, 1, 0]).is_err());
        assert!(Ping::decode(&[]).is_err());
    }
}
