//! What every face does: build the configured executor at start (checking the tools the
//! `process` executor needs and making its work directory), the error a start fails with, the
//! fault injection route (`/admin/faults`), binding the listener and serving HTTP/1.1
//! connections until cancelled.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::engine::executor::process::{
    ProcessConfig, ProcessExecutor, check_bwrap, check_nsenter,
};
use crate::engine::executor::simulate::{SimulateConfig, SimulateExecutor};
use crate::engine::executor::{Executor, ExecutorError, ExecutorKind};
use crate::engine::faults::FaultConfig;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// The state file could not be read back.
    #[error("state file: {0}")]
    State(String),
    /// The face's TLS certificate could not be made, read or written.
    #[error("TLS: {0}")]
    Tls(String),
}

/// An executor ready to run groups, and the work directory it chose itself (the caller removes
/// it when it stops).
pub struct Launched {
    pub executor: Arc<dyn Executor>,
    pub own_work_dir: Option<PathBuf>,
}

/// Build the executor of `kind` with its settings.
pub async fn executor(
    kind: ExecutorKind,
    simulate: &SimulateConfig,
    process: &ProcessConfig,
) -> Result<Launched, StartError> {
    Ok(match kind {
        ExecutorKind::Simulate => Launched {
            executor: Arc::new(SimulateExecutor::new(simulate.clone())),
            own_work_dir: None,
        },
        ExecutorKind::Process => {
            check_bwrap(&process.bwrap).await?;
            check_nsenter(&process.nsenter).await?;
            crate::engine::executor::process_runtime::check_setpriv().await?;
            let executor = ProcessExecutor::new(process.clone());
            tokio::fs::create_dir_all(executor.work_dir())
                .await
                .map_err(|source| ExecutorError::WorkDir {
                    dir: executor.work_dir().to_path_buf(),
                    source,
                })?;
            let own_work_dir = process
                .work_dir
                .is_none()
                .then(|| executor.work_dir().to_path_buf());
            Launched {
                executor: Arc::new(executor),
                own_work_dir,
            }
        }
    })
}

/// Remove a work directory the executor chose itself.
pub async fn remove_work_dir(dir: Option<PathBuf>) {
    if let Some(dir) = dir
        && let Err(e) = tokio::fs::remove_dir_all(&dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the work directory");
    }
}

/// `GET /admin/faults` (the faults as JSON) and `POST /admin/faults` (a JSON
/// [`FaultConfig`] replaces them; its one-shot `vanish` and `expire` act at once), the same
/// on every face: the status and the body to answer with.
pub fn admin_faults(engine: &Engine, method: &str, body: &[u8]) -> (u16, String) {
    let faults = engine.faults();
    let current = || serde_json::to_string(&faults.get()).unwrap_or_default();
    match method {
        "GET" => (200, current()),
        "POST" => match serde_json::from_slice::<FaultConfig>(body) {
            Ok(config) => {
                let (vanish, expire) = faults.set(config);
                engine.vanish(&vanish);
                engine.expire(&expire);
                (200, current())
            }
            Err(e) => (400, serde_json::json!({"error": e.to_string()}).to_string()),
        },
        _ => (405, r#"{"error":"GET or POST"}"#.into()),
    }
}

/// Bind `listen` (port 0 picks a free one): the listener and the address it got.
pub async fn bind(listen: &str) -> Result<(TcpListener, std::net::SocketAddr), StartError> {
    let failed = |source| StartError::Listen {
        addr: listen.to_string(),
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    Ok((listener, addr))
}

/// Accept connections on `listener` until `cancel`, one task per connection (HTTP/1.1,
/// keep-alive, upgrades), each request answered by `handle`; an `Err` drops the connection
/// without an answer.
pub async fn serve<H, F, E>(listener: TcpListener, cancel: CancellationToken, handle: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handle = handle.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = service_fn(handle);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}
