//! What the kubelet's exec and attach handlers need from a connected session, whichever
//! protocol carries it.

use super::remotecommand::{
    ExecIo, ExecOutcome, Operation, RemoteCommandError, RemoteCommandSession,
};
use super::websocket::WebSocketSession;

/// An exec or attach whose streams are connected, over SPDY or WebSocket.
#[async_trait::async_trait]
pub trait CommandSession: Send + Sized {
    /// `SPDY/3.1` or `websocket`, for logs.
    fn transport(&self) -> &'static str;
    /// The negotiated subprotocol, for logs.
    fn protocol_name(&self) -> &'static str;
    /// Whether the status reports an exec or an attach.
    fn with_operation(self, operation: Operation) -> Self;
    /// The command's streams; the first call takes them.
    fn take_io(&mut self) -> ExecIo;
    /// Resolves when the client has gone away.
    async fn closed(&mut self);
    /// Reports how the command ended and ends the session.
    async fn finish(self, outcome: ExecOutcome) -> Result<(), RemoteCommandError>;
}

#[async_trait::async_trait]
impl CommandSession for RemoteCommandSession {
    fn transport(&self) -> &'static str {
        "SPDY/3.1"
    }

    fn protocol_name(&self) -> &'static str {
        self.protocol().name()
    }

    fn with_operation(self, operation: Operation) -> Self {
        RemoteCommandSession::with_operation(self, operation)
    }

    fn take_io(&mut self) -> ExecIo {
        RemoteCommandSession::take_io(self)
    }

    async fn closed(&mut self) {
        RemoteCommandSession::closed(self).await;
    }

    async fn finish(self, outcome: ExecOutcome) -> Result<(), RemoteCommandError> {
        RemoteCommandSession::finish(self, outcome).await
    }
}

#[async_trait::async_trait]
impl CommandSession for WebSocketSession {
    fn transport(&self) -> &'static str {
        "websocket"
    }

    fn protocol_name(&self) -> &'static str {
        self.protocol().name()
    }

    fn with_operation(self, operation: Operation) -> Self {
        WebSocketSession::with_operation(self, operation)
    }

    fn take_io(&mut self) -> ExecIo {
        WebSocketSession::take_io(self)
    }

    async fn closed(&mut self) {
        WebSocketSession::closed(self).await;
    }

    async fn finish(self, outcome: ExecOutcome) -> Result<(), RemoteCommandError> {
        Ok(WebSocketSession::finish(self, outcome).await?)
    }
}
