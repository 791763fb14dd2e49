//! The channel form (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, or no subprotocol),
//! as the kubelet serves it: every message starts with its channel number (a byte, or an
//! ASCII digit with the rest in base64 for the base64 protocol). Port `i` of the request has
//! data channel `2i` (both ways) and error channel `2i+1` (server to client only); the server
//! writes the port as two little-endian bytes on each before anything else. All ports are
//! forwarded at once, each exactly one connection; the socket is closed when every forward has
//! ended, and a client that closes it, or no message in either direction for the idle timeout,
//! cancels those still running.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::super::PortForwarder;

/// Bytes buffered per port between the socket and the forward, and the largest message sent.
const BUFFER: usize = 32 * 1024;
/// Messages queued for the socket.
const OUTGOING: usize = 16;

/// How channel numbers and payloads are written in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Codec {
    base64: bool,
}

impl Codec {
    fn encode(self, channel: u8, data: &[u8]) -> Message {
        if self.base64 {
            let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
            text.push(char::from(b'0' + channel));
            base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
            Message::Text(text.into())
        } else {
            let mut frame = Vec::with_capacity(1 + data.len());
            frame.push(channel);
            frame.extend_from_slice(data);
            Message::Binary(Bytes::from(frame))
        }
    }

    /// The channel and payload of a message; `None` for an empty or undecodable one, which
    /// the kubelet skips as well.
    fn decode(self, message: &[u8]) -> Option<(u8, Vec<u8>)> {
        let (&first, rest) = message.split_first()?;
        if self.base64 {
            let data = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            Some((first.wrapping_sub(b'0'), data))
        } else {
            Some((first, rest.to_vec()))
        }
    }
}

/// When a message last moved, either way.
#[derive(Debug)]
struct Activity(Mutex<Instant>);

impl Activity {
    fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once nothing moved for `idle` (never without one).
    async fn idle_for(&self, idle: Option<Duration>) {
        let Some(idle) = idle.filter(|i| !i.is_zero()) else {
            return std::future::pending().await;
        };
        loop {
            let at = self.last() + idle;
            if Instant::now() >= at {
                return;
            }
            tokio::time::sleep_until(at).await;
        }
    }
}

/// Forwards each of `ports` over its channel pair of `ws` (see the module docs).
pub async fn serve<S>(
    ws: WebSocketStream<S>,
    ports: Vec<u16>,
    base64: bool,
    forwarder: Arc<dyn PortForwarder>,
    idle: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let codec = Codec { base64 };
    let activity = Arc::new(Activity(Mutex::new(Instant::now())));
    let (sink, stream) = ws.split();
    let (out_tx, out_rx) = mpsc::channel(OUTGOING);
    let writer = tokio::spawn(write_loop(sink, out_rx, activity.clone()));
    let mut data_in = Vec::with_capacity(ports.len());
    let mut forwards = JoinSet::new();
    for (i, port) in ports.into_iter().enumerate() {
        // `form` allows at most MAX_PORTS, so every channel number fits in a byte.
        let Ok(data_channel) = u8::try_from(2 * i) else {
            break;
        };
        let error_channel = data_channel + 1;
        for channel in [data_channel, error_channel] {
            let _ = out_tx
                .send(codec.encode(channel, &port.to_le_bytes()))
                .await;
        }
        let (forwarded, ours) = tokio::io::duplex(BUFFER);
        let (from_forward, to_forward) = tokio::io::split(ours);
        data_in.push(Some(to_forward));
        let out = Outgoing {
            tx: out_tx.clone(),
            codec,
        };
        forwards.spawn(forward_port(
            forwarder.clone(),
            port,
            [data_channel, error_channel],
            forwarded,
            from_forward,
            out,
        ));
    }
    drop(out_tx);
    tokio::select! {
        () = async { while forwards.join_next().await.is_some() {} } => {}
        () = read_loop(stream, data_in, codec, &activity) => {
            tracing::debug!(cancelled = forwards.len(), "port-forward: WebSocket client went away");
            forwards.shutdown().await;
        }
        () = activity.idle_for(idle) => {
            tracing::debug!(cancelled = forwards.len(), ?idle, "port-forward: WebSocket idle");
            forwards.shutdown().await;
        }
    }
    // Every sender is gone now: the writer sends what is queued, then the close.
    let _ = writer.await;
}

