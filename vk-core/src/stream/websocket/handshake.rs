//! The server side of the WebSocket opening handshake (RFC 6455 section 4.2), on `http`
//! types only, so every WebSocket endpoint checks a request the same way: the kubelet API's
//! exec/attach and port-forward, and any other server built on hyper.
//!
//! [`Handshake::check`] looks at the method and headers (a whole `Request`, its `Parts`, or
//! the method and `HeaderMap` apart): `GET`, `Connection` naming `upgrade`, `Upgrade` naming
//! `websocket`, `Sec-WebSocket-Version: 13` and one `Sec-WebSocket-Key` that is 16 bytes in
//! base64. [`Handshake::negotiate`] picks a subprotocol from the client's offer, and
//! [`Handshake::response`] builds the `101 Switching Protocols`. Taking over the connection
//! (`hyper::upgrade::on`) stays with the caller, which may have more to check first.
//!
//! Refusals are [`HandshakeError`]s that know their status and the headers their response
//! needs. As the kubelet answers (its WebSocket server, golang.org/x/net/websocket): 405 for
//! another method, 400 for missing upgrade headers, a bad key or another version (with
//! `Sec-WebSocket-Version: 13`, as RFC 6455 section 4.4 shows), and, as the kubelet's
//! `wsstream` does, 403 when the client offers subprotocols and none is ours.

use base64::Engine as _;
use hyper::header::{
    ALLOW, CONNECTION, HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::stream::spdy::upgrade::Rejection;

/// The only protocol version there is (RFC 6455).
pub const VERSION: &str = "13";

/// Why a request cannot be upgraded to WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// 405: the opening handshake is a GET.
    #[error("a WebSocket upgrade must be a GET, not {0}")]
    Method(Method),
    /// 400: `Connection: upgrade` or `Upgrade: websocket` is missing.
    #[error("not a WebSocket upgrade request: it needs Connection: Upgrade and Upgrade: websocket")]
    NotUpgrade,
    /// 400 with `Sec-WebSocket-Version: 13`.
    #[error("unsupported Sec-WebSocket-Version {}: this server speaks 13", .offered.as_deref().unwrap_or("(none)"))]
    Version { offered: Option<String> },
    /// 400: `Sec-WebSocket-Key` is missing, repeated, or not 16 bytes in base64.
    #[error("missing or invalid Sec-WebSocket-Key: it must be 16 bytes in base64")]
    Key,
    /// 403: the client offered subprotocols and none of them is supported.
    #[error(
        "requested protocol(s) are not supported: [{}]; supports [{}]",
        .offered.join(" "),
        .supported.join(" ")
    )]
    Subprotocol {
        offered: Vec<String>,
        supported: Vec<String>,
    },
    /// 500: the server chose a subprotocol the client did not offer (a server bug: RFC 6455
    /// lets the server pick only from the client's list).
    #[error("the server chose the subprotocol {0:?}, which the client did not offer")]
    NotOffered(String),
}

impl HandshakeError {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::NotUpgrade | HandshakeError::Version { .. } | HandshakeError::Key => {
                StatusCode::BAD_REQUEST
            }
            HandshakeError::Subprotocol { .. } => StatusCode::FORBIDDEN,
            HandshakeError::NotOffered(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Headers the refusal must carry: `Allow: GET` for a 405, `Sec-WebSocket-Version: 13`
    /// for a version the server does not speak.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self {
            HandshakeError::Method(_) => {
                headers.insert(ALLOW, HeaderValue::from_static("GET"));
            }
            HandshakeError::Version { .. } => {
                headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static(VERSION));
            }
            _ => {}
        }
        headers
    }
}

/// The kubelet API's plain-text refusal.
impl From<HandshakeError> for Rejection {
    fn from(err: HandshakeError) -> Rejection {
        Rejection {
            status: err.status(),
            headers: err
                .headers()
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            message: err.to_string(),
        }
    }
}

/// Whether some value of header `name` holds `token` in its comma-separated list (ASCII
/// case-insensitive).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Whether the headers ask for a WebSocket upgrade: `Connection` names `upgrade` and
/// `Upgrade` names `websocket` (each as one token of its list, any case). What routes a
/// kubelet streaming request to WebSocket rather than SPDY.
pub fn is_websocket_request(headers: &HeaderMap) -> bool {
    has_token(headers, CONNECTION, "upgrade") && has_token(headers, UPGRADE, "websocket")
}

/// The subprotocols the client offers in `Sec-WebSocket-Protocol` (repeated and/or
/// comma-separated), in its order, empty entries left out.
pub fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whose order decides when the client offers several supported subprotocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// The first one the client lists that the server supports (the kubelet's `wsstream`).
    Client,
    /// The first one the server lists that the client offers.
    Server,
}

