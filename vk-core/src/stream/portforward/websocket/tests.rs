//! Every form through [`accept`] behind a real hyper HTTP/1.1 server: WebSocket channels
//! (binary, base64, no subprotocol) and SPDY tunnelled in WebSocket against a tungstenite
//! client, plain SPDY against the SPDY test client, and the rejections.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::super::test_forwarder::{GREETING, REFUSED_MESSAGE, TestForwarder};
use super::super::{SessionConfig, accept};
use super::*;
use crate::stream::spdy::frame::Frame;
use crate::stream::spdy::test_client::{TestClient, WAIT};

/// A server for one connection; returns the client's end.
fn serve_one(forwarder: &TestForwarder) -> DuplexStream {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let forwarder: Arc<dyn super::super::PortForwarder> = Arc::new(forwarder.clone());
    tokio::spawn(async move {
        let service = service_fn(move |mut req: Request<Incoming>| {
            let forwarder = forwarder.clone();
            async move { Ok::<_, Infallible>(accept(&mut req, forwarder, SessionConfig::default())) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_io), service)
            .with_upgrades()
            .await;
    });
    client_io
}

async fn ws_connect(
    forwarder: &TestForwarder,
    path: &str,
    protocols: &str,
) -> Result<(WebSocketStream<DuplexStream>, String), WsError> {
    let io = serve_one(forwarder);
    let mut request = format!("ws://node{path}").into_client_request()?;
    if !protocols.is_empty() {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    }
    let (ws, response) = tokio_tungstenite::client_async(request, io).await?;
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Ok((ws, chosen))
}

/// The next message's payload as bytes (text messages as their text).
async fn next_payload(ws: &mut WebSocketStream<DuplexStream>) -> Option<Vec<u8>> {
    next_payload_within(ws, WAIT).await
}

async fn next_payload_within(
    ws: &mut WebSocketStream<DuplexStream>,
    wait: Duration,
) -> Option<Vec<u8>> {
    loop {
        let message = tokio::time::timeout(wait, ws.next())
            .await
            .expect("server answers in time")?
            .ok()?;
        match message {
            Message::Binary(b) => return Some(b.to_vec()),
            Message::Text(t) => return Some(t.as_bytes().to_vec()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

#[tokio::test]
async fn binary_channels_start_with_the_port_and_carry_each_ports_data() {
    let forwarder = TestForwarder::default();
    let (mut ws, chosen) = ws_connect(
        &forwarder,
        "/portForward/ns/pod?port=80,82",
        "v4.channel.k8s.io",
    )
    .await
    .expect("upgrades");
    assert_eq!(chosen, "v4.channel.k8s.io");
    let mut prefixes = Vec::new();
    for _ in 0..4 {
        prefixes.push(next_payload(&mut ws).await.expect("prefix"));
    }
    assert_eq!(
        prefixes,
        vec![
            vec![0, 80, 0],
            vec![1, 80, 0],
            vec![2, 82, 0],
            vec![3, 82, 0]
        ]
    );
    // Port 82 greets on channel 2; port 80 echoes channel 0.
    let mut seen = vec![next_payload(&mut ws).await.expect("greeting")];
    ws.send(Message::Binary(Bytes::from_static(b"\x00ping")))
        .await
        .unwrap();
    // Writes to an error channel or an unknown one are ignored.
    ws.send(Message::Binary(Bytes::from_static(b"\x01nope")))
        .await
        .unwrap();
    ws.send(Message::Binary(Bytes::from_static(b"\x09nope")))
        .await
        .unwrap();
    seen.push(next_payload(&mut ws).await.expect("echo"));
    seen.sort();
    let mut greeting = vec![2];
    greeting.extend_from_slice(GREETING);
    assert_eq!(seen, vec![b"\x00ping".to_vec(), greeting]);
    // The echo only ends with the client: closing the socket ends the session.
    ws.close(None).await.unwrap();
    while next_payload(&mut ws).await.is_some() {}
    let mut calls = forwarder.calls();
    calls.sort_unstable();
    assert_eq!(calls, vec![80, 82]);
}

#[tokio::test]
async fn base64_channels_report_a_failed_forward_and_close_when_all_ports_are_done() {
    let forwarder = TestForwarder::default();
    let (mut ws, chosen) = ws_connect(
        &forwarder,
        "/portForward/ns/pod?port=81",
        "v4.base64.channel.k8s.io",
    )
    .await
    .expect("upgrades");
    assert_eq!(chosen, "v4.base64.channel.k8s.io");
    // 81 = 0x51 0x00 -> "UQA=".
    assert_eq!(next_payload(&mut ws).await.unwrap(), b"0UQA=");
    assert_eq!(next_payload(&mut ws).await.unwrap(), b"1UQA=");
    let error = next_payload(&mut ws).await.expect("error message");
    assert_eq!(error[0], b'1');
    let text = base64::engine::general_purpose::STANDARD
        .decode(&error[1..])
        .unwrap();
    assert_eq!(text, REFUSED_MESSAGE.as_bytes());
    assert_eq!(next_payload(&mut ws).await, None, "the server closes");
}

#[tokio::test]
async fn without_a_subprotocol_channels_are_binary() {
    let forwarder = TestForwarder::default();
    let (mut ws, chosen) = ws_connect(&forwarder, "/portForward/ns/pod?port=82", "")
        .await
        .expect("upgrades");
    assert_eq!(chosen, "");
    assert_eq!(next_payload(&mut ws).await.unwrap(), vec![0, 82, 0]);
    assert_eq!(next_payload(&mut ws).await.unwrap(), vec![1, 82, 0]);
    let mut greeting = vec![0];
    greeting.extend_from_slice(GREETING);
    assert_eq!(next_payload(&mut ws).await.unwrap(), greeting);
    assert_eq!(next_payload(&mut ws).await, None);
}

async fn rejected(path: &str, protocols: &str) -> (StatusCode, String) {
    match ws_connect(&TestForwarder::default(), path, protocols).await {
        Err(WsError::Http(response)) => (
            response.status(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("{path} with {protocols:?} was accepted"),
    }
}

#[tokio::test]
async fn bad_ports_and_unknown_protocols_are_refused() {
    let (status, body) = rejected("/portForward/ns/pod", "v4.channel.k8s.io").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, "query parameter \"port\" is required\n");
    let (status, body) = rejected("/portForward/ns/pod?port=", "").await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "query parameter \"port\" cannot be empty\n"
        )
    );
    let (status, _) = rejected("/portForward/ns/pod?port=80,0", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = rejected("/portForward/ns/pod?port=80", "v5.channel.k8s.io").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let many: Vec<String> = (1..=129).map(|p| p.to_string()).collect();
    let (status, body) =
        rejected(&format!("/portForward/ns/pod?port={}", many.join(",")), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("at most 128"), "{body}");
    let (status, body) = rejected("/portForward/ns/pod", "SPDY/3.1+v5.channel.k8s.io").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.contains("server accepts [portforward.k8s.io]"),
        "{body}"
    );
}

#[tokio::test]
async fn spdy_tunnelled_in_websocket_serves_the_spdy_session() {
    let forwarder = TestForwarder::default();
    // kubectl offers only the tunnelling protocol and sends no port parameter.
    let (ws, chosen) = ws_connect(
        &forwarder,
        "/portForward/ns/pod",
        "SPDY/3.1+portforward.k8s.io",
    )
    .await
    .expect("upgrades");
    assert_eq!(chosen, "SPDY/3.1+portforward.k8s.io");
    let (test_io, bridge_io) = tokio::io::duplex(1 << 20);
    let bridge = tokio::spawn(tunnel::pump(ws, bridge_io));
    let mut client = TestClient::new(test_io);
    for (request, port, payload) in [("0", "80", &b"through the tunnel"[..]), ("1", "82", b"")] {
        let error = client
            .open(&[
                ("streamType", "error"),
                ("port", port),
                ("requestID", request),
            ])
            .await;
        client.data(error, b"", true).await;
        let data = client
            .open(&[
                ("streamType", "data"),
                ("port", port),
                ("requestID", request),
            ])
            .await;
        client.data(data, payload, true).await;
        let mut received = Vec::new();
        loop {
            match client.next().await.expect("tunnel open") {
                Frame::Data(d) if d.stream_id == data => {
                    received.extend_from_slice(&d.payload);
                    if d.fin {
                        break;
                    }
                }
                _ => {}
            }
        }
        let want = if port == "80" { payload } else { GREETING };
        assert_eq!(received, want);
    }
    client.shutdown().await;
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), bridge)
        .await
        .expect("the tunnel closes after the SPDY session")
        .unwrap();
    assert_eq!(forwarder.calls(), vec![80, 82]);
}

#[tokio::test]
async fn plain_spdy_upgrade_negotiates_portforward_and_serves_pairs() {
    let forwarder = TestForwarder::default();
    let mut io = serve_one(&forwarder);
    io.write_all(
        b"POST /portForward/ns/pod HTTP/1.1\r\nHost: node\r\nConnection: Upgrade\r\n\
          Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\
          Content-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("x-stream-protocol-version: portforward.k8s.io"),
        "{head}"
    );
    let mut client = TestClient::new(io);
    let error = client
        .open(&[("streamType", "error"), ("port", "81"), ("requestID", "0")])
        .await;
    client.data(error, b"", true).await;
    let _data = client
        .open(&[("streamType", "data"), ("port", "81"), ("requestID", "0")])
        .await;
    let mut message = Vec::new();
    loop {
        if let Frame::Data(d) = client.next().await.expect("open")
            && d.stream_id == error
        {
            message.extend_from_slice(&d.payload);
            if d.fin {
                break;
            }
        }
    }
    assert_eq!(message, REFUSED_MESSAGE.as_bytes());
}

#[tokio::test]
async fn plain_spdy_without_our_protocol_is_forbidden() {
    let mut io = serve_one(&TestForwarder::default());
    io.write_all(
        b"POST /portForward/ns/pod HTTP/1.1\r\nHost: node\r\nConnection: Upgrade\r\n\
          Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
          Content-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = vec![0u8; 512];
    let n = io.read(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response[..n]).to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 403"), "{response}");
    assert!(
        response.contains("x-accepted-stream-protocol-versions: portforward.k8s.io"),
        "{response}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_channel_session_is_closed_and_its_forwards_cancelled() {
    use tokio_tungstenite::tungstenite::protocol::Role;
    let forwarder = TestForwarder::default();
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let server_ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
    let session = tokio::spawn(serve_channels(
        server_ws,
        vec![83],
        false,
        Arc::new(forwarder.clone()),
        Some(Duration::from_secs(60)),
    ));
    let mut ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    assert_eq!(next_payload(&mut ws).await.unwrap(), vec![0, 83, 0]);
    assert_eq!(next_payload(&mut ws).await.unwrap(), vec![1, 83, 0]);
    // Traffic keeps it open past the timeout...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(40)).await;
        ws.send(Message::Binary(Bytes::from_static(b"\x00tick")))
            .await
            .unwrap();
    }
    // ...silence ends it, although the forward itself never would.
    assert_eq!(
        next_payload_within(&mut ws, Duration::from_secs(120)).await,
        None
    );
    tokio::time::timeout(Duration::from_secs(5), session)
        .await
        .expect("the session ends")
        .unwrap();
    assert_eq!(forwarder.calls(), vec![83]);
}

#[test]
fn the_upgrade_checks_the_handshake_and_answers_only_an_offered_protocol() {
    let request = |method: hyper::Method, key: &str| {
        Request::builder()
            .method(method)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key)
            .header("sec-websocket-protocol", V4_BINARY)
            .body(())
            .expect("request")
    };
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    let (response, _) = upgrade(&mut request(hyper::Method::GET, KEY), V4_BINARY).expect("101");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["sec-websocket-protocol"], V4_BINARY);
    let refused = |mut req: Request<()>, protocol: &str| {
        upgrade(&mut req, protocol).expect_err("refused").status
    };
    assert_eq!(
        refused(request(hyper::Method::POST, KEY), V4_BINARY),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        refused(request(hyper::Method::GET, "short"), V4_BINARY),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        refused(request(hyper::Method::GET, KEY), V4_BASE64),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}
