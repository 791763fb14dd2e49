//! The client side of a Session Manager session: [`open`] connects to the session's
//! `streamUrl`, opens the data channel with its token, answers the agent's handshake, and
//! hands back the two directions of the terminal: [`Input`] types (stdin as `Output`
//! payloads, sizes as `Size` payloads) and [`Output`] reads what the agent sends, in order,
//! each message acknowledged. One task owns the WebSocket: it acknowledges, reorders and
//! drops duplicates ([`super::stream::Inbound`]), sends again what the agent did not
//! acknowledge ([`super::stream::Outbound`]) and stops taking input while too much is
//! unacknowledged, so a slow agent slows the client down instead of growing a buffer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::Message;
use vk_core::provider::TermSize;
use vk_core::provider::terminal_exec::{TerminalInput, TerminalOutput};

use super::codec::{
    AgentMessage, ChannelClosed, HandshakeRequest, HandshakeResponse, OpenDataChannel,
    ProcessedClientAction, SizeData, action, message_type, payload,
};
use super::stream::{Inbound, Outbound};

/// What this client says it is in the handshake.
pub const CLIENT_VERSION: &str = concat!("vk-serverless-", env!("CARGO_PKG_VERSION"));

/// The most one message carries (what AWS's plugin sends at most per message).
pub const CHUNK: usize = 1024;
/// Messages sent and not yet acknowledged before input waits.
const WINDOW: usize = 256;
/// Payload bytes kept that arrived ahead of a gap.
const AHEAD_BYTES: usize = 8 * 1024 * 1024;
/// A message not acknowledged within this is sent again.
const RESEND_AFTER: Duration = Duration::from_millis(500);
/// The session fails when the oldest message waits this long for its acknowledgement.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type Socket = WebSocketStream<Box<dyn Io>>;

/// A query string's values hidden (a presigned URL carries a signature).
fn shown(url: &str) -> String {
    match url.split_once('?') {
        Some((path, _)) => format!("{path}?…"),
        None => url.to_string(),
    }
}

async fn connect(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Socket, String> {
    let shown = shown(url);
    let bad = || format!("the session's stream URL {shown:?} is not ws:// or wss://");
    let parsed: Uri = url.parse().map_err(|_| bad())?;
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
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS to {host}:{port}: {e}"))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let request = url.into_client_request().map_err(|_| bad())?;
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("the data channel {shown} refused the WebSocket: {e}"))?;
    Ok(ws)
}

enum Typed {
    Data(u32, Vec<u8>),
}

/// The typing direction of an open session.
pub struct Input {
    typed: mpsc::Sender<Typed>,
}

/// The reading direction of an open session.
pub struct Output {
    shown: mpsc::Receiver<Vec<u8>>,
    end: Arc<Mutex<Option<String>>>,
}

/// Why the session ended, once it did: the agent's `channel_closed` text, or what failed.
#[derive(Clone)]
pub struct EndReason(Arc<Mutex<Option<String>>>);

impl EndReason {
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Output {
    /// A handle on why the session ended, usable after the output is gone.
    pub fn end_reason_handle(&self) -> EndReason {
        EndReason(self.end.clone())
    }
}

#[async_trait::async_trait]
impl TerminalInput for Input {
    async fn send(&mut self, data: Vec<u8>) -> Result<(), String> {
        for chunk in data.chunks(CHUNK) {
            self.typed
                .send(Typed::Data(payload::OUTPUT, chunk.to_vec()))
                .await
                .map_err(|_| "the session ended".to_string())?;
        }
        Ok(())
    }

