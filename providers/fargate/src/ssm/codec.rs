//! The binary messages of the Session Manager data channel, as AWS's agent and its
//! `session-manager-plugin` exchange them over the WebSocket (binary frames), and the JSON
//! payloads they carry.
//!
//! Layout, all integers big-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | header length (116: everything up to, not including, the payload length) |
//! | 4 | 32 | message type, UTF-8 padded with spaces (`input_stream_data`, …) |
//! | 36 | 4 | schema version (1) |
//! | 40 | 8 | created date, epoch milliseconds |
//! | 48 | 8 | sequence number (signed) |
//! | 56 | 8 | flags (bit 0 SYN, bit 1 FIN; acknowledgements carry 3) |
//! | 64 | 16 | message id: a UUID, its low 8 bytes first, then its high 8 bytes |
//! | 80 | 32 | SHA-256 of the payload |
//! | 112 | 4 | payload type ([`payload`]) |
//! | header length | 4 | payload length |
//! | header length + 4 | … | payload |
//!
//! [`AgentMessage::decode`] never panics: a frame too short, a header length that points
//! outside the frame or a payload length longer than what follows is an error, and the
//! digest is checked apart ([`AgentMessage::digest_ok`]) so each side decides what to do
//! with a bad one.

use serde::{Deserialize, Serialize};

/// The header length every message is written with.
pub const HEADER_LENGTH: u32 = 116;
/// Where the payload starts when the header has its usual length.
pub const PAYLOAD_OFFSET: usize = HEADER_LENGTH as usize + 4;
const TYPE_FIELD: usize = 32;

/// Message types.
pub mod message_type {
    pub const INPUT_STREAM_DATA: &str = "input_stream_data";
    pub const OUTPUT_STREAM_DATA: &str = "output_stream_data";
    pub const ACKNOWLEDGE: &str = "acknowledge";
    pub const CHANNEL_CLOSED: &str = "channel_closed";
    pub const START_PUBLICATION: &str = "start_publication";
    pub const PAUSE_PUBLICATION: &str = "pause_publication";
}

/// Payload types of stream data.
pub mod payload {
    pub const OUTPUT: u32 = 1;
    pub const ERROR: u32 = 2;
    pub const SIZE: u32 = 3;
    pub const PARAMETER: u32 = 4;
    pub const HANDSHAKE_REQUEST: u32 = 5;
    pub const HANDSHAKE_RESPONSE: u32 = 6;
    pub const HANDSHAKE_COMPLETE: u32 = 7;
    pub const ENC_CHALLENGE_REQUEST: u32 = 8;
    pub const ENC_CHALLENGE_RESPONSE: u32 = 9;
    pub const FLAG: u32 = 10;
    pub const STDERR: u32 = 11;
    pub const EXIT_CODE: u32 = 12;
}

/// Values of a [`payload::FLAG`] payload (a big-endian u32).
pub mod flag {
    pub const DISCONNECT_TO_PORT: u32 = 1;
    pub const TERMINATE_SESSION: u32 = 2;
    pub const CONNECT_TO_PORT_ERROR: u32 = 3;
}

/// Flags of an acknowledgement (SYN and FIN).
pub const ACK_FLAGS: u64 = 3;

/// Why a frame is not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the frame has {0} bytes, fewer than a message header's {PAYLOAD_OFFSET}")]
    Short(usize),
    #[error("the header length {0} is outside the frame of {1} bytes")]
    HeaderLength(u32, usize),
    #[error("the payload length {0} is more than the {1} bytes that follow the header")]
    PayloadLength(u32, usize),
}

/// One message of the data channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentMessage {
    pub message_type: String,
    pub schema_version: u32,
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    pub message_id: uuid::Uuid,
    pub payload_digest: [u8; 32],
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

