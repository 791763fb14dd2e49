//! Port-forward over WebSocket, in the two forms a kubelet accepts:
//!
//! - **SPDY tunnelled in WebSocket** (subprotocol `SPDY/3.1+portforward.k8s.io`): binary
//!   messages carry the SPDY session's bytes, message boundaries mean nothing, a normal close
//!   is the end of the stream. kubectl ≥ 1.31 speaks this to kube-apiserver, which unwraps it
//!   into plain SPDY for the node unless the node declares `ExtendWebSocketsToKubelet`
//!   (1.36+): then it passes the WebSocket through and the kubelet unwraps it (see
//!   [`tunnel`]). The session inside is the [`spdy`](super::spdy) one.
//! - **Channels** (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, or no subprotocol, which
//!   means binary): the ports come from the `port` query parameter (repeated or
//!   comma-separated); port `i` gets data channel `2i` and error channel `2i+1`, and the
//!   server starts each with the port as two little-endian bytes (see [`channels`]). One
//!   connection per port; the socket closes when every port's forward has ended.

mod channels;
mod tunnel;

#[cfg(test)]
mod tests;

use hyper::header::HeaderMap;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

pub use channels::serve as serve_channels;
pub use tunnel::serve as serve_tunnel;

use super::{PORT_HEADER, PortError, SUPPORTED_PROTOCOLS, parse_port};
use crate::stream::spdy::upgrade::{Rejection, UpgradeResponse};
pub use crate::stream::websocket::handshake::is_websocket_request;
use crate::stream::websocket::handshake::{
    Handshake, HandshakeError, Preference, choose, offered_subprotocols,
};

/// Binary channels, and the same in base64 text messages.
pub const V4_BINARY: &str = "v4.channel.k8s.io";
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";
/// Channel numbers are one byte: two channels per port.
pub const MAX_PORTS: usize = 128;
/// The prefix and suffix that make a WebSocket subprotocol a SPDY tunnel.
pub const TUNNEL_PREFIX: &str = "SPDY/3.1+";
pub const TUNNEL_SUFFIX: &str = ".k8s.io";

/// What a WebSocket port-forward request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebSocketForm {
    /// SPDY tunnelled through the WebSocket; `protocol` is the chosen WebSocket subprotocol.
    Tunnel { protocol: String },
    /// One data and one error channel per port.
    Channels {
        /// The chosen subprotocol, empty when the client offered none.
        protocol: String,
        base64: bool,
        ports: Vec<u16>,
    },
}

impl WebSocketForm {
    /// The subprotocol to answer with (empty: none).
    pub fn protocol(&self) -> &str {
        match self {
            WebSocketForm::Tunnel { protocol } | WebSocketForm::Channels { protocol, .. } => {
                protocol
            }
        }
    }
}

fn is_tunnel(protocol: &str) -> bool {
    protocol.starts_with(TUNNEL_PREFIX) && protocol.ends_with(TUNNEL_SUFFIX)
}

/// The form of a WebSocket request, decided as the kubelet does: any tunnelling subprotocol
/// means a tunnel (then the SPDY subprotocol inside must be ours); otherwise channels, with
/// the ports from the query and the first subprotocol offered that is one of ours (none
/// offered: binary).
pub fn form(headers: &HeaderMap, query: Option<&str>) -> Result<WebSocketForm, Rejection> {
    let offered = offered_subprotocols(headers);
    let tunnels: Vec<&str> = offered
        .iter()
        .map(String::as_str)
        .filter(|p| is_tunnel(p))
        .collect();
    if !tunnels.is_empty() {
        let inner = |p: &str| p.trim_start_matches(TUNNEL_PREFIX).to_owned();
        let supported: Vec<String> = SUPPORTED_PROTOCOLS
            .iter()
            .map(|p| format!("{TUNNEL_PREFIX}{p}"))
            .collect();
        let supported: Vec<&str> = supported.iter().map(String::as_str).collect();
        return match choose(&tunnels, &supported, Preference::Client) {
            Some(p) => Ok(WebSocketForm::Tunnel {
                protocol: p.to_owned(),
            }),
            None => Err(Rejection::new(
                StatusCode::FORBIDDEN,
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
                    tunnels
                        .iter()
                        .map(|p| inner(p))
                        .collect::<Vec<_>>()
                        .join(" "),
                    SUPPORTED_PROTOCOLS.join(" ")
                ),
            )
            .with_accepted(SUPPORTED_PROTOCOLS)),
        };
    }
    let ports = ports_from_query(query)
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    if ports.len() > MAX_PORTS {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{} ports requested, at most {MAX_PORTS} fit in a WebSocket connection",
                ports.len()
            ),
        ));
    }
    let chosen = if offered.is_empty() {
        Some("")
    } else {
        choose(&offered, &[V4_BINARY, V4_BASE64], Preference::Client)
    };
    match chosen {
        Some(protocol) => Ok(WebSocketForm::Channels {
            protocol: protocol.to_owned(),
            base64: protocol == V4_BASE64,
            ports,
        }),
        None => {
            let refused = HandshakeError::Subprotocol {
                offered,
                supported: vec![V4_BINARY.to_owned(), V4_BASE64.to_owned()],
            };
            Err(Rejection::new(
                refused.status(),
                format!("unable to upgrade websocket connection: {refused}"),
            ))
        }
    }
}

/// Why the `port` query parameters name no ports, as the kubelet words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortQueryError {
    #[error("query parameter {:?} is required", PORT_HEADER)]
    Missing,
    #[error("query parameter {:?} cannot be empty", PORT_HEADER)]
    Empty,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// The `port` query parameters (repeated and/or comma-separated), as the kubelet reads them.
pub fn ports_from_query(query: Option<&str>) -> Result<Vec<u16>, PortQueryError> {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == PORT_HEADER)
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.is_empty() {
        return Err(PortQueryError::Missing);
    }
    let mut ports = Vec::new();
    for value in &values {
        if value.is_empty() {
            return Err(PortQueryError::Empty);
        }
        for p in value.split(',') {
            ports.push(parse_port(p)?);
        }
    }
    Ok(ports)
}

/// An accepted WebSocket upgrade: return the 101 response, then [`PendingWebSocket::connect`].
#[derive(Debug)]
pub struct PendingWebSocket {
    on_upgrade: OnUpgrade,
}

/// The socket after the upgrade.
pub type UpgradedWebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

impl PendingWebSocket {
    /// Waits for hyper to hand over the connection after it sent the 101.
    pub async fn connect(self) -> Result<UpgradedWebSocket, hyper::Error> {
        let upgraded = self.on_upgrade.await?;
        Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
    }
}

/// Answers a WebSocket upgrade (RFC 6455 section 4.2.2), choosing `protocol` (none when
/// empty), which must be one the client offered (see [`form`]).
pub fn upgrade<B>(
    req: &mut Request<B>,
    protocol: &str,
) -> Result<(UpgradeResponse, PendingWebSocket), Rejection> {
    let handshake = Handshake::from_request(req)?;
    let response = handshake.response((!protocol.is_empty()).then_some(protocol))?;
    let on_upgrade = hyper::upgrade::on(&mut *req);
    Ok((response, PendingWebSocket { on_upgrade }))
}
