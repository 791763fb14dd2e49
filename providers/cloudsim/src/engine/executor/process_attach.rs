//! Attach in the `process` executor: while a container's main process runs, its run keeps a
//! `MainProcess` (in `process_main`): the process's stdin (writable when the container has
//! `stdin`), its output broadcast to attached clients, and its terminal (with `tty`) for
//! their sizes.
//!
//! An attached client gets the output from the moment it attaches (stdout, and stderr on its
//! own unless the container has a terminal, where everything is stdout). It is a broadcast: a
//! client too slow to keep up misses chunks rather than slowing the process down. The
//! client's stdin bytes go to the process's stdin; the client's stdin ending does not close
//! the process's (there is no `stdinOnce` here). Its terminal sizes go to the process's
//! terminal. The attach ends when the client goes away or the process exits, and never stops
//! the process. The log gets the output line by line whether or not anyone attaches.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vk_core::provider::TermSize;

use crate::engine::executor::process::{Current, ProcessExecutor};
use crate::engine::executor::{ExecStreams, ExecutorError, GroupSpec, Output};
use crate::engine::spec::{ContainerSpec, Main};
use crate::sandbox::join;

impl ProcessExecutor {
    pub(super) async fn attach_main(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        streams: ExecStreams,
    ) -> Result<(), ExecutorError> {
        let no_main = || ExecutorError::NoMainProcess(container.name.clone());
        if matches!(container.main, Main::Simulated(_)) {
            return Err(no_main());
        }
        // The engine reports a container Running as its run starts; its process may be a
        // moment behind.
        let deadline = tokio::time::Instant::now() + join::SETUP_WAIT;
        let process = loop {
            match self.current(&group.id, &container.name) {
                Some(Current::Process { main, .. }) => break main,
                Some(Current::Timer(_)) => return Err(no_main()),
                None if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                None => return Err(ExecutorError::NotRunning(container.name.clone())),
            }
        };
        tracing::debug!(group = %group.id, container = %container.name, "attach");
        let ExecStreams {
            stdin,
            output,
            resize,
            ..
        } = streams;
        let stdout = process.stdout.subscribe();
        let stderr = process.stderr.subscribe();
        let feed_stdin = async {
            let Some(mut from) = stdin else { return };
            while let Some(chunk) = from.recv().await {
                if !process.write_stdin(&chunk).await {
                    return;
                }
            }
            // The client's stdin ended: the process's stays open.
        };
        let apply_sizes = async {
            let mut resize = resize;
            while let Some((width, height)) = resize.recv().await {
                process.resize(TermSize { width, height });
            }
        };
        let outputs = async {
            tokio::try_join!(
                forward(stdout, Output::Stdout, &output, &process.ended),
                forward(stderr, Output::Stderr, &output, &process.ended),
            )
        };
        // stdin and sizes run beside the outputs until those end.
        let background = async {
            tokio::join!(feed_stdin, apply_sizes);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            result = outputs => {
                if result.is_err() {
                    tracing::debug!(container = %container.name, "the attached client went away");
                }
            }
            () = output.closed() => {
                tracing::debug!(container = %container.name, "the attached client went away");
            }
            () = background => {}
        }
        Ok(())
    }
}

/// Sends the process's output on one stream to the client until the process has ended (and
/// what it wrote is sent); `Err` when the client is gone.
async fn forward(
    mut rx: broadcast::Receiver<Bytes>,
    channel: Output,
    to: &mpsc::Sender<(Output, Bytes)>,
    ended: &CancellationToken,
) -> Result<(), ExecutorError> {
    let gone = |_| ExecutorError::ClientGone;
    loop {
        let chunk = tokio::select! {
            biased;
            received = rx.recv() => match received {
                Ok(chunk) => chunk,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "an attached client fell behind the output");
                    continue;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            () = ended.cancelled() => {
                // What the process wrote before it ended is still queued.
                loop {
                    match rx.try_recv() {
                        Ok(chunk) => to.send((channel, chunk)).await.map_err(gone)?,
                        Err(TryRecvError::Lagged(_)) => {}
                        Err(_) => return Ok(()),
                    }
                }
            }
        };
        to.send((channel, chunk)).await.map_err(gone)?;
    }
}
