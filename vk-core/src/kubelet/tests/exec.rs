//! `/exec` and `/attach`: the checks before the upgrade, and an exec through the upgraded
//! connection with the scripted provider (the test client plays client-go's SPDY executor).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::NODE;
use super::provider::{TestProvider, store_with_build_pod};
use crate::kubelet::exec::{StreamKind, StreamTarget, commands, stream_target};
use crate::kubelet::{KubeletAuth, KubeletServer, StreamingConfig};
use crate::stream::spdy::frame::{Frame, GoAwayStatus, RstStatus, StreamId};
use crate::stream::spdy::test_client::TestClient;

fn server() -> KubeletServer {
    KubeletServer::new(
        NODE,
        Arc::new(TestProvider::new()),
        store_with_build_pod(),
        KubeletAuth::DisabledForDev,
    )
}

async fn plain(method: Method, uri: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = server().handle(req, None).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[test]
fn targets_and_commands_are_parsed_like_the_kubelet() {
    assert_eq!(
        stream_target("/exec/ci/build/app"),
        Some(StreamTarget {
            kind: StreamKind::Exec,
            namespace: "ci".into(),
            pod: "build".into(),
            uid: None,
            container: "app".into(),
        })
    );
    let with_uid = stream_target("/attach/ci/build/uid-1/app").unwrap();
    assert_eq!(with_uid.kind, StreamKind::Attach);
    assert_eq!(with_uid.uid.as_deref(), Some("uid-1"));
    assert_eq!(stream_target("/exec/ci/build"), None);
    assert_eq!(stream_target("/exec/ci//app"), None);
    assert_eq!(stream_target("/portForward/ci/build"), None);
    assert_eq!(
        commands(Some("command=sh&input=1&command=-c&command=echo%20a%26b")),
        vec!["sh", "-c", "echo a&b"]
    );
}

#[tokio::test]
async fn requests_that_cannot_run_are_answered_before_the_upgrade() {
    let (code, body) = plain(Method::GET, "/exec/ci/build/app?output=1").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("at least one command"), "{body}");

    let (code, body) = plain(Method::GET, "/exec/ci/build/app?command=ls").await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("at least 1 of stdin, stdout, stderr"),
        "{body}"
    );

    let (code, body) = plain(Method::POST, "/exec/ci/nope/app?command=ls&output=1").await;
    assert_eq!(code, 404, "{body}");

    let (code, body) = plain(Method::POST, "/exec/ci/build/nope?command=ls&output=1").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("nope"), "{body}");

    let (code, _) = plain(
        Method::POST,
        "/exec/ci/build/other-uid/app?command=ls&output=1",
    )
    .await;
    assert_eq!(code, 404);

    let (code, _) = plain(Method::PUT, "/exec/ci/build/app?command=ls&output=1").await;
    assert_eq!(code, 405);

    // Not an upgrade request.
    let req = Request::post("/exec/ci/build/app?command=ls&output=1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = server().handle(req, None).await;
    assert_eq!(response.status(), 400);
}

/// Serves `kubelet` on one end of an in-memory connection and sends `request_line`'s upgrade
/// request on the other: the switched connection and the response's status code and body.
async fn upgrade(kubelet: &KubeletServer, target: &str) -> (u16, String, DuplexStream) {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let kubelet = kubelet.clone();
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let kubelet = kubelet.clone();
        async move { Ok::<_, std::convert::Infallible>(kubelet.handle(req, None).await) }
    });
    tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_io), service)
            .with_upgrades(),
    );
    let mut reader = BufReader::new(client_io);
    reader
        .get_mut()
        .write_all(
            format!(
                "POST {target} HTTP/1.1\r\n\
                 Host: 127.0.0.1:10250\r\n\
                 Connection: Upgrade\r\n\
                 Upgrade: SPDY/3.1\r\n\
                 X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    let code: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    (
        code,
        String::from_utf8_lossy(&body).into_owned(),
        reader.into_inner(),
    )
}

/// The streams of an exec with stdin, stdout and stderr.
struct Streams {
    error: StreamId,
    stdin: StreamId,
    stdout: StreamId,
}

async fn open_streams(client: &mut TestClient<DuplexStream>) -> Streams {
    let error = client.open(&[("streamType", "error")]).await;
    let stdin = client.open(&[("streamType", "stdin")]).await;
    let stdout = client.open(&[("streamType", "stdout")]).await;
    let _stderr = client.open(&[("streamType", "stderr")]).await;
    Streams {
        error,
        stdin,
        stdout,
    }
}

