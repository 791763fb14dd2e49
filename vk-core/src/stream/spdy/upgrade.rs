//! The HTTP/1.1 upgrade from a kubelet API request to SPDY/3.1, with hyper 1.
//!
//! As the kubelet does (apimachinery `httpstream.Handshake`, then the SPDY response
//! upgrader): first pick a subprotocol from `X-Stream-Protocol-Version` (the first one the
//! client lists that the server supports; 400 if the client lists none, 403 with
//! `X-Accepted-Stream-Protocol-Versions` if none is common), then check the
//! `Connection: Upgrade` / `Upgrade: SPDY/3.1` headers, answer `101 Switching Protocols`, and
//! take over the connection once hyper has sent the 101.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::proto::{SpdyConfig, SpdyConnection};

/// Request header listing the subprotocols the client speaks (repeated and/or comma-separated),
/// and response header naming the one chosen.
pub const HEADER_PROTOCOL_VERSION: &str = "x-stream-protocol-version";
/// Response header listing the server's subprotocols when none is common.
pub const HEADER_ACCEPTED_PROTOCOL_VERSIONS: &str = "x-accepted-stream-protocol-versions";
/// The `Upgrade` token.
pub const SPDY_31: &str = "SPDY/3.1";

/// The responses this module builds.
pub type UpgradeResponse = Response<Full<Bytes>>;

/// A request that cannot be upgraded, and the response that says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub message: String,
    /// Headers the response carries besides the content type (for example
    /// `X-Accepted-Stream-Protocol-Versions`, or `Sec-WebSocket-Version`), in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Lists `protocols` as `X-Accepted-Stream-Protocol-Versions` (one header each).
    pub fn with_accepted<S: AsRef<str>>(mut self, protocols: &[S]) -> Rejection {
        for p in protocols {
            if let Ok(v) = HeaderValue::from_str(p.as_ref()) {
                self.headers.push((
                    HeaderName::from_static(HEADER_ACCEPTED_PROTOCOL_VERSIONS),
                    v,
                ));
            }
        }
        self
    }

    /// A plain-text error response, as Go's `http.Error` writes it.
    pub fn into_response(self) -> UpgradeResponse {
        let mut response = Response::new(Full::new(Bytes::from(format!("{}\n", self.message))));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// Formats a list the way Go's `%v` prints a `[]string`.
fn go_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", items.join(" "))
}

/// Whether `Connection` asks for an upgrade (any value containing "upgrade").
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("upgrade"))
    })
}

/// Whether the request asks for an upgrade to SPDY/3.1.
pub fn is_spdy_upgrade(headers: &HeaderMap) -> bool {
    is_upgrade_request(headers)
        && headers.get_all(UPGRADE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("spdy/3.1"))
        })
}

/// Picks the subprotocol: the first one the client lists that `server_protocols` contains.
pub fn negotiate_protocol(
    headers: &HeaderMap,
    server_protocols: &[&str],
) -> Result<String, Rejection> {
    let values: Vec<&str> = headers
        .get_all(HEADER_PROTOCOL_VERSION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        // Go's header map has no Host entry; count as it would.
        let count = headers.keys_len() - usize::from(headers.contains_key(hyper::header::HOST));
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!(
                "unable to upgrade: header X-Stream-Protocol-Version does not exist in request with {count} headers"
            ),
        ));
    }
    let client: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|p| p.trim_matches(' '))
        .filter(|p| !p.is_empty())
        .collect();
    if client.is_empty() {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!(
                "unable to upgrade: header X-Stream-Protocol-Version contains {}, but no valid protocols",
                go_list(&values)
            ),
        ));
    }
    match client.iter().find(|p| server_protocols.contains(p)) {
        Some(p) => Ok((*p).to_owned()),
        None => Err(Rejection::new(StatusCode::FORBIDDEN, format!(
                "unable to upgrade: unable to negotiate protocol: client supports {}, server accepts {}",
                go_list(&client),
                go_list(server_protocols)
            ))
        .with_accepted(server_protocols)),
    }
}

/// An accepted upgrade: send the 101 response, then [`PendingUpgrade::connect`].
#[derive(Debug)]
pub struct PendingUpgrade {
    protocol: String,
    on_upgrade: OnUpgrade,
    config: SpdyConfig,
}

