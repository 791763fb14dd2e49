//! The kubelet TLS config over real sockets: a tokio-rustls server with
//! `kubelet_server_config`, rustls clients with and without client certificates, and a
//! certificate swapped while connections are open.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use certs::{ServingCertResolver, client_identity, kubelet_server_config};
use common::{TestCa, certified};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A kubelet-like server: after the handshake it sends one line naming the client ("user
/// groups" or "anonymous"), then echoes lines. Handshake failures are reported on the channel.
struct KubeletServer {
    addr: SocketAddr,
    handshake_errors: mpsc::UnboundedReceiver<String>,
}

async fn serve(resolver: Arc<ServingCertResolver>, client_ca: &TestCa) -> KubeletServer {
    let config = kubelet_server_config(resolver, Some(client_ca.cert_pem().as_bytes())).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (errors, handshake_errors) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, errors) = (acceptor.clone(), errors.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        let _ = errors.send(e.to_string());
                        return;
                    }
                };
                let greeting = match tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(client_identity)
                {
                    Some((user, groups)) => format!("{user} {}\n", groups.join(",")),
                    None => "anonymous\n".to_owned(),
                };
                let (read, mut write) = tokio::io::split(tls);
                if write.write_all(greeting.as_bytes()).await.is_err() {
                    return;
                }
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
    KubeletServer {
        addr,
        handshake_errors,
    }
}

/// The apiserver's side: trusts the cluster CA, optionally presents a client certificate.
fn client_config(
    cluster_ca: &TestCa,
    client_cert: Option<(String, String)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cluster_ca.cert_der()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

struct Connection {
    stream: BufReader<TlsStream<TcpStream>>,
}

impl Connection {
    async fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = TlsConnector::from(config).connect(name, tcp).await?;
        Ok(Self {
            stream: BufReader::new(tls),
        })
    }

    async fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        let n = self.stream.read_line(&mut line).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_owned())
    }

    async fn echo(&mut self, text: &str) -> std::io::Result<String> {
        self.stream
            .get_mut()
            .write_all(format!("{text}\n").as_bytes())
            .await?;
        self.line().await
    }

    fn server_leaf(&self) -> Vec<u8> {
        let (_, conn) = self.stream.get_ref().get_ref();
        conn.peer_certificates().unwrap()[0].to_vec()
    }

    fn version(&self) -> Option<ProtocolVersion> {
        self.stream.get_ref().get_ref().1.protocol_version()
    }

    fn alpn(&self) -> Option<Vec<u8>> {
        self.stream
            .get_ref()
            .get_ref()
            .1
            .alpn_protocol()
            .map(<[u8]>::to_vec)
    }
}

struct Setup {
    cluster_ca: TestCa,
    client_ca: TestCa,
    resolver: Arc<ServingCertResolver>,
    server: KubeletServer,
}

async fn setup() -> Setup {
    let cluster_ca = TestCa::new("cluster-ca");
    let client_ca = TestCa::new("kubelet-client-ca");
    let resolver = Arc::new(ServingCertResolver::new(
        cluster_ca.certified_leaf("vk-tls"),
    ));
    let server = serve(resolver.clone(), &client_ca).await;
    Setup {
        cluster_ca,
        client_ca,
        resolver,
        server,
    }
}

const ALL: &[&rustls::SupportedProtocolVersion] = rustls::ALL_VERSIONS;

#[tokio::test]
async fn apiserver_client_certificate_gives_its_identity() {
    let s = setup().await;
    let cert = s
        .client_ca
        .client("kube-apiserver-kubelet-client", &["system:masters"]);
    let mut conn = Connection::open(s.server.addr, client_config(&s.cluster_ca, Some(cert), ALL))
        .await
        .unwrap();
    assert_eq!(
        conn.line().await.unwrap(),
        "kube-apiserver-kubelet-client system:masters"
    );
    assert_eq!(conn.version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(conn.alpn().as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn a_client_without_certificate_completes_the_handshake() {
    let s = setup().await;
    let mut conn = Connection::open(s.server.addr, client_config(&s.cluster_ca, None, ALL))
        .await
        .unwrap();
    assert_eq!(conn.line().await.unwrap(), "anonymous");
    assert_eq!(
        conn.echo("bearer tokens go here").await.unwrap(),
        "bearer tokens go here"
    );
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let mut s = setup().await;
    let stranger = TestCa::new("some-other-ca").client("mallory", &["system:masters"]);
    // Under TLS 1.3 the client finishes before the server has judged its certificate, so
    // the refusal shows on the first read, and on the server's side.
    let outcome = match Connection::open(
        s.server.addr,
        client_config(&s.cluster_ca, Some(stranger), ALL),
    )
    .await
    {
        Ok(mut conn) => conn.line().await,
        Err(e) => Err(e),
    };
    assert!(outcome.is_err(), "a stranger was served: {outcome:?}");
    let server_error = s.server.handshake_errors.recv().await.unwrap();
    assert!(server_error.contains("UnknownIssuer"), "{server_error}");
}

#[tokio::test]
async fn tls12_clients_are_served() {
    let s = setup().await;
    let tls12 = &[&rustls::version::TLS12];
    let mut conn = Connection::open(s.server.addr, client_config(&s.cluster_ca, None, tls12))
        .await
        .unwrap();
    assert_eq!(conn.line().await.unwrap(), "anonymous");
    assert_eq!(conn.version(), Some(ProtocolVersion::TLSv1_2));
}

#[tokio::test]
async fn a_rotated_certificate_reaches_new_connections_and_spares_open_ones() {
    let s = setup().await;
    let config = client_config(&s.cluster_ca, None, ALL);
    let mut before = Connection::open(s.server.addr, config).await.unwrap();
    assert_eq!(before.line().await.unwrap(), "anonymous");
    let old_leaf = before.server_leaf();

    let (cert, key) = s
        .cluster_ca
        .leaf("system:node:vk-tls", &["127.0.0.1"], -60, 7200);
    s.resolver.replace(certified(&cert, &key));
    let new_leaf = CertificateDer::from_pem_slice(cert.as_bytes())
        .unwrap()
        .to_vec();
    assert_ne!(old_leaf, new_leaf);

    // A fresh client: one that resumes its earlier session is, by design, not shown a
    // certificate again.
    let fresh = client_config(&s.cluster_ca, None, ALL);
    let mut after = Connection::open(s.server.addr, fresh).await.unwrap();
    assert_eq!(after.line().await.unwrap(), "anonymous");
    assert_eq!(after.server_leaf(), new_leaf);
    assert_eq!(s.resolver.current_pem().trim(), cert.trim());
    // The connection from before the swap carries on with its own session.
    assert_eq!(before.echo("still here").await.unwrap(), "still here");
    assert_eq!(before.server_leaf(), old_leaf);
}