const ECHO: &str = "/exec/ci/build/app?command=echo&command=hi&input=1&output=1&error=1";

#[tokio::test]
async fn exec_runs_the_providers_command_on_the_upgraded_connection() {
    let (code, _, io) = upgrade(&server(), ECHO).await;
    assert_eq!(code, 101);
    let mut client = TestClient::new(io);
    let streams = open_streams(&mut client).await;
    client.data(streams.stdin, b"hello\n", true).await;
    let t = client.collect().await;
    assert_eq!(t.text(streams.stdout), "echo hi\nhello\n");
    assert!(
        t.text(streams.error)
            .contains("non-zero exit code: exit status 2"),
        "{}",
        t.text(streams.error)
    );
    assert_eq!(streams.error, StreamId::from_wire(1));
    client.shutdown().await;
}

#[tokio::test]
async fn attach_without_provider_support_reports_it_on_the_error_stream() {
    let (code, _, io) = upgrade(&server(), "/attach/ci/build/app?output=1&error=1").await;
    assert_eq!(code, 101);
    let mut client = TestClient::new(io);
    let error = client.open(&[("streamType", "error")]).await;
    let _stdout = client.open(&[("streamType", "stdout")]).await;
    let _stderr = client.open(&[("streamType", "stderr")]).await;
    let t = client.collect().await;
    let status = t.text(error);
    assert!(
        status
            .contains("error attaching to container: attach is not supported by the test provider"),
        "{status}"
    );
    client.shutdown().await;
}

fn limited(config: StreamingConfig) -> KubeletServer {
    server().with_streaming(config)
}

async fn wait_sessions(kubelet: &KubeletServer, open: usize) {
    for _ in 0..200 {
        if kubelet.streaming.open_sessions() == open {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{} sessions open, expected {open}",
        kubelet.streaming.open_sessions()
    );
}

#[tokio::test]
async fn sessions_over_the_node_bound_get_a_status_not_a_hang() {
    let kubelet = limited(StreamingConfig {
        max_sessions: 1,
        ..StreamingConfig::default()
    });
    let (code, _, io) = upgrade(&kubelet, ECHO).await;
    assert_eq!(code, 101);
    let mut first = TestClient::new(io);
    let streams = open_streams(&mut first).await;
    wait_sessions(&kubelet, 1).await;

    let (code, body, _) = upgrade(&kubelet, ECHO).await;
    assert_eq!(code, 429, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["code"], 429);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("too many exec/attach sessions on node vk-test (limit 1)"),
        "{body}"
    );

    // The slot comes back when the first session ends.
    first.data(streams.stdin, b"", true).await;
    let t = first.collect().await;
    assert_eq!(t.text(streams.stdout), "echo hi\n");
    first.shutdown().await;
    wait_sessions(&kubelet, 0).await;
    let (code, _, _) = upgrade(&kubelet, ECHO).await;
    assert_eq!(code, 101);
}

#[tokio::test]
async fn streams_over_the_connection_bound_are_refused() {
    let kubelet = limited(StreamingConfig {
        max_streams_per_connection: 2,
        ..StreamingConfig::default()
    });
    let (_, _, io) = upgrade(&kubelet, "/exec/ci/build/app?command=true&output=1").await;
    let mut client = TestClient::new(io);
    let _error = client.open(&[("streamType", "error")]).await;
    let _stdout = client.open(&[("streamType", "stdout")]).await;
    let third = client.open(&[("streamType", "stderr")]).await;
    let refused = loop {
        match client.next().await.expect("the server answers") {
            Frame::RstStream(rst) => break rst,
            _ => continue,
        }
    };
    assert_eq!(refused.stream_id, third);
    assert_eq!(refused.status, RstStatus::REFUSED_STREAM);
}

#[tokio::test]
async fn streams_not_created_in_time_end_the_session() {
    let kubelet = limited(StreamingConfig {
        stream_creation_timeout: Duration::from_millis(200),
        ..StreamingConfig::default()
    });
    let (_, _, io) = upgrade(&kubelet, ECHO).await;
    let mut client = TestClient::new(io);
    let _error = client.open(&[("streamType", "error")]).await;
    wait_sessions(&kubelet, 1).await;
    // The server gives up and closes the connection; nothing was run.
    let t = client.collect().await;
    assert!(t.data.values().all(Vec::is_empty), "{t:?}");
    assert!(
        t.control.iter().any(|f| matches!(f, Frame::GoAway(_))),
        "{t:?}"
    );
    wait_sessions(&kubelet, 0).await;
}

