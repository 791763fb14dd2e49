//! `/exec` and `/attach`: the checks before the upgrade, and an exec through the upgraded
//! connection with the scripted provider (the test client plays client-go's SPDY executor).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::NODE;
use super::provider::{TestProvider, store_with_build_pod};
use crate::kubelet::exec::{StreamKind, StreamTarget, commands, stream_target};
use crate::kubelet::{KubeletAuth, KubeletServer};
use crate::stream::spdy::frame::StreamId;
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

    let (code, body) = plain(Method::POST, "/attach/ci/build/app?output=1").await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("attach is not supported by the test provider"),
        "{body}"
    );

    // Not an upgrade request.
    let req = Request::post("/exec/ci/build/app?command=ls&output=1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = server().handle(req, None).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn exec_runs_the_providers_command_on_the_upgraded_connection() {
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
    let mut reader = BufReader::new(client_io);
    reader
        .get_mut()
        .write_all(
            b"POST /exec/ci/build/app?command=echo&command=hi&input=1&output=1&error=1 HTTP/1.1\r\n\
              Host: 127.0.0.1:10250\r\n\
              Connection: Upgrade\r\n\
              Upgrade: SPDY/3.1\r\n\
              X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    assert!(status_line.contains("101"), "{status_line}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut client = TestClient::new(reader.into_inner());
    let error = client.open(&[("streamType", "error")]).await;
    let stdin = client.open(&[("streamType", "stdin")]).await;
    let stdout = client.open(&[("streamType", "stdout")]).await;
    let _stderr = client.open(&[("streamType", "stderr")]).await;
    client.data(stdin, b"hello\n", true).await;
    let t = client.collect().await;
    assert_eq!(t.text(stdout), "echo hi\nhello\n");
    assert!(
        t.text(error).contains("non-zero exit code: exit status 2"),
        "{}",
        t.text(error)
    );
    assert_eq!(error, StreamId::from_wire(1));
    client.shutdown().await;
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
