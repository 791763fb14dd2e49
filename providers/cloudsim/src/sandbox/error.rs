//! Why a sandbox could not be set up or joined.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A file system step on the host failed (`creating`, `writing`, `listing`, `chmod`, ...).
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// bwrap takes UTF-8 arguments only.
    #[error("{} is not UTF-8", .0.display())]
    NotUtf8(PathBuf),
    #[error("subPath {0:?} leaves its volume")]
    SubPathLeavesVolume(String),
    #[error("file {0:?} leaves its volume")]
    FileLeavesVolume(String),
    /// The container's root directory on the host cannot be looked at.
    #[error("the container's root {}: {source}", root.display())]
    Root {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the container's sandbox is gone")]
    Gone,
    #[error("the container's sandbox was not set up within {0:?}")]
    NotSetUp(Duration),
}

impl SandboxError {
    /// A file system step on `path` that failed.
    pub fn io(action: &'static str, path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.as_ref().to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
