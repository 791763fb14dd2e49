//! The client side of ACI's exec and attach sockets: [`connect`] opens the WebSocket the exec
//! (or attach) call handed out and sends its password as the first text message; [`run`]
//! drives the protocol of [`crate::exec_script`] over it and returns the command's exit code;
//! [`attach`] copies a container's output to the client.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::Message;
use vk_core::provider::{ExecIo, ExecOutcome};

use crate::exec_script::{Event, Markers, Parser, STDIN_EOF, stdin_line};
use crate::http::{Tls, redact_query};

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

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

async fn deliver(to: &mut Option<Writer>, data: &[u8]) -> std::io::Result<()> {
    if let Some(to) = to {
        to.write_all(data).await?;
        to.flush().await?;
    }
    Ok(())
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

/// Run `argv` in `dir` over a connected exec socket (of `/bin/sh`); the exit code, or why
/// there is none. `ready_timeout` bounds the wait for the shell's first answer.
pub async fn run(
    ws: Socket,
    argv: &[String],
    dir: Option<&str>,
    io: ExecIo,
    ready_timeout: Duration,
) -> ExecOutcome {
    let ExecIo {
        stdin,
        mut stdout,
        mut stderr,
        tty,
        resize: _,
    } = io;
    let markers = Markers::random();
    let mut parser = Parser::new(&markers);
    let (mut sink, mut source) = ws.split();
    if sink
        .send(Message::Text(markers.line1().into()))
        .await
        .is_err()
    {
        return ExecOutcome::Error("the exec WebSocket closed at once".into());
    }
    // The handshake: Ready, then Begin after line 2.
    let deadline = tokio::time::Instant::now() + ready_timeout;
    let mut seen = Vec::new();
    let mut begun = false;
    // What came in the same message after Begin: the command's first output.
    let mut early = Vec::new();
    while !begun {
        let next = match tokio::time::timeout_at(deadline, source.next()).await {
            Err(_) => {
                let said = String::from_utf8_lossy(&seen)
                    .chars()
                    .rev()
                    .take(200)
                    .collect::<String>();
                let said: String = said.chars().rev().collect();
                return ExecOutcome::Error(format!(
                    "{NEEDS} (no answer from the shell within {ready_timeout:?}; it printed: {:?})",
                    said.trim()
                ));
            }
            Ok(None) | Ok(Some(Err(_))) => {
                return ExecOutcome::Error(format!(
                    "{NEEDS} (the session ended before the shell answered)"
                ));
            }
            Ok(Some(Ok(m))) => m,
        };
        let Some(data) = bytes_of(next) else { continue };
        seen.extend_from_slice(&data);
        for event in parser.feed(&data) {
            match event {
                Event::Ready
                    if sink
                        .send(Message::Text(markers.line2(argv, tty, dir).into()))
                        .await
                        .is_err() =>
                {
                    return ExecOutcome::Error("the exec WebSocket closed".into());
                }
                Event::NoTools => return ExecOutcome::Error(NEEDS.into()),
                Event::Begin => begun = true,
                other if begun => early.push(other),
                _ => {}
            }
        }
    }
    // stdin: base64 lines and the EOF line, or (TTY) the keystrokes as they are.
    let (to_server, mut outgoing) = tokio::sync::mpsc::channel::<Message>(16);
    let feed = async move {
        if let Some(mut stdin) = stdin {
            let mut buf = vec![0u8; 3 * 1024];
            loop {
                let n = match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let message = if tty {
                    match std::str::from_utf8(&buf[..n]) {
                        Ok(s) => Message::Text(s.to_string().into()),
                        Err(_) => Message::Binary(buf[..n].to_vec().into()),
                    }
                } else {
                    Message::Text(stdin_line(&buf[..n]).into())
                };
                if to_server.send(message).await.is_err() {
                    return;
                }
            }
        }
        if !tty {
            let _ = to_server.send(Message::Text(STDIN_EOF.into())).await;
        }
        // Keep the channel open: the socket closes with the session, not with stdin.
        std::future::pending::<()>().await
    };
    let send_all = async move {
        while let Some(m) = outgoing.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    };
    let senders = tokio::spawn(async move {
        tokio::join!(feed, send_all);
    });
    let _abort = AbortOnDrop(senders.abort_handle());
    let mut outcome = None;
    'read: while outcome.is_none() {
        let (events, ended) = if !early.is_empty() {
            (std::mem::take(&mut early), false)
        } else {
            match source.next().await {
                None | Some(Err(_)) => (parser.finish(), true),
                Some(Ok(m)) => match bytes_of(m) {
                    Some(data) => (parser.feed(&data), false),
                    None => continue,
                },
            }
        };
        for event in events {
            let written = match event {
                Event::Stdout(b) => deliver(&mut stdout, &b).await,
                Event::Stderr(b) if stderr.is_some() => deliver(&mut stderr, &b).await,
                Event::Stderr(b) => deliver(&mut stdout, &b).await,
                Event::Exit(code) => {
                    outcome = Some(ExecOutcome::Exited(code));
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = written {
                outcome = Some(ExecOutcome::Error(format!("client went away: {e}")));
                break 'read;
            }
        }
        if ended && outcome.is_none() {
            outcome = Some(ExecOutcome::Error(
                "the exec session ended before the command's exit code arrived".into(),
            ));
        }
    }
    senders.abort();
    for writer in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
        let _ = writer.shutdown().await;
    }
    outcome.unwrap_or_else(|| ExecOutcome::Error("the exec session ended".into()))
}

/// Copy what the attach socket sends to the client's stdout until either side ends. ACI's
/// attach carries the container's output only: the client's stdin is not forwarded.
pub async fn attach(ws: Socket, io: ExecIo) -> ExecOutcome {
    let ExecIo { mut stdout, .. } = io;
    let (_sink, mut source) = ws.split();
    while let Some(Ok(m)) = source.next().await {
        let Some(data) = bytes_of(m) else { continue };
        if let Err(e) = deliver(&mut stdout, &data).await {
            return ExecOutcome::Error(format!("client went away: {e}"));
        }
    }
    if let Some(w) = stdout.as_mut() {
        let _ = w.shutdown().await;
    }
    ExecOutcome::Exited(0)
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