    async fn resize(&mut self, size: TermSize) -> Result<(), String> {
        let size = SizeData {
            cols: size.width as u32,
            rows: size.height as u32,
        };
        let body = serde_json::to_vec(&size).map_err(|e| e.to_string())?;
        self.typed
            .send(Typed::Data(payload::SIZE, body))
            .await
            .map_err(|_| "the session ended".to_string())
    }
}

#[async_trait::async_trait]
impl TerminalOutput for Output {
    async fn recv(&mut self) -> Option<Vec<u8>> {
        self.shown.recv().await
    }
}

/// Open the session: connect, send the token, finish the agent's handshake (or see its first
/// output, for an agent that does not shake hands), all within `timeout`.
pub async fn open(
    stream_url: &str,
    token: &str,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<(Input, Output), String> {
    let ws = tokio::time::timeout(timeout, connect(stream_url, tls))
        .await
        .map_err(|_| format!("connecting to the data channel timed out after {timeout:?}"))??;
    let opening = OpenDataChannel {
        message_schema_version: "1.0".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        token_value: token.to_string(),
        client_id: uuid::Uuid::new_v4().to_string(),
        client_version: CLIENT_VERSION.into(),
    };
    let (typed, typed_rx) = mpsc::channel(16);
    let (shown_tx, shown) = mpsc::channel(64);
    let (ready_tx, ready_rx) = oneshot::channel();
    let end = Arc::new(Mutex::new(None));
    let pump = Pump {
        ws,
        inbound: Inbound::new(AHEAD_BYTES),
        outbound: Outbound::new(message_type::INPUT_STREAM_DATA),
        shown: shown_tx,
        ready: Some(ready_tx),
        end: end.clone(),
        paused: false,
    };
    let opening = serde_json::to_string(&opening).map_err(|e| e.to_string())?;
    tokio::spawn(pump.run(opening, typed_rx));
    match tokio::time::timeout(timeout, ready_rx).await {
        Ok(Ok(Ok(()))) => Ok((Input { typed }, Output { shown, end })),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(_)) => Err(end
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "the session ended during its handshake".into())),
        Err(_) => Err(format!(
            "the agent did not finish the session's handshake within {timeout:?}"
        )),
    }
}

struct Pump {
    ws: Socket,
    inbound: Inbound,
    outbound: Outbound,
    shown: mpsc::Sender<Vec<u8>>,
    ready: Option<oneshot::Sender<Result<(), String>>>,
    end: Arc<Mutex<Option<String>>>,
    paused: bool,
}

enum Step {
    Go,
    End(String),
}