#[tokio::test]
async fn idle_sessions_are_closed_and_the_command_cancelled() {
    let kubelet = limited(StreamingConfig {
        idle_timeout: Duration::from_millis(300),
        ..StreamingConfig::default()
    });
    let (_, _, io) = upgrade(&kubelet, ECHO).await;
    let mut client = TestClient::new(io);
    let streams = open_streams(&mut client).await;
    // stdin stays open and nothing moves: the provider's exec waits on it until the idle
    // timeout closes the connection.
    let t = client.collect().await;
    assert_eq!(t.text(streams.stdout), "echo hi\n");
    assert!(
        t.control
            .iter()
            .any(|f| matches!(f, Frame::RstStream(r) if r.stream_id == streams.stdin)),
        "{t:?}"
    );
    client.shutdown().await;
    wait_sessions(&kubelet, 0).await;
}

#[tokio::test]
async fn a_malformed_frame_closes_only_its_own_connection() {
    let kubelet = server();
    let (_, _, io) = upgrade(&kubelet, ECHO).await;
    let mut healthy = TestClient::new(io);
    let streams = open_streams(&mut healthy).await;
    let (_, _, io) = upgrade(&kubelet, ECHO).await;
    let mut broken = TestClient::new(io);
    let _ = open_streams(&mut broken).await;
    wait_sessions(&kubelet, 2).await;

    // A control frame of version 2 (SPDY/3.1 is version 3).
    broken
        .send_raw(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1])
        .await;
    let t = broken.collect().await;
    assert!(
        t.control.iter().any(|f| matches!(
            f,
            Frame::GoAway(g) if g.status == GoAwayStatus::PROTOCOL_ERROR
        )),
        "{t:?}"
    );
    wait_sessions(&kubelet, 1).await;

    healthy.data(streams.stdin, b"still here\n", true).await;
    let t = healthy.collect().await;
    assert_eq!(t.text(streams.stdout), "echo hi\nstill here\n");
    healthy.shutdown().await;
    wait_sessions(&kubelet, 0).await;
}

/// `Upgrade: websocket` takes the WebSocket branch: one connection, channel-tagged messages.
#[tokio::test]
async fn exec_over_websocket_v5_runs_the_providers_command() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let kubelet = server();
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let kubelet = kubelet.clone();
        async move { Ok::<_, std::convert::Infallible>(kubelet.handle(req, None).await) }
    });
    tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_io), service)
            .with_upgrades(),
    );
    let mut request =
        "ws://127.0.0.1:10250/exec/ci/build/app?command=echo&command=hi&input=1&output=1"
            .into_client_request()
            .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::client_async(request, client_io)
        .await
        .unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    ws.send(Message::binary(b"\0hello\n".to_vec()))
        .await
        .unwrap();
    ws.send(Message::binary(vec![255, 0])).await.unwrap();
    let (mut stdout, mut error) = (Vec::new(), Vec::new());
    while let Some(message) = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("in time")
    {
        match message.unwrap() {
            Message::Binary(b) if b[0] == 1 => stdout.extend_from_slice(&b[1..]),
            Message::Binary(b) if b[0] == 3 => error.extend_from_slice(&b[1..]),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(String::from_utf8(stdout).unwrap(), "echo hi\nhello\n");
    let status: serde_json::Value = serde_json::from_slice(&error).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "2");
}

#[tokio::test]
async fn exec_and_attach_sessions_are_counted_open_and_in_all() {
    let metrics = crate::metrics::Metrics::new();
    let kubelet = server().with_metrics(&metrics);
    let (code, _, io) = upgrade(&kubelet, ECHO).await;
    assert_eq!(code, 101);
    let mut client = TestClient::new(io);
    let streams = open_streams(&mut client).await;
    wait_sessions(&kubelet, 1).await;
    let text = metrics.encode();
    for line in [
        "vk_streaming_sessions_open{kind=\"exec\"} 1",
        "vk_streaming_sessions_total{kind=\"exec\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    client.data(streams.stdin, b"", true).await;
    client.collect().await;
    client.shutdown().await;
    wait_sessions(&kubelet, 0).await;
    let (code, _, _) = upgrade(&kubelet, "/attach/ci/build/app?output=1").await;
    assert_eq!(code, 101);
    let text = metrics.encode();
    for line in [
        "vk_streaming_sessions_open{kind=\"exec\"} 0",
        "vk_streaming_sessions_total{kind=\"exec\"} 1",
        "vk_streaming_sessions_total{kind=\"attach\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}
