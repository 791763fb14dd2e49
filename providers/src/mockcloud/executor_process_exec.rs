//! Interactive exec in the `process` executor: the command runs in a new bubblewrap sandbox
//! with the container's binds, env and working directory, its streams carried to the exec
//! session as they come. Without `TTY` stdin, stdout and stderr are pipes; with it they are a
//! pseudo-terminal ([`super::pty`]) that is also the command's controlling terminal. Dropping
//! the future kills bwrap's process group, and with it (the PID namespace) everything the
//! command started.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;

use super::executor::{ExecStreams, GroupSpec};
use super::executor_process::{BWRAP_MISSING, ProcessExecutor, SandboxKiller, exit_of};
use super::pty;
use crate::eci::exec as exec_ws;
use crate::eci::request::ContainerDef;

impl ProcessExecutor {
    pub(super) async fn exec_streams(
        &self,
        group: &GroupSpec,
        container: &ContainerDef,
        command: &[String],
        streams: ExecStreams,
    ) -> Result<i32, String> {
        let mut args = self.sandbox(group, container).await?;
        args.push("--".into());
        args.extend(command.iter().cloned());
        if streams.tty {
            return self.exec_tty(args, streams).await;
        }
        let ExecStreams {
            stdin,
            output,
            resize,
            ..
        } = streams;
        // Its own process group, killed on drop (SandboxKiller): the PID namespace's first
        // process goes with it, and so does every process the command started.
        let mut child = Command::new(&self.config.bwrap)
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "running {}: {e}. {BWRAP_MISSING}",
                    self.config.bwrap.display()
                )
            })?;
        let _sandbox = SandboxKiller::of(&child);
        let feed_stdin = {
            let to = child.stdin.take();
            async move {
                let (Some(mut from), Some(mut to)) = (stdin, to) else {
                    return;
                };
                while let Some(chunk) = from.recv().await {
                    if to.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                // Dropping the pipe is the command's EOF.
            }
        };
        let drain_resize = async move {
            let mut resize = resize;
            while resize.recv().await.is_some() {}
        };
        let background = async move {
            tokio::join!(feed_stdin, drain_resize);
        };
        let outputs = {
            let (out, err) = (child.stdout.take(), child.stderr.take());
            let (to_out, to_err) = (output.clone(), output);
            async move {
                tokio::try_join!(
                    forward(out, exec_ws::STDOUT, to_out),
                    forward(err, exec_ws::STDERR, to_err)
                )
                .map(drop)
            }
        };
        tokio::pin!(outputs, background);
        let (mut outputs_done, mut background_done) = (false, false);
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                sent = &mut outputs, if !outputs_done => {
                    outputs_done = true;
                    if sent.is_err() {
                        let _ = child.kill().await;
                        return Err("the client went away".into());
                    }
                }
                () = &mut background, if !background_done => background_done = true,
            }
        };
        // What the command wrote just before it ended (the namespace is gone, so the pipes
        // close at once).
        if !outputs_done {
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut outputs).await;
        }
        status
            .map(|s| exit_of(s).code)
            .map_err(|e| format!("waiting for the command: {e}"))
    }

    /// An interactive exec with a pseudo-terminal: stdin, stdout and stderr are its slave,
    /// which is also the command's controlling terminal; sizes go to its master.
    async fn exec_tty(&self, args: Vec<String>, streams: ExecStreams) -> Result<i32, String> {
        let ExecStreams {
            stdin,
            output,
            resize,
            ..
        } = streams;
        let (master, slave) = pty::open().map_err(|e| format!("opening a pseudo-terminal: {e}"))?;
        let sizer = master
            .try_clone()
            .map_err(|e| format!("duplicating the terminal: {e}"))?;
        let stdio = || {
            slave
                .try_clone()
                .map(Stdio::from)
                .map_err(|e| format!("duplicating the terminal: {e}"))
        };
        let mut command = Command::new(&self.config.bwrap);
        command
            .args(&args)
            .stdin(stdio()?)
            .stdout(stdio()?)
            .stderr(stdio()?)
            .kill_on_drop(true);
        // SAFETY: make_controlling only makes async-signal-safe calls.
        unsafe {
            command.pre_exec(|| pty::make_controlling());
        }
        let spawned = command.spawn();
        // Only the command holds the slave now: reading the master ends when it is gone.
        drop(command);
        drop(slave);
        let mut child = spawned.map_err(|e| {
            format!(
                "running {}: {e}. {BWRAP_MISSING}",
                self.config.bwrap.display()
            )
        })?;
        // A session leader (make_controlling), so its process group is its own.
        let _sandbox = SandboxKiller::of(&child);
        let master = pty::Master::new(master).map_err(|e| format!("watching the terminal: {e}"))?;
        let (mut from_terminal, mut to_terminal) = tokio::io::split(master);
        let feed_stdin = async move {
            let Some(mut from) = stdin else { return };
            while let Some(chunk) = from.recv().await {
                if to_terminal.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            // The client's stdin ended: end-of-file, as a terminal says it (Ctrl-D).
            let _ = to_terminal.write_all(&[4]).await;
        };
        let apply_sizes = async move {
            let mut resize = resize;
            while let Some((width, height)) = resize.recv().await {
                if let Err(e) = pty::set_size(&sizer, width, height) {
                    tracing::debug!(error = %e, "setting the terminal size failed");
                }
            }
        };
        let background = async move {
            tokio::join!(feed_stdin, apply_sizes);
        };
        let outputs = async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match from_terminal.read(&mut buf).await {
                    Ok(0) | Err(_) => return Ok::<(), ()>(()),
                    Ok(n) => output
                        .send((exec_ws::STDOUT, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .map_err(drop)?,
                }
            }
        };
        tokio::pin!(outputs, background);
        let (mut outputs_done, mut background_done) = (false, false);
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                sent = &mut outputs, if !outputs_done => {
                    outputs_done = true;
                    if sent.is_err() {
                        let _ = child.kill().await;
                        return Err("the client went away".into());
                    }
                }
                () = &mut background, if !background_done => background_done = true,
            }
        };
        if !outputs_done {
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut outputs).await;
        }
        status
            .map(|s| exit_of(s).code)
            .map_err(|e| format!("waiting for the command: {e}"))
    }
}

/// Copy a pipe's chunks to the session as they come; `Err` when the session is gone.
async fn forward(
    from: Option<impl AsyncRead + Unpin>,
    channel: u8,
    to: tokio::sync::mpsc::Sender<(u8, Bytes)>,
) -> Result<(), ()> {
    let Some(mut from) = from else { return Ok(()) };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => to
                .send((channel, Bytes::copy_from_slice(&buf[..n])))
                .await
                .map_err(drop)?,
        }
    }
}
