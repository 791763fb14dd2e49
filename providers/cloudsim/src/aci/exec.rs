//! ACI's exec and attach sockets. `…/exec` and `…/attach` file a session under a random
//! token and answer `webSocketUri = wss://HOST/aci/exec/TOKEN` with a password. The client
//! connects (once, within `exec_ttl_ms`) and sends the password as its first text message;
//! a wrong or missing password closes the socket (policy violation). Then the socket is one
//! terminal both ways, as on ACI: exec runs its single program on a terminal, the client's
//! messages (text or binary) are its input and its output comes back as text messages; when
//! it ends the socket closes normally, with no exit code and no separate stderr. Attach
//! streams the container's output (its log, followed) and ignores input.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use rand::RngExt as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::engine::executor::ExecStreams;
use crate::ws_opening::first_data_frame;

/// The path prefix of the socket URIs handed out.
pub const EXEC_PREFIX: &str = "/aci/exec/";

/// What a socket does once connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// Run this program (one argv element: ACI runs a single program without arguments).
    Exec {
        program: String,
        rows: u16,
        cols: u16,
    },
    Attach,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub group_id: String,
    pub container: String,
    pub password: String,
    pub kind: SessionKind,
}

#[derive(Default)]
pub struct ExecSessions {
    pending: Mutex<HashMap<String, (Session, Instant)>>,
}

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

impl ExecSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Session, Instant)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// File a session: its token and password.
    pub fn issue(
        &self,
        group_id: &str,
        container: &str,
        kind: SessionKind,
        ttl: Duration,
    ) -> (String, String) {
        let token = random(32);
        let password = random(24);
        let now = Instant::now();
        let mut pending = self.lock();
        pending.retain(|_, (_, expires)| *expires > now);
        let session = Session {
            group_id: group_id.into(),
            container: container.into(),
            password: password.clone(),
            kind,
        };
        pending.insert(token.clone(), (session, now + ttl));
        (token, password)
    }

    /// Take a session: `None` if unknown, used or expired.
    pub fn take(&self, token: &str) -> Option<Session> {
        let (session, expires) = self.lock().remove(token)?;
        (expires > Instant::now()).then_some(session)
    }

    pub fn pending(&self) -> usize {
        self.lock().len()
    }
}

/// How long the client has to send the password.
const PASSWORD_WAIT: Duration = Duration::from_secs(30);

/// Run a connected session.
pub async fn run<S>(
    engine: Engine,
    session: Session,
    ws: WebSocketStream<S>,
    stop: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let first = first_data_frame(&mut source, Instant::now() + PASSWORD_WAIT).await;
    let authenticated =
        matches!(&first, Some(Message::Text(text)) if text.as_str() == session.password);
    if !authenticated {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Policy,
                reason: "authentication failed".into(),
            })))
            .await;
        return;
    }
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(16);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let gone = CancellationToken::new();
    let reader_gone = gone.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = source.next().await {
            let data = match message {
                Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            if stdin_tx.send(data).await.is_err() {
                break;
            }
        }
        reader_gone.cancel();
    });
    let work = {
        let engine = engine.clone();
        let session = session.clone();
        async move {
            match &session.kind {
                SessionKind::Exec {
                    program,
                    rows,
                    cols,
                } => exec(&engine, &session, program, (*cols, *rows), stdin_rx, out_tx).await,
                SessionKind::Attach => attach(&engine, &session, out_tx).await,
            }
        }
    };
    let mut work = Box::pin(work);
    let mut pending_utf8 = Vec::new();
    let mut done = false;
    loop {
        tokio::select! {
            message = out_rx.recv() => match message {
                Some(chunk) => {
                    if let Some(text) = utf8_chunk(&mut pending_utf8, &chunk)
                        && sink.send(Message::Text(text.into())).await.is_err()
                    {
                        break;
                    }
                }
                None => break,
            },
            () = &mut work, if !done => done = true,
            () = gone.cancelled() => break,
            () = stop.cancelled() => break,
        }
    }
    reader.abort();
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
}

/// Text from `chunk`, keeping an incomplete UTF-8 sequence at its end for the next one.
fn utf8_chunk(pending: &mut Vec<u8>, chunk: &[u8]) -> Option<String> {
    pending.extend_from_slice(chunk);
    let cut = match std::str::from_utf8(pending) {
        Ok(_) => pending.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => pending.len(),
    };
    let rest = pending.split_off(cut);
    let text = String::from_utf8_lossy(pending).into_owned();
    *pending = rest;
    (!text.is_empty()).then_some(text)
}

async fn exec(
    engine: &Engine,
    session: &Session,
    program: &str,
    size: (u16, u16),
    stdin: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Bytes>,
) {
    let (spec, def, group_cancel) = match engine.exec_target(&session.group_id, &session.container)
    {
        Ok(target) => target,
        Err(e) => {
            let _ = out.send(Bytes::from(format!("{e}\r\n"))).await;
            return;
        }
    };
    let (output_tx, mut output_rx) = mpsc::channel(16);
    let (resize_tx, resize_rx) = mpsc::channel(4);
    if size.0 > 0 && size.1 > 0 {
        let _ = resize_tx.try_send(size);
    }
    let streams = ExecStreams {
        stdin: Some(stdin),
        output: output_tx,
        tty: true,
        resize: resize_rx,
    };
    let executor = engine.executor().clone();
    let argv = vec![program.to_string()];
    let mut command =
        Box::pin(async move { executor.exec_interactive(&spec, &def, &argv, streams).await });
    let result = loop {
        tokio::select! {
            result = &mut command => break Some(result),
            Some((_, data)) = output_rx.recv() => {
                if out.send(data).await.is_err() {
                    break None;
                }
            }
            () = group_cancel.cancelled() => break None,
        }
    };
    drop(command);
    while let Ok((_, data)) = output_rx.try_recv() {
        let _ = out.send(data).await;
    }
    if let Some(Err(e)) = result {
        // What a terminal shows when the program cannot run.
        let _ = out.send(Bytes::from(format!("{e}\r\n"))).await;
    }
    drop(resize_tx);
}

async fn attach(engine: &Engine, session: &Session, out: mpsc::Sender<Bytes>) {
    let log = match engine.log(&session.group_id, &session.container, false) {
        Ok(Some(log)) => log,
        Ok(None) => return,
        Err(e) => {
            let _ = out.send(Bytes::from(format!("{e}\r\n"))).await;
            return;
        }
    };
    let options = vk_core::provider::LogOptions {
        follow: true,
        ..Default::default()
    };
    let mut stream = log.stream(&options);
    while let Some(Ok(chunk)) = stream.next().await {
        if out.send(chunk).await.is_err() {
            return;
        }
    }
}
