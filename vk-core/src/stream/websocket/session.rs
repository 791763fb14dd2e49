//! One exec/attach over an upgraded WebSocket: the provider's [`ExecIo`] on one side, the
//! channel messages on the other.
//!
//! Two tasks own the socket: the writer drains one bounded queue of messages (stdout,
//! stderr, the status, Close) and flushes once the queue is empty, so bursts of output go
//! out in few writes; the reader feeds stdin and resize through bounded queues (a provider
//! that does not read stdin slows the client down through TCP, as the kubelet's pipes do)
//! and answers pings (tungstenite does, while reading).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::{CancellationToken, PollSender};

use super::Subprotocol;
use super::channel::{self, ERROR, Incoming, RESIZE, STDERR, STDIN, STDOUT};
use crate::provider::{ExecIo, ExecOutcome};
use crate::stream::remotecommand::{Operation, StreamOptions, resize, status};

/// Messages from the client queued per input channel before the reader waits.
const INPUT_QUEUE: usize = 16;

/// Settings of one WebSocket session.
#[derive(Clone, Debug)]
pub struct WebSocketConfig {
    /// End the session after this long without a message in either direction (the
    /// kubelet's streaming idle timeout, 4 h by default).
    pub idle_timeout: Option<Duration>,
    /// After the status and the Close frame, how long to wait for the client to close first
    /// (closing with the client's last frames unread would reset the connection and could
    /// lose output still on its way).
    pub finish_timeout: Duration,
    /// Largest payload of one output message.
    pub max_output_message: usize,
    /// Output messages queued for the socket before stdout/stderr writers wait.
    pub send_queue: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            idle_timeout: Some(Duration::from_secs(4 * 3600)),
            finish_timeout: Duration::from_secs(15 * 60),
            max_output_message: 64 * 1024,
            send_queue: 32,
        }
    }
}

/// When a message last moved, in milliseconds since the session started.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Resolves once nothing has moved for `idle` (never without one).
    async fn idle(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let deadline = self.last() + idle;
            if deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// An exec or attach on an upgraded WebSocket.
pub struct WebSocketSession {
    protocol: Subprotocol,
    operation: Operation,
    io: Option<ExecIo>,
    out: Option<mpsc::Sender<Message>>,
    /// The client closed, went away, broke the protocol or idled out.
    peer_gone: CancellationToken,
    /// Input is no longer wanted: the reader drops what stdin and resize still bring.
    stop_input: CancellationToken,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    resize_task: Option<JoinHandle<()>>,
    finish_timeout: Duration,
}

impl std::fmt::Debug for WebSocketSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketSession")
            .field("protocol", &self.protocol)
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

impl WebSocketSession {
    /// Starts the session on `io`, a connection whose upgrade to WebSocket is done, with the
    /// streams `opts` asked for; sends the first (empty) message that tells the client it is
    /// connected.
    pub async fn start<S>(
        io: S,
        protocol: Subprotocol,
        opts: StreamOptions,
        config: WebSocketConfig,
    ) -> WebSocketSession
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let (sink, stream) = ws.split();
        let activity = Arc::new(Activity::new());
        let peer_gone = CancellationToken::new();
        let stop_input = CancellationToken::new();
        let (out, out_rx) = mpsc::channel(config.send_queue.max(1));
        let writer = tokio::spawn(write_loop(
            sink,
            out_rx,
            activity.clone(),
            peer_gone.clone(),
        ));
        let first = if opts.stdout {
            STDOUT
        } else if opts.stderr {
            STDERR
        } else {
            ERROR
        };
        let _ = out.send(channel::encode(protocol, first, &[])).await;

        let mut inputs = Inputs::default();
        let stdin = opts.stdin.then(|| {
            let (tx, rx) = mpsc::channel(INPUT_QUEUE);
            inputs.stdin = Some(tx);
            Box::new(ChannelReader::new(rx)) as Box<dyn AsyncRead + Send + Unpin>
        });
        let (resize, resize_task) = if opts.tty {
            let (tx, rx) = mpsc::channel(INPUT_QUEUE);
            inputs.resize = Some(tx);
            let (sizes_tx, sizes_rx) = mpsc::channel(8);
            let task = tokio::spawn(resize::forward(ChannelReader::new(rx), sizes_tx));
            (Some(sizes_rx), Some(task))
        } else {
            (None, None)
        };
        let reader = tokio::spawn(read_loop(
            stream,
            protocol,
            inputs,
            ReadState {
                activity,
                idle_timeout: config.idle_timeout,
                stop_input: stop_input.clone(),
                peer_gone: peer_gone.clone(),
            },
        ));
        let writer_for = |channel: u8| {
            Box::new(ChannelWriter {
                channel,
                protocol,
                tx: PollSender::new(out.clone()),
                max: config.max_output_message.max(1),
            }) as Box<dyn AsyncWrite + Send + Unpin>
        };
        let io = ExecIo {
            stdin,
            stdout: opts.stdout.then(|| writer_for(STDOUT)),
            stderr: opts.stderr.then(|| writer_for(STDERR)),
            tty: opts.tty,
            resize,
        };
        WebSocketSession {
            protocol,
            operation: Operation::Exec,
            io: Some(io),
            out: Some(out),
            peer_gone,
            stop_input,
            reader,
            writer,
            resize_task,
            finish_timeout: config.finish_timeout,
        }
    }

    pub fn protocol(&self) -> Subprotocol {
        self.protocol
    }

    /// Whether the status reports an exec (the default) or an attach.
    pub fn with_operation(mut self, operation: Operation) -> WebSocketSession {
        self.operation = operation;
        self
    }

    /// The command's streams; the first call takes them, later calls get none.
    pub fn take_io(&mut self) -> ExecIo {
        self.io.take().unwrap_or_else(ExecIo::empty)
    }

    /// Resolves when the client has closed or gone away (or idled out).
    pub async fn closed(&mut self) {
        self.peer_gone.cancelled().await;
    }

    /// Reports how the command ended on the error channel, sends Close after everything
    /// queued, and waits (up to the finish timeout) for the client to close.
    pub async fn finish(mut self, outcome: ExecOutcome) -> io::Result<()> {
        drop(self.io.take());
        self.stop_input.cancel();
        if let Some(task) = self.resize_task.take() {
            task.abort();
        }
        let mut result = Ok(());
        if let Some(out) = self.out.take() {
            if let Some(report) =
                status::encode(self.protocol.status_form(), self.operation, &outcome)
                && out
                    .send(channel::encode(self.protocol, ERROR, &report))
                    .await
                    .is_err()
            {
                result = Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let _ = out.send(Message::Close(Some(close))).await;
        }
        let _ = tokio::time::timeout(self.finish_timeout, self.peer_gone.cancelled()).await;
        result
    }
}

impl Drop for WebSocketSession {
    fn drop(&mut self) {
        self.stop_input.cancel();
        self.reader.abort();
        self.writer.abort();
        if let Some(task) = self.resize_task.take() {
            task.abort();
        }
    }
}

/// Sends queued messages, flushing whenever the queue runs empty.
async fn write_loop<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Message>,
    activity: Arc<Activity>,
    peer_gone: CancellationToken,
) where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next {
            if let Err(err) = sink.feed(message).await {
                tracing::debug!(%err, "websocket write failed");
                peer_gone.cancel();
                return;
            }
            next = rx.try_recv().ok();
        }
        if let Err(err) = sink.flush().await {
            tracing::debug!(%err, "websocket flush failed");
            peer_gone.cancel();
            return;
        }
        activity.touch();
    }
}

