//! The server side of remotecommand (exec and attach) over WebSocket: what legacy clients
//! (`v4.channel.k8s.io`, `base64.channel.k8s.io`: browser consoles, older client libraries)
//! reach through kube-apiserver, which passes them through unchanged, and what a 1.36+
//! apiserver sends as `v5.channel.k8s.io` to a node that declares `ExtendWebSocketsToKubelet`.
//!
//! Every message carries one channel: 0 stdin, 1 stdout, 2 stderr, 3 error (how the command
//! ended), 4 resize (JSON terminal sizes). The channel is the first byte of a binary message,
//! or an ASCII digit before base64 text in the `base64` forms.
//!
//! | subprotocol | framing | error channel | kubelet handler |
//! | --- | --- | --- | --- |
//! | none, `channel.k8s.io` | binary | failure message as text, nothing on success | wsstream (pre-v4) |
//! | `base64.channel.k8s.io` | base64 text | as above | wsstream (pre-v4) |
//! | `v4.channel.k8s.io` | binary | `metav1.Status` JSON, success included | wsstream (v4) |
//! | `v4.base64.channel.k8s.io` | base64 text | as above | wsstream (v4) |
//! | `v5.channel.k8s.io` | binary; `[255, channel]` closes a client channel (stdin) | as v4 | the stream translator (1.36+ `ExtendWebSocketsToKubelet`) |
//!
//! As in the kubelet, a client that offers v5 anywhere in its list gets v5 (the kubelet
//! routes such requests to the translator, which speaks only v5); otherwise the first offered
//! protocol we know wins. Once upgraded, the server sends one empty message on the lowest
//! channel it writes (stdout, else stderr, else error) so the client knows it is connected.
//! At the end it stops reading input, writes the status, sends a Close frame and waits for
//! the client to close, so output still in flight is not cut off by a reset.

pub(crate) mod channel;
pub mod handshake;
mod session;
mod upgrade;

#[cfg(test)]
mod tests;

pub use handshake::{Handshake, HandshakeError, is_websocket_request};
pub use session::{WebSocketConfig, WebSocketSession};
pub use upgrade::{PendingWebSocket, negotiate_subprotocol, upgrade};

use super::remotecommand::status::StatusForm;

/// A remotecommand subprotocol over WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subprotocol {
    /// The client named none: `channel.k8s.io` framing.
    Unnamed,
    Channel,
    Base64Channel,
    V4Channel,
    V4Base64Channel,
    V5Channel,
}

/// Subprotocols this server accepts, by name (the unnamed one aside).
pub const SUBPROTOCOLS: &[&str] = &[
    Subprotocol::V5Channel.name(),
    Subprotocol::V4Channel.name(),
    Subprotocol::V4Base64Channel.name(),
    Subprotocol::Channel.name(),
    Subprotocol::Base64Channel.name(),
];

impl Subprotocol {
    pub fn from_name(name: &str) -> Option<Subprotocol> {
        Some(match name {
            "v5.channel.k8s.io" => Subprotocol::V5Channel,
            "v4.channel.k8s.io" => Subprotocol::V4Channel,
            "v4.base64.channel.k8s.io" => Subprotocol::V4Base64Channel,
            "channel.k8s.io" => Subprotocol::Channel,
            "base64.channel.k8s.io" => Subprotocol::Base64Channel,
            "" => Subprotocol::Unnamed,
            _ => return None,
        })
    }

    /// The `Sec-WebSocket-Protocol` token (empty for [`Subprotocol::Unnamed`]).
    pub const fn name(self) -> &'static str {
        match self {
            Subprotocol::Unnamed => "",
            Subprotocol::Channel => "channel.k8s.io",
            Subprotocol::Base64Channel => "base64.channel.k8s.io",
            Subprotocol::V4Channel => "v4.channel.k8s.io",
            Subprotocol::V4Base64Channel => "v4.base64.channel.k8s.io",
            Subprotocol::V5Channel => "v5.channel.k8s.io",
        }
    }

    /// Messages are base64 text behind an ASCII channel digit.
    pub fn is_base64(self) -> bool {
        matches!(
            self,
            Subprotocol::Base64Channel | Subprotocol::V4Base64Channel
        )
    }

    /// The client may close one of its channels with `[255, channel]`.
    pub fn supports_stream_close(self) -> bool {
        self == Subprotocol::V5Channel
    }

    pub(crate) fn status_form(self) -> StatusForm {
        match self {
            Subprotocol::Unnamed | Subprotocol::Channel | Subprotocol::Base64Channel => {
                StatusForm::FailureText
            }
            Subprotocol::V4Channel | Subprotocol::V4Base64Channel | Subprotocol::V5Channel => {
                StatusForm::Json
            }
        }
    }
}
