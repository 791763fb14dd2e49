//! The HTTP(S) client the providers share: a provider's API calls, its identity endpoints and
//! its exec WebSockets all go through one [`Tls`] configuration made here, so one extra CA (the
//! simulator's self-signed certificate, a corporate proxy's) is trusted everywhere at once.
//!
//! Trust: the system's roots plus the configured extra CA file (PEM, one or more
//! certificates). Without system roots the extra CA alone is used; with neither, only plain
//! HTTP works and an `https://` call fails with a message saying so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::HeaderMap;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// Answers larger than this are refused (a page of groups is far smaller).
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// The trust roots every connection of the provider uses.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    /// How many roots there are (0: plain HTTP only).
    pub roots: usize,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("roots", &self.roots).finish()
    }
}

impl Tls {
    /// The system's roots plus the certificates of `extra_ca` (a PEM file). A missing or
    /// unreadable extra CA file is an error: it was asked for.
    pub fn new(extra_ca: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading the extra CA file {}: {e}", path.display()))?;
            Self::add_pem(&mut roots, &pem)
                .map_err(|e| format!("the extra CA file {}: {e}", path.display()))?;
        }
        Ok(Self::with_roots(roots))
    }

    /// Only the certificates of `pem` (tests).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        Self::add_pem(&mut roots, pem)?;
        Ok(Self::with_roots(roots))
    }

    fn add_pem(roots: &mut rustls::RootCertStore, pem: &[u8]) -> Result<(), String> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("a certificate rustls refuses: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("no PEM certificate in it".into());
        }
        Ok(())
    }

    fn with_roots(roots: rustls::RootCertStore) -> Self {
        let count = roots.len();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Self {
            config: Arc::new(config),
            roots: count,
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// What came back: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why an exchange failed before an answer came.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The request was never sent (bad address, refused connection, TLS): safe to retry
    /// whatever the method.
    #[error("{0}")]
    NotSent(String),
    /// Sent, but no (complete) answer: a retry may repeat its effect.
    #[error("{0}")]
    NoAnswer(String),
}

/// A small HTTP/1.1 client over rustls with the provider's trust roots.
#[derive(Clone)]
pub struct Http {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Http {
    pub fn new(tls: &Tls, timeout: Duration) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls.config).clone())
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One exchange. Error messages name the address but never a header or the body (they
    /// may carry secrets).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Answer, HttpError> {
        let shown = redact_query(url);
        let uri: Uri = url
            .parse()
            .map_err(|e| HttpError::NotSent(format!("address {shown:?}: {e}")))?;
        let mut request = Request::builder().method(method).uri(uri).header(
            hyper::header::USER_AGENT,
            concat!("vk-serverless/", env!("CARGO_PKG_VERSION")),
        );
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| HttpError::NotSent(format!("{shown}: {e}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let message = format!("{shown}: {e:#}");
                if e.is_connect() {
                    HttpError::NotSent(message)
                } else {
                    HttpError::NoAnswer(message)
                }
            })?;
            let status = response.status().as_u16();
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| HttpError::NoAnswer(format!("{shown}: reading the answer: {e}")))?
                .to_bytes();
            Ok(Answer {
                status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                HttpError::NoAnswer(format!("{shown}: no answer within {:?}", self.timeout))
            })?
    }
}

/// A URL for messages: its query (which may carry a token or a password) cut off, except
/// `api-version`.
pub fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((head, query)) => {
            let all = query.split('&').count();
            let mut kept: Vec<&str> = query
                .split('&')
                .filter(|kv| kv.starts_with("api-version="))
                .collect();
            if kept.len() < all {
                kept.push("<redacted>");
            }
            format!("{head}?{}", kept.join("&"))
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_cut_from_messages_but_the_api_version() {
        assert_eq!(redact_query("https://h/p"), "https://h/p");
        assert_eq!(
            redact_query("https://h/p?api-version=2023-05-01"),
            "https://h/p?api-version=2023-05-01"
        );
        assert_eq!(
            redact_query("https://h/p?api-version=1&sig=secret"),
            "https://h/p?api-version=1&<redacted>"
        );
        assert!(!redact_query("wss://h/x?token=abc").contains("abc"));
    }

    #[test]
    fn bad_ca_files_are_errors() {
        assert!(Tls::from_pem(b"not pem").is_err());
        assert!(Tls::new(Some(Path::new("/nonexistent/ca.pem"))).is_err());
        let tls = Tls::new(None).expect("no extra CA is fine");
        let _ = tls.roots;
    }
}
