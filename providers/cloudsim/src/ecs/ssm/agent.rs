//! The agent's side of one data channel: from the WebSocket upgrade to `channel_closed`.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message, Role};
use tokio_util::sync::CancellationToken;
use vk_core::stream::websocket::handshake::Handshake;

use fargate::ssm::codec::{
    Acknowledge, AgentMessage, ChannelClosed, HandshakeComplete, HandshakeRequest,
    HandshakeResponse, OpenDataChannel, RequestedClientAction, SessionTypeRequest, SizeData,
    action, flag, message_type, payload,
};
use fargate::ssm::stream::{Inbound, Outbound};

use super::sessions::Pending;
use crate::ecs::face::Face;
use crate::engine::Engine;
use crate::engine::executor::ExecStreams;
use crate::ws_opening::first_data_frame;

/// The agent version the handshake names.
pub const AGENT_VERSION: &str = "3.3.2299.0";
/// The most one output message carries.
const CHUNK: usize = 1024;
/// Output messages not acknowledged before the command's output waits.
const WINDOW: usize = 512;
const RESEND_AFTER: Duration = Duration::from_millis(300);
/// How long the client has to open the channel with its token, and to answer the handshake.
const OPEN_WAIT: Duration = Duration::from_secs(30);
/// After the command ended, how long unacknowledged output is still sent again.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())));
    *r.status_mut() = status;
    r
}

/// Answer a request for a data channel URL: the WebSocket upgrade of a filed session, or an
/// error.
pub fn upgrade(
    face: &Face,
    req: Request<Incoming>,
    stop: CancellationToken,
) -> Response<Full<Bytes>> {
    let id = req
        .uri()
        .path()
        .strip_prefix(super::PATH_PREFIX)
        .unwrap_or_default()
        .to_string();
    let handshake = match Handshake::from_request(&req) {
        Ok(h) => h,
        Err(e) => {
            return plain(
                e.status(),
                &format!("This address takes a WebSocket upgrade: {e}."),
            );
        }
    };
    let response = match handshake.response(None) {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Some(session) = face.ssm.take(&id) else {
        return plain(
            StatusCode::FORBIDDEN,
            "The session is unknown, already used or expired.",
        );
    };
    let engine = face.engine().clone();
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                run(engine, session, ws, stop).await;
            }
            Err(e) => tracing::warn!(error = %e, "the data channel upgrade failed"),
        }
    });
    let (parts, ()) = response.into_parts();
    Response::from_parts(parts, Full::new(Bytes::new()))
}

type Ws<S> = WebSocketStream<S>;

struct Agent<S> {
    ws: Ws<S>,
    inbound: Inbound,
    outbound: Outbound,
    session: Pending,
}

impl<S> Agent<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    async fn send_frame(&mut self, frame: Vec<u8>) -> bool {
        self.ws.send(Message::Binary(frame.into())).await.is_ok()
    }

    async fn push(&mut self, payload_type: u32, data: Vec<u8>) -> bool {
        let frame = self.outbound.push(payload_type, data);
        self.send_frame(frame).await
    }

    async fn close(&mut self, output: &str) {
        let closed = ChannelClosed {
            message_id: uuid::Uuid::new_v4().to_string(),
            created_date: jiff::Timestamp::now().to_string(),
            destination_id: self.session.task_id.clone(),
            session_id: self.session.session_id.clone(),
            message_type: message_type::CHANNEL_CLOSED.into(),
            schema_version: 1,
            output: output.into(),
        };
        let body = serde_json::to_vec(&closed).unwrap_or_default();
        let m = AgentMessage::new(message_type::CHANNEL_CLOSED, 0, 3, 0, body);
        let _ = self.send_frame(m.encode()).await;
        let _ = self
            .ws
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
    }
}

/// What the client sent, in order.
enum FromClient {
    Handshake(HandshakeResponse),
    Stdin(Vec<u8>),
    Size(SizeData),
    Terminate,
}

