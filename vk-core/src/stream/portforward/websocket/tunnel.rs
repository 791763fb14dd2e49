//! SPDY tunnelled through a WebSocket (`SPDY/3.1+portforward.k8s.io`), as client-go's
//! tunnelling connection frames it: each binary message carries the next bytes of the SPDY
//! session in either direction (boundaries mean nothing), a text message is a protocol error,
//! and a close is the end of the byte stream. The client starts SPDY at once: there is no
//! HTTP upgrade inside the tunnel.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::super::{PortForwarder, SessionConfig, spdy};
use crate::stream::spdy::SpdyConnection;

/// Bytes buffered between the socket and the SPDY session, and the largest message sent.
const BUFFER: usize = 64 * 1024;
/// How long to wait for the client's close after ours.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves the SPDY port-forward session inside `ws` until either side ends it.
pub async fn serve<S>(
    ws: WebSocketStream<S>,
    forwarder: Arc<dyn PortForwarder>,
    config: SessionConfig,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (session_io, tunnel_io) = tokio::io::duplex(BUFFER);
    let pump = tokio::spawn(pump(ws, tunnel_io));
    spdy::serve(
        SpdyConnection::new(session_io, config.spdy()),
        forwarder,
        config.stream_creation_timeout,
    )
    .await;
    let _ = pump.await;
}

/// Moves bytes between the WebSocket and the SPDY session's end of `io` (either role) until both directions
/// are done: the client's close (or a broken socket) is EOF for the session, the session's
/// end is a normal close for the client.
pub(super) async fn pump<S>(ws: WebSocketStream<S>, io: DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let (mut from_session, mut to_session) = tokio::io::split(io);
    let inbound = async {
        while let Some(message) = stream.next().await {
            let data = match message {
                Ok(Message::Binary(data)) => data,
                Ok(Message::Close(_)) => break,
                Ok(Message::Text(_)) => {
                    tracing::debug!("port-forward tunnel: text message, closing");
                    break;
                }
                // tungstenite answers pings itself.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(err) => {
                    tracing::debug!(%err, "port-forward tunnel: reading the socket");
                    break;
                }
            };
            if to_session.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to_session.shutdown().await;
    };
    let outbound = async {
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match from_session.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let message = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
            if let Err(err) = sink.send(message).await {
                tracing::debug!(%err, "port-forward tunnel: writing the socket");
                return;
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        let _ = sink.close().await;
    };
    tokio::pin!(inbound, outbound);
    tokio::select! {
        () = &mut inbound => outbound.await,
        () = &mut outbound => {
            // Our close is sent; the client's answer ends the socket.
            let _ = tokio::time::timeout(CLOSE_GRACE, inbound).await;
        }
    }
}
