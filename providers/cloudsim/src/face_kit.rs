//! What every face's HTTP server does the same way, whatever its API: build the executor its
//! config names (checking the sandbox tools first), serve HTTP/1.1 connections until
//! cancelled, answer the fault-injection admin endpoint (`GET`/`POST /admin/faults`), and
//! remove a work directory the cloud made itself.

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

/// The executor of `kind`, and the work directory it made itself (the caller removes it when
/// it stops: [`remove_own_work_dir`]).
pub async fn build_executor(
    kind: ExecutorKind,
    simulate: &SimulateConfig,
    process: &ProcessConfig,
) -> Result<(Arc<dyn Executor>, Option<PathBuf>), ExecutorError> {
    match kind {
        ExecutorKind::Simulate => Ok((Arc::new(SimulateExecutor::new(simulate.clone())), None)),
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
            let own = process
                .work_dir
                .is_none()
                .then(|| executor.work_dir().to_path_buf());
            Ok((Arc::new(executor), own))
        }
    }
}

/// Remove the work directory a cloud made itself (its sandboxed processes died with it).
pub async fn remove_own_work_dir(dir: Option<PathBuf>) {
    if let Some(dir) = dir
        && let Err(e) = tokio::fs::remove_dir_all(&dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the work directory");
    }
}

/// `GET` (the faults now) or `POST` (a JSON [`FaultConfig`] replacing them; its one-shot
/// lists act on the engine at once) of `/admin/faults`: the status and the JSON answer.
pub fn admin_faults(engine: &Engine, method: &str, body: &[u8]) -> (u16, String) {
    let faults = engine.faults();
    match method {
        "GET" => (
            200,
            serde_json::to_string(&faults.get()).unwrap_or_default(),
        ),
        "POST" => match serde_json::from_slice::<FaultConfig>(body) {
            Ok(config) => {
                let (vanish, expire) = faults.set(config);
                engine.vanish(&vanish);
                engine.expire(&expire);
                (
                    200,
                    serde_json::to_string(&faults.get()).unwrap_or_default(),
                )
            }
            Err(e) => (400, format!(r#"{{"error":{:?}}}"#, e.to_string())),
        },
        _ => (405, r#"{"error":"GET or POST"}"#.into()),
    }
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

/// Why a face's cloud did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Executor(#[from] ExecutorError),
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
