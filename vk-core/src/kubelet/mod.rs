//! The kubelet HTTPS API (:10250): what kube-apiserver calls for `kubectl logs`, and what the
//! node proxy serves (`/pods`, `/stats/summary`, `/metrics/resource`). Every request is first
//! authenticated and authorized the kubelet's way ([`KubeletAuth`]), unknown paths included,
//! so an anonymous caller learns nothing about the routes.

mod auth;
mod exec;
mod logs;
mod portforward;
mod response;
mod review;
mod stats;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use auth::{AuthError, ClientIdentity, KubeletAuth, NodeAccess, Reviewer};
pub use exec::{DEFAULT_STREAMING_IDLE_TIMEOUT, StreamingConfig};
pub use logs::LogQueryError;
pub use response::KubeletBody;
pub use review::KubeReviewer;
pub use stats::{
    ContainerStats, CpuStats, MemoryStats, NodeStats, PodReference, PodStats, Summary,
};

use crate::pods::status::phase_name;
use crate::provider::{Provider, ProviderError};
use auth::{Gate, Rejection};
use response::{TEXT_PLAIN, failure, json, method_not_allowed, text};

/// A slow or silent client must not hold a connection slot forever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After cancellation, how long open requests may finish; `follow` logs never would.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Accept errors are mostly fd exhaustion: pause instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("kubelet API listener: {0}")]
    Listener(#[source] std::io::Error),
    #[error("container log stream: {0}")]
    LogStream(#[from] ProviderError),
}

/// The kubelet API of one virtual node. Cheap to clone: every connection holds a clone.
#[derive(Clone)]
pub struct KubeletServer {
    node_name: Arc<str>,
    provider: Arc<dyn Provider>,
    pods: Store<Pod>,
    gate: Arc<Gate>,
    /// The node's start time in `/stats/summary`.
    started: Timestamp,
    /// Exec/attach timeouts and bounds, and the node's session slots.
    streaming: Arc<exec::Streaming>,
}

impl KubeletServer {
    pub fn new(
        node_name: &str,
        provider: Arc<dyn Provider>,
        pods: Store<Pod>,
        auth: KubeletAuth,
    ) -> Self {
        Self {
            node_name: node_name.into(),
            provider,
            pods,
            gate: Arc::new(Gate::new(node_name, review::reviewer_for(auth))),
            started: Timestamp::now(),
            streaming: Arc::new(exec::Streaming::new(
                StreamingConfig::default(),
                crate::metrics::StreamingMetrics::default(),
            )),
        }
    }

    /// Replaces the default exec/attach timeouts and bounds ([`StreamingConfig::default`]).
    pub fn with_streaming(mut self, config: StreamingConfig) -> Self {
        let metrics = self.streaming.metrics.clone();
        self.streaming = Arc::new(exec::Streaming::new(config, metrics));
        self
    }

    /// Count streaming sessions into `metrics` (the registry vk serves).
    pub fn with_metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        let config = self.streaming.config.clone();
        self.streaming = Arc::new(exec::Streaming::new(config, metrics.streaming()));
        self
    }

    /// Serve HTTPS (HTTP/1.1 and h2) on the listener until cancelled. The caller's TLS config
    /// decides which client certificates are verified; one that passed is an identity here.
    /// Without ALPN protocols in `tls`, `h2` and `http/1.1` are offered.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        cancel: CancellationToken,
    ) -> Result<(), KubeletError> {
        let addr = listener.local_addr().map_err(KubeletError::Listener)?;
        if self.gate.is_disabled() {
            tracing::warn!(
                %addr,
                "KUBELET API AUTH IS DISABLED (dev flag): anyone who reaches this port can read \
                 every pod's logs and stats; never run like this in a shared cluster"
            );
        }
        tracing::info!(%addr, node = %self.node_name, "serving the kubelet API");
        let acceptor = TlsAcceptor::from(with_default_alpn(tls));
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, remote)) => {
                        let (server, acceptor) = (self.clone(), acceptor.clone());
                        connections.spawn(server.connection(acceptor, tcp, remote, cancel.clone()));
                    }
                    Err(err) => {
                        tracing::warn!(%err, "accepting a kubelet API connection");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        drop(listener);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::debug!(open = connections.len(), "closing kubelet API connections");
            connections.shutdown().await;
        }
        Ok(())
    }

    async fn connection(
        self,
        acceptor: TlsAcceptor,
        tcp: TcpStream,
        remote: SocketAddr,
        cancel: CancellationToken,
    ) {
        let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                tracing::debug!(%remote, %err, "kubelet API TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "kubelet API TLS handshake timed out");
                return;
            }
        };
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| ClientIdentity::from_certificate(leaf));
        let server = self;
        let service = hyper::service::service_fn(move |req| {
            let (server, peer) = (server.clone(), peer.clone());
            async move { Ok::<_, Infallible>(server.handle(req, peer).await) }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        // Upgrades stay possible for the exec/attach/port-forward streams.
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            _ = cancel.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(%remote, %err, "kubelet API connection ended with an error");
        }
    }

    /// One request through authentication, authorization and the router; what [`serve`] does
    /// per request, without TLS. `peer` is the identity the TLS layer established, if any.
    ///
    /// [`serve`]: KubeletServer::serve
    pub async fn handle<B>(
        &self,
        req: Request<B>,
        peer: Option<ClientIdentity>,
    ) -> Response<KubeletBody> {
        let authorization = req.headers().get(AUTHORIZATION);
        let admitted = self
            .gate
            .admit(req.method(), req.uri().path(), authorization, peer)
            .await;
        match admitted {
            Ok(()) => {
                if let Some(target) = exec::stream_target(req.uri().path()) {
                    return self.stream(req, target).await;
                }
                if let Some(target) = portforward::target(req.uri().path()) {
                    return self.port_forward(req, target).await;
                }
                self.route(req.method(), req.uri().path(), req.uri().query())
                    .await
            }
            Err(Rejection::Unauthenticated) => failure(StatusCode::UNAUTHORIZED, "Unauthorized"),
            Err(Rejection::Forbidden(message)) => failure(StatusCode::FORBIDDEN, message),
            Err(Rejection::Failed(message)) => failure(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }

    async fn route(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
    ) -> Response<KubeletBody> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // Trailing slashes are accepted like gorilla/mux's StrictSlash in the Go virtual-kubelet.
        let segments = match segments.split_last() {
            Some((&"", rest)) if !rest.is_empty() => rest,
            _ => &segments[..],
        };
        let route = match segments {
            ["healthz"] => Route::Healthz,
            ["pods"] => Route::Pods,
            ["runningpods"] => Route::RunningPods,
            ["stats", "summary"] => Route::StatsSummary,
            ["metrics", "resource"] => Route::MetricsResource,
            ["containerLogs", namespace, pod, container]
                if [namespace, pod, container].iter().all(|s| !s.is_empty()) =>
            {
                Route::ContainerLogs(namespace, pod, container)
            }
            // exec/ and attach/ are handled before routing (they upgrade the connection).
            _ => {
                return failure(
                    StatusCode::NOT_FOUND,
                    "the server could not find the requested resource",
                );
            }
        };
        if let Some(refused) = method_not_allowed(method, &[Method::GET]) {
            return refused;
        }
        match route {
            Route::Healthz => text(TEXT_PLAIN, "ok"),
            Route::Pods => self.pods(),
            Route::RunningPods => self.running_pods().await,
            Route::StatsSummary => match self.summary().await {
                Ok(summary) => json(&summary),
                Err(err) => provider_failure(&err),
            },
            Route::MetricsResource => {
                let summary = self.summary().await;
                if let Err(err) = &summary {
                    tracing::warn!(%err, "provider stats for /metrics/resource");
                }
                let body = stats::resource_metrics(summary.as_ref().ok());
                text(stats::METRICS_CONTENT_TYPE, body)
            }
            Route::ContainerLogs(namespace, pod, container) => {
                self.container_logs(namespace, pod, container, query).await
            }
        }
    }

    /// `v1.PodList` of the pods bound to this node, as the pod controller sees them.
    fn pods(&self) -> Response<KubeletBody> {
        let mut items: Vec<Pod> = self.pods.state().iter().map(|p| Pod::clone(p)).collect();
        items.sort_by(|a, b| {
            let key = |p: &Pod| (p.metadata.namespace.clone(), p.metadata.name.clone());
            key(a).cmp(&key(b))
        });
        json(&k8s_openapi::List {
            items,
            ..Default::default()
        })
    }

    /// `v1.PodList` of what the provider runs (debugging aid): identity and phase only.
    async fn running_pods(&self) -> Response<KubeletBody> {
        let instances = match self.provider.list().await {
            Ok(instances) => instances,
            Err(err) => return provider_failure(&err),
        };
        let items = instances
            .into_iter()
            .map(|i| Pod {
                metadata: ObjectMeta {
                    namespace: Some(i.pod.namespace),
                    name: Some(i.pod.name),
                    uid: Some(i.pod.uid),
                    ..ObjectMeta::default()
                },
                status: Some(PodStatus {
                    phase: Some(phase_name(i.phase).to_string()),
                    ..PodStatus::default()
                }),
                ..Pod::default()
            })
            .collect();
        json(&k8s_openapi::List {
            items,
            ..Default::default()
        })
    }

    async fn summary(&self) -> Result<Summary, ProviderError> {
        let pod_stats = self.provider.stats().await?;
        Ok(stats::summary(
            &self.node_name,
            self.started,
            Timestamp::now(),
            &self.pods,
            pod_stats,
        ))
    }
}

/// The routes this server answers; every one of them is GET only.
enum Route<'a> {
    Healthz,
    Pods,
    RunningPods,
    StatsSummary,
    MetricsResource,
    ContainerLogs(&'a str, &'a str, &'a str),
}

fn provider_failure(err: &ProviderError) -> Response<KubeletBody> {
    let code = if err.is_transient() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    failure(code, err.to_string())
}

/// h2 is only negotiated when offered through ALPN; a config without protocols gets both.
fn with_default_alpn(tls: Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    if !tls.alpn_protocols.is_empty() {
        return tls;
    }
    let mut config = rustls::ServerConfig::clone(&tls);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
