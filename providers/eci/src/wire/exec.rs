//! Interactive exec: `ExecContainerCommand` with `Sync=false` answers with a `WebSocketUri`
//! (`wss://<host>/exec/?s=<token>` on the service, `ws://<mock cloud>/exec/?s=<token>` on the
//! mock cloud); the caller connects to it and the command's streams travel over that socket.
//!
//! Alibaba does not document the socket's framing, so the mock cloud and this client use a
//! documented one: Kubernetes' remotecommand channel protocol, WebSocket subprotocol
//! `v5.channel.k8s.io`. Every message is binary, its first byte the channel:
//!
//! | byte | direction | payload |
//! | --- | --- | --- |
//! | 0 | client → server | stdin bytes |
//! | 1 | server → client | stdout bytes |
//! | 2 | server → client | stderr bytes (with `TTY=true` everything comes on 1) |
//! | 3 | server → client | the end: one JSON `Status`, then a Close frame |
//! | 4 | client → server | terminal size, JSON `{"Width":80,"Height":24}` |
//! | 255 | client → server | `[255, 0]`: stdin is closed (EOF) |
//!
//! The status is `{"status":"Success"}` for exit code 0,
//! `{"status":"Failure","reason":"NonZeroExitCode","message":"...","details":{"causes":
//! [{"reason":"ExitCode","message":"3"}]}}` for another exit code, and `{"status":"Failure",
//! "message":"..."}` without an exit code when the command could not run. A client that
//! closes the socket (or whose connection drops) has the command killed.
//!
//! The token in the URI is single-use and short-lived (30 s on the mock cloud): the URI is a
//! credential, and a replayed or late one is refused with HTTP 403 before any upgrade.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message};
use vk_core::provider::ExecOutcome;

/// The WebSocket subprotocol of the exec socket.
pub const SUBPROTOCOL: &str = "v5.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// The end of a command, as sent on channel 3.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStatus {
    /// `Success` or `Failure`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    #[serde(default)]
    pub causes: Vec<StatusCause>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

impl ExecStatus {
    /// The command ran and exited with `code`.
    pub fn exited(code: i32) -> Self {
        if code == 0 {
            return Self {
                status: "Success".into(),
                ..Default::default()
            };
        }
        Self {
            status: "Failure".into(),
            reason: "NonZeroExitCode".into(),
            message: format!("command terminated with non-zero exit code: {code}"),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: "ExitCode".into(),
                    message: code.to_string(),
                }],
            }),
        }
    }

    /// The command could not run (or its end is unknown).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            status: "Failure".into(),
            message: message.into(),
            ..Default::default()
        }
    }

    pub fn outcome(&self) -> ExecOutcome {
        if self.status == "Success" {
            return ExecOutcome::Exited(0);
        }
        let code = self
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .find(|c| c.reason == "ExitCode")
            .and_then(|c| c.message.trim().parse().ok());
        match code {
            Some(code) => ExecOutcome::Exited(code),
            None if self.message.is_empty() => {
                ExecOutcome::Error(format!("the command failed ({})", self.reason))
            }
            None => ExecOutcome::Error(self.message.clone()),
        }
    }
}

/// Channel 4's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resize {
    pub width: u16,
    pub height: u16,
}

/// One binary message: the channel byte, then the payload.
pub fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(payload.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(payload);
    Message::Binary(Bytes::from(bytes))
}

/// The normal close the server sends after the status.
pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}
