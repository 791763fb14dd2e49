//! The HTTP/1.1 upgrade to WebSocket (RFC 6455) with hyper 1, and the subprotocol choice.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::session::{WebSocketConfig, WebSocketSession};
use super::{SUBPROTOCOLS, Subprotocol};
use crate::stream::remotecommand::StreamOptions;
use crate::stream::spdy::upgrade::{Rejection, UpgradeResponse, is_upgrade_request};

/// Whether the request asks for a WebSocket upgrade (wsstream's `IsWebSocketRequest`:
/// `Upgrade: websocket` and a `Connection` that mentions upgrade).
pub fn is_websocket_request(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && is_upgrade_request(headers)
}

/// The client's `Sec-WebSocket-Protocol` list, in its order.
fn offered(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Picks the subprotocol: v5 if offered at all (the kubelet hands those requests to its v5
/// stream translator), else the first offered one we know, else none named; 403 if the client
/// named only protocols we do not speak.
pub fn negotiate_subprotocol(headers: &HeaderMap) -> Result<Subprotocol, Rejection> {
    let offered = offered(headers);
    if offered.is_empty() {
        return Ok(Subprotocol::Unnamed);
    }
    if offered.contains(&Subprotocol::V5Channel.name()) {
        return Ok(Subprotocol::V5Channel);
    }
    offered
        .iter()
        .find_map(|p| Subprotocol::from_name(p))
        .ok_or_else(|| Rejection {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "requested protocol(s) are not supported: [{}]; supports [{}]",
                offered.join(" "),
                SUBPROTOCOLS.join(" ")
            ),
            accepted: Vec::new(),
        })
}

fn bad_request(message: &str) -> Rejection {
    Rejection {
        status: StatusCode::BAD_REQUEST,
        message: message.to_owned(),
        accepted: Vec::new(),
    }
}

/// An accepted upgrade: return the 101 response, then [`PendingWebSocket::connect`].
#[derive(Debug)]
pub struct PendingWebSocket {
    protocol: Subprotocol,
    opts: StreamOptions,
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
}

impl PendingWebSocket {
    pub fn protocol(&self) -> Subprotocol {
        self.protocol
    }

    /// Waits for hyper to hand over the connection (after it has sent the 101) and starts
    /// the session with the streams `opts` asked for.
    pub async fn connect(self) -> Result<WebSocketSession, hyper::Error> {
        let upgraded = self.on_upgrade.await?;
        Ok(WebSocketSession::start(
            TokioIo::new(upgraded),
            self.protocol,
            self.opts,
            self.config,
        )
        .await)
    }
}

/// Answers a WebSocket upgrade request for an exec/attach with `opts`: `Ok` with the 101
/// response and the pending session (await it in a spawned task: hyper sends the response
/// only after the handler returns); `Err` with the 400/403/405 to return instead.
pub fn upgrade<B>(
    req: &mut Request<B>,
    opts: StreamOptions,
    config: WebSocketConfig,
) -> Result<(UpgradeResponse, PendingWebSocket), Rejection> {
    if req.method() != Method::GET {
        return Err(Rejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "a WebSocket upgrade must be a GET".to_owned(),
            accepted: Vec::new(),
        });
    }
    if !is_websocket_request(req.headers()) {
        return Err(bad_request("missing WebSocket upgrade headers"));
    }
    if req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(bad_request("unsupported Sec-WebSocket-Version (13 only)"));
    }
    let Some(key) = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .filter(|k| !k.is_empty())
    else {
        return Err(bad_request("missing Sec-WebSocket-Key"));
    };
    let accept = derive_accept_key(key.as_bytes());
    let protocol = negotiate_subprotocol(req.headers())?;
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if protocol != Subprotocol::Unnamed {
        headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol.name()),
        );
    }
    Ok((
        response,
        PendingWebSocket {
            protocol,
            opts,
            on_upgrade,
            config,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(protocols: &[&str]) -> Request<()> {
        let mut b = Request::builder()
            .header("Connection", "keep-alive, Upgrade")
            .header("Upgrade", "WebSocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        for p in protocols {
            b = b.header("Sec-WebSocket-Protocol", *p);
        }
        b.body(()).expect("request")
    }

    fn opts() -> StreamOptions {
        StreamOptions::new(false, true, true, false).expect("streams")
    }

    #[test]
    fn v5_anywhere_in_the_offer_wins_else_the_first_known() {
        let pick = |p: &[&str]| negotiate_subprotocol(request(p).headers());
        assert_eq!(
            pick(&["v4.channel.k8s.io, v5.channel.k8s.io"]),
            Ok(Subprotocol::V5Channel)
        );
        assert_eq!(
            pick(&["v9.channel.k8s.io", "base64.channel.k8s.io,channel.k8s.io"]),
            Ok(Subprotocol::Base64Channel)
        );
        assert_eq!(pick(&[]), Ok(Subprotocol::Unnamed));
        let none = pick(&["v9.channel.k8s.io"]).expect_err("unknown");
        assert_eq!(none.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn answers_101_with_the_accept_key_and_protocol() {
        let mut req = request(&["v4.base64.channel.k8s.io"]);
        let (response, pending) =
            upgrade(&mut req, opts(), WebSocketConfig::default()).expect("upgrades");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        // RFC 6455's example key and answer.
        assert_eq!(
            response.headers()[SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            response.headers()[SEC_WEBSOCKET_PROTOCOL],
            "v4.base64.channel.k8s.io"
        );
        assert_eq!(pending.protocol(), Subprotocol::V4Base64Channel);
        let mut unnamed = request(&[]);
        let (response, _) =
            upgrade(&mut unnamed, opts(), WebSocketConfig::default()).expect("upgrades");
        assert!(!response.headers().contains_key(SEC_WEBSOCKET_PROTOCOL));
    }

    #[test]
    fn refuses_bad_handshakes() {
        let mut post = request(&[]);
        *post.method_mut() = Method::POST;
        let r = upgrade(&mut post, opts(), WebSocketConfig::default()).expect_err("post");
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        let mut old = request(&[]);
        old.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let r = upgrade(&mut old, opts(), WebSocketConfig::default()).expect_err("version");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let mut spdy = request(&[]);
        spdy.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(!is_websocket_request(spdy.headers()));
    }
}
