//! Starting a sandbox or a command joining one the same way whoever does it: on pipes or on
//! a pseudo-terminal (then its session leader, the terminal its controlling one), leading
//! its own process group, so that it can be killed with everything it started.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, Command};
use vk_core::provider::TermSize;

use super::SandboxKiller;
use crate::pty::{self, PtyMaster};

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Which streams the process gets.
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Run on a pseudo-terminal (stderr goes to it too), of this size when known.
    pub tty: Option<Option<TermSize>>,
    /// The terminal's multiplexer when not the host's: a joined container's own `ptmx`.
    pub ptmx: Option<PathBuf>,
}

/// A started process and this side's ends of its streams.
pub struct Spawned {
    pub child: Child,
    pub stdin: Option<Writer>,
    pub stdout: Option<Reader>,
    pub stderr: Option<Reader>,
    /// With a TTY: the terminal, for resizes.
    pub pty: Option<PtyMaster>,
    /// Kills the process group when dropped.
    pub group: SandboxKiller,
}

/// Starts `cmd` (its program, arguments and environment set) with `streams`. `Err` when it
/// cannot be started (no such program, no pty).
pub fn spawn(mut cmd: Command, streams: &Streams) -> io::Result<Spawned> {
    cmd.kill_on_drop(true);
    let pty = match streams.tty {
        Some(size) => {
            let (master, slave) = match &streams.ptmx {
                Some(ptmx) => pty::open_in(ptmx, size)?,
                None => pty::open(size)?,
            };
            pty::run_on(&mut cmd, &slave)?;
            let child = cmd.spawn()?;
            // Only the command may hold the slave: the master reads EIO once it is gone.
            drop(cmd);
            drop(slave);
            let stdin = if streams.stdin {
                Some(Box::new(master.writer()?) as Writer)
            } else {
                None
            };
            let stdout = if streams.stdout {
                Some(Box::new(master.reader()?) as Reader)
            } else {
                None
            };
            // A session leader (pty::run_on), so its process group is its own.
            let group = SandboxKiller::of(&child);
            return Ok(Spawned {
                child,
                stdin,
                stdout,
                stderr: None,
                pty: Some(master),
                group,
            });
        }
        None => None,
    };
    cmd.stdin(pipe_if(streams.stdin))
        .stdout(pipe_if(streams.stdout))
        .stderr(pipe_if(streams.stderr))
        .process_group(0);
    let mut child = cmd.spawn()?;
    let group = SandboxKiller::of(&child);
    Ok(Spawned {
        stdin: child.stdin.take().map(|w| Box::new(w) as Writer),
        stdout: child.stdout.take().map(|r| Box::new(r) as Reader),
        stderr: child.stderr.take().map(|r| Box::new(r) as Reader),
        child,
        pty,
        group,
    })
}

fn pipe_if(on: bool) -> Stdio {
    if on { Stdio::piped() } else { Stdio::null() }
}

/// The shell's convention: 128 + signal for a command killed by one.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Waits for a command while its outputs are forwarded and `background` (stdin, terminal
/// sizes) runs; then gives the outputs `drain` to finish (a background job may hold them:
/// what it writes after that is not read here).
pub async fn supervise(
    mut child: Child,
    outputs: impl Future<Output = ()>,
    background: impl Future<Output = ()>,
    drain: std::time::Duration,
) -> io::Result<std::process::ExitStatus> {
    tokio::pin!(outputs, background);
    let (mut outputs_done, mut background_done) = (false, false);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            () = &mut outputs, if !outputs_done => outputs_done = true,
            () = &mut background, if !background_done => background_done = true,
        }
    };
    if !outputs_done && tokio::time::timeout(drain, &mut outputs).await.is_err() {
        tracing::debug!("a command's output is still open after it ended");
    }
    status
}