impl AgentMessage {
    /// A message created now, with a random id and the payload's digest.
    pub fn new(
        message_type: &str,
        sequence_number: i64,
        flags: u64,
        payload_type: u32,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            message_type: message_type.to_string(),
            schema_version: 1,
            created_date: now_ms(),
            sequence_number,
            flags,
            message_id: uuid::Uuid::new_v4(),
            payload_digest: sha256(&payload),
            payload_type,
            payload,
        }
    }

    /// Stream data of either direction.
    pub fn stream(
        message_type: &str,
        sequence_number: i64,
        payload_type: u32,
        data: Vec<u8>,
    ) -> Self {
        Self::new(message_type, sequence_number, 0, payload_type, data)
    }

    /// The acknowledgement of `self`.
    pub fn ack(&self) -> AgentMessage {
        let content = Acknowledge {
            message_type: self.message_type.clone(),
            message_id: self.message_id.hyphenated().to_string(),
            sequence_number: self.sequence_number,
            is_sequential_message: true,
        };
        let body = serde_json::to_vec(&content).unwrap_or_default();
        AgentMessage::new(message_type::ACKNOWLEDGE, 0, ACK_FLAGS, 0, body)
    }

    /// Whether the payload matches its digest.
    pub fn digest_ok(&self) -> bool {
        sha256(&self.payload) == self.payload_digest
    }

    /// The frame. A message type longer than its field is cut to fit.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut kind = [b' '; TYPE_FIELD];
        let t = self.message_type.as_bytes();
        let n = t.len().min(TYPE_FIELD);
        kind[..n].copy_from_slice(&t[..n]);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        let id = self.message_id.as_bytes();
        out.extend_from_slice(&id[8..16]);
        out.extend_from_slice(&id[0..8]);
        out.extend_from_slice(&self.payload_digest);
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Read a frame. The digest is not checked here.
    pub fn decode(frame: &[u8]) -> Result<AgentMessage, DecodeError> {
        if frame.len() < PAYLOAD_OFFSET {
            return Err(DecodeError::Short(frame.len()));
        }
        let header = be_u32(frame, 0);
        let start = (header as usize).checked_add(4);
        let start = match start {
            Some(s) if header >= HEADER_LENGTH && s <= frame.len() => s,
            _ => return Err(DecodeError::HeaderLength(header, frame.len())),
        };
        let length = be_u32(frame, start - 4);
        let rest = frame.len() - start;
        if length as usize > rest {
            return Err(DecodeError::PayloadLength(length, rest));
        }
        let kind = &frame[4..4 + TYPE_FIELD];
        let message_type = String::from_utf8_lossy(kind)
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_string();
        let mut id = [0u8; 16];
        id[8..16].copy_from_slice(&frame[64..72]);
        id[0..8].copy_from_slice(&frame[72..80]);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&frame[80..112]);
        Ok(AgentMessage {
            message_type,
            schema_version: be_u32(frame, 36),
            created_date: be_u64(frame, 40),
            sequence_number: be_u64(frame, 48) as i64,
            flags: be_u64(frame, 56),
            message_id: uuid::Uuid::from_bytes(id),
            payload_digest: digest,
            payload_type: be_u32(frame, 112),
            payload: frame[start..start + length as usize].to_vec(),
        })
    }
}

/// The first (text) frame a client sends: opens the channel with the session's token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannel {
    #[serde(default)]
    pub message_schema_version: String,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub token_value: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_version: String,
}

/// The payload of an `acknowledge` message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledge {
    #[serde(rename = "AcknowledgedMessageType", default)]
    pub message_type: String,
    #[serde(rename = "AcknowledgedMessageId", default)]
    pub message_id: String,
    #[serde(rename = "AcknowledgedMessageSequenceNumber", default)]
    pub sequence_number: i64,
    #[serde(rename = "IsSequentialMessage", default)]
    pub is_sequential_message: bool,
}

/// The payload of a `channel_closed` message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelClosed {
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub created_date: String,
    #[serde(default)]
    pub destination_id: String,
    #[serde(default)]
    pub session_id: String,
    #[serde(default)]
    pub message_type: String,
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default)]
    pub output: String,
}

/// One action the agent asks the client for in its handshake.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedClientAction {
    #[serde(default)]
    pub action_type: String,
    #[serde(default)]
    pub action_parameters: serde_json::Value,
}

/// Action types of the handshake.
pub mod action {
    pub const SESSION_TYPE: &str = "SessionType";
    pub const KMS_ENCRYPTION: &str = "KMSEncryption";
    /// Action statuses.
    pub const SUCCESS: i64 = 1;
    pub const FAILED: i64 = 2;
    pub const UNSUPPORTED: i64 = 3;
}

/// The agent's handshake request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

/// The parameters of a `SessionType` action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionTypeRequest {
    #[serde(default)]
    pub session_type: String,
    #[serde(default)]
    pub properties: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessedClientAction {
    #[serde(default)]
    pub action_type: String,
    #[serde(default)]
    pub action_status: i64,
    #[serde(default)]
    pub action_result: serde_json::Value,
    #[serde(default)]
    pub error: String,
}

