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

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

pub use channels::serve as serve_channels;
pub use tunnel::serve as serve_tunnel;

use super::{PORT_HEADER, SUPPORTED_PROTOCOLS, parse_port};
use crate::stream::spdy::upgrade::{Rejection, UpgradeResponse, is_upgrade_request};

pub const PROTOCOL_HEADER: &str = "sec-websocket-protocol";
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

/// `Upgrade: websocket` with `Connection: Upgrade`.
pub fn is_websocket_request(headers: &HeaderMap) -> bool {
    is_upgrade_request(headers)
        && headers.get_all(UPGRADE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.eq_ignore_ascii_case("websocket"))
        })
}

/// The subprotocols the client offers, in its order.
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_tunnel(protocol: &str) -> bool {
    protocol.starts_with(TUNNEL_PREFIX) && protocol.ends_with(TUNNEL_SUFFIX)
}

fn rejection(status: StatusCode, message: String) -> Rejection {
    Rejection {
        status,
        message,
        accepted: Vec::new(),
    }
}

/// The form of a WebSocket request, decided as the kubelet does: any tunnelling subprotocol
/// means a tunnel (then the SPDY subprotocol inside must be ours); otherwise channels, with
/// the ports from the query and the first subprotocol offered that is one of ours (none
/// offered: binary).
pub fn form(headers: &HeaderMap, query: Option<&str>) -> Result<WebSocketForm, Rejection> {
    let offered = offered_protocols(headers);
    let tunnels: Vec<&str> = offered
        .iter()
        .map(String::as_str)
        .filter(|p| is_tunnel(p))
        .collect();
    if !tunnels.is_empty() {
        let inner = |p: &str| p.trim_start_matches(TUNNEL_PREFIX).to_owned();
        return match tunnels
            .iter()
            .find(|p| SUPPORTED_PROTOCOLS.contains(&inner(p).as_str()))
        {
            Some(p) => Ok(WebSocketForm::Tunnel {
                protocol: (*p).to_owned(),
            }),
            None => Err(Rejection {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
                    tunnels
                        .iter()
                        .map(|p| inner(p))
                        .collect::<Vec<_>>()
                        .join(" "),
                    SUPPORTED_PROTOCOLS.join(" ")
                ),
                accepted: SUPPORTED_PROTOCOLS
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
            }),
        };
    }
    let ports = ports_from_query(query).map_err(|m| rejection(StatusCode::BAD_REQUEST, m))?;
    if ports.len() > MAX_PORTS {
        return Err(rejection(
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
        offered
            .iter()
            .map(String::as_str)
            .find(|p| [V4_BINARY, V4_BASE64].contains(p))
    };
    match chosen {
        Some(protocol) => Ok(WebSocketForm::Channels {
            protocol: protocol.to_owned(),
            base64: protocol == V4_BASE64,
            ports,
        }),
        None => Err(rejection(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade websocket connection: requested protocol(s) are not supported: [{}]; supports [{V4_BINARY} {V4_BASE64}]",
                offered.join(" ")
            ),
        )),
    }
}

/// The `port` query parameters (repeated and/or comma-separated), as the kubelet reads them.
pub fn ports_from_query(query: Option<&str>) -> Result<Vec<u16>, String> {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == PORT_HEADER)
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.is_empty() {
        return Err(format!("query parameter {PORT_HEADER:?} is required"));
    }
    let mut ports = Vec::new();
    for value in &values {
        if value.is_empty() {
            return Err(format!("query parameter {PORT_HEADER:?} cannot be empty"));
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
/// empty).
pub fn upgrade<B>(
    req: &mut Request<B>,
    protocol: &str,
) -> Result<(UpgradeResponse, PendingWebSocket), Rejection> {
    let headers = req.headers();
    if !is_websocket_request(headers) {
        return Err(rejection(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: not a WebSocket upgrade request".to_owned(),
        ));
    }
    if headers
        .get("sec-websocket-version")
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(rejection(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: Sec-WebSocket-Version must be 13".to_owned(),
        ));
    }
    let key = headers.get("sec-websocket-key").map(HeaderValue::as_bytes);
    let Some(key) = key.filter(|k| {
        base64::engine::general_purpose::STANDARD
            .decode(k)
            .is_ok_and(|raw| raw.len() == 16)
    }) else {
        return Err(rejection(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing or invalid Sec-WebSocket-Key".to_owned(),
        ));
    };
    let accept = HeaderValue::from_str(&derive_accept_key(key));
    let chosen = HeaderValue::from_str(protocol);
    let (Ok(accept), Ok(chosen)) = (accept, chosen) else {
        return Err(rejection(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: invalid protocol".to_owned(),
        ));
    };
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert("sec-websocket-accept", accept);
    if !protocol.is_empty() {
        h.insert(PROTOCOL_HEADER, chosen);
    }
    Ok((response, PendingWebSocket { on_upgrade }))
}
