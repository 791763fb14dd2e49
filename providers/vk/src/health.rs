//! vk's plain-HTTP health port: `/healthz`, `/readyz`, `/livez` for the kubelet's probes of
//! vk's own pod, and vk's metrics at `/metrics` (OpenMetrics). One for the whole process,
//! however many nodes it runs.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// Serve until `cancel`; an error when the port cannot be bound or accepting fails.
pub async fn serve(
    port: u16,
    metrics: Arc<vk_core::metrics::Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;

    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("the health port {port}: {e}; choose another with --health-port"),
        )
    })?;
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let (status, kind, body) = match req.uri().path() {
                        "/healthz" | "/readyz" | "/livez" => {
                            (StatusCode::OK, "text/plain", Bytes::from_static(b"ok"))
                        }
                        "/metrics" => (
                            StatusCode::OK,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            Bytes::from(metrics.encode()),
                        ),
                        _ => (
                            StatusCode::NOT_FOUND,
                            "text/plain",
                            Bytes::from_static(b"not found"),
                        ),
                    };
                    Response::builder()
                        .status(status)
                        .header(hyper::header::CONTENT_TYPE, kind)
                        .body(Full::new(body))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
