//! The session: a reader task that routes frames, a writer task that sends them, and the
//! handle the application accepts streams from.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use super::recv::{on_frame, reset_from_reader};
use super::state::{Outgoing, Shared};
use super::stream::SpdyStream;
use super::{CloseReason, SpdyConfig};
use crate::stream::spdy::codec::{FramedRead, FramedWrite, ReadError};
use crate::stream::spdy::frame::{Frame, FrameError, GoAwayStatus, RstStatus};

/// Why the writer stopped early.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("encoding a frame: {0}")]
    Encode(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Batches of frames are written together up to this size.
const WRITE_BATCH: usize = 64 * 1024;

/// A server-side SPDY/3.1 session over an upgraded connection.
///
/// The peer (the client, which made the connection) opens streams with odd ids; each is
/// answered with SYN_REPLY and handed out by [`SpdyConnection::accept`]. PINGs are echoed,
/// SETTINGS and WINDOW_UPDATE update the send windows, GOAWAY stops new streams.
///
/// Dropping the connection closes the session (GOAWAY): keep it while streams are in use.
#[derive(Debug)]
pub struct SpdyConnection {
    shared: Arc<Shared>,
    accept_rx: mpsc::Receiver<SpdyStream>,
    closed_rx: watch::Receiver<Option<CloseReason>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl SpdyConnection {
    /// Starts serving SPDY on `io` (an upgraded HTTP connection); spawns the I/O tasks, so it
    /// must be called within a tokio runtime.
    pub fn new<T>(io: T, config: SpdyConfig) -> SpdyConnection
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (closed_tx, closed_rx) = watch::channel(None);
        let (accept_tx, accept_rx) = mpsc::channel(config.max_concurrent_streams.max(1));
        let shared = Arc::new(Shared::new(config, out_tx, closed_tx));
        shared.touch();
        tokio::spawn(drive(io, shared.clone(), out_rx, accept_tx));
        SpdyConnection {
            shared,
            accept_rx,
            closed_rx,
        }
    }

    /// The next stream the peer opened, or `None` once the session is over.
    pub async fn accept(&mut self) -> Option<SpdyStream> {
        self.accept_rx.recv().await
    }

    /// Closes the session: GOAWAY, then queued frames go out and the write side closes.
    pub fn close(&self) {
        self.shared.close(CloseReason::Local, GoAwayStatus::OK);
    }

    /// Waits until the session is over, and says why.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.closed_rx.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(CloseReason::Local),
            Err(_) => CloseReason::Local,
        }
    }

    /// Why the session ended, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed_rx.borrow().clone()
    }
}

impl Drop for SpdyConnection {
    fn drop(&mut self) {
        self.close();
    }
}

async fn drive<T>(
    io: T,
    shared: Arc<Shared>,
    out_rx: mpsc::UnboundedReceiver<Outgoing>,
    accept_tx: mpsc::Sender<SpdyStream>,
) where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(io);
    let mut writer = tokio::spawn(write_loop(
        FramedWrite::new(write_half),
        out_rx,
        shared.clone(),
    ));
    let mut reader = FramedRead::new(read_half, shared.config.limits);
    let reason = read_loop(&mut reader, &shared, &accept_tx).await;
    drop(accept_tx);
    shared.mark_closed(reason.clone());
    tracing::debug!(%reason, "SPDY session closing");

    // Let the writer send what is queued (GOAWAY, final DATA) and keep reading until the peer
    // closes too: closing a socket with unread input resets it, and the peer could lose the
    // frames we just wrote.
    let peer_may_send = matches!(reason, CloseReason::Local | CloseReason::IdleTimeout);
    let drain = async {
        if peer_may_send {
            while let Ok(Some(_)) = reader.next_frame().await {}
        }
    };
    let lingered = tokio::time::timeout(shared.config.close_linger, async {
        let _ = tokio::join!(drain, &mut writer);
    })
    .await;
    if lingered.is_err() {
        tracing::debug!("SPDY session linger expired");
        shared.hard_stop.cancel();
        let _ = writer.await;
    }
    shared.signal_done(reason);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut io: FramedWrite<W>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let result: Result<(), WriteError> = async {
        loop {
            let first = tokio::select! {
                biased;
                _ = shared.hard_stop.cancelled() => return Ok(()),
                msg = rx.recv() => msg,
            };
            let Some(mut msg) = first else {
                return Ok(());
            };
            let (mut frames, mut data, mut shutdown) = (0, 0, false);
            loop {
                match msg {
                    Outgoing::Frame(frame) => {
                        frames += 1;
                        if let Frame::Data(d) = &frame {
                            data += d.payload.len();
                        }
                        io.buffer(&frame)?;
                    }
                    Outgoing::Shutdown => {
                        shutdown = true;
                        break;
                    }
                }
                if io.buffered() >= WRITE_BATCH {
                    break;
                }
                match rx.try_recv() {
                    Ok(next) => msg = next,
                    Err(_) => break,
                }
            }
            tokio::select! {
                biased;
                _ = shared.hard_stop.cancelled() => return Ok(()),
                r = io.flush() => r?,
            }
            shared.touch();
            shared.wrote(frames, data);
            if shutdown {
                tokio::select! {
                    biased;
                    _ = shared.hard_stop.cancelled() => {}
                    r = io.shutdown() => r?,
                }
                return Ok(());
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "SPDY write failed");
        let reason = CloseReason::Io(e.to_string());
        shared.close(reason.clone(), GoAwayStatus::INTERNAL_ERROR);
        shared.mark_closed(reason);
    }
}

/// Reads and routes frames until the session ends; returns why.
async fn read_loop<R: AsyncRead + Unpin>(
    reader: &mut FramedRead<R>,
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<SpdyStream>,
) -> CloseReason {
    loop {
        let idle_at = shared.idle_deadline();
        let next = tokio::select! {
            biased;
            _ = shared.closing.cancelled() => return shared.close_reason(),
            _ = sleep_until(idle_at) => {
                if shared.idle_deadline().is_some_and(|at| at <= std::time::Instant::now()) {
                    shared.reset_all(RstStatus::CANCEL);
                    shared.close(CloseReason::IdleTimeout, GoAwayStatus::OK);
                    return CloseReason::IdleTimeout;
                }
                continue;
            }
            next = reader.next_frame() => next,
        };
        let failure = match next {
            Ok(Some(frame)) => {
                shared.touch();
                match on_frame(shared, accept_tx, frame).await {
                    Ok(()) => continue,
                    Err(reason) => reason,
                }
            }
            Ok(None) => {
                shared.close(CloseReason::PeerClosed, GoAwayStatus::OK);
                return CloseReason::PeerClosed;
            }
            Err(ReadError::Frame(e)) => match e.stream_error() {
                Some((id, status)) => {
                    shared.touch();
                    tracing::debug!(error = %e, "SPDY stream error");
                    reset_from_reader(shared, id, status);
                    continue;
                }
                None => CloseReason::Protocol(e.to_string()),
            },
            Err(ReadError::TruncatedFrame) => {
                CloseReason::Protocol(ReadError::TruncatedFrame.to_string())
            }
            Err(ReadError::Io(e)) => {
                let reason = CloseReason::Io(e.to_string());
                shared.close(reason.clone(), GoAwayStatus::INTERNAL_ERROR);
                return reason;
            }
        };
        tracing::debug!(reason = %failure, "SPDY session error");
        shared.close(failure.clone(), GoAwayStatus::PROTOCOL_ERROR);
        return failure;
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
