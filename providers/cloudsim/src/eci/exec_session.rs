//! Interactive exec on the mock cloud. `ExecContainerCommand` with `Sync=false` checks the
//! container, files a pending session under a random token and answers
//! `WebSocketUri = ws://<host>/exec/?s=<token>`, the shape the service uses. The token is
//! single-use and expires after `exec_token_ttl_ms` (30 s by default): connecting takes it,
//! and a replayed, unknown or late token is refused with HTTP 403 before any upgrade.
//!
//! On the socket (framing in [`eci::wire::exec`]: subprotocol `v5.channel.k8s.io`, channel
//! byte first) the executor runs the command with the session's streams: stdin from channel
//! 0 (closed by `[255, 0]`), stdout and stderr on channels 1 and 2, terminal sizes on 4, and
//! at the end one status on channel 3 carrying the exit code, then a normal Close. The
//! command is killed when the client closes the socket or drops the connection, and when the
//! group is deleted or restarted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rand::RngExt as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};
use tokio_util::sync::CancellationToken;
use vk_core::stream::websocket::handshake::{Handshake, Preference};

use super::error::ApiError;
use crate::engine::Engine;
use crate::engine::executor::{ExecStreams, Output};
use eci::wire::exec::{
    CLOSE, ExecStatus, RESIZE, Resize, STATUS, STDERR, STDIN, STDOUT, SUBPROTOCOL, frame,
    normal_close,
};

/// The socket's channel for a command's output.
fn channel(output: Output) -> u8 {
    match output {
        Output::Stdout => STDOUT,
        Output::Stderr => STDERR,
    }
}

/// The path of the WebSocket URIs handed out.
pub const EXEC_PATH: &str = "/exec/";

/// Stdin the command has not read yet; past this the socket is not read until it has.
const STDIN_BUFFER: usize = 1 << 20;

/// What an `ExecContainerCommand` call asked for, until its socket connects.
#[derive(Clone, Debug)]
pub struct PendingExec {
    pub group_id: String,
    pub container: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
}

/// Pending sessions by token.
#[derive(Default)]
pub struct ExecSessions {
    pending: Mutex<HashMap<String, (PendingExec, Instant)>>,
}

impl ExecSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (PendingExec, Instant)>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// File a session; its token (32 random alphanumerics) is good once, for `ttl`.
    pub fn issue(&self, exec: PendingExec, ttl: Duration) -> String {
        let token: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let now = Instant::now();
        let mut pending = self.lock();
        pending.retain(|_, (_, expires)| *expires > now);
        pending.insert(token.clone(), (exec, now + ttl));
        token
    }

    /// Take a session: `None` if the token is unknown, used or expired.
    pub fn take(&self, token: &str) -> Option<PendingExec> {
        let (exec, expires) = self.lock().remove(token)?;
        (expires > Instant::now()).then_some(exec)
    }

    /// Sessions not connected yet (expired ones included until the next issue).
    pub fn pending(&self) -> usize {
        self.lock().len()
    }
}

type Body = Full<Bytes>;

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Refusal<'a> {
        code: &'a str,
        message: &'a str,
    }
    let body = serde_json::to_string(&Refusal { code, message }).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
}

/// `GET /exec/?s=TOKEN` with a WebSocket upgrade: check, take the session, answer 101 and run
/// it on the upgraded connection.
pub fn upgrade(
    engine: &Engine,
    sessions: &ExecSessions,
    stop: &CancellationToken,
    req: Request<Incoming>,
) -> Response<Body> {
    let handshake = match Handshake::from_request(&req) {
        Ok(handshake) => handshake,
        Err(e) => {
            return refuse(
                e.status(),
                "InvalidParameter",
                &format!("This address takes a WebSocket (RFC 6455, version 13) upgrade: {e}."),
            );
        }
    };
    let Ok(protocol) = handshake.negotiate(&[SUBPROTOCOL], Preference::Client) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            &format!("The exec socket speaks the subprotocol {SUBPROTOCOL} only."),
        );
    };
    let response = match handshake.response(protocol) {
        Ok(response) => response,
        Err(e) => return refuse(e.status(), "InternalError", &e.to_string()),
    };
    // Tokens are alphanumeric: no decoding needed.
    let token = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("s="))
        .unwrap_or_default()
        .to_string();
    let Some(exec) = sessions.take(&token) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "Forbidden.ExecSession",
            "The exec session is unknown, already used or expired; call ExecContainerCommand again.",
        );
    };
    let engine = engine.clone();
    let stop = stop.clone();
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                run(engine, exec, ws, stop).await;
            }
            Err(e) => tracing::warn!(error = %e, "the exec WebSocket upgrade failed"),
        }
    });
    response
}