impl PendingUpgrade {
    /// The negotiated subprotocol (for example `v5.channel.k8s.io`).
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Waits for hyper to hand over the connection (after it has written the 101 response)
    /// and starts the SPDY session on it.
    pub async fn connect(self) -> Result<SpdyConnection, hyper::Error> {
        let upgraded = self.on_upgrade.await?;
        Ok(SpdyConnection::new(TokioIo::new(upgraded), self.config))
    }
}

/// Answers an upgrade request: `Ok` with the 101 response to return from the handler and the
/// pending connection to await afterwards (in a spawned task, since hyper sends the response
/// only after the handler returns); `Err` with why not ([`Rejection::into_response`] is the
/// 400/403 to return instead).
pub fn upgrade<B>(
    req: &mut Request<B>,
    server_protocols: &[&str],
    config: SpdyConfig,
) -> Result<(UpgradeResponse, PendingUpgrade), Rejection> {
    let protocol = negotiate_protocol(req.headers(), server_protocols)?;
    if !is_spdy_upgrade(req.headers()) {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request",
        ));
    }
    let Ok(chosen) = HeaderValue::from_str(&protocol) else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: invalid protocol".to_owned(),
        ));
    };
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static(SPDY_31));
    headers.insert(HEADER_PROTOCOL_VERSION, chosen);
    Ok((
        response,
        PendingUpgrade {
            protocol,
            on_upgrade,
            config,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &[&str] = &[
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
        "v2.channel.k8s.io",
        "channel.k8s.io",
    ];

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    #[test]
    fn picks_the_clients_first_supported_protocol_from_repeated_and_listed_values() {
        let h = headers(&[
            ("X-Stream-Protocol-Version", "v6.channel.k8s.io"),
            (
                "X-Stream-Protocol-Version",
                " ,v4.channel.k8s.io, v5.channel.k8s.io",
            ),
        ]);
        assert_eq!(
            negotiate_protocol(&h, EXEC).as_deref(),
            Ok("v4.channel.k8s.io")
        );
    }

    #[test]
    fn missing_or_empty_header_is_a_bad_request() {
        let missing =
            negotiate_protocol(&headers(&[("host", "x"), ("a", "b")]), EXEC).expect_err("missing");
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            missing.message,
            "unable to upgrade: header X-Stream-Protocol-Version does not exist in request with 1 headers"
        );
        let empty = negotiate_protocol(&headers(&[("x-stream-protocol-version", " , ")]), EXEC)
            .expect_err("empty");
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn no_common_protocol_is_forbidden_and_lists_ours() {
        let h = headers(&[("x-stream-protocol-version", "v9.channel.k8s.io,foo")]);
        let r = negotiate_protocol(&h, &["portforward.k8s.io"]).expect_err("none common");
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            r.message,
            "unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io foo], server accepts [portforward.k8s.io]"
        );
        let response = r.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[HEADER_ACCEPTED_PROTOCOL_VERSIONS],
            "portforward.k8s.io"
        );
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn recognises_upgrade_headers() {
        assert!(is_spdy_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "SPDY/3.1")
        ])));
        assert!(!is_spdy_upgrade(&headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket")
        ])));
        assert!(!is_spdy_upgrade(&headers(&[("upgrade", "SPDY/3.1")])));
    }

    #[test]
    fn answers_101_with_the_chosen_protocol() {
        let mut req = Request::builder()
            .header("Connection", "Upgrade")
            .header("Upgrade", "SPDY/3.1")
            .header("X-Stream-Protocol-Version", "v5.channel.k8s.io")
            .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
            .body(())
            .expect("request");
        let (response, pending) = upgrade(&mut req, EXEC, SpdyConfig::default()).expect("upgrades");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()[CONNECTION], "Upgrade");
        assert_eq!(response.headers()[UPGRADE], "SPDY/3.1");
        assert_eq!(
            response.headers()[HEADER_PROTOCOL_VERSION],
            "v5.channel.k8s.io"
        );
        assert_eq!(pending.protocol(), "v5.channel.k8s.io");
    }

    #[test]
    fn protocol_is_checked_before_upgrade_headers() {
        let mut req = Request::builder().body(()).expect("request");
        let rejection = upgrade(&mut req, EXEC, SpdyConfig::default()).expect_err("rejected");
        assert_eq!(rejection.status, StatusCode::BAD_REQUEST);
        let mut req = Request::builder()
            .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
            .body(())
            .expect("request");
        let rejection = upgrade(&mut req, EXEC, SpdyConfig::default()).expect_err("rejected");
        assert_eq!(rejection.status, StatusCode::BAD_REQUEST);
    }
}