/// Read one frame of the client: acknowledge what must be, and what it now hands on in order.
/// `Err` ends the session.
async fn on_frame<S>(agent: &mut Agent<S>, frame: Message) -> Result<Vec<FromClient>, ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let data = match frame {
        Message::Binary(b) => b,
        Message::Close(_) => return Err(()),
        _ => return Ok(Vec::new()),
    };
    let Ok(m) = AgentMessage::decode(&data) else {
        tracing::debug!("a data channel frame that is no message, ignored");
        return Ok(Vec::new());
    };
    if !m.digest_ok() {
        // Refused: not acknowledged and not used (a client sends it again).
        tracing::debug!(
            seq = m.sequence_number,
            "a message whose digest does not match, refused"
        );
        return Ok(Vec::new());
    }
    match m.message_type.as_str() {
        message_type::ACKNOWLEDGE => {
            if let Ok(ack) = serde_json::from_slice::<Acknowledge>(&m.payload) {
                agent.outbound.acked(ack.sequence_number);
            }
            Ok(Vec::new())
        }
        message_type::INPUT_STREAM_DATA => {
            let ack = m.ack().encode();
            let accepted = agent.inbound.accept(m);
            if accepted.ack && !agent.send_frame(ack).await {
                return Err(());
            }
            let mut out = Vec::new();
            for m in accepted.ready {
                match m.payload_type {
                    payload::HANDSHAKE_RESPONSE => {
                        let r = serde_json::from_slice(&m.payload).unwrap_or_default();
                        out.push(FromClient::Handshake(r));
                    }
                    payload::OUTPUT => out.push(FromClient::Stdin(m.payload)),
                    payload::SIZE => {
                        if let Ok(size) = serde_json::from_slice(&m.payload) {
                            out.push(FromClient::Size(size));
                        }
                    }
                    payload::FLAG if m.payload.len() == 4 => {
                        let mut b = [0u8; 4];
                        b.copy_from_slice(&m.payload);
                        if u32::from_be_bytes(b) == flag::TERMINATE_SESSION {
                            out.push(FromClient::Terminate);
                        }
                    }
                    _ => {}
                }
            }
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

/// Serve one connected data channel.
pub async fn run<S>(engine: Engine, session: Pending, ws: Ws<S>, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut agent = Agent {
        ws,
        inbound: Inbound::new(8 * 1024 * 1024),
        outbound: Outbound::new(message_type::OUTPUT_STREAM_DATA),
        session,
    };
    // The opening text frame with the token; checked once (pings before it skipped).
    let first = first_data_frame(&mut agent.ws, tokio::time::Instant::now() + OPEN_WAIT).await;
    let opened = match &first {
        Some(Message::Text(text)) => serde_json::from_str::<OpenDataChannel>(text)
            .is_ok_and(|o| o.token_value == agent.session.token),
        _ => false,
    };
    if !opened {
        let got = match &first {
            Some(Message::Text(_)) => "a text frame without the session's token",
            Some(_) => "a frame that is not the opening text",
            None => "nothing in time, or the socket's end",
        };
        tracing::info!(
            session = %agent.session.session_id,
            "data channel refused: {got} instead of the token"
        );
        let _ = agent
            .ws
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Policy,
                reason: "authentication failed".into(),
            })))
            .await;
        return;
    }
    let started = std::time::Instant::now();
    let request = HandshakeRequest {
        agent_version: AGENT_VERSION.into(),
        requested_client_actions: vec![RequestedClientAction {
            action_type: action::SESSION_TYPE.into(),
            action_parameters: serde_json::to_value(SessionTypeRequest {
                session_type: "InteractiveCommands".into(),
                properties: serde_json::Value::Null,
            })
            .unwrap_or_default(),
        }],
    };
    if !agent
        .push(
            payload::HANDSHAKE_REQUEST,
            serde_json::to_vec(&request).unwrap_or_default(),
        )
        .await
    {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let handshake_deadline = tokio::time::Instant::now() + OPEN_WAIT;
    // Until the handshake completes: input waits here.
    let mut early: Vec<FromClient> = Vec::new();
    loop {
        tokio::select! {
            frame = agent.ws.next() => {
                let Some(Ok(frame)) = frame else { return };
                let Ok(got) = on_frame(&mut agent, frame).await else { return };
                let mut done = false;
                for g in got {
                    match g {
                        FromClient::Handshake(r) => {
                            let accepted = r.processed_client_actions.iter().any(|a| {
                                a.action_type == action::SESSION_TYPE
                                    && a.action_status == action::SUCCESS
                            });
                            if !accepted {
                                agent
                                    .close("The client did not accept the session type.")
                                    .await;
                                return;
                            }
                            done = true;
                        }
                        FromClient::Terminate => return,
                        other => early.push(other),
                    }
                }
                if done {
                    break;
                }
            }
            _ = tick.tick() => {
                if tokio::time::Instant::now() > handshake_deadline {
                    agent.close("The client did not answer the handshake.").await;
                    return;
                }
                for f in agent.outbound.due(RESEND_AFTER) {
                    if !agent.send_frame(f).await { return; }
                }
            }
            () = stop.cancelled() => return,
        }
    }
    let complete = HandshakeComplete {
        handshake_time_to_complete: started.elapsed().as_nanos() as i64,
        customer_message: String::new(),
    };
    if !agent
        .push(
            payload::HANDSHAKE_COMPLETE,
            serde_json::to_vec(&complete).unwrap_or_default(),
        )
        .await
    {
        return;
    }
    // The command on a terminal, through the engine.
    let (spec, def, group_cancel) =
        match engine.exec_target(&agent.session.task_id, &agent.session.container) {
            Ok(t) => t,
            Err(e) => {
                agent.close(&e.to_string()).await;
                return;
            }
        };
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(64);
    let (output_tx, mut output_rx) = mpsc::channel(16);
    let (resize_tx, resize_rx) = mpsc::channel(8);
    let streams = ExecStreams {
        stdin: Some(stdin_rx),
        output: output_tx,
        tty: true,
        resize: resize_rx,
    };
    let executor = engine.executor().clone();
    let argv = agent.session.argv.clone();
    let command =
        tokio::spawn(async move { executor.exec_interactive(&spec, &def, &argv, streams).await });
    let _kill = KillOnDrop(command.abort_handle());
    let mut stdin_tx = Some(stdin_tx);
    let mut backlog: VecDeque<FromClient> = early.into();
    let mut output_open = true;
    let mut ended_at: Option<tokio::time::Instant> = None;
    let mut reason = String::new();
    loop {
        // What the client sent, in order; stdin the command cannot take yet waits here (and
        // the socket is not read meanwhile).
        while let Some(g) = backlog.pop_front() {
            match g {
                FromClient::Stdin(b) => {
                    let Some(tx) = stdin_tx.as_ref() else {
                        continue;
                    };
                    match tx.try_send(Bytes::from(b)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(b)) => {
                            backlog.push_front(FromClient::Stdin(b.to_vec()));
                            break;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => stdin_tx = None,
                    }
                }
                FromClient::Size(s) => {
                    let cols = s.cols.clamp(1, u16::MAX as u32) as u16;
                    let rows = s.rows.clamp(1, u16::MAX as u32) as u16;
                    let _ = resize_tx.try_send((cols, rows));
                }
                FromClient::Terminate => {
                    agent.close("").await;
                    return;
                }
                FromClient::Handshake(_) => {}
            }
        }
        let stdin_ready = {
            let tx = match backlog.front() {
                Some(FromClient::Stdin(_)) => stdin_tx.clone(),
                _ => None,
            };
            async move {
                match tx {
                    Some(tx) => tx.reserve_owned().await.is_ok(),
                    None => std::future::pending().await,
                }
            }
        };
        let can_output = output_open && agent.outbound.unacked() < WINDOW;
        let can_read = backlog.is_empty();
        tokio::select! {
            frame = agent.ws.next(), if can_read => {
                let Some(Ok(frame)) = frame else { return };
                let Ok(got) = on_frame(&mut agent, frame).await else { return };
                backlog.extend(got);
            }
            open = stdin_ready => {
                if !open {
                    stdin_tx = None;
                }
            }
            chunk = output_rx.recv(), if can_output => match chunk {
                Some((_, data)) => {
                    for piece in data.chunks(CHUNK) {
                        if !agent.push(payload::OUTPUT, piece.to_vec()).await {
                            return;
                        }
                    }
                }
                None => {
                    output_open = false;
                    ended_at = Some(tokio::time::Instant::now());
                }
            },
            _ = tick.tick() => {
                for f in agent.outbound.due(RESEND_AFTER) {
                    if !agent.send_frame(f).await { return; }
                }
            }
            () = group_cancel.cancelled(), if output_open => {
                reason = "The task stopped.".into();
                output_open = false;
                ended_at = Some(tokio::time::Instant::now());
            }
            () = stop.cancelled() => return,
        }
        if let Some(at) = ended_at
            && (agent.outbound.unacked() == 0 || at.elapsed() > DRAIN_WAIT)
        {
            agent.close(&reason).await;
            return;
        }
    }
}

struct KillOnDrop(tokio::task::AbortHandle);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
