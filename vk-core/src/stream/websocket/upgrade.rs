//! The HTTP/1.1 upgrade to WebSocket (RFC 6455) with hyper 1, and the subprotocol choice.

use hyper::Request;
use hyper::header::HeaderMap;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::handshake::{Handshake, HandshakeError, Preference, offered_subprotocols};
use super::session::{WebSocketConfig, WebSocketSession};
use super::{SUBPROTOCOLS, Subprotocol};
use crate::stream::remotecommand::StreamOptions;
use crate::stream::spdy::upgrade::{Rejection, UpgradeResponse};

/// Picks the subprotocol: v5 if offered at all (the kubelet hands those requests to its v5
/// stream translator), else the first offered one we know, else none named; 403 if the client
/// named only protocols we do not speak.
pub fn negotiate_subprotocol(headers: &HeaderMap) -> Result<Subprotocol, Rejection> {
    choose(&offered_subprotocols(headers)).map_err(Rejection::from)
}

fn choose(offered: &[String]) -> Result<Subprotocol, HandshakeError> {
    if offered.is_empty() {
        return Ok(Subprotocol::Unnamed);
    }
    let v5 = Subprotocol::V5Channel.name();
    let supported: &[&str] = if offered.iter().any(|p| p == v5) {
        &[v5]
    } else {
        SUBPROTOCOLS
    };
    match super::handshake::choose(offered, supported, Preference::Client) {
        // Every supported name is a known one; `NotOffered` (500) would be a bug here.
        Some(name) => {
            Subprotocol::from_name(name).ok_or_else(|| HandshakeError::NotOffered(name.to_owned()))
        }
        None => Err(HandshakeError::Subprotocol {
            offered: offered.to_vec(),
            supported: SUBPROTOCOLS.iter().map(|p| (*p).to_owned()).collect(),
        }),
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
    let handshake = Handshake::from_request(req)?;
    let protocol = choose(handshake.offered())?;
    let named = (protocol != Subprotocol::Unnamed).then_some(protocol.name());
    let response = handshake.response(named)?;
    let on_upgrade = hyper::upgrade::on(&mut *req);
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
    use hyper::header::{
        HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
    };
    use hyper::{Method, StatusCode};

    use super::super::is_websocket_request;
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
        assert_eq!(r.into_response().headers()[SEC_WEBSOCKET_VERSION], "13");
        let mut keyless = request(&[]);
        keyless.headers_mut().remove("sec-websocket-key");
        let r = upgrade(&mut keyless, opts(), WebSocketConfig::default()).expect_err("key");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let mut spdy = request(&[]);
        spdy.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(!is_websocket_request(spdy.headers()));
    }
}
