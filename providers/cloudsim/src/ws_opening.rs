//! The opening frame of a WebSocket session that authenticates with its first message (the
//! ECS face's data channel token, the ACI face's exec password).

use futures::{Stream, StreamExt as _};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Message;

/// The first data frame (text or binary) the client sends before `deadline`: control frames
/// before it are skipped, as a client's keep-alive pings may start before its first message
/// (AWS's session-manager-plugin starts them as the socket opens). `None`: the socket ended,
/// failed or the time ran out; `Some(Message::Close)` when the client closed first.
pub(crate) async fn first_data_frame<S, E>(source: &mut S, deadline: Instant) -> Option<Message>
where
    S: Stream<Item = Result<Message, E>> + Unpin,
{
    loop {
        match tokio::time::timeout_at(deadline, source.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(m))) => return Some(m),
            Ok(Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn pings_before_the_first_message_are_skipped() {
        let frames: Vec<Result<Message, ()>> = vec![
            Ok(Message::Ping(b"keepalive".to_vec().into())),
            Ok(Message::Pong(Vec::new().into())),
            Ok(Message::Text("token".into())),
        ];
        let mut s = futures::stream::iter(frames);
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            first_data_frame(&mut s, deadline).await,
            Some(Message::Text("token".into()))
        );
        let mut ended = futures::stream::iter(vec![Ok::<_, ()>(Message::Ping(Vec::new().into()))]);
        assert_eq!(first_data_frame(&mut ended, deadline).await, None);
        let mut silent = futures::stream::pending::<Result<Message, ()>>();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(first_data_frame(&mut silent, soon).await, None);
    }
}
