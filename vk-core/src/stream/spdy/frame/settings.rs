//! SETTINGS (type 4): connection parameters.
//!
//! ```text
//! | number of entries (32) | flags (8) | id (24) | value (32) | ... |
//! ```

use bytes::{BufMut, BytesMut};

use super::{ControlHead, FrameError, Kind, read_u32};

const KIND: &str = "SETTINGS";

/// Frame flag: the client should forget settings it persisted for this server.
pub const FLAG_CLEAR_SETTINGS: u8 = 0x01;

/// Setting ids (24 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingId(pub u32);

impl SettingId {
    pub const UPLOAD_BANDWIDTH: SettingId = SettingId(1);
    pub const DOWNLOAD_BANDWIDTH: SettingId = SettingId(2);
    pub const ROUND_TRIP_TIME: SettingId = SettingId(3);
    pub const MAX_CONCURRENT_STREAMS: SettingId = SettingId(4);
    pub const CURRENT_CWND: SettingId = SettingId(5);
    pub const DOWNLOAD_RETRANS_RATE: SettingId = SettingId(6);
    pub const INITIAL_WINDOW_SIZE: SettingId = SettingId(7);
    pub const CLIENT_CERTIFICATE_VECTOR_SIZE: SettingId = SettingId(8);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Per-entry flags (FLAG_SETTINGS_PERSIST_VALUE 0x1, FLAG_SETTINGS_PERSISTED 0x2).
    pub flags: u8,
    pub id: SettingId,
    pub value: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub clear_persisted: bool,
    pub entries: Vec<Setting>,
}

impl Settings {
    /// The value of `id`; when an id repeats, the first one counts (as the spec says).
    pub fn get(&self, id: SettingId) -> Option<u32> {
        self.entries.iter().find(|s| s.id == id).map(|s| s.value)
    }

    pub fn decode(flags: u8, payload: &[u8]) -> Result<Settings, FrameError> {
        let count = read_u32(payload, 0, KIND)? as usize;
        let entries_len = payload.len() - 4;
        if count.checked_mul(8) != Some(entries_len) {
            return Err(FrameError::malformed(
                KIND,
                "entry count does not match length",
            ));
        }
        let entries = payload[4..]
            .chunks_exact(8)
            .map(|e| Setting {
                flags: e[0],
                id: SettingId(u32::from_be_bytes([0, e[1], e[2], e[3]])),
                value: u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
            })
            .collect();
        Ok(Settings {
            clear_persisted: flags & FLAG_CLEAR_SETTINGS != 0,
            entries,
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        let flags = if self.clear_persisted {
            FLAG_CLEAR_SETTINGS
        } else {
            0
        };
        let len = self
            .entries
            .len()
            .checked_mul(8)
            .and_then(|n| n.checked_add(4))
            .ok_or(FrameError::Encode {
                kind: KIND,
                reason: "too many entries",
            })?;
        let count = u32::try_from(self.entries.len()).map_err(|_| FrameError::Encode {
            kind: KIND,
            reason: "too many entries",
        })?;
        ControlHead::new(Kind::Settings, flags, len)?.encode(dst);
        dst.put_u32(count);
        for e in &self.entries {
            dst.put_u32((u32::from(e.flags) << 24) | (e.id.0 & 0x00ff_ffff));
            dst.put_u32(e.value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    #[test]
    fn golden_bytes() {
        let frame = Settings {
            clear_persisted: false,
            entries: vec![
                Setting {
                    flags: 0,
                    id: SettingId::INITIAL_WINDOW_SIZE,
                    value: 65536,
                },
                Setting {
                    flags: 1,
                    id: SettingId::MAX_CONCURRENT_STREAMS,
                    value: 100,
                },
            ],
        };
        let mut dst = BytesMut::new();
        frame.encode(&mut dst).expect("encodes");
        assert_eq!(&dst[..], golden::SETTINGS_IWS_MAXSTREAMS);
        let back =
            Settings::decode(0, golden::payload(golden::SETTINGS_IWS_MAXSTREAMS)).expect("decodes");
        assert_eq!(back, frame);
        assert_eq!(back.get(SettingId::INITIAL_WINDOW_SIZE), Some(65536));
        assert_eq!(back.get(SettingId::ROUND_TRIP_TIME), None);
    }

    #[test]
    fn first_value_of_a_repeated_id_wins() {
        let payload = [0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 2];
        let frame = Settings::decode(FLAG_CLEAR_SETTINGS, &payload).expect("decodes");
        assert!(frame.clear_persisted);
        assert_eq!(frame.get(SettingId::INITIAL_WINDOW_SIZE), Some(1));
    }

    #[test]
    fn rejects_count_length_mismatch() {
        assert!(Settings::decode(0, &[]).is_err());
        assert!(Settings::decode(0, &[0, 0, 0, 1]).is_err());
        assert!(Settings::decode(0, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_err());
        assert!(
            Settings::decode(0, &[0, 0, 0, 0])
                .expect("empty")
                .entries
                .is_empty()
        );
    }
}
