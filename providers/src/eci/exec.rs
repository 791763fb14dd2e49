//! Interactive exec: `ExecContainerCommand` with `Sync=false` answers with a `WebSocketUri`
//! (`wss://<host>/exec/?s=<token>` on the service, `ws://<mock cloud>/exec/?s=<token>` on the
//! mock cloud); the caller connects to it and the command's streams travel over that socket.
//!
//! Alibaba does not document the socket's framing, so the mock cloud and this client use a
//! documented one: Kubernetes' remotecommand channel protocol, WebSocket subprotocol
//! `v5.channel.k8s.io`. Every message is binary, its first byte the channel:
//!
//! | byte | direction | payload |
//! | --- | --- | --- |
//! | 0 | client → server | stdin bytes |
//! | 1 | server → client | stdout bytes |
//! | 2 | server → client | stderr bytes (with `TTY=true` everything comes on 1) |
//! | 3 | server → client | the end: one JSON `Status`, then a Close frame |
//! | 4 | client → server | terminal size, JSON `{"Width":80,"Height":24}` |
//! | 255 | client → server | `[255, 0]`: stdin is closed (EOF) |
//!
//! The status is `{"status":"Success"}` for exit code 0,
//! `{"status":"Failure","reason":"NonZeroExitCode","message":"...","details":{"causes":
//! [{"reason":"ExitCode","message":"3"}]}}` for another exit code, and `{"status":"Failure",
//! "message":"..."}` without an exit code when the command could not run. A client that
//! closes the socket (or whose connection drops) has the command killed.
//!
//! The token in the URI is single-use and short-lived (30 s on the mock cloud): the URI is a
//! credential, and a replayed or late one is refused with HTTP 403 before any upgrade.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message};
use vk_core::provider::{ExecIo, ExecOutcome, TermSize};

/// The WebSocket subprotocol of the exec socket.
pub const SUBPROTOCOL: &str = "v5.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// The end of a command, as sent on channel 3.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStatus {
    /// `Success` or `Failure`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    #[serde(default)]
    pub causes: Vec<StatusCause>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

impl ExecStatus {
    /// The command ran and exited with `code`.
    pub fn exited(code: i32) -> Self {
        if code == 0 {
            return Self {
                status: "Success".into(),
                ..Default::default()
            };
        }
        Self {
            status: "Failure".into(),
            reason: "NonZeroExitCode".into(),
            message: format!("command terminated with non-zero exit code: {code}"),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: "ExitCode".into(),
                    message: code.to_string(),
                }],
            }),
        }
    }

    /// The command could not run (or its end is unknown).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            status: "Failure".into(),
            message: message.into(),
            ..Default::default()
        }
    }

    pub fn outcome(&self) -> ExecOutcome {
        if self.status == "Success" {
            return ExecOutcome::Exited(0);
        }
        let code = self
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .find(|c| c.reason == "ExitCode")
            .and_then(|c| c.message.trim().parse().ok());
        match code {
            Some(code) => ExecOutcome::Exited(code),
            None if self.message.is_empty() => {
                ExecOutcome::Error(format!("the command failed ({})", self.reason))
            }
            None => ExecOutcome::Error(self.message.clone()),
        }
    }
}

/// Channel 4's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resize {
    pub width: u16,
    pub height: u16,
}

/// One binary message: the channel byte, then the payload.
pub fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(payload.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(payload);
    Message::Binary(Bytes::from(bytes))
}

/// A connected stream of either kind.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the exec WebSocket URI {0:?} is not ws:// or wss://")]
    BadUri(String),
    #[error("connecting to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("the exec WebSocket was refused: {0}")]
    Handshake(String),
    #[error("connecting to the exec WebSocket timed out after {0:?}")]
    Timeout(Duration),
}

/// Open the socket ExecContainerCommand handed out, offering [`SUBPROTOCOL`].
pub async fn connect(
    uri: &str,
    timeout: Duration,
) -> Result<WebSocketStream<Box<dyn Io>>, ConnectError> {
    tokio::time::timeout(timeout, connect_inner(uri))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

async fn connect_inner(uri: &str) -> Result<WebSocketStream<Box<dyn Io>>, ConnectError> {
    let bad = || ConnectError::BadUri(redact(uri));
    let parsed: hyper::Uri = uri.parse().map_err(|_| bad())?;
    let tls = match parsed.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad()),
    };
    let host = parsed.host().ok_or_else(bad)?.to_string();
    let port = parsed.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = format!("{host}:{port}");
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| ConnectError::Connect {
            addr: addr.clone(),
            message: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if tls {
        use hyper_rustls::ConfigBuilderExt as _;
        let config = rustls::ClientConfig::builder()
            .with_native_roots()
            .map_err(|e| ConnectError::Connect {
                addr: addr.clone(),
                message: format!("loading the system's CA certificates: {e}"),
            })?
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']))
            .map_err(|_| bad())?
            .to_owned();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::Connect {
                addr: addr.clone(),
                message: format!("TLS: {e}"),
            })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut request = uri.into_client_request().map_err(|_| bad())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                ConnectError::Handshake(format!("HTTP {} {}", response.status(), body.trim()))
            }
            other => ConnectError::Handshake(other.to_string()),
        })?;
    Ok(ws)
}