/// Where a port's task sends its messages.
struct Outgoing {
    tx: mpsc::Sender<Message>,
    codec: Codec,
}

impl Outgoing {
    async fn send(&self, channel: u8, data: &[u8]) -> bool {
        self.tx.send(self.codec.encode(channel, data)).await.is_ok()
    }
}

/// One port: the forward runs on `forwarded`; what it writes comes out of `from_forward` and
/// goes to the data channel; a failure goes to the error channel.
async fn forward_port(
    forwarder: Arc<dyn PortForwarder>,
    port: u16,
    [data_channel, error_channel]: [u8; 2],
    forwarded: DuplexStream,
    mut from_forward: tokio::io::ReadHalf<DuplexStream>,
    out: Outgoing,
) {
    let pump = async {
        let mut buf = vec![0u8; BUFFER];
        loop {
            match from_forward.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !out.send(data_channel, &buf[..n]).await {
                        break;
                    }
                }
            }
        }
    };
    let (result, ()) = tokio::join!(forwarder.forward(port, Box::new(forwarded)), pump);
    if let Err(err) = result {
        tracing::debug!(port, error = %err, "port-forward failed");
        out.send(error_channel, err.to_string().as_bytes()).await;
    }
}

/// Routes the client's messages to the data channels until it closes the socket.
async fn read_loop<S>(
    mut stream: futures::stream::SplitStream<WebSocketStream<S>>,
    mut data_in: Vec<Option<WriteHalf<DuplexStream>>>,
    codec: Codec,
    activity: &Activity,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = stream.next().await {
        activity.touch();
        let payload: &[u8] = match &message {
            Ok(Message::Binary(data)) => data,
            Ok(Message::Text(text)) => text.as_bytes(),
            Ok(Message::Close(_)) => break,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Err(err) => {
                tracing::debug!(%err, "port-forward: reading the WebSocket");
                break;
            }
        };
        let Some((channel, data)) = codec.decode(payload) else {
            continue;
        };
        // Only data channels are read; the error channels and unknown ones are ignored.
        let slot = (channel % 2 == 0)
            .then(|| data_in.get_mut(usize::from(channel / 2)))
            .flatten();
        let Some(slot) = slot else {
            continue;
        };
        if let Some(to_forward) = slot.as_mut()
            && to_forward.write_all(&data).await.is_err()
        {
            // The forward is over and reads no more.
            *slot = None;
        }
    }
}

async fn write_loop<S>(
    mut sink: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Message>,
    activity: Arc<Activity>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = rx.recv().await {
        if let Err(err) = sink.send(message).await {
            tracing::debug!(%err, "port-forward: writing the WebSocket");
            return;
        }
        activity.touch();
    }
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::Codec;
    use tokio_tungstenite::tungstenite::Message;

    #[test]
    fn binary_and_base64_framing() {
        let binary = Codec { base64: false };
        assert_eq!(
            binary.encode(3, &[0x50, 0x00]),
            Message::Binary(vec![3, 0x50, 0x00].into())
        );
        assert_eq!(binary.decode(&[2, b'h', b'i']), Some((2, b"hi".to_vec())));
        assert_eq!(binary.decode(&[]), None);
        let text = Codec { base64: true };
        assert_eq!(text.encode(1, b"hi"), Message::Text("1aGk=".into()));
        assert_eq!(text.decode(b"0aGk="), Some((0, b"hi".to_vec())));
        assert_eq!(text.decode(b"0!!"), None);
    }
}