/// Picks a subprotocol: `None` if no offered one is in `supported`.
pub fn choose<'a, S: AsRef<str>>(
    offered: &[S],
    supported: &[&'a str],
    preference: Preference,
) -> Option<&'a str> {
    let offers = |p: &str| offered.iter().any(|o| o.as_ref() == p);
    match preference {
        Preference::Client => offered
            .iter()
            .find_map(|o| supported.iter().copied().find(|s| *s == o.as_ref())),
        Preference::Server => supported.iter().copied().find(|s| offers(s)),
    }
}

/// A request that passed the checks: build the 101 with [`Handshake::response`].
#[derive(Clone, Debug)]
pub struct Handshake {
    accept: HeaderValue,
    offered: Vec<String>,
}

impl Handshake {
    /// Checks an opening handshake's method and headers, in this order: the method, the
    /// upgrade headers, the version, the key.
    pub fn check(method: &Method, headers: &HeaderMap) -> Result<Handshake, HandshakeError> {
        if method != Method::GET {
            return Err(HandshakeError::Method(method.clone()));
        }
        if !is_websocket_request(headers) {
            return Err(HandshakeError::NotUpgrade);
        }
        let versions: Vec<&HeaderValue> = headers.get_all(SEC_WEBSOCKET_VERSION).iter().collect();
        if !matches!(versions[..], [v] if v.as_bytes() == VERSION.as_bytes()) {
            let offered = (!versions.is_empty()).then(|| {
                versions
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            return Err(HandshakeError::Version { offered });
        }
        let keys: Vec<&HeaderValue> = headers.get_all(SEC_WEBSOCKET_KEY).iter().collect();
        let [key] = keys[..] else {
            return Err(HandshakeError::Key);
        };
        let valid = base64::engine::general_purpose::STANDARD
            .decode(key.as_bytes())
            .is_ok_and(|raw| raw.len() == 16);
        if !valid {
            return Err(HandshakeError::Key);
        }
        // The answer is base64, always a valid header value.
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .map_err(|_| HandshakeError::Key)?;
        Ok(Handshake {
            accept,
            offered: offered_subprotocols(headers),
        })
    }

    /// [`Handshake::check`] on a request.
    pub fn from_request<B>(req: &Request<B>) -> Result<Handshake, HandshakeError> {
        Handshake::check(req.method(), req.headers())
    }

    /// [`Handshake::check`] on a request's parts.
    pub fn from_parts(parts: &Parts) -> Result<Handshake, HandshakeError> {
        Handshake::check(&parts.method, &parts.headers)
    }

    /// The subprotocols the client offered, in its order.
    pub fn offered(&self) -> &[String] {
        &self.offered
    }

    /// Whether the client offered `protocol`.
    pub fn offers(&self, protocol: &str) -> bool {
        self.offered.iter().any(|p| p == protocol)
    }

    /// The subprotocol to answer with: `Ok(None)` when the client offered none, an offered one
    /// from `supported` (see [`Preference`]), or [`HandshakeError::Subprotocol`].
    pub fn negotiate<'a>(
        &self,
        supported: &[&'a str],
        preference: Preference,
    ) -> Result<Option<&'a str>, HandshakeError> {
        if self.offered.is_empty() {
            return Ok(None);
        }
        match choose(&self.offered, supported, preference) {
            Some(p) => Ok(Some(p)),
            None => Err(HandshakeError::Subprotocol {
                offered: self.offered.clone(),
                supported: supported.iter().map(|s| (*s).to_owned()).collect(),
            }),
        }
    }

    /// The `101 Switching Protocols` answer naming `protocol`, which must be one the client
    /// offered (`None`: no `Sec-WebSocket-Protocol`). Return it from the handler, then await
    /// `hyper::upgrade::on(request)` for the connection.
    pub fn response<B: Default>(
        &self,
        protocol: Option<&str>,
    ) -> Result<Response<B>, HandshakeError> {
        let chosen = match protocol {
            None => None,
            Some(p) if self.offers(p) => Some(
                HeaderValue::from_str(p).map_err(|_| HandshakeError::NotOffered(p.to_owned()))?,
            ),
            Some(p) => return Err(HandshakeError::NotOffered(p.to_owned())),
        };
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(SEC_WEBSOCKET_ACCEPT, self.accept.clone());
        if let Some(chosen) = chosen {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, chosen);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455's example key.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request() -> hyper::http::request::Builder {
        Request::builder()
            .header("Connection", "keep-alive, Upgrade")
            .header("Upgrade", "WebSocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", KEY)
    }

    fn check(b: hyper::http::request::Builder) -> Result<Handshake, HandshakeError> {
        Handshake::from_request(&b.body(()).expect("request"))
    }

    /// The same request without `name`, or with `name: value` instead.
    fn with(name: &str, value: Option<&str>) -> hyper::http::request::Builder {
        let mut b = Request::builder();
        for (n, v) in [
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ] {
            match (n == name, value) {
                (false, _) => b = b.header(n, v),
                (true, Some(value)) => b = b.header(n, value),
                (true, None) => {}
            }
        }
        b
    }

    #[test]
    fn a_proper_request_gets_101_with_the_accept_key() {
        let hs = check(request()).expect("accepted");
        let response: Response<()> = hs.response(None).expect("101");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        // RFC 6455 section 1.3's answer to its example key.
        assert_eq!(
            response.headers()[SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(response.headers()[UPGRADE], "websocket");
        assert_eq!(response.headers()[CONNECTION], "Upgrade");
        assert!(!response.headers().contains_key(SEC_WEBSOCKET_PROTOCOL));
        // Parts work as well as the request.
        let (parts, ()) = request().body(()).unwrap().into_parts();
        assert!(Handshake::from_parts(&parts).is_ok());
    }

    #[test]
    fn another_method_is_405_with_allow() {
        let err = check(request().method(Method::POST)).expect_err("POST");
        assert_eq!(err, HandshakeError::Method(Method::POST));
        assert_eq!(err.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(err.headers()[ALLOW], "GET");
    }

    #[test]
    fn missing_upgrade_headers_are_400() {
        for (name, value) in [
            ("connection", None),
            ("connection", Some("keep-alive")),
            // A token, not a substring.
            ("connection", Some("upgraded")),
            ("upgrade", None),
            ("upgrade", Some("SPDY/3.1")),
        ] {
            let err = check(with(name, value)).expect_err(name);
            assert_eq!(err, HandshakeError::NotUpgrade, "{name}: {value:?}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
            assert!(err.headers().is_empty());
        }
        assert!(check(with("upgrade", Some("h2c, websocket"))).is_ok());
        assert!(!is_websocket_request(&HeaderMap::new()));
    }

    #[test]
    fn another_version_is_400_naming_13() {
        let err = check(with("sec-websocket-version", Some("8"))).expect_err("8");
        assert_eq!(
            err,
            HandshakeError::Version {
                offered: Some("8".into())
            }
        );
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.headers()[SEC_WEBSOCKET_VERSION], "13");
        let err = check(with("sec-websocket-version", None)).expect_err("none");
        assert_eq!(err, HandshakeError::Version { offered: None });
        assert!(err.to_string().contains("(none)"), "{err}");
        let twice = request().header("Sec-WebSocket-Version", "8");
        assert!(matches!(check(twice), Err(HandshakeError::Version { .. })));
    }

    #[test]
    fn a_missing_or_malformed_key_is_400() {
        for key in [
            None,
            Some(""),
            Some("not base64!"),
            // Valid base64 of 15 and 17 bytes.
            Some("AAAAAAAAAAAAAAAAAAAA"),
            Some("AAAAAAAAAAAAAAAAAAAAAAA="),
        ] {
            let err = check(with("sec-websocket-key", key)).expect_err("bad key");
            assert_eq!(err, HandshakeError::Key, "{key:?}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        let twice = request().header("Sec-WebSocket-Key", KEY);
        assert_eq!(check(twice).expect_err("two keys"), HandshakeError::Key);
    }

    #[test]
    fn subprotocols_by_client_or_server_preference() {
        let hs = check(
            request()
                .header("Sec-WebSocket-Protocol", "b, a")
                .header("Sec-WebSocket-Protocol", ", c"),
        )
        .expect("accepted");
        assert_eq!(hs.offered(), ["b", "a", "c"]);
        assert_eq!(hs.negotiate(&["a", "b"], Preference::Client), Ok(Some("b")));
        assert_eq!(hs.negotiate(&["a", "b"], Preference::Server), Ok(Some("a")));
        assert_eq!(hs.negotiate(&["c"], Preference::Client), Ok(Some("c")));
        let none = check(request()).expect("accepted");
        assert_eq!(none.negotiate(&["a"], Preference::Client), Ok(None));
        let response: Response<()> = hs.response(Some("a")).expect("101");
        assert_eq!(response.headers()[SEC_WEBSOCKET_PROTOCOL], "a");
    }

    #[test]
    fn no_common_subprotocol_is_403() {
        let hs = check(request().header("Sec-WebSocket-Protocol", "x, y")).expect("accepted");
        let err = hs
            .negotiate(&["a", "b"], Preference::Client)
            .expect_err("nothing common");
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            err.to_string(),
            "requested protocol(s) are not supported: [x y]; supports [a b]"
        );
    }

    #[test]
    fn answering_with_a_protocol_not_offered_is_refused() {
        let hs = check(request().header("Sec-WebSocket-Protocol", "a")).expect("accepted");
        let err = hs.response::<()>(Some("b")).expect_err("not offered");
        assert_eq!(err, HandshakeError::NotOffered("b".into()));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
