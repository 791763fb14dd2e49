//! `bench log-stream`: following a container's log through the kubelet API.
//!
//! Loopback: the real [`KubeletServer`] in this process on 127.0.0.1:0 over real TLS (the
//! `certs` crate's server config with a throw-away CA, client certificates verified), a
//! provider that generates the log while it is read, and an HTTPS client (hyper over
//! tokio-rustls, trusting only that CA, presenting a kubelet-client certificate) that reads
//! `/containerLogs/bench/logs/c?follow=true` to the end. Authorization is the kubelet's gate
//! with a reviewer that allows that certificate's user, so every byte passes the same path as
//! in `vk run`.
//!
//! Through the API server (`--apiserver`): the same server registered as a real virtual node
//! (node controller, kubelet-serving certificate from a CSR, the API server's client CA,
//! webhook authorization), and `kubectl logs -f` reading it through kube-apiserver.

mod apiserver;
mod generator;
mod pki;
mod rss;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::HOST;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use vk_core::kubelet::{
    AuthError, ClientIdentity, KubeletAuth, KubeletServer, NodeAccess, Reviewer,
};

use generator::Generator;
use pki::{CLIENT_USER, Pki};
use rss::{Sampler, Watched};

const NODE: &str = "bench";
const NAMESPACE: &str = "bench";
const POD: &str = "logs";
const CONTAINER: &str = "c";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Http1,
    H2,
    Both,
}

pub struct Options {
    pub bytes: u64,
    pub chunk_bytes: usize,
    pub proto: Proto,
    pub apiserver: bool,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if opts.bytes == 0 {
        bail!("--bytes must be positive");
    }
    println!(
        "log-stream: {} bytes ({:.1} MiB) of {}-byte timestamped lines, {} bytes per provider chunk",
        opts.bytes,
        opts.bytes as f64 / (1 << 20) as f64,
        generator::LINE_BYTES,
        opts.chunk_bytes.max(generator::LINE_BYTES),
    );
    let pki = Pki::new()?;
    let protocols: &[bool] = match opts.proto {
        Proto::Http1 => &[false],
        Proto::H2 => &[true],
        Proto::Both => &[false, true],
    };
    for &h2 in protocols {
        loopback(&opts, &pki, h2).await?;
    }
    if opts.apiserver {
        apiserver::run(&opts).await?;
    }
    Ok(())
}

/// The one pod of the benchmark, in a store filled the way the reflector fills it.
fn pod(namespace: &str, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(POD.into()),
            uid: Some("uid-bench-logs".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: CONTAINER.into(),
                image: Some("busybox".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn store_with(pod: Pod) -> Store<Pod> {
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Apply(pod));
    reader
}

/// Allows the benchmark client's certificate user, nobody else; tokens are never valid.
struct AllowKubeletClient;

#[async_trait]
impl Reviewer for AllowKubeletClient {
    async fn review_token(&self, _token: &str) -> Result<Option<ClientIdentity>, AuthError> {
        Ok(None)
    }

    async fn review_access(
        &self,
        who: &ClientIdentity,
        _access: &NodeAccess,
    ) -> Result<bool, AuthError> {
        Ok(who.user == CLIENT_USER)
    }
}

async fn loopback(opts: &Options, pki: &Pki, h2: bool) -> anyhow::Result<()> {
    let provider = Arc::new(Generator::new(opts.bytes, opts.chunk_bytes));
    let resolver = Arc::new(certs::ServingCertResolver::new(pki.serving.clone()));
    let tls = certs::kubelet_server_config(resolver, Some(pki.ca_pem.as_bytes()))?;
    let auth = KubeletAuth::Reviewer(Arc::new(AllowKubeletClient));
    let server = KubeletServer::new(NODE, provider, store_with(pod(NAMESPACE, NODE)), auth);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let serving = tokio::spawn(server.serve(listener, Arc::new(tls), cancel.clone()));

    let progress = Arc::new(AtomicU64::new(0));
    let sampler = Sampler::start(vec![Watched::own("bench process")], progress.clone());
    let started = Instant::now();
    let read = follow(addr, pki, h2, &progress).await;
    let elapsed = started.elapsed();
    let (labels, samples) = sampler.finish();
    cancel.cancel();
    serving.await??;
    let read = read?;
    if read.bytes != opts.bytes {
        bail!(
            "read {} bytes, the container wrote {}",
            read.bytes,
            opts.bytes
        );
    }

    println!();
    println!(
        "loopback {}: https://{addr}/containerLogs/{NAMESPACE}/{POD}/{CONTAINER}?follow=true ({})",
        if h2 { "h2" } else { "HTTP/1.1" },
        read.tls
    );
    print_throughput(read.bytes, elapsed, read.first_byte);
    println!("  memory of this process (server, provider and client), every 100 ms:");
    rss::print_report(&labels, &samples, opts.bytes);
    Ok(())
}

fn print_throughput(bytes: u64, elapsed: Duration, first_byte: Option<Duration>) {
    let secs = elapsed.as_secs_f64();
    println!(
        "  throughput: {bytes} bytes in {secs:.2} s = {:.1} MB/s ({:.1} MiB/s); first byte after {:.1} ms",
        bytes as f64 / 1e6 / secs,
        bytes as f64 / (1 << 20) as f64 / secs,
        first_byte.unwrap_or_default().as_secs_f64() * 1000.0,
    );
}

struct Read {
    bytes: u64,
    first_byte: Option<Duration>,
    /// The negotiated TLS version and cipher suite.
    tls: String,
}

/// One HTTPS request with `follow=true`, read to the end of the body.
async fn follow(
    addr: SocketAddr,
    pki: &Pki,
    h2: bool,
    progress: &AtomicU64,
) -> anyhow::Result<Read> {
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = TlsConnector::from(pki.client_config(h2)?)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("TLS handshake with the kubelet API")?;
    let session = tls.get_ref().1;
    let tls_info = match (
        session.protocol_version(),
        session.negotiated_cipher_suite(),
    ) {
        (Some(version), Some(suite)) => format!("{version:?}, {:?}", suite.suite()),
        _ => "TLS".to_string(),
    };
    let path = format!("/containerLogs/{NAMESPACE}/{POD}/{CONTAINER}?follow=true");
    let io = TokioIo::new(tls);
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        let req = Request::get(format!("https://localhost{path}")).body(Empty::<Bytes>::new())?;
        sender.send_request(req).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(HOST, "localhost")
            .body(Empty::<Bytes>::new())?;
        sender.send_request(req).await?
    };
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let text = body.collect().await?.to_bytes();
        bail!("{status}: {}", String::from_utf8_lossy(&text));
    }
    let mut read = Read {
        bytes: 0,
        first_byte: None,
        tls: tls_info,
    };
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            if read.first_byte.is_none() {
                read.first_byte = Some(started.elapsed());
            }
            read.bytes += data.len() as u64;
            progress.store(read.bytes, Ordering::Relaxed);
        }
    }
    Ok(read)
}
