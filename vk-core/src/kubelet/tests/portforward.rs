//! `/portForward`: the checks before the upgrade, and a forward through the upgraded
//! connection, where the scripted provider's missing port-forward is reported the kubelet's
//! way on the error stream.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::NODE;
use super::provider::{TestProvider, store_with_build_pod};
use crate::kubelet::{KubeletAuth, KubeletServer, StreamingConfig};
use crate::stream::spdy::frame::Frame;
use crate::stream::spdy::test_client::TestClient;

fn server() -> KubeletServer {
    KubeletServer::new(
        NODE,
        Arc::new(TestProvider::new()),
        store_with_build_pod(),
        KubeletAuth::DisabledForDev,
    )
}

async fn answer(method: Method, uri: &str, websocket: bool) -> (StatusCode, String) {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("connection", "Upgrade");
    let builder = if websocket {
        builder
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    } else {
        builder
            .header("upgrade", "SPDY/3.1")
            .header("x-stream-protocol-version", "portforward.k8s.io")
    };
    let response = server()
        .handle(builder.body(Empty::<Bytes>::new()).unwrap(), None)
        .await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn requests_that_cannot_be_served_are_answered_before_the_upgrade() {
    let (code, body) = answer(Method::POST, "/portForward/ci/nope", false).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("pod does not exist"), "{body}");
    let (code, _) = answer(Method::POST, "/portForward/ci/build/other-uid", false).await;
    assert_eq!(code, 404);
    let (code, _) = answer(Method::PUT, "/portForward/ci/build", false).await;
    assert_eq!(code, 405);
    // WebSocket channels need the ports, checked before the pod.
    let (code, body) = answer(Method::GET, "/portForward/ci/nope", true).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("query parameter \"port\" is required"),
        "{body}"
    );
    let (code, _) = answer(Method::GET, "/portForward/ci/build/uid-build?port=80", true).await;
    assert_eq!(code, 101);
    let (code, _) = answer(Method::POST, "/portForward/ci/build/uid-build", false).await;
    assert_eq!(code, 101);
}

/// A SPDY port-forward connection to `kubelet`, upgraded.
async fn connect(kubelet: &KubeletServer) -> TestClient<tokio::io::DuplexStream> {
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
            b"POST /portForward/ci/build HTTP/1.1\r\nHost: 127.0.0.1:10250\r\n\
              Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
              X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
    }
    TestClient::new(reader.into_inner())
}

#[tokio::test]
async fn a_provider_without_port_forward_is_reported_on_the_error_stream() {
    let mut client = connect(&server()).await;
    let error = client
        .open(&[
            ("streamType", "error"),
            ("port", "8080"),
            ("requestID", "0"),
        ])
        .await;
    client.data(error, b"", true).await;
    client
        .open(&[("streamType", "data"), ("port", "8080"), ("requestID", "0")])
        .await;
    let mut message = Vec::new();
    loop {
        if let Frame::Data(d) = client.next().await.expect("session open")
            && d.stream_id == error
        {
            message.extend_from_slice(&d.payload);
            if d.fin {
                break;
            }
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&message),
        "error forwarding port 8080 to pod ci/build, uid uid-build: \
         port-forward to pod ci/build is not supported by the test provider"
    );
}

#[tokio::test]
async fn a_port_forward_connection_holds_one_of_the_nodes_session_slots() {
    let metrics = crate::metrics::Metrics::new();
    let kubelet = server()
        .with_metrics(&metrics)
        .with_streaming(StreamingConfig {
            max_sessions: 1,
            ..StreamingConfig::default()
        });
    let mut client = connect(&kubelet).await;
    assert_eq!(kubelet.streaming.open_sessions(), 1);
    let open = "vk_streaming_sessions_open{kind=\"portforward\"} 1";
    assert!(metrics.encode().contains(open), "{}", metrics.encode());
    let req = Request::post("/portForward/ci/build")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "portforward.k8s.io")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = kubelet.handle(req, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body)
            .contains("too many streaming sessions on node vk-test (limit 1)"),
        "{body:?}"
    );
    client.shutdown().await;
    drop(client);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while kubelet.streaming.open_sessions() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the slot came back");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = metrics.encode();
    for line in [
        "vk_streaming_sessions_open{kind=\"portforward\"} 0",
        "vk_streaming_sessions_total{kind=\"portforward\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}