/// Where the reader puts the client's input; `None` drops it.
#[derive(Default)]
struct Inputs {
    stdin: Option<mpsc::Sender<Bytes>>,
    resize: Option<mpsc::Sender<Bytes>>,
}

struct ReadState {
    activity: Arc<Activity>,
    idle_timeout: Option<Duration>,
    stop_input: CancellationToken,
    peer_gone: CancellationToken,
}

/// Reads the client's messages until it closes, breaks the protocol or idles out.
async fn read_loop<S>(mut stream: S, protocol: Subprotocol, mut inputs: Inputs, state: ReadState)
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = state.activity.idle(state.idle_timeout) => {
                tracing::debug!("websocket session idle, closing");
                break;
            }
        };
        state.activity.touch();
        let payload = match next {
            Some(Ok(message @ (Message::Binary(_) | Message::Text(_)))) => message.into_data(),
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                tracing::debug!(%err, "websocket read failed");
                break;
            }
        };
        if state.stop_input.is_cancelled() {
            inputs = Inputs::default();
        }
        match channel::decode(protocol, payload) {
            Incoming::Data { channel, data } => {
                let tx = match channel {
                    STDIN => inputs.stdin.clone(),
                    RESIZE => inputs.resize.clone(),
                    _ => None,
                };
                let Some(tx) = tx.filter(|_| !data.is_empty()) else {
                    continue;
                };
                tokio::select! {
                    sent = tx.send(data) => if sent.is_err() {
                        // Nobody reads it any more.
                        match channel {
                            STDIN => inputs.stdin = None,
                            _ => inputs.resize = None,
                        }
                    },
                    () = state.stop_input.cancelled() => inputs = Inputs::default(),
                }
            }
            Incoming::CloseChannel(STDIN) => inputs.stdin = None,
            Incoming::CloseChannel(RESIZE) => inputs.resize = None,
            Incoming::CloseChannel(_) | Incoming::Skip => {}
            Incoming::Fatal(reason) => {
                tracing::debug!(reason, "websocket protocol error, closing");
                break;
            }
        }
    }
    state.peer_gone.cancel();
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client is gone")
}

/// stdout or stderr: each write becomes (up to `max` bytes of) one message.
struct ChannelWriter {
    channel: u8,
    protocol: Subprotocol,
    tx: PollSender<Message>,
    max: usize,
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if ready!(this.tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(broken_pipe()));
        }
        let n = buf.len().min(this.max);
        this.tx
            .send_item(channel::encode(this.protocol, this.channel, &buf[..n]))
            .map_err(|_| broken_pipe())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A server channel has no end of its own on the wire: the session's end closes it.
        self.get_mut().tx.close();
        Poll::Ready(Ok(()))
    }
}

/// stdin or resize: the client's messages as a byte stream, ending when the client closes
/// the channel (v5) or the session ends.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    pending: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            pending: Bytes::new(),
        }
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.pending.is_empty() {
            match ready!(this.rx.poll_recv(cx)) {
                Some(data) => this.pending = data,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}
