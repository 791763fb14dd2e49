//! The network checks of probes, as the kubelet makes them, for the providers that run probes
//! themselves (the mock, the mock cloud): `httpGet` (success from 200 to 399, no redirects
//! followed; HTTPS without certificate checks, like the kubelet), `tcpSocket` (the connection
//! opens) and `grpc` (`grpc.health.v1.Health/Check` over plain HTTP/2 answers SERVING).

use std::sync::Arc;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use vk_core::probe::Outcome;
use vk_core::provider::ProbeHandler;

/// What the kubelet sends as its User-Agent (`kube-probe/<major>.<minor>`).
const USER_AGENT: &str = "kube-probe/1.35";

/// Check a network handler against `default_host` (where the pod's address is reached);
/// `None` for an exec handler, which is the provider's own business.
pub async fn check(handler: &ProbeHandler, default_host: &str) -> Option<Outcome> {
    Some(match handler {
        ProbeHandler::Exec { .. } => return None,
        ProbeHandler::HttpGet {
            host,
            port,
            path,
            https,
            headers,
        } => {
            let host = host.as_deref().unwrap_or(default_host);
            http_get(host, *port, path, *https, headers).await
        }
        ProbeHandler::TcpSocket { host, port } => {
            let host = host.as_deref().unwrap_or(default_host);
            match TcpStream::connect((host, *port)).await {
                Ok(_) => Outcome::Success,
                Err(err) => Outcome::Failure(format!("dial tcp {host}:{port}: {err}")),
            }
        }
        ProbeHandler::Grpc { port, service } => {
            grpc_health(default_host, *port, service.as_deref().unwrap_or_default()).await
        }
    })
}

/// Why an HTTPS or gRPC check got no answer, in the kubelet's words.
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Request(#[from] hyper::http::Error),
    #[error(transparent)]
    TlsConfig(#[from] rustls::Error),
    #[error("bad host {host:?}: {source}")]
    BadHost {
        host: String,
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    #[error("tls: {0}")]
    Handshake(#[source] std::io::Error),
    #[error("health rpc failed: {0}")]
    Rpc(#[source] hyper::Error),
    #[error("health rpc failed: rpc error: code = {code} desc = {message}")]
    RpcStatus { code: u32, message: String },
    #[error("health rpc failed: empty response")]
    EmptyResponse,
    #[error("health rpc failed: malformed response")]
    MalformedResponse,
}

/// The host part of a URL: IPv6 addresses in brackets.
fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    https: bool,
    headers: &[(String, String)],
) -> Outcome {
    let scheme = if https { "https" } else { "http" };
    let authority = format!("{}:{port}", url_host(host));
    let url = format!("{scheme}://{authority}{path}");
    let failed = |err: String| Outcome::Failure(format!("Get \"{url}\": {err}"));
    let mut request = Request::get(path)
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close");
    // The probe's own headers win, `Host` included.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request = request.header(hyper::header::HOST, &authority);
    }
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let request = match request.body(Empty::<Bytes>::new()) {
        Ok(r) => r,
        Err(err) => return failed(err.to_string()),
    };
    let tcp = match TcpStream::connect((host, port)).await {
        Ok(tcp) => tcp,
        Err(err) => return failed(format!("dial tcp {authority}: {err}")),
    };
    let status = if https {
        let tls = match tls_connect(host, tcp).await {
            Ok(tls) => tls,
            Err(err) => return failed(err.to_string()),
        };
        send_http1(TokioIo::new(tls), request).await
    } else {
        send_http1(TokioIo::new(tcp), request).await
    };
    match status {
        Ok(code) if (200..400).contains(&code) => Outcome::Success,
        Ok(code) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Err(err) => failed(err.to_string()),
    }
}

async fn send_http1<T>(io: T, request: Request<Empty<Bytes>>) -> Result<u16, CheckError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let answer = sender.send_request(request).await;
    driver.abort();
    Ok(answer?.status().as_u16())
}

async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, CheckError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|source| {
        CheckError::BadHost {
            host: host.to_string(),
            source,
        }
    })?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(CheckError::Handshake)
}

/// The kubelet's HTTPS probes skip certificate verification (`InsecureSkipVerify`); the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus` names.
fn serving_status(n: u64) -> &'static str {
    match n {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

async fn grpc_health(host: &str, port: u16, service: &str) -> Outcome {
    let authority = format!("{}:{port}", url_host(host));
    let failed =
        |err: String| Outcome::Failure(format!("failed to connect service \"{authority}\": {err}"));
    let tcp = match TcpStream::connect((host, port)).await {
        Ok(tcp) => tcp,
        Err(err) => return failed(err.to_string()),
    };
    let (mut sender, conn) = match hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    {
        Ok(pair) => pair,
        Err(err) => return failed(err.to_string()),
    };
    let driver = tokio::spawn(conn);
    let result = grpc_call(&mut sender, &authority, service).await;
    driver.abort();
    match result {
        Ok(1) => Outcome::Success,
        Ok(status) => Outcome::Failure(format!(
            "service unhealthy (responded with \"{}\")",
            serving_status(status)
        )),
        Err(err) => Outcome::Failure(err.to_string()),
    }
}

/// One `Check` call: the response's `status` field.
async fn grpc_call(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    authority: &str,
    service: &str,
) -> Result<u64, CheckError> {
    // HealthCheckRequest { string service = 1 }, in a gRPC frame (no compression, length).
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap_or(0).to_be_bytes());
    frame.extend_from_slice(&message);
    let request = Request::post(format!("http://{authority}/grpc.health.v1.Health/Check"))
        .header(hyper::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .body(Full::new(Bytes::from(frame)))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(CheckError::Rpc)?;
    let head_status = grpc_status(response.headers());
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(CheckError::Rpc)?;
    let status = collected.trailers().and_then(grpc_status).or(head_status);
    if let Some((code, message)) = status.filter(|(code, _)| *code != 0) {
        return Err(CheckError::RpcStatus { code, message });
    }
    let mut body = collected.to_bytes();
    if body.len() < 5 {
        return Err(CheckError::EmptyResponse);
    }
    body.advance(5);
    serving_field(&body).ok_or(CheckError::MalformedResponse)
}

fn grpc_status(headers: &hyper::HeaderMap) -> Option<(u32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// Field 1 (`status`, a varint) of a HealthCheckResponse; 0 (UNKNOWN) when absent, as
/// protobuf defaults it. Other fields are skipped.
fn serving_field(mut buf: &[u8]) -> Option<u64> {
    let mut status = 0;
    while !buf.is_empty() {
        let key = get_varint(&mut buf)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = get_varint(&mut buf)?,
            (_, 0) => {
                get_varint(&mut buf)?;
            }
            (_, 2) => {
                let len = usize::try_from(get_varint(&mut buf)?).ok()?;
                buf = buf.get(len..)?;
            }
            (_, 1) => buf = buf.get(8..)?,
            (_, 5) => buf = buf.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

#[cfg(test)]
#[path = "probe_net_tests.rs"]
mod tests;
