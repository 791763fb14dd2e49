//! Interactive exec in the `process` executor: the command joins the running container's
//! sandbox ([`crate::sandbox::join`]), its streams carried to the exec session as they come.
//! Without `TTY` stdin, stdout and stderr are pipes; with it they are a pseudo-terminal
//! ([`crate::pty`]) that is also the command's controlling terminal.
//!
//! When the client goes away the command is not killed, as under containerd's CRI (its
//! streaming exec waits for the process whatever happens to the connection): its stdin ends
//! (on a terminal: an end-of-file, Ctrl-D) and its output is read and dropped until it exits.
//! A command that ignores its stdin runs on until it ends or the container stops; what it
//! started in the background outlives the session either way.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;
use vk_core::provider::TermSize;

use crate::engine::executor::process::{OUTPUT_DRAIN, ProcessExecutor, exit_of, nsenter_failed};
use crate::engine::executor::{ExecStreams, ExecutorError, GroupSpec, Output};
use crate::engine::spec::ContainerSpec;
use crate::sandbox::spawn::{Streams, spawn, supervise};

/// After the command exits, how long a terminal's output may take to be read out.
const TERMINAL_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);
/// With a terminal, how long the command waits for the client's terminal size before it
/// starts (so it sees the size from its start, as under a CRI runtime).
pub const FIRST_SIZE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl ProcessExecutor {
    pub(super) async fn exec_streams(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        command: &[String],
        streams: ExecStreams,
    ) -> Result<i32, ExecutorError> {
        let (joined, init) = self
            .join_interactive(group, container, command, streams.tty)
            .await?;
        let (done, result) = oneshot::channel();
        if streams.tty {
            let mut streams = streams;
            let first_size = tokio::time::timeout(FIRST_SIZE_WAIT, streams.resize.recv())
                .await
                .ok()
                .flatten()
                .map(|(width, height)| TermSize { width, height });
            // The terminal is the container's own (its /dev/pts), as `tty` inside shows.
            let ptmx = std::path::PathBuf::from(format!("/proc/{init}/root/dev/pts/ptmx"));
            exec_tty(&self.nsenter, joined, streams, first_size, ptmx, done)?;
        } else {
            let ExecStreams {
                stdin,
                output,
                resize,
                ..
            } = streams;
            let pipes = Streams {
                stdin: stdin.is_some(),
                stdout: true,
                stderr: true,
                tty: None,
                ptmx: None,
            };
            let mut spawned =
                spawn(joined, &pipes).map_err(|source| nsenter_failed(&self.nsenter, source))?;
            // The command is the container's now: nothing here kills it or its jobs.
            spawned.group.disarm();
            let to = spawned.stdin.take();
            let feed_stdin = async move {
                let (Some(mut from), Some(mut to)) = (stdin, to) else {
                    return;
                };
                while let Some(chunk) = from.recv().await {
                    if to.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                // Dropping the pipe is the command's EOF.
            };
            let (out, err) = (spawned.stdout.take(), spawned.stderr.take());
            let child = spawned.child;
            let outputs = async move {
                tokio::join!(
                    forward(out, Output::Stdout, output.clone()),
                    forward(err, Output::Stderr, output)
                );
            };
            // The command lives on its own task: the session going away must not end it.
            tokio::spawn(async move {
                let background = async move {
                    tokio::join!(feed_stdin, drain(resize));
                };
                let status = supervise(child, outputs, background, OUTPUT_DRAIN).await;
                let _ = done.send(exit_code_of(status));
            });
        }
        result.await.map_err(|_| ExecutorError::SupervisorGone)?
    }
}

/// An interactive exec with a pseudo-terminal: stdin, stdout and stderr are its slave, which
/// is also the command's controlling terminal; sizes go to its master.
fn exec_tty(
    nsenter: &std::path::Path,
    joined: tokio::process::Command,
    streams: ExecStreams,
    first_size: Option<TermSize>,
    ptmx: std::path::PathBuf,
    done: oneshot::Sender<Result<i32, ExecutorError>>,
) -> Result<(), ExecutorError> {
    let ExecStreams {
        stdin,
        output,
        resize,
        ..
    } = streams;
    let terminal = Streams {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: Some(first_size),
        ptmx: Some(ptmx),
    };
    let mut spawned = spawn(joined, &terminal).map_err(|source| nsenter_failed(nsenter, source))?;
    spawned.group.disarm();
    let (Some(mut to_terminal), Some(from_terminal), Some(master)) = (
        spawned.stdin.take(),
        spawned.stdout.take(),
        spawned.pty.take(),
    ) else {
        return Err(ExecutorError::NoTerminal);
    };
    let child = spawned.child;
    let feed_stdin = async move {
        if let Some(mut from) = stdin {
            while let Some(chunk) = from.recv().await {
                if to_terminal.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        // The client's stdin ended (or it had none, or it went away): end-of-file, as a
        // terminal says it.
        let _ = to_terminal.write_all(&[4]).await;
    };
    let apply_sizes = async move {
        let mut resize = resize;
        while let Some((width, height)) = resize.recv().await {
            if let Err(e) = master.resize(TermSize { width, height }) {
                tracing::debug!(error = %e, "setting the terminal size failed");
            }
        }
        // Keep the master open until the command is done with the terminal.
        std::future::pending::<()>().await;
    };
    // Everything the command writes to its terminal is stdout.
    let outputs = async move { forward(Some(from_terminal), Output::Stdout, output).await };
    tokio::spawn(async move {
        let background = async move {
            tokio::join!(feed_stdin, apply_sizes);
        };
        let status = supervise(child, outputs, background, TERMINAL_DRAIN).await;
        let _ = done.send(exit_code_of(status));
    });
    Ok(())
}

fn exit_code_of(status: std::io::Result<std::process::ExitStatus>) -> Result<i32, ExecutorError> {
    status.map(|s| exit_of(s).code).map_err(ExecutorError::Wait)
}

async fn drain(mut resize: tokio::sync::mpsc::Receiver<(u16, u16)>) {
    while resize.recv().await.is_some() {}
}

/// Copy a pipe's chunks to the session as they come; once the session is gone, read and drop
/// them, so the command never blocks on a full pipe.
async fn forward(
    from: Option<impl AsyncRead + Unpin>,
    channel: Output,
    to: tokio::sync::mpsc::Sender<(Output, Bytes)>,
) {
    let Some(mut from) = from else { return };
    let mut buf = vec![0u8; 32 * 1024];
    let mut connected = true;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if connected => {
                connected = to
                    .send((channel, Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_ok();
            }
            Ok(_) => {}
        }
    }
}
