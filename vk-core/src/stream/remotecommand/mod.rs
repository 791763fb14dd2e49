//! The server side of the Kubernetes remotecommand protocol (exec and attach) over SPDY.
//!
//! The client opens one SPDY stream per channel, naming it in the `streamType` header:
//! `error` (always), `stdin`, `stdout`, `stderr` as the request asked, and `resize` with a
//! TTY from v3 on. The server waits for all of them, runs the command, and reports how it
//! ended on the error stream:
//!
//! | protocol | error stream |
//! | --- | --- |
//! | `channel.k8s.io` (v1) | reset as soon as the streams are there (kubelet 1.0's bug, kept by every kubelet since); stdin's server side is closed at once too |
//! | `v2`, `v3` | the failure message as plain text; nothing on success |
//! | `v4`, `v5` | a `metav1.Status` as JSON, with the exit code as cause `ExitCode` |
//!
//! v3 adds the resize stream (JSON `{"Width":..,"Height":..}` values). v5 adds a CLOSE signal
//! for stdin that only exists on WebSocket: over SPDY it is v4 (the kubelet maps v5 to its v4
//! handler, and client-go's SPDY v5 executor is its v4 one), since SPDY half-closes stdin with
//! FIN already.

pub(crate) mod resize;
pub(crate) mod status;

#[cfg(test)]
mod tests;

pub use crate::provider::{ExecIo, ExecOutcome, TermSize};

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::spdy::{RecvStream, SendStream, SpdyConnection, SpdyStream, frame::RstStatus};

/// The header naming a stream's channel.
pub const STREAM_TYPE_HEADER: &str = "streamtype";

/// What the kubelet waits for before it gives up on the client's streams.
pub const DEFAULT_STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Subprotocols for exec and attach, newest first.
pub const SUPPORTED_PROTOCOLS: &[&str] = &[
    ProtocolVersion::V5.name(),
    ProtocolVersion::V4.name(),
    ProtocolVersion::V3.name(),
    ProtocolVersion::V2.name(),
    ProtocolVersion::V1.name(),
];

/// The port-forward subprotocol (its stream protocol is not implemented here).
pub const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";

/// A version of the remotecommand subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProtocolVersion {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl ProtocolVersion {
    /// The `X-Stream-Protocol-Version` token. An empty one (a client that did not negotiate)
    /// means v1, as in the kubelet.
    pub fn from_name(name: &str) -> Option<ProtocolVersion> {
        Some(match name {
            "v5.channel.k8s.io" => ProtocolVersion::V5,
            "v4.channel.k8s.io" => ProtocolVersion::V4,
            "v3.channel.k8s.io" => ProtocolVersion::V3,
            "v2.channel.k8s.io" => ProtocolVersion::V2,
            "channel.k8s.io" | "" => ProtocolVersion::V1,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            ProtocolVersion::V1 => "channel.k8s.io",
            ProtocolVersion::V2 => "v2.channel.k8s.io",
            ProtocolVersion::V3 => "v3.channel.k8s.io",
            ProtocolVersion::V4 => "v4.channel.k8s.io",
            ProtocolVersion::V5 => "v5.channel.k8s.io",
        }
    }

    /// v3 and later carry terminal sizes on a resize stream.
    pub fn supports_resize(self) -> bool {
        self >= ProtocolVersion::V3
    }

    /// v4 and later report the exit status as a JSON `metav1.Status`.
    pub fn reports_status_json(self) -> bool {
        self >= ProtocolVersion::V4
    }
}

/// Which streams the request asked for (the kubelet's `input`, `output`, `error` and `tty`
/// query parameters, each on when `1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The request asked for no stream at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("you must specify at least 1 of stdin, stdout, stderr")]
pub struct NoStreamsRequested;

impl StreamOptions {
    /// As the kubelet reads them: a TTY merges stderr into stdout, so `error` is dropped with
    /// `tty`; at least one of the three streams must be on.
    pub fn new(
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> Result<StreamOptions, NoStreamsRequested> {
        let stderr = stderr && !tty;
        if !stdin && !stdout && !stderr {
            return Err(NoStreamsRequested);
        }
        Ok(StreamOptions {
            stdin,
            stdout,
            stderr,
            tty,
        })
    }

    /// From a kubelet exec/attach query string (`command=ls&input=1&output=1&tty=1`).
    pub fn from_query(query: &str) -> Result<StreamOptions, NoStreamsRequested> {
        let on = |name: &str| {
            // Go's FormValue takes a parameter's first value.
            query
                .split('&')
                .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
                .find(|(k, _)| *k == name)
                .is_some_and(|(_, v)| v == "1")
        };
        StreamOptions::new(on("input"), on("output"), on("error"), on("tty"))
    }

    /// Streams the client opens: the error stream, the requested ones, and resize with a TTY
    /// when the protocol has it.
    fn expected_streams(&self, version: ProtocolVersion) -> usize {
        1 + usize::from(self.stdin)
            + usize::from(self.stdout)
            + usize::from(self.stderr)
            + usize::from(self.tty && version.supports_resize())
    }
}

/// What a session does, which decides how a failure is worded on the error stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Operation {
    /// Runs a command (`kubectl exec`).
    #[default]
    Exec,
    /// Joins the container's main process (`kubectl attach`).
    Attach,
}

/// Runs a command (exec) or joins a running process (attach) with the client's streams.
/// Implemented by the provider side; all Kubernetes semantics stay here.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    async fn execute(&self, io: ExecIo) -> ExecOutcome;
}

