//! The client side of interactive exec: `ExecContainerCommand` with `Sync=false` answers with a
//! `WebSocketUri`; [`connect`] opens it and [`bridge`] carries the client's streams over it
//! (framing and status in [`crate::wire::exec`]).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use vk_core::provider::{ExecIo, ExecOutcome, TermSize};

use crate::wire::exec::{
    CLOSE, ExecStatus, RESIZE, Resize, STATUS, STDERR, STDIN, STDOUT, SUBPROTOCOL, frame,
};

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

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

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
