//! Rotation against a real control plane: a stored certificate that falls due is replaced
//! through a new CSR, and open connections survive the swap. Skipped (with a note) unless
//! `VK_CERTS_KUBECONFIG` is set; see `cluster/mod.rs`.

mod cluster;
mod common;

use certs::ServingCert;
use cluster::{WAIT, cleanup, cluster, config, csrs_of, echo, echo_client, echo_server, node_name};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_due_certificate_is_rotated_through_a_new_csr_without_dropping_connections() {
    let Some(cluster) =
        cluster("a_due_certificate_is_rotated_through_a_new_csr_without_dropping_connections")
            .await
    else {
        return;
    };
    let node = node_name("rotate");
    let dir = common::temp_dir("cluster-rotate");
    // A stored certificate 78% through its life: reused at start, due two seconds later.
    let old_ca = common::TestCa::new("previous-ca");
    let (cert, key) = old_ca.leaf(
        &format!("system:node:{node}"),
        &["127.0.0.1", &node],
        -78,
        100,
    );
    std::fs::write(dir.join("kubelet-serving.crt"), &cert).unwrap();
    std::fs::write(dir.join("kubelet-serving.key"), &key).unwrap();
    let old_key = std::fs::read(dir.join("kubelet-serving.key")).unwrap();

    let cancel = CancellationToken::new();
    let serving = ServingCert::start(
        cluster.client.clone(),
        config(&node, &dir, true),
        cancel.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        serving.current_pem().trim(),
        cert.trim(),
        "the stored certificate should be reused"
    );
    let addr = echo_server(&serving).await;
    let mut before = echo_client(addr, &[old_ca.cert_der()]).await;
    assert_eq!(echo(&mut before, "before").await, "before");

    let deadline = tokio::time::Instant::now() + WAIT;
    while serving.current_pem().trim() == cert.trim() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the certificate was not rotated"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(csrs_of(&cluster.client, &node).await.len(), 1);
    assert_ne!(
        std::fs::read(dir.join("kubelet-serving.key")).unwrap(),
        old_key,
        "a new key"
    );
    let mut after = echo_client(addr, &cluster.ca).await;
    assert_eq!(echo(&mut after, "after").await, "after");
    assert_eq!(echo(&mut before, "still open").await, "still open");

    cancel.cancel();
    cleanup(&cluster.client, &node, &dir).await;
}
