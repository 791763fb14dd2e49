//! The provider-neutral side of exec and attach: the client's streams ([`ExecIo`]) and how a
//! command ended ([`ExecOutcome`]). The kubelet API builds these from the remotecommand
//! protocol (`crate::stream::remotecommand` re-exports them); a provider only sees plain
//! tokio readers and writers.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// The size of the client's terminal, in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TermSize {
    pub width: u16,
    pub height: u16,
}

/// The streams a command runs with; what a provider's exec or attach gets. A stream is
/// `None` when the client did not ask for it. stdin ends (EOF) when the client closes it;
/// a write to stdout or stderr fails once the client is gone.
pub struct ExecIo {
    pub stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stdout: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stderr: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    /// stdout is a terminal (and stderr goes to it).
    pub tty: bool,
    /// Terminal sizes, the first one as soon as the client knows it.
    pub resize: Option<mpsc::Receiver<TermSize>>,
}

impl ExecIo {
    /// No streams at all.
    pub fn empty() -> ExecIo {
        ExecIo {
            stdin: None,
            stdout: None,
            stderr: None,
            tty: false,
            resize: None,
        }
    }
}

impl std::fmt::Debug for ExecIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecIo")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("tty", &self.tty)
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecOutcome {
    /// It ran and exited with this code (0 is success).
    Exited(i32),
    /// It could not be run, or its end is unknown.
    Error(String),
}