/// The URI without its token, for messages.
fn redact(uri: &str) -> String {
    match uri.split_once('?') {
        Some((head, _)) => format!("{head}?<token>"),
        None => uri.to_string(),
    }
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Write one chunk to the client; `Err` when the client is gone.
async fn deliver(to: &mut Option<Writer>, data: &[u8]) -> std::io::Result<()> {
    if let Some(to) = to {
        to.write_all(data).await?;
        to.flush().await?;
    }
    Ok(())
}

/// Carry the client's streams over the socket both ways until the command's status arrives.
/// A client that goes away (a write to its stdout/stderr fails) closes the socket, which has
/// the command killed; so does dropping this future (the socket closes with it).
pub async fn bridge(ws: WebSocketStream<Box<dyn Io>>, io: ExecIo) -> ExecOutcome {
    let ExecIo {
        stdin,
        mut stdout,
        mut stderr,
        tty,
        resize,
    } = io;
    let (mut sink, mut source) = ws.split();
    let (to_server, mut outgoing) = tokio::sync::mpsc::channel::<Message>(8);
    // stdin: chunks on channel 0, then [255, 0] at EOF.
    let feed_stdin = {
        let to_server = to_server.clone();
        async move {
            let Some(mut stdin) = stdin else { return };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to_server.send(frame(STDIN, &buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = to_server.send(frame(CLOSE, &[STDIN])).await;
        }
    };
    let feed_resize = {
        let to_server = to_server.clone();
        async move {
            let Some(mut sizes) = resize else { return };
            while let Some(TermSize { width, height }) = sizes.recv().await {
                let json = serde_json::to_vec(&Resize { width, height }).unwrap_or_default();
                if to_server.send(frame(RESIZE, &json)).await.is_err() {
                    return;
                }
            }
        }
    };
    drop(to_server);
    let send_all = async move {
        while let Some(message) = outgoing.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        sink
    };
    let senders = async move {
        let ((), (), sink) = tokio::join!(feed_stdin, feed_resize, send_all);
        sink
    };
    // The sink comes back only once stdin and resizes are done; until then it is theirs.
    let senders = tokio::spawn(senders);
    let abort = senders.abort_handle();
    let _abort_on_drop = AbortOnDrop(abort);

    let mut status: Option<ExecStatus> = None;
    let outcome = loop {
        let message = match source.next().await {
            None => break None,
            Some(Err(e)) => {
                break Some(ExecOutcome::Error(format!(
                    "the exec WebSocket failed: {e}"
                )));
            }
            Some(Ok(m)) => m,
        };
        let data = match message {
            Message::Binary(data) => data,
            Message::Close(_) => break None,
            _ => continue,
        };
        let Some((&channel, payload)) = data.split_first() else {
            continue;
        };
        let written = match channel {
            STDOUT => deliver(&mut stdout, payload).await,
            STDERR if tty => deliver(&mut stdout, payload).await,
            STDERR => deliver(&mut stderr, payload).await,
            STATUS => {
                status = Some(serde_json::from_slice(payload).unwrap_or_else(|e| {
                    ExecStatus::failed(format!("an unreadable exec status: {e}"))
                }));
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "exec client went away; closing the exec WebSocket");
            break Some(ExecOutcome::Error(format!("client went away: {e}")));
        }
    };
    // Close the socket: the server kills a command that is still running.
    senders.abort();
    drop(source);
    for writer in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
        let _ = writer.shutdown().await;
    }
    if let Some(outcome) = outcome {
        return outcome;
    }
    match status {
        Some(status) => status.outcome(),
        None => ExecOutcome::Error(
            "the exec WebSocket closed before the command's status arrived".into(),
        ),
    }
}

/// The normal close the server sends after the status.
pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_exit_codes() {
        assert_eq!(ExecStatus::exited(0).outcome(), ExecOutcome::Exited(0));
        let three = ExecStatus::exited(3);
        let json = serde_json::to_string(&three).unwrap();
        assert!(
            json.contains(r#""reason":"ExitCode","message":"3""#),
            "{json}"
        );
        let back: ExecStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back.outcome(), ExecOutcome::Exited(3));
        assert_eq!(
            ExecStatus::failed("no such container").outcome(),
            ExecOutcome::Error("no such container".into())
        );
        assert_eq!(
            serde_json::to_string(&ExecStatus::exited(0)).unwrap(),
            r#"{"status":"Success"}"#
        );
        let resize = serde_json::to_string(&Resize {
            width: 80,
            height: 24,
        })
        .unwrap();
        assert_eq!(resize, r#"{"Width":80,"Height":24}"#);
    }

    #[test]
    fn frames_lead_with_their_channel() {
        assert_eq!(
            frame(STDOUT, b"hi"),
            Message::Binary(Bytes::from_static(b"\x01hi"))
        );
        assert_eq!(
            frame(CLOSE, &[STDIN]),
            Message::Binary(Bytes::from_static(b"\xff\x00"))
        );
        assert_eq!(
            redact("ws://h:1/exec/?s=secret"),
            "ws://h:1/exec/?<token>".to_string()
        );
    }
}