/// Why a remotecommand session failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteCommandError {
    #[error("unsupported remotecommand protocol {0:?}")]
    UnknownProtocol(String),
    #[error("timed out waiting for client to create streams")]
    StreamCreationTimeout,
    #[error("connection closed before the client created its streams")]
    ConnectionClosed,
    #[error("writing the exit status: {0}")]
    Io(#[from] io::Error),
}

/// An exec or attach whose streams the client has opened.
pub struct RemoteCommandSession {
    conn: SpdyConnection,
    version: ProtocolVersion,
    operation: Operation,
    io: Option<ExecIo>,
    error: Option<SendStream>,
    /// Write halves of streams only the client writes to (stdin, resize): closing them early
    /// would tell client-go the session is over, so they stay open until `finish`.
    held: Vec<SendStream>,
    resize_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RemoteCommandSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCommandSession")
            .field("version", &self.version)
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct ClientStreams {
    error: Option<SpdyStream>,
    stdin: Option<SpdyStream>,
    stdout: Option<SpdyStream>,
    stderr: Option<SpdyStream>,
    resize: Option<SpdyStream>,
}

impl RemoteCommandSession {
    /// Waits (up to `creation_timeout`) for the client's streams on a freshly upgraded
    /// connection; `protocol` is the negotiated subprotocol.
    pub async fn accept(
        mut conn: SpdyConnection,
        protocol: &str,
        opts: StreamOptions,
        creation_timeout: Duration,
    ) -> Result<RemoteCommandSession, RemoteCommandError> {
        let version = ProtocolVersion::from_name(protocol)
            .ok_or_else(|| RemoteCommandError::UnknownProtocol(protocol.to_owned()))?;
        let expected = opts.expected_streams(version);
        let deadline = tokio::time::Instant::now() + creation_timeout;
        let mut streams = ClientStreams::default();
        // Like the kubelet, count every stream the client opens, whatever its type.
        for _ in 0..expected {
            let stream = tokio::time::timeout_at(deadline, conn.accept())
                .await
                .map_err(|_| RemoteCommandError::StreamCreationTimeout)?
                .ok_or(RemoteCommandError::ConnectionClosed)?;
            let kind = stream.headers().get(STREAM_TYPE_HEADER).unwrap_or_default();
            let slot = match kind {
                "error" => &mut streams.error,
                "stdin" => &mut streams.stdin,
                "stdout" => &mut streams.stdout,
                "stderr" => &mut streams.stderr,
                "resize" if version.supports_resize() => &mut streams.resize,
                other => {
                    tracing::warn!(stream_type = other, "unexpected remotecommand stream type");
                    continue;
                }
            };
            *slot = Some(stream);
        }
        Ok(RemoteCommandSession::assemble(conn, version, opts, streams))
    }

    fn assemble(
        conn: SpdyConnection,
        version: ProtocolVersion,
        opts: StreamOptions,
        streams: ClientStreams,
    ) -> RemoteCommandSession {
        let mut held = Vec::new();
        let error = streams.error.and_then(|s| {
            if version == ProtocolVersion::V1 {
                s.reset(RstStatus::CANCEL);
                None
            } else {
                Some(s.split().1)
            }
        });
        let stdin = streams.stdin.map(|s| {
            let (recv, send) = s.split();
            if version == ProtocolVersion::V1 {
                drop(send);
            } else {
                held.push(send);
            }
            Box::new(recv) as Box<dyn AsyncRead + Send + Unpin>
        });
        let writer = |s: SpdyStream| Box::new(s.split().1) as Box<dyn AsyncWrite + Send + Unpin>;
        let stdout = streams.stdout.map(writer);
        let stderr = streams.stderr.map(writer);
        let (resize, resize_task) = match streams.resize {
            Some(s) => {
                let (recv, send): (RecvStream, SendStream) = s.split();
                held.push(send);
                let (tx, rx) = mpsc::channel(8);
                (Some(rx), Some(tokio::spawn(resize::forward(recv, tx))))
            }
            None => (None, None),
        };
        RemoteCommandSession {
            conn,
            version,
            operation: Operation::Exec,
            io: Some(ExecIo {
                stdin,
                stdout,
                stderr,
                tty: opts.tty,
                resize,
            }),
            error,
            held,
            resize_task,
        }
    }

    pub fn protocol(&self) -> ProtocolVersion {
        self.version
    }

    /// Says what the session is for (exec unless told otherwise).
    pub fn with_operation(mut self, operation: Operation) -> RemoteCommandSession {
        self.operation = operation;
        self
    }

    /// The command's streams; the first call takes them, later calls get none.
    pub fn take_io(&mut self) -> ExecIo {
        self.io.take().unwrap_or_else(ExecIo::empty)
    }

    /// Resolves when the connection is over (the client closed it or went away).
    pub async fn closed(&mut self) {
        self.conn.closed().await;
    }

    /// Reports how the command ended, closes every stream and the session, and waits until
    /// the session is over.
    pub async fn finish(mut self, outcome: ExecOutcome) -> Result<(), RemoteCommandError> {
        // stdout/stderr end (FIN) before the status, as when the process closes them.
        drop(self.io.take());
        let mut result = Ok(());
        if let Some(mut error) = self.error.take() {
            if let Some(report) = status::report(self.version, self.operation, &outcome) {
                result = error.write_all(&report).await;
            }
            let _ = error.shutdown().await;
        }
        self.held.clear();
        if let Some(task) = self.resize_task.take() {
            task.abort();
        }
        self.conn.close();
        self.conn.closed().await;
        Ok(result?)
    }
}

/// Runs `executor` with the session's streams and reports how it ended.
pub async fn serve<E: Executor + ?Sized>(
    mut session: RemoteCommandSession,
    executor: &E,
) -> Result<(), RemoteCommandError> {
    let outcome = executor.execute(session.take_io()).await;
    session.finish(outcome).await
}
