//! Port-forward on the mock: real TCP connections to local servers.

use std::collections::BTreeMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vk_core::provider::{InstancePhase, PodRef, Provider, ProviderError};

use super::*;
use crate::port_forward::target_address;
use crate::tests::{pod, provider, wait_for};

#[test]
fn a_pod_port_maps_to_loopback_unless_its_annotation_says_otherwise() {
    let mut annotations = BTreeMap::new();
    assert_eq!(target_address(&annotations, 8080), "127.0.0.1:8080");
    annotations.insert(
        "mock.vk.io/port-forward.80".to_string(),
        " 127.0.0.1:31000 ".to_string(),
    );
    assert_eq!(target_address(&annotations, 80), "127.0.0.1:31000");
    assert_eq!(target_address(&annotations, 81), "127.0.0.1:81");
}

/// A server that answers every connection with `got <request>` once the client closes its
/// side.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = Vec::new();
                conn.read_to_end(&mut request).await.unwrap();
                conn.write_all(b"got ").await.unwrap();
                conn.write_all(&request).await.unwrap();
            });
        }
    });
    address
}

/// An address where nothing listens.
async fn closed_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

async fn running(annotations: &[(&str, &str)]) -> (MockProvider, PodRef) {
    let (p, mut rx) = provider(MockConfig::default());
    p.create(&pod("pf", annotations, &["main"])).await.unwrap();
    let status = wait_for(&mut rx, |s| s.phase == InstancePhase::Running).await;
    (p, status.pod)
}

#[tokio::test]
async fn forwards_to_the_annotated_address_with_half_closes() {
    let address = server().await;
    let (p, pod) = running(&[("mock.vk.io/port-forward.80", &address)]).await;
    for request in ["first", "second"] {
        let (stream, mut client) = tokio::io::duplex(1024);
        let call = p.port_forward(&pod, 80, Box::new(stream));
        let talk = async {
            client.write_all(request.as_bytes()).await.unwrap();
            client.shutdown().await.unwrap();
            let mut response = String::new();
            client.read_to_string(&mut response).await.unwrap();
            response
        };
        let (result, response) = tokio::join!(call, talk);
        result.expect("forwarded");
        assert_eq!(response, format!("got {request}"));
    }
}

#[tokio::test]
async fn a_refused_connection_names_the_address() {
    let address = closed_address().await;
    let (p, pod) = running(&[("mock.vk.io/port-forward.81", &address)]).await;
    let (stream, _client) = tokio::io::duplex(1024);
    match p.port_forward(&pod, 81, Box::new(stream)).await {
        Err(ProviderError::Transient(message)) => {
            assert!(
                message.starts_with(&format!(
                    "failed to connect to {address} (the mock's address for port 81): "
                )),
                "{message}"
            );
            assert!(message.to_lowercase().contains("refused"), "{message}");
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_and_pending_pods_are_refused() {
    let (p, _rx) = provider(MockConfig::default());
    let unknown = PodRef {
        namespace: "default".into(),
        name: "nope".into(),
        uid: "nope".into(),
    };
    let (stream, _client) = tokio::io::duplex(64);
    assert!(matches!(
        p.port_forward(&unknown, 80, Box::new(stream)).await,
        Err(ProviderError::NotFound(_))
    ));
    let spec = pod(
        "slow",
        &[("mock.vk.io/start-latency-ms", "3600000")],
        &["main"],
    );
    p.create(&spec).await.unwrap();
    let (stream, _client) = tokio::io::duplex(64);
    assert!(matches!(
        p.port_forward(&spec.pod, 80, Box::new(stream)).await,
        Err(ProviderError::InvalidSpec { .. })
    ));
}