/// The client's answer to the handshake request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    #[serde(default)]
    pub client_version: String,
    #[serde(default)]
    pub processed_client_actions: Vec<ProcessedClientAction>,
    #[serde(default)]
    pub errors: Option<Vec<String>>,
}

/// The agent's end of the handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeComplete {
    /// Nanoseconds.
    #[serde(default)]
    pub handshake_time_to_complete: i64,
    #[serde(default)]
    pub customer_message: String,
}

/// A terminal size (`Size` payload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeData {
    #[serde(default)]
    pub cols: u32,
    #[serde(default)]
    pub rows: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_lays_out_as_documented() {
        let m = AgentMessage::stream(
            message_type::INPUT_STREAM_DATA,
            7,
            payload::OUTPUT,
            b"ls\r".to_vec(),
        );
        let frame = m.encode();
        assert_eq!(frame.len(), PAYLOAD_OFFSET + 3);
        assert_eq!(&frame[0..4], &116u32.to_be_bytes());
        assert_eq!(&frame[4..21], b"input_stream_data");
        assert!(frame[21..36].iter().all(|b| *b == b' '));
        assert_eq!(&frame[48..56], &7i64.to_be_bytes());
        let id = m.message_id.as_bytes();
        assert_eq!(&frame[64..72], &id[8..16], "the low half first");
        assert_eq!(&frame[72..80], &id[0..8]);
        assert_eq!(&frame[80..112], &sha256(b"ls\r"));
        assert_eq!(&frame[112..116], &1u32.to_be_bytes());
        assert_eq!(&frame[116..120], &3u32.to_be_bytes());
        let back = AgentMessage::decode(&frame).unwrap();
        assert_eq!(back, m);
        assert!(back.digest_ok());
    }

    #[test]
    fn an_ack_names_the_message_by_sequence_number_and_id() {
        let m = AgentMessage::stream(
            message_type::OUTPUT_STREAM_DATA,
            42,
            payload::OUTPUT,
            b"x".to_vec(),
        );
        let ack = m.ack();
        assert_eq!(ack.message_type, message_type::ACKNOWLEDGE);
        assert_eq!(ack.flags, ACK_FLAGS);
        let content: Acknowledge = serde_json::from_slice(&ack.payload).unwrap();
        assert_eq!(content.sequence_number, 42);
        assert_eq!(content.message_type, "output_stream_data");
        assert_eq!(content.message_id, m.message_id.to_string());
        let text = String::from_utf8(ack.payload).unwrap();
        assert!(
            text.contains("\"AcknowledgedMessageSequenceNumber\":42"),
            "{text}"
        );
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(AgentMessage::decode(&[]), Err(DecodeError::Short(0)));
        let good =
            AgentMessage::stream(message_type::OUTPUT_STREAM_DATA, 0, 1, b"abc".to_vec()).encode();
        let mut f = good.clone();
        f[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            AgentMessage::decode(&f),
            Err(DecodeError::HeaderLength(..))
        ));
        let mut f = good.clone();
        f[0..4].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            AgentMessage::decode(&f),
            Err(DecodeError::HeaderLength(..))
        ));
        let mut f = good.clone();
        f[116..120].copy_from_slice(&4u32.to_be_bytes());
        assert_eq!(
            AgentMessage::decode(&f),
            Err(DecodeError::PayloadLength(4, 3))
        );
        let mut f = good.clone();
        *f.last_mut().unwrap() ^= 1;
        assert!(!AgentMessage::decode(&f).unwrap().digest_ok());
    }

    #[test]
    fn handshake_payloads_read_as_the_agent_writes_them() {
        let req: HandshakeRequest = serde_json::from_str(
            r#"{"AgentVersion":"3.3.0.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"InteractiveCommands","Properties":null}}]}"#,
        )
        .unwrap();
        assert_eq!(
            req.requested_client_actions[0].action_type,
            action::SESSION_TYPE
        );
        let st: SessionTypeRequest =
            serde_json::from_value(req.requested_client_actions[0].action_parameters.clone())
                .unwrap();
        assert_eq!(st.session_type, "InteractiveCommands");
        let size = serde_json::to_string(&SizeData { cols: 80, rows: 24 }).unwrap();
        assert_eq!(size, r#"{"cols":80,"rows":24}"#);
    }
}
