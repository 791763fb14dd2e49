//! `kubectl attach` on the mock: joins a container's real main process (annotation
//! `mock.vk.io/process.<container>`, see [`process`](crate::process)).
//!
//! The client gets the process's output from the moment it attaches (stdout, and stderr on
//! its own stream unless the container has a TTY), its stdin bytes go to the process's stdin
//! (when the container has `stdin: true`), and its terminal sizes to the process's terminal.
//! The client's stdin ending does not close the process's stdin (there is no `stdinOnce`
//! here). The attach ends when the client goes away or the process exits, and never stops
//! the process. A container without a main process cannot be attached to: that is an error
//! naming the annotation.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use vk_core::provider::{ExecIo, ExecOutcome, PodRef, ProviderError};

use super::{MockProvider, pod_key};
use crate::config::annotations::PROCESS;
use crate::process;

impl MockProvider {
    pub(super) async fn run_attach(
        &self,
        pod: &PodRef,
        container: &str,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        // The container must exist and run, as for exec.
        self.exec_target(pod, container)?;
        let process = self
            .shared
            .processes
            .get(&pod_key(pod), container)
            .ok_or_else(|| {
                ProviderError::invalid(
                    "NoMainProcess",
                    format!(
                        "container {container} of pod {} has no process to attach to: the mock \
                         runs one only for annotation {PROCESS}.{container}",
                        pod.name
                    ),
                )
            })?;
        tracing::debug!(%pod, container, "mock attach");
        let ExecIo {
            stdin,
            stdout,
            stderr,
            tty: _,
            resize,
        } = io;
        let stdout_rx = process.stdout.subscribe();
        let stderr_rx = process.stderr.subscribe();
        let feed_stdin = {
            let process = process.clone();
            async move {
                let Some(mut from) = stdin else { return };
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match from.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if !process::write_stdin(&process, &buf[..n]).await {
                                return;
                            }
                        }
                    }
                }
            }
        };
        let apply_resize = {
            let process = process.clone();
            async move {
                if let Some(mut sizes) = resize {
                    while let Some(size) = sizes.recv().await {
                        process.resize(size);
                    }
                }
            }
        };
        let outputs = async {
            tokio::try_join!(
                forward(stdout_rx, stdout, &process.ended),
                forward(stderr_rx, stderr, &process.ended),
            )
        };
        // stdin and resizes run beside the outputs until those end.
        let background = async {
            tokio::join!(feed_stdin, apply_resize);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            result = outputs => {
                if let Err(err) = result {
                    tracing::debug!(%pod, container, %err, "attach client went away");
                }
            }
            () = background => {}
        }
        // The kubelet reports success for an attach that ended, whatever the process did.
        Ok(ExecOutcome::Exited(0))
    }
}

/// Sends the process's output to one of the client's streams until the process has ended
/// (and what it wrote is sent); `Err` when the client's side fails. Without a client stream,
/// just waits for the end.
async fn forward(
    mut rx: broadcast::Receiver<Bytes>,
    to: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    ended: &CancellationToken,
) -> std::io::Result<()> {
    let Some(mut to) = to else {
        ended.cancelled().await;
        return Ok(());
    };
    loop {
        let chunk = tokio::select! {
            biased;
            received = rx.recv() => match received {
                Ok(chunk) => chunk,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "attach client fell behind the process's output");
                    continue;
                }
                Err(RecvError::Closed) => break,
            },
            () = ended.cancelled() => {
                // What the process wrote before it ended is still queued.
                while let Ok(chunk) = rx.try_recv() {
                    to.write_all(&chunk).await?;
                }
                break;
            }
        };
        to.write_all(&chunk).await?;
        to.flush().await?;
    }
    to.shutdown().await
}