/// One session: the command with the socket's streams, then its status and a Close.
async fn run<S>(engine: Engine, exec: PendingExec, ws: WebSocketStream<S>, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, source) = ws.split();
    let (spec, def, group_cancel) = match engine.exec_target(&exec.group_id, &exec.container) {
        Ok(target) => target,
        Err(e) => {
            let status = serde_json::to_vec(&ExecStatus::failed(ApiError::from(e).message))
                .unwrap_or_default();
            let _ = sink.send(frame(STATUS, &status)).await;
            let _ = sink.send(normal_close()).await;
            return;
        }
    };
    tracing::info!(group = %exec.group_id, container = %exec.container, command = ?exec.command, tty = exec.tty, "interactive exec started");
    let (stdin_tx, stdin_rx) = if exec.stdin {
        let (tx, rx) = mpsc::channel(16);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let (out_tx, mut out_rx) = mpsc::channel(16);
    let (resize_tx, resize_rx) = mpsc::channel(4);
    let client_gone = CancellationToken::new();
    let reader = tokio::spawn(read_client(
        source,
        stdin_tx,
        resize_tx,
        client_gone.clone(),
    ));
    let _reader = AbortOnDrop(reader.abort_handle());
    let streams = ExecStreams {
        stdin: stdin_rx,
        output: out_tx,
        tty: exec.tty,
        resize: resize_rx,
    };
    let executor = engine.executor().clone();
    let mut command = Box::pin(async move {
        executor
            .exec_interactive(&spec, &def, &exec.command, streams)
            .await
    });
    let result = loop {
        tokio::select! {
            result = &mut command => break Some(result.map_err(|e| e.to_string())),
            Some((output, data)) = out_rx.recv() => {
                if sink.send(frame(channel(output), &data)).await.is_err() {
                    break None;
                }
            }
            () = client_gone.cancelled() => break None,
            () = group_cancel.cancelled() => {
                break Some(Err("the container group was deleted or restarted".into()))
            }
            () = stop.cancelled() => break Some(Err("the mock cloud is stopping".into())),
        }
    };
    // Dropping the command kills it if it still runs.
    drop(command);
    let Some(result) = result else {
        tracing::info!(group = %exec.group_id, container = %exec.container, "exec client went away; command killed");
        return;
    };
    // What it wrote before it ended (its senders are gone now, so this ends).
    while let Some((output, data)) = out_rx.recv().await {
        if sink.send(frame(channel(output), &data)).await.is_err() {
            return;
        }
    }
    let status = match &result {
        Ok(code) => ExecStatus::exited(*code),
        Err(e) => ExecStatus::failed(e.clone()),
    };
    tracing::info!(group = %exec.group_id, container = %exec.container, ?result, "interactive exec ended");
    let status = serde_json::to_vec(&status).unwrap_or_default();
    if sink.send(frame(STATUS, &status)).await.is_ok() {
        let _ = sink.send(normal_close()).await;
        // Give the client a moment to answer the Close, so it is not cut off mid-read.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while !reader.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

/// Read the client's messages: stdin (buffered up to [`STDIN_BUFFER`] while the command does
/// not read it), stdin's close, terminal sizes. Cancels `gone` when the client closes or the
/// connection drops.
async fn read_client<S>(
    mut source: futures::stream::SplitStream<WebSocketStream<S>>,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    resize: mpsc::Sender<(u16, u16)>,
    gone: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    let mut queued = 0usize;
    let mut close_after_queue = false;
    loop {
        let can_read = queued < STDIN_BUFFER;
        let deliver = {
            let tx = if queue.is_empty() {
                None
            } else {
                stdin.clone()
            };
            async move {
                match tx {
                    Some(tx) => tx.reserve_owned().await.ok(),
                    None => std::future::pending().await,
                }
            }
        };
        tokio::select! {
            permit = deliver => {
                match permit {
                    Some(permit) => {
                        if let Some(chunk) = queue.pop_front() {
                            queued -= chunk.len();
                            permit.send(chunk);
                        }
                    }
                    // The command closed its stdin: the rest is dropped.
                    None => {
                        stdin = None;
                        queue.clear();
                        queued = 0;
                    }
                }
                if queue.is_empty() && close_after_queue {
                    stdin = None;
                }
            }
            message = source.next(), if can_read => {
                let data = match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Binary(data))) => data,
                    Some(Ok(_)) => continue,
                };
                match data.split_first() {
                    Some((&STDIN, chunk)) if stdin.is_some() && !chunk.is_empty() && !close_after_queue => {
                        queued += chunk.len();
                        queue.push_back(Bytes::copy_from_slice(chunk));
                    }
                    Some((&CLOSE, rest)) if rest.first() == Some(&STDIN) => {
                        if queue.is_empty() {
                            stdin = None;
                        } else {
                            close_after_queue = true;
                        }
                    }
                    Some((&RESIZE, json)) => {
                        if let Ok(Resize { width, height }) = serde_json::from_slice(json) {
                            let _ = resize.try_send((width, height));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    gone.cancel();
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
