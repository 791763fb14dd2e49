//! Port-forward over a SPDY session, as the kubelet serves `portforward.k8s.io`.
//!
//! For every forwarded connection the client (client-go's port forwarder, directly or through
//! kube-apiserver) opens two streams with the same `port` and `requestID` headers: first
//! `streamType: error`, whose write side it closes at once, then `streamType: data`. Once both
//! are there the pair is forwarded; what failed is written as text to the error stream, and
//! both streams are closed when the forward ends. Pairs are independent: many ports and
//! connections share one session, and one that fails leaves the others alone.
//!
//! Kept from the kubelet: a stream with a missing or invalid `port` or `streamType` is reset;
//! without `requestID` (clients before 1.5) the pair is guessed from consecutive stream ids;
//! a pair whose second stream does not come within the creation timeout is dropped with
//! `timed out waiting for streams` on its error stream; a second stream of the same type
//! gets `error stream already assigned` (or `data`) on the pair's error stream.
//! Different from the kubelet: our SPDY layer answers SYN_REPLY before the stream is seen
//! here, so a rejected stream is replied to and then reset rather than only reset.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{
    PORT_HEADER, PortError, PortForwarder, REQUEST_ID_HEADER, STREAM_TYPE_HEADER, parse_port,
};
use crate::stream::spdy::frame::RstStatus;
use crate::stream::spdy::{SendStream, SpdyConnection, SpdyStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamType {
    Error,
    Data,
}

impl StreamType {
    fn name(self) -> &'static str {
        match self {
            StreamType::Error => "error",
            StreamType::Data => "data",
        }
    }
}

/// The port and type a stream's headers name, checked as the kubelet does.
fn classify(stream: &SpdyStream) -> Result<(u16, StreamType), StreamHeaderError> {
    let headers = stream.headers();
    let port = match headers.get(PORT_HEADER) {
        None | Some("") => return Err(StreamHeaderError::Missing(PORT_HEADER)),
        Some(value) => parse_port(value)?,
    };
    let kind = match headers.get(STREAM_TYPE_HEADER) {
        None | Some("") => return Err(StreamHeaderError::Missing(STREAM_TYPE_HEADER)),
        Some("error") => StreamType::Error,
        Some("data") => StreamType::Data,
        Some(other) => return Err(StreamHeaderError::StreamType(other.to_owned())),
    };
    Ok((port, kind))
}

/// Why a stream's headers do not name a forwarded connection.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum StreamHeaderError {
    #[error("{0:?} header is required")]
    Missing(&'static str),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("invalid stream type {0:?}")]
    StreamType(String),
}

/// The pair a stream belongs to. Old clients send no `requestID`; their error and data streams
/// of one connection have consecutive odd ids (error first), so the error stream's id names
/// the pair.
fn request_id(stream: &SpdyStream, kind: StreamType) -> String {
    match stream.headers().get(REQUEST_ID_HEADER) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => {
            let id = i64::from(stream.id().get());
            match kind {
                StreamType::Error => id.to_string(),
                StreamType::Data => (id - 2).to_string(),
            }
        }
    }
}

/// One forwarded connection while its streams arrive.
struct Pair {
    /// The write side of the error stream; the client only reads it.
    error: Option<SendStream>,
    data: Option<SpdyStream>,
    /// When the pair is given up if still incomplete.
    deadline: Instant,
}

impl Pair {
    /// Writes `message` on the error stream, if there is one yet. Error streams carry nothing
    /// else and small messages are queued at once, so this does not wait.
    fn print_error(&mut self, message: &str) {
        if let Some(error) = self.error.as_mut() {
            let written = error.write_all(message.as_bytes()).now_or_never();
            if !matches!(written, Some(Ok(()))) {
                tracing::debug!(message, "port-forward: could not write to the error stream");
            }
        }
    }
}

/// Serves port-forward requests on `conn` until the client closes it (or it idles out, as set
/// in its [`SpdyConfig`](crate::stream::spdy::SpdyConfig)). Forwards still running then are
/// cancelled.
pub async fn serve(
    mut conn: SpdyConnection,
    forwarder: Arc<dyn PortForwarder>,
    creation_timeout: Duration,
) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    loop {
        let expiry = pairs.values().map(|p| p.deadline).min();
        tokio::select! {
            stream = conn.accept() => match stream {
                Some(stream) => {
                    on_stream(stream, &mut pairs, &mut forwards, &forwarder, creation_timeout);
                }
                None => break,
            },
            () = sleep_until(expiry) => expire(&mut pairs, Instant::now()),
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
    let reason = conn.closed().await;
    tracing::debug!(
        %reason,
        cancelled = forwards.len(),
        "port-forward session over"
    );
    forwards.shutdown().await;
}

fn on_stream(
    stream: SpdyStream,
    pairs: &mut HashMap<String, Pair>,
    forwards: &mut JoinSet<()>,
    forwarder: &Arc<dyn PortForwarder>,
    creation_timeout: Duration,
) {
    let (port, kind) = match classify(&stream) {
        Ok(valid) => valid,
        Err(reason) => {
            tracing::debug!(stream = %stream.id(), %reason, "port-forward: stream rejected");
            stream.reset(RstStatus::CANCEL);
            return;
        }
    };
    let id = request_id(&stream, kind);
    tracing::debug!(request = %id, port, stream_type = kind.name(), "port-forward stream");
    let pair = pairs.entry(id.clone()).or_insert_with(|| Pair {
        error: None,
        data: None,
        deadline: Instant::now() + creation_timeout,
    });
    let taken = match kind {
        StreamType::Error => pair.error.is_some(),
        StreamType::Data => pair.data.is_some(),
    };
    if taken {
        let message = format!(
            "error processing stream for request {id}: {} stream already assigned",
            kind.name()
        );
        tracing::debug!(%message, "port-forward");
        pair.print_error(&message);
        return;
    }
    match kind {
        // The client closes its side of the error stream at once; only our side is used.
        StreamType::Error => pair.error = Some(stream.split().1),
        StreamType::Data => pair.data = Some(stream),
    }
    if pair.error.is_some() && pair.data.is_some() {
        let Some(Pair {
            error: Some(error),
            data: Some(data),
            ..
        }) = pairs.remove(&id)
        else {
            return;
        };
        // The port of the data stream is the one forwarded, as in the kubelet.
        let port = classify(&data).map_or(port, |(p, _)| p);
        forwards.spawn(forward(forwarder.clone(), id, port, data, error));
    }
}

async fn forward(
    forwarder: Arc<dyn PortForwarder>,
    request: String,
    port: u16,
    data: SpdyStream,
    mut error: SendStream,
) {
    let result = forwarder.forward(port, Box::new(data)).await;
    if let Err(err) = result {
        tracing::debug!(%request, port, error = %err, "port-forward failed");
        let _ = error.write_all(err.to_string().as_bytes()).await;
    }
    let _ = error.shutdown().await;
}

/// Drops the pairs whose second stream did not come in time.
fn expire(pairs: &mut HashMap<String, Pair>, now: Instant) {
    pairs.retain(|id, pair| {
        if pair.deadline > now {
            return true;
        }
        let message = format!("(request={id}) timed out waiting for streams");
        tracing::debug!(%message, "port-forward");
        pair.print_error(&message);
        false
    });
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "spdy_tests.rs"]
mod tests;
