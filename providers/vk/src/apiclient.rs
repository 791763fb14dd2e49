//! The `vk` binary's Kubernetes API client: kube-rs's own layers (base URI, retries of
//! 429/503/504, credentials, extra headers) over two connection pools.
//!
//! - Watches get HTTP/1.1 connections of their own, with kube-rs's read timeout. A watch holds
//!   its stream for minutes; on one shared HTTP/2 connection a few hundred of them (two per
//!   namespace with pods on the node) would use up the server's stream limit and stall every
//!   other call.
//! - Every other call is multiplexed on one HTTP/2 connection when the API server offers it,
//!   as client-go does, so a burst of pod starts opens no new connections (a TLS handshake and
//!   a first authentication per concurrent call were tens of milliseconds each on the
//!   two-core test machine). Pings every 30 s find a dead connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Request;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ConfigExt};
use tower::retry::RetryLayer;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// Which pool a request goes to.
pub fn is_streaming<B>(req: &Request<B>) -> bool {
    req.uri().query().is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes()).any(|(k, v)| {
            matches!(k.as_ref(), "watch" | "follow") && matches!(v.as_ref(), "true" | "1")
        })
    })
}

/// Streaming requests to one pool, the rest to the other.
#[derive(Clone)]
struct Split<S, U> {
    streaming: S,
    unary: U,
}

type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, U, R, E> Service<Request<Body>> for Split<S, U>
where
    S: Service<Request<Body>, Response = R, Error = E> + Clone + Send + 'static,
    S::Future: Send,
    U: Service<Request<Body>, Response = R, Error = E> + Clone + Send + 'static,
    U::Future: Send,
    R: 'static,
    E: 'static,
{
    type Response = R;
    type Error = E;
    type Future = ResponseFuture<R, E>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        // Each call waits for its own pool in `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if is_streaming(&req) {
            Box::pin(self.streaming.clone().oneshot(req))
        } else {
            Box::pin(self.unary.clone().oneshot(req))
        }
    }
}

fn https(
    config: &kube::Config,
    tls: rustls::ClientConfig,
    tcp: HttpConnector,
    http2: bool,
) -> anyhow::Result<HttpsConnector<HttpConnector>> {
    let mut builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|e| anyhow::anyhow!("tls-server-name {name:?}: {e}"))?;
        builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
    }
    Ok(if http2 {
        builder.enable_all_versions().wrap_connector(tcp)
    } else {
        builder.enable_http1().wrap_connector(tcp)
    })
}

/// A client for `config` (see the module documentation).
pub fn client(config: kube::Config) -> anyhow::Result<kube::Client> {
    if config.proxy_url.is_some() || config.auth_info.exec.is_some() {
        // kube-rs's own stack (one pool, HTTP/1.1 only) handles proxies, and client
        // certificates from an exec plugin that expire.
        return Ok(kube::Client::try_from(config)?);
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(config.connect_timeout);
    tcp.set_keepalive(Some(Duration::from_secs(30)));
    let tls = config.rustls_client_config()?;

    let mut h1 =
        hyper_timeout::TimeoutConnector::new(https(&config, tls.clone(), tcp.clone(), false)?);
    h1.set_connect_timeout(config.connect_timeout);
    h1.set_read_timeout(config.read_timeout);
    h1.set_write_timeout(config.write_timeout);
    let streaming: Pool<_, Body> = Pool::builder(TokioExecutor::new()).build(h1);

    let unary: Pool<_, Body> = Pool::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(15))
        .http2_keep_alive_while_idle(true)
        .build(https(&config, tls, tcp, true)?);

    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(Split { streaming, unary });
    Ok(kube::Client::new(service, config.default_namespace))
}

#[cfg(test)]
mod tests {
    use super::is_streaming;

    fn req(uri: &str) -> hyper::Request<()> {
        hyper::Request::get(uri).body(()).unwrap()
    }

    #[test]
    fn watches_and_followed_logs_stream() {
        assert!(is_streaming(&req(
            "/api/v1/pods?watch=true&fieldSelector=x"
        )));
        assert!(is_streaming(&req(
            "/api/v1/namespaces/a/pods?resourceVersion=1&watch=1"
        )));
        assert!(is_streaming(&req(
            "/api/v1/namespaces/a/pods/p/log?follow=true"
        )));
        assert!(!is_streaming(&req("/api/v1/pods?watch=false")));
        assert!(!is_streaming(&req("/api/v1/namespaces/a/pods/p/status")));
        assert!(!is_streaming(&req(
            "/api/v1/pods?labelSelector=watch%3Dtrue"
        )));
        assert!(!is_streaming(&req("/api/v1/pods")));
    }
}
