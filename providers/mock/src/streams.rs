//! `kubectl exec` and `kubectl attach` on the mock: the kubelet API's streams ([`ExecIo`])
//! carried to the simulator engine's executor ([`ExecStreams`]) and back. The executor does
//! the work, as the kubelet's runtime would: exec joins the container's sandbox (a timer
//! container gets one on its first exec), with CRI's semantics (the command outlives a
//! client that goes away; what it starts in the background lives until the container
//! stops); attach joins a container's real main process.
//!
//! A write to the client that fails means it is gone: its output is dropped from then on,
//! which the executor sees as the client going away.

use bytes::Bytes;
use cloudsim::engine::executor::{ExecStreams, ExecutorError, Output};
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use vk_core::provider::{ExecIo, ExecOutcome};

/// Chunks in flight each way.
const CHANNEL: usize = 16;

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Runs `work` with the engine's side of `io`; what it returned.
pub(crate) async fn bridge<F>(
    io: ExecIo,
    work: impl FnOnce(ExecStreams) -> F,
) -> Result<i32, ExecutorError>
where
    F: Future<Output = Result<i32, ExecutorError>>,
{
    let ExecIo {
        stdin,
        stdout,
        stderr,
        tty,
        resize,
    } = io;
    let has_stdin = stdin.is_some();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(CHANNEL);
    let feed_stdin = async move {
        let Some(mut from) = stdin else { return };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if stdin_tx
                        .send(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let (size_tx, size_rx) = mpsc::channel(CHANNEL);
    let feed_sizes = async move {
        let Some(mut sizes) = resize else { return };
        while let Some(size) = sizes.recv().await {
            if size_tx.send((size.width, size.height)).await.is_err() {
                return;
            }
        }
    };
    let (output_tx, output_rx) = mpsc::channel(CHANNEL);
    let streams = ExecStreams {
        stdin: has_stdin.then_some(stdin_rx),
        output: output_tx,
        tty,
        resize: size_rx,
    };
    let copy_out = copy_output(output_rx, stdout, stderr, tty);
    let run = work(streams);
    tokio::pin!(run);
    // The client's stdin and sizes flow while the command runs; once they end the command
    // still runs to its end.
    let side = async {
        tokio::join!(feed_stdin, feed_sizes);
    };
    let finished = async {
        tokio::select! {
            result = &mut run => result,
            () = side => run.await,
        }
    };
    tokio::pin!(finished, copy_out);
    tokio::select! {
        result = &mut finished => {
            // What the command wrote before it ended still goes out.
            copy_out.await;
            result
        }
        gone = &mut copy_out => {
            if gone {
                // As under CRI: the call ends, the command goes on (the executor does not
                // kill it when its side of the streams is dropped).
                return Err(ExecutorError::ClientGone);
            }
            finished.await
        }
    }
}

/// An exec's result in the kubelet's terms: an exit code, or why it did not run.
pub(crate) fn outcome(result: Result<i32, ExecutorError>) -> ExecOutcome {
    match result {
        Ok(code) => ExecOutcome::Exited(code),
        Err(ExecutorError::ClientGone) => ExecOutcome::Error("client went away".into()),
        Err(ExecutorError::ProgramNotFound(why)) => ExecOutcome::Error(why),
        Err(err) => ExecOutcome::Error(format!("exec: {err}")),
    }
}

/// Writes the command's output to the client's streams until the executor is done with them
/// (`false`) or a write fails (`true`: the client is gone).
async fn copy_output(
    mut from: mpsc::Receiver<(Output, Bytes)>,
    mut stdout: Option<Writer>,
    mut stderr: Option<Writer>,
    tty: bool,
) -> bool {
    while let Some((which, chunk)) = from.recv().await {
        let to = match which {
            Output::Stderr if !tty => stderr.as_mut(),
            _ => stdout.as_mut(),
        };
        let Some(to) = to else { continue };
        let written = async {
            to.write_all(&chunk).await?;
            to.flush().await
        };
        if written.await.is_err() {
            // Dropping the receiver tells the executor the client is gone.
            return true;
        }
    }
    for writer in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
        let _ = writer.shutdown().await;
    }
    false
}
