//! What every face does to start: build the configured executor (checking the tools the
//! `process` executor needs and making its work directory), and the error a start fails with.

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::executor::process::{
    ProcessConfig, ProcessExecutor, check_bwrap, check_nsenter,
};
use crate::engine::executor::simulate::{SimulateConfig, SimulateExecutor};
use crate::engine::executor::{Executor, ExecutorError, ExecutorKind};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Executor(#[from] ExecutorError),
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