impl Pump {
    async fn run(mut self, opening: String, mut typed: mpsc::Receiver<Typed>) {
        let reason = self.serve(opening, &mut typed).await;
        *self.end.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(reason));
        }
        let _ = self.ws.close(None).await;
    }

    async fn send(&mut self, frame: Vec<u8>) -> Result<(), String> {
        self.ws
            .send(Message::Binary(frame.into()))
            .await
            .map_err(|e| format!("the data channel failed: {e}"))
    }

    async fn serve(&mut self, opening: String, typed: &mut mpsc::Receiver<Typed>) -> String {
        if let Err(e) = self.ws.send(Message::Text(opening.into())).await {
            return format!("opening the data channel: {e}");
        }
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut typing = true;
        loop {
            let can_type = typing && !self.paused && self.outbound.unacked() < WINDOW;
            tokio::select! {
                frame = self.ws.next() => {
                    let data = match frame {
                        None => return "the data channel closed".into(),
                        Some(Err(e)) => return format!("the data channel failed: {e}"),
                        Some(Ok(Message::Binary(b))) => b.to_vec(),
                        Some(Ok(Message::Close(_))) => return "the data channel closed".into(),
                        Some(Ok(_)) => continue,
                    };
                    match self.on_frame(&data).await {
                        Ok(Step::Go) => {}
                        Ok(Step::End(reason)) => return reason,
                        Err(e) => return e,
                    }
                }
                t = typed.recv(), if can_type => match t {
                    Some(Typed::Data(kind, data)) => {
                        let frame = self.outbound.push(kind, data);
                        if let Err(e) = self.send(frame).await {
                            return e;
                        }
                    }
                    None => typing = false,
                },
                _ = tick.tick() => {
                    if self.outbound.oldest_wait().is_some_and(|w| w > GIVE_UP_AFTER) {
                        return format!("the agent acknowledged nothing for {GIVE_UP_AFTER:?}");
                    }
                    if !self.paused {
                        for frame in self.outbound.due(RESEND_AFTER) {
                            if let Err(e) = self.send(frame).await {
                                return e;
                            }
                        }
                    }
                }
                () = self.shown.closed() => return "the client ended the session".into(),
            }
        }
    }

    async fn on_frame(&mut self, data: &[u8]) -> Result<Step, String> {
        let Ok(message) = AgentMessage::decode(data) else {
            tracing::debug!(
                len = data.len(),
                "a data channel frame that is no message, dropped"
            );
            return Ok(Step::Go);
        };
        match message.message_type.as_str() {
            message_type::START_PUBLICATION => self.paused = false,
            message_type::PAUSE_PUBLICATION => self.paused = true,
            _ if !message.payload.is_empty() && !message.digest_ok() => {
                // Not acknowledged: the agent sends it again.
                tracing::debug!(
                    seq = message.sequence_number,
                    "a message with a bad digest, dropped"
                );
            }
            message_type::ACKNOWLEDGE => {
                if let Ok(ack) =
                    serde_json::from_slice::<super::codec::Acknowledge>(&message.payload)
                {
                    self.outbound.acked(ack.sequence_number);
                }
            }
            message_type::CHANNEL_CLOSED => {
                let closed: ChannelClosed =
                    serde_json::from_slice(&message.payload).unwrap_or_default();
                let reason = if closed.output.is_empty() {
                    "the agent closed the session".to_string()
                } else {
                    format!("the agent closed the session: {}", closed.output)
                };
                return Ok(Step::End(reason));
            }
            message_type::OUTPUT_STREAM_DATA => {
                let ack = message.ack().encode();
                let accepted = self.inbound.accept(message);
                for m in accepted.ready {
                    if let Step::End(reason) = self.on_stream(m).await? {
                        return Ok(Step::End(reason));
                    }
                }
                if accepted.ack {
                    self.send(ack).await?;
                }
            }
            _ => {}
        }
        Ok(Step::Go)
    }

    async fn on_stream(&mut self, m: AgentMessage) -> Result<Step, String> {
        match m.payload_type {
            payload::HANDSHAKE_REQUEST => {
                let request: HandshakeRequest = serde_json::from_slice(&m.payload)
                    .map_err(|e| format!("the agent's handshake request does not read: {e}"))?;
                let mut refused = None;
                let processed: Vec<ProcessedClientAction> = request
                    .requested_client_actions
                    .iter()
                    .map(|a| {
                        let (status, error) = match a.action_type.as_str() {
                            action::SESSION_TYPE => (action::SUCCESS, String::new()),
                            action::KMS_ENCRYPTION => {
                                let e = "the session asks for KMS encryption (the cluster's executeCommandConfiguration has a kmsKeyId), which vk does not support".to_string();
                                refused = Some(e.clone());
                                (action::FAILED, e)
                            }
                            other => (action::UNSUPPORTED, format!("Unsupported action {other}")),
                        };
                        ProcessedClientAction {
                            action_type: a.action_type.clone(),
                            action_status: status,
                            action_result: serde_json::Value::Null,
                            error,
                        }
                    })
                    .collect();
                let errors: Vec<String> = processed
                    .iter()
                    .filter(|p| !p.error.is_empty())
                    .map(|p| p.error.clone())
                    .collect();
                let response = HandshakeResponse {
                    client_version: CLIENT_VERSION.into(),
                    processed_client_actions: processed,
                    errors: (!errors.is_empty()).then_some(errors),
                };
                let body = serde_json::to_vec(&response).map_err(|e| e.to_string())?;
                let frame = self.outbound.push(payload::HANDSHAKE_RESPONSE, body);
                self.send(frame).await?;
                if let Some(e) = refused {
                    return Ok(Step::End(e));
                }
            }
            payload::HANDSHAKE_COMPLETE => {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            payload::ENC_CHALLENGE_REQUEST => {
                return Ok(Step::End(
                    "the agent asks for an encryption challenge (KMS), which vk does not support"
                        .into(),
                ));
            }
            payload::OUTPUT | payload::STDERR => {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
                if !m.payload.is_empty() && self.shown.send(m.payload).await.is_err() {
                    return Ok(Step::End("the client ended the session".into()));
                }
            }
            payload::EXIT_CODE => {
                tracing::debug!(code = %String::from_utf8_lossy(&m.payload), "the agent reported an exit code");
            }
            _ => {}
        }
        Ok(Step::Go)
    }
}
