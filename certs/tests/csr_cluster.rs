//! The CSR mode against a real control plane: issuance, approval, denial, and the real
//! apiserver verifying the issued certificate. Skipped (with a note) unless
//! `VK_CERTS_KUBECONFIG` is set; see `cluster/mod.rs`.

mod cluster;
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use certs::{CertError, ServingCert, client_identity, cluster_client_ca, kubelet_server_config};
use cluster::{
    WAIT, cleanup, cluster, config, csrs_of, node_name, settle, verify_with_cluster_ca,
    wait_for_csr,
};
use k8s_openapi::api::core::v1::{
    Container, DaemonEndpoint, Node, NodeAddress, NodeDaemonEndpoints, NodeStatus, Pod, PodSpec,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// One request of a kubelet API, enough for `GET .../log`: answers with the TLS client's
/// identity, so the test sees what the apiserver presented.
async fn serve_identity_once(listener: TcpListener, acceptor: TlsAcceptor) -> String {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut tls = acceptor.accept(tcp).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(client_identity);
    let body = match identity {
        Some((user, groups)) => format!("{user} {}", groups.join(",")),
        None => "anonymous".to_owned(),
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(response.as_bytes()).await.unwrap();
    tls.shutdown().await.unwrap();
    String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The real apiserver dials the node's InternalIP for `kubectl logs`, verifying the serving
/// certificate with `--kubelet-certificate-authority` and presenting its kubelet-client one.
async fn logs_through_apiserver(client: &Client, node: &str, serving: &ServingCert) {
    let client_ca = cluster_client_ca(client.clone()).await.unwrap();
    let mut config = kubelet_server_config(serving.resolver(), Some(&client_ca)).unwrap();
    // This stand-in kubelet speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_identity_once(
        listener,
        TlsAcceptor::from(Arc::new(config)),
    ));

    let nodes: Api<Node> = Api::all(client.clone());
    let status = NodeStatus {
        addresses: Some(vec![NodeAddress {
            type_: "InternalIP".into(),
            address: "127.0.0.1".into(),
        }]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(port),
            }),
        }),
        ..NodeStatus::default()
    };
    let node_object = Node {
        metadata: ObjectMeta {
            name: Some(node.to_owned()),
            ..ObjectMeta::default()
        },
        status: Some(status.clone()),
        ..Node::default()
    };
    nodes
        .create(&PostParams::default(), &node_object)
        .await
        .unwrap();
    let status_patch = Node {
        status: Some(status),
        ..Node::default()
    };
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(node.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.to_owned()),
            containers: vec![Container {
                name: "c".into(),
                image: Some("busybox".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let logs = pods.logs(node, &Default::default()).await;
    let request_line = server.await.unwrap();
    let _ = pods
        .delete(node, &DeleteParams::default().grace_period(0))
        .await;
    let _ = nodes.delete(node, &DeleteParams::default()).await;

    assert_eq!(
        logs.unwrap(),
        "kube-apiserver-kubelet-client system:masters"
    );
    assert!(
        request_line.starts_with(&format!("GET /containerLogs/default/{node}/c")),
        "{request_line}"
    );
}

#[tokio::test]
async fn auto_approved_certificate_is_issued_verified_and_reused() {
    let Some(cluster) = cluster("auto_approved_certificate_is_issued_verified_and_reused").await
    else {
        return;
    };
    let node = node_name("auto");
    let dir = common::temp_dir("cluster-auto");
    let cancel = CancellationToken::new();
    let config = config(&node, &dir, true);

    let serving = tokio::time::timeout(
        WAIT,
        ServingCert::start(cluster.client.clone(), config.clone(), cancel.clone()),
    )
    .await
    .expect("no certificate in time")
    .unwrap();
    let leaf = CertificateDer::from_pem_slice(serving.current_pem().as_bytes()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    assert_eq!(
        parsed
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        format!("system:node:{node}")
    );
    verify_with_cluster_ca(&serving, &cluster.ca).await;
    logs_through_apiserver(&cluster.client, &node, &serving).await;

    let csrs = csrs_of(&cluster.client, &node).await;
    assert_eq!(csrs.len(), 1);
    let approved = csrs[0]
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .unwrap();
    assert_eq!(approved[0].reason.as_deref(), Some("VkAutoApproved"));

    // A restart finds the stored certificate good and asks for nothing.
    let restarted = ServingCert::start(cluster.client.clone(), config, cancel.clone())
        .await
        .unwrap();
    assert_eq!(restarted.current_pem(), serving.current_pem());
    assert_eq!(csrs_of(&cluster.client, &node).await.len(), 1);

    cancel.cancel();
    cleanup(&cluster.client, &node, &dir).await;
}

#[tokio::test]
async fn manual_approval_is_announced_then_issued() {
    let Some(cluster) = cluster("manual_approval_is_announced_then_issued").await else {
        return;
    };
    let node = node_name("manual");
    let dir = common::temp_dir("cluster-manual");
    let cancel = CancellationToken::new();
    let start = tokio::spawn(ServingCert::start(
        cluster.client.clone(),
        config(&node, &dir, false),
        cancel.clone(),
    ));

    let csr = wait_for_csr(&cluster.client, &node).await;
    let name = csr.metadata.name.clone().unwrap();
    assert_eq!(csr.spec.signer_name, "kubernetes.io/kubelet-serving");
    assert_eq!(
        csr.spec.usages.as_deref().unwrap(),
        ["digital signature", "server auth"]
    );

    // The operator is told, on the Node, exactly what to run.
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "default");
    let command = format!("kubectl certificate approve {name}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(node.as_str())
                    && e.note.as_deref().is_some_and(|n| n.contains(&command))
            });
        if found {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Event telling to run {command}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!start.is_finished(), "must wait for approval");

    settle(&cluster.client, &name, "Approved", "KubectlApprove").await;
    let serving = tokio::time::timeout(WAIT, start)
        .await
        .expect("no certificate after approval")
        .unwrap()
        .unwrap();
    verify_with_cluster_ca(&serving, &cluster.ca).await;
    assert!(dir.join("kubelet-serving.crt").exists() && dir.join("kubelet-serving.key").exists());

    cancel.cancel();
    cleanup(&cluster.client, &node, &dir).await;
}

#[tokio::test]
async fn a_denied_request_is_an_error_with_the_reason() {
    let Some(cluster) = cluster("a_denied_request_is_an_error_with_the_reason").await else {
        return;
    };
    let node = node_name("denied");
    let dir = common::temp_dir("cluster-denied");
    let cancel = CancellationToken::new();
    let start = tokio::spawn(ServingCert::start(
        cluster.client.clone(),
        config(&node, &dir, false),
        cancel.clone(),
    ));

    let name = wait_for_csr(&cluster.client, &node)
        .await
        .metadata
        .name
        .unwrap();
    settle(&cluster.client, &name, "Denied", "NotOnMyCluster").await;
    let err = tokio::time::timeout(WAIT, start)
        .await
        .unwrap()
        .unwrap()
        .err()
        .unwrap();
    assert!(
        matches!(&err, CertError::CsrDenied { reason, .. } if reason == "NotOnMyCluster"),
        "{err}"
    );
    assert!(err.to_string().contains(&name), "{err}");
    // The next attempt starts over instead of resuming a request that can never succeed.
    assert!(!dir.join("kubelet-serving.key.pending").exists());

    cancel.cancel();
    cleanup(&cluster.client, &node, &dir).await;
}
