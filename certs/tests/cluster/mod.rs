//! Helpers for the tests against a real control plane. They run only when
//! `VK_CERTS_KUBECONFIG` names an admin kubeconfig (e.g. `e2e/cluster env kubeconfig`); the
//! cluster's controller-manager must sign `kubernetes.io/kubelet-serving` requests with the CA
//! that the apiserver's `--kubelet-certificate-authority` trusts. `VK_CERTS_CLUSTER_CA` may
//! name that CA's PEM file; otherwise the kubeconfig's CA is taken to be it (true for
//! e2e/cluster).
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use certs::{ServingCert, ServingCertConfig, ServingCertMode, kubelet_server_config};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub const WAIT: Duration = Duration::from_secs(90);

pub struct Cluster {
    pub client: Client,
    pub ca: Vec<CertificateDer<'static>>,
}

/// The cluster, or `None` (with a note) when the tests are not asked for.
pub async fn cluster(test: &str) -> Option<Cluster> {
    let Ok(path) = std::env::var("VK_CERTS_KUBECONFIG") else {
        println!("{test}: not run (set VK_CERTS_KUBECONFIG to an admin kubeconfig to run it)");
        return None;
    };
    // With --nocapture the flow's log lines show what it waited for.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("certs=info"))
        .with_test_writer()
        .try_init();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let ca = match std::env::var("VK_CERTS_CLUSTER_CA") {
        Ok(file) => CertificateDer::pem_file_iter(file)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        Err(_) => config
            .root_cert
            .clone()
            .expect("the kubeconfig names no CA; set VK_CERTS_CLUSTER_CA")
            .into_iter()
            .map(CertificateDer::from)
            .collect(),
    };
    Some(Cluster {
        client: Client::try_from(config).unwrap(),
        ca,
    })
}

pub fn node_name(test: &str) -> String {
    format!("vk-certs-{test}-{}", std::process::id())
}

pub fn config(node: &str, dir: &Path, auto_approve: bool) -> ServingCertConfig {
    ServingCertConfig {
        node_name: node.to_owned(),
        ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        hostnames: vec![node.to_owned()],
        dir: dir.to_owned(),
        mode: ServingCertMode::Csr { auto_approve },
        requested_duration: Some(Duration::from_secs(3600)),
    }
}

pub async fn csrs_of(client: &Client, node: &str) -> Vec<CertificateSigningRequest> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let labels = ListParams::default().labels("app.kubernetes.io/managed-by=vk-serverless");
    let prefix = format!("vk-serving-{node}-");
    api.list(&labels)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|csr| {
            csr.metadata
                .name
                .as_deref()
                .unwrap_or("")
                .starts_with(&prefix)
        })
        .collect()
}

pub async fn wait_for_csr(client: &Client, node: &str) -> CertificateSigningRequest {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(csr) = csrs_of(client, node).await.pop() {
            return csr;
        }
        assert!(tokio::time::Instant::now() < deadline, "no CSR for {node}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Approve or deny as an operator would with kubectl.
pub async fn settle(client: &Client, name: &str, type_: &str, reason: &str) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut csr = api.get(name).await.unwrap();
    csr.status
        .get_or_insert_with(CertificateSigningRequestStatus::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: type_.into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(format!("{type_} by the certs integration test")),
            ..CertificateSigningRequestCondition::default()
        });
    api.patch_approval(name, &PatchParams::default(), &Patch::Merge(&csr))
        .await
        .unwrap();
}

pub async fn cleanup(client: &Client, node: &str, dir: &Path) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    for csr in csrs_of(client, node).await {
        let _ = api
            .delete(
                csr.metadata.name.as_deref().unwrap_or(""),
                &DeleteParams::default(),
            )
            .await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A handshake as the apiserver makes it: trusting only the cluster CA, dialing 127.0.0.1.
pub async fn verify_with_cluster_ca(serving: &ServingCert, ca: &[CertificateDer<'static>]) {
    let addr = echo_server(serving).await;
    let mut conn = echo_client(addr, ca).await;
    assert_eq!(echo(&mut conn, "verified").await, "verified");
}

/// Echoes lines on every connection, serving whatever certificate the resolver holds.
pub async fn echo_server(serving: &ServingCert) -> SocketAddr {
    let config = kubelet_server_config(serving.resolver(), None).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (read, mut write) = tokio::io::split(tls);
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

pub type EchoConnection = BufReader<TlsStream<TcpStream>>;

/// A client that trusts only `roots`, as the apiserver trusts only the cluster CA.
pub async fn echo_client(addr: SocketAddr, roots: &[CertificateDer<'static>]) -> EchoConnection {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let connector = TlsConnector::from(Arc::new(config));
    BufReader::new(connector.connect(name, tcp).await.unwrap())
}

pub async fn echo(conn: &mut EchoConnection, text: &str) -> String {
    let request = format!("{text}\n");
    conn.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).await.unwrap();
    line.trim_end().to_owned()
}
