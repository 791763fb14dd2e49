//! The client side of ACI's exec and attach sockets: [`connect`] opens the WebSocket the exec
//! (or attach) call handed out and sends its password as the first text message; [`run`]
//! drives the shell protocol of [`vk_core::provider::terminal_exec`] over it and returns the command's exit code;
//! [`attach`] copies a container's output to the client.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::Message;
use vk_core::provider::{ExecIo, ExecOutcome};

use crate::http::{Tls, redact_query};
use vk_core::provider::TermSize;
use vk_core::provider::terminal_exec::{self, TerminalInput, TerminalOutput};

/// A connected stream of either kind.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub type Socket = WebSocketStream<Box<dyn Io>>;

/// Open the socket and authenticate with its password.
pub async fn connect(
    uri: &str,
    password: &str,
    tls: &Tls,
    timeout: Duration,
) -> Result<Socket, String> {
    tokio::time::timeout(timeout, connect_inner(uri, password, tls))
        .await
        .map_err(|_| format!("connecting to the exec WebSocket timed out after {timeout:?}"))?
}

async fn connect_inner(uri: &str, password: &str, tls: &Tls) -> Result<Socket, String> {
    let shown = redact_query(uri);
    let bad = || format!("the exec WebSocket URI {shown:?} is not ws:// or wss://");
    let parsed: hyper::Uri = uri.parse().map_err(|_| bad())?;
    let secure = match parsed.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad()),
    };
    let host = parsed
        .host()
        .ok_or_else(bad)?
        .trim_matches(['[', ']'])
        .to_string();
    let port = parsed.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if secure {
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| bad())?;
        let tls = tokio_rustls::TlsConnector::from(tls.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS to {host}:{port}: {e}"))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let request = uri.into_client_request().map_err(|_| bad())?;
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("the exec WebSocket was refused: {e}"))?;
    ws.send(Message::Text(password.to_string().into()))
        .await
        .map_err(|e| format!("sending the exec password: {e}"))?;
    Ok(ws)
}

fn bytes_of(message: Message) -> Option<Vec<u8>> {
    match message {
        Message::Text(t) => Some(t.as_bytes().to_vec()),
        Message::Binary(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// What an image lacks when the protocol cannot start.
pub const NEEDS: &str = "exec on ACI runs the command through /bin/sh with stty, base64, mkfifo and mktemp (ACI's exec has no exit codes or stdin end of its own); the container's image lacks them";

/// Typing on ACI's socket: text when it is UTF-8, binary otherwise. ACI takes the terminal's
/// size with the exec call only: later sizes are dropped.
struct Typing(futures::stream::SplitSink<Socket, Message>);

#[async_trait::async_trait]
impl TerminalInput for Typing {
    async fn send(&mut self, data: Vec<u8>) -> Result<(), String> {
        let message = match String::from_utf8(data) {
            Ok(s) => Message::Text(s.into()),
            Err(e) => Message::Binary(e.into_bytes().into()),
        };
        self.0.send(message).await.map_err(|e| e.to_string())
    }

    async fn resize(&mut self, _size: TermSize) -> Result<(), String> {
        Ok(())
    }
}

struct Reading(futures::stream::SplitStream<Socket>);

#[async_trait::async_trait]
impl TerminalOutput for Reading {
    async fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.0.next().await? {
                Ok(m) => {
                    if let Some(data) = bytes_of(m) {
                        return Some(data);
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

/// Run `argv` in `dir` over a connected exec socket (of `/bin/sh`); the exit code, or why
/// there is none. `ready_timeout` bounds the wait for the shell's first answer.
pub async fn run(
    ws: Socket,
    argv: &[String],
    dir: Option<&str>,
    io: ExecIo,
    ready_timeout: Duration,
) -> ExecOutcome {
    let (sink, source) = ws.split();
    terminal_exec::run(
        Typing(sink),
        Reading(source),
        argv,
        dir,
        io,
        ready_timeout,
        NEEDS,
    )
    .await
}

/// Copy what the attach socket sends to the client's stdout until either side ends. ACI's
/// attach carries the container's output only: the client's stdin is not forwarded.
pub async fn attach(ws: Socket, io: ExecIo) -> ExecOutcome {
    let ExecIo { mut stdout, .. } = io;
    let (_sink, mut source) = ws.split();
    while let Some(Ok(m)) = source.next().await {
        let Some(data) = bytes_of(m) else { continue };
        if let Some(w) = stdout.as_mut()
            && let Err(e) = async {
                w.write_all(&data).await?;
                w.flush().await
            }
            .await
        {
            return ExecOutcome::Error(format!("client went away: {e}"));
        }
    }
    if let Some(w) = stdout.as_mut() {
        let _ = w.shutdown().await;
    }
    ExecOutcome::Exited(0)
}
