//! Component tests: the server on 127.0.0.1:0 over real TLS (a test CA, server and client
//! certificates from rcgen), a scripted provider, and a pod store filled the way the reflector
//! fills it.

mod auth;
mod exec;
mod fuzz;
mod logs;
mod portforward;
mod provider;
mod routes;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use provider::{TestProvider, build_ref, store_with_build_pod};

use super::{KubeletAuth, KubeletError, KubeletServer};

const NODE: &str = "vk-test";

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test CA, the server's certificate and config, and client certificates on demand.
struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca: CertificateDer<'static>,
    pub server: Arc<ServerConfig>,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kubelet test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap().der().clone();
        let issuer = Issuer::new(params, ca_key);

        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();

        let verifier = WebPkiClientVerifier::builder_with_provider(roots(&ca), crypto())
            .allow_unauthenticated()
            .build()
            .unwrap();
        let server = ServerConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert.der().clone()], private_key(&key))
            .unwrap();
        Self {
            issuer,
            ca,
            server: Arc::new(server),
        }
    }

    /// A client config; with `identity` it presents a certificate with CN = user, O = groups.
    pub fn client(&self, identity: Option<(&str, &[&str])>, h2: bool) -> Arc<ClientConfig> {
        let builder = ClientConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&self.ca));
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some((user, groups)) => {
                let key = KeyPair::generate().unwrap();
                let cert = der_for(&key, user, groups, &self.issuer);
                builder
                    .with_client_auth_cert(vec![cert], private_key(&key))
                    .unwrap()
            }
        };
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        Arc::new(config)
    }

    /// The DER of a certificate for `user` and `groups` signed by the test CA.
    pub fn client_certificate(&self, user: &str, groups: &[&str]) -> CertificateDer<'static> {
        der_for(&KeyPair::generate().unwrap(), user, groups, &self.issuer)
    }
}

fn der_for(
    key: &KeyPair,
    user: &str,
    groups: &[&str],
    issuer: &Issuer<'static, KeyPair>,
) -> CertificateDer<'static> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, user);
    // rcgen keeps one value per attribute type; the same OID spelled as a custom type is a
    // second O attribute, enough for the tests' one or two groups.
    assert!(groups.len() <= 2, "at most two groups");
    let o_types = [
        DnType::OrganizationName,
        DnType::CustomDnType(vec![2, 5, 4, 10]),
    ];
    for (group, dn_type) in groups.iter().zip(o_types) {
        params.distinguished_name.push(dn_type, *group);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.signed_by(key, issuer).unwrap().der().clone()
}

fn roots(ca: &CertificateDer<'static>) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    Arc::new(roots)
}

fn private_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// A running server and what the tests need to drive it.
struct Harness {
    pub addr: SocketAddr,
    pub pki: Pki,
    pub provider: Arc<TestProvider>,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), KubeletError>>,
}

impl Harness {
    pub async fn start(auth: KubeletAuth) -> Self {
        let provider = Arc::new(TestProvider::new());
        let server = KubeletServer::new(NODE, provider.clone(), store_with_build_pod(), auth);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pki = Pki::new();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(server.serve(listener, pki.server.clone(), cancel.clone()));
        Self {
            addr,
            pki,
            provider,
            cancel,
            task,
        }
    }

    pub async fn open() -> Self {
        Self::start(KubeletAuth::DisabledForDev).await
    }

    /// GET as an anonymous HTTP/1.1 client.
    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, Caller::Anonymous).await
    }

    pub async fn request(&self, method: Method, path: &str, caller: Caller<'_>) -> Reply {
        let (identity, token, h2) = match caller {
            Caller::Anonymous => (None, None, false),
            Caller::H2 => (None, None, true),
            Caller::Certificate(user, groups) => (Some((user, groups)), None, false),
            Caller::Token(token) => (None, Some(token), false),
        };
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let tls = TlsConnector::from(self.pki.client(identity, h2))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let uri = if h2 {
            format!("https://localhost{path}")
        } else {
            path.to_string()
        };
        let mut req = Request::builder().method(method).uri(uri);
        if !h2 {
            req = req.header(HOST, "localhost");
        }
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::<Bytes>::new()).unwrap();
        let io = TokioIo::new(tls);
        let (response, conn) = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            (sender.send_request(req).await.unwrap(), conn)
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            (sender.send_request(req).await.unwrap(), conn)
        };
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            version: parts.version,
            body,
            conn,
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        let served = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap();
        served.unwrap().unwrap();
    }
}

enum Caller<'a> {
    Anonymous,
    H2,
    Certificate(&'a str, &'a [&'a str]),
    Token(&'a str),
}

/// A response with its own connection; dropping it closes the connection.
struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub version: hyper::Version,
    body: Incoming,
    conn: JoinHandle<()>,
}

impl Reply {
    pub async fn text(mut self) -> String {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await {
            out.extend_from_slice(&chunk);
        }
        String::from_utf8(out).unwrap()
    }

    pub async fn json(self) -> serde_json::Value {
        serde_json::from_str(&self.text().await).unwrap()
    }

    /// The next data chunk, `None` at the end of the body; fails the test after 5 s.
    pub async fn chunk(&mut self) -> Option<Bytes> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.body.frame())
                .await
                .expect("no body frame within 5s")?
                .unwrap();
            if let Ok(data) = frame.into_data() {
                return Some(data);
            }
        }
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// A `metav1.Status` body's code, reason and message, after checking its shape.
async fn status_of(reply: Reply) -> (u16, String, String) {
    let code = reply.status.as_u16();
    assert_eq!(reply.content_type(), "application/json");
    let status = reply.json().await;
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["metadata"], serde_json::json!({}));
    assert_eq!(status["code"], code);
    (
        code,
        status["reason"].as_str().unwrap().to_string(),
        status["message"].as_str().unwrap().to_string(),
    )
}
