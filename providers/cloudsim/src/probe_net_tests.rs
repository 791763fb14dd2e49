//! Against real local servers: a raw HTTP/1.1 answer, a closed port, a gRPC health service.

use std::convert::Infallible;

use http_body_util::StreamBody;
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// Serves one connection: answers `status` and hands back the request it read.
async fn http_server(status: u16) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = conn.read(&mut buf).await.unwrap();
        let answer =
            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        conn.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    (port, task)
}

fn http(port: u16, path: &str, headers: &[(&str, &str)]) -> ProbeHandler {
    ProbeHandler::HttpGet {
        host: None,
        port,
        path: path.into(),
        https: false,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn http_success_is_200_to_399_and_headers_are_sent() {
    let (port, request) = http_server(302).await;
    let outcome = check(&http(port, "/healthz", &[("X-Probe", "yes")]), "127.0.0.1").await;
    assert_eq!(outcome, Some(Outcome::Success));
    let request = request.await.unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with("get /healthz http/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("x-probe: yes"), "{request}");
    assert!(request.contains("user-agent: kube-probe/"), "{request}");
    assert!(
        request.contains(&format!("host: 127.0.0.1:{port}")),
        "{request}"
    );
}

#[tokio::test]
async fn http_error_status_fails_with_the_code() {
    let (port, _request) = http_server(503).await;
    let outcome = check(&http(port, "/", &[]), "127.0.0.1").await;
    assert_eq!(
        outcome,
        Some(Outcome::Failure(
            "HTTP probe failed with statuscode: 503".into()
        ))
    );
}

#[tokio::test]
async fn refused_connections_fail_with_the_address() {
    let port = closed_port().await;
    let Some(Outcome::Failure(why)) = check(&http(port, "/x", &[]), "127.0.0.1").await else {
        panic!("expected a failure");
    };
    assert!(
        why.starts_with(&format!(
            "Get \"http://127.0.0.1:{port}/x\": dial tcp 127.0.0.1:{port}"
        )),
        "{why}"
    );
    let tcp = ProbeHandler::TcpSocket { host: None, port };
    let Some(Outcome::Failure(why)) = check(&tcp, "127.0.0.1").await else {
        panic!("expected a failure");
    };
    assert!(
        why.starts_with(&format!("dial tcp 127.0.0.1:{port}: ")),
        "{why}"
    );
}

#[tokio::test]
async fn tcp_succeeds_when_the_port_listens() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tcp = ProbeHandler::TcpSocket { host: None, port };
    assert_eq!(check(&tcp, "127.0.0.1").await, Some(Outcome::Success));
}

#[tokio::test]
async fn exec_is_not_a_network_check() {
    let exec = ProbeHandler::Exec {
        command: vec!["true".into()],
    };
    assert_eq!(check(&exec, "127.0.0.1").await, None);
}

/// A gRPC health service answering `status` for service "build", NOT_FOUND for others.
async fn grpc_server(status: u8) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let asked = String::from_utf8_lossy(&body[5..]).to_string();
                    let mut trailers = hyper::HeaderMap::new();
                    let mut frames = Vec::new();
                    if asked.ends_with("build") {
                        frames.push(Ok::<_, Infallible>(Frame::data(Bytes::from(vec![
                            0, 0, 0, 0, 2, 0x08, status,
                        ]))));
                        trailers.insert("grpc-status", "0".parse().unwrap());
                    } else {
                        trailers.insert("grpc-status", "5".parse().unwrap());
                        trailers.insert("grpc-message", "unknown service".parse().unwrap());
                    }
                    frames.push(Ok(Frame::trailers(trailers)));
                    let response = hyper::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(StreamBody::new(futures::stream::iter(frames)))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(conn), service),
            );
        }
    });
    port
}

fn grpc(port: u16, service: &str) -> ProbeHandler {
    ProbeHandler::Grpc {
        port,
        service: Some(service.into()),
    }
}

#[tokio::test]
async fn grpc_health_serving_not_serving_and_errors() {
    let serving = grpc_server(1).await;
    assert_eq!(
        check(&grpc(serving, "build"), "127.0.0.1").await,
        Some(Outcome::Success)
    );
    assert_eq!(
        check(&grpc(serving, "other"), "127.0.0.1").await,
        Some(Outcome::Failure(
            "health rpc failed: rpc error: code = 5 desc = unknown service".into()
        ))
    );
    let not_serving = grpc_server(2).await;
    assert_eq!(
        check(&grpc(not_serving, "build"), "127.0.0.1").await,
        Some(Outcome::Failure(
            "service unhealthy (responded with \"NOT_SERVING\")".into()
        ))
    );
    let closed = closed_port().await;
    let Some(Outcome::Failure(why)) = check(&grpc(closed, "build"), "127.0.0.1").await else {
        panic!("expected a failure");
    };
    assert!(
        why.starts_with(&format!("failed to connect service \"127.0.0.1:{closed}\"")),
        "{why}"
    );
}

#[test]
fn response_fields_are_skipped_but_status_is_read() {
    // field 2 (string "x"), then status = 1.
    assert_eq!(serving_field(&[0x12, 1, b'x', 0x08, 1]), Some(1));
    assert_eq!(serving_field(&[]), Some(0));
    assert_eq!(serving_field(&[0x08]), None);
}
