//! Terminal sizes from the resize stream: a sequence of JSON objects
//! (`{"Width":80,"Height":24}`, as client-go's `json.Encoder` writes them).

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::provider::TermSize;

/// Bytes of an unfinished JSON value the decoder will hold.
const MAX_PENDING: usize = 64 * 1024;

/// Reads a size the way Go's `encoding/json` fills `remotecommand.TerminalSize`: field
/// names match case-insensitively, missing ones are 0, anything else is an error.
fn from_json(value: &Value) -> Option<TermSize> {
    let object = value.as_object()?;
    let field = |name: &str| -> Option<u16> {
        match object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            None => Some(0),
            Some((_, v)) => v.as_u64().and_then(|n| u16::try_from(n).ok()),
        }
    };
    Some(TermSize {
        width: field("width")?,
        height: field("height")?,
    })
}

/// Decodes sizes from `stream` into `tx` until the stream ends, a value does not decode
/// (as the kubelet, which then stops listening), or nobody listens.
pub(crate) async fn forward<R: AsyncRead + Unpin>(mut stream: R, tx: mpsc::Sender<TermSize>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        let mut values = serde_json::Deserializer::from_slice(&pending).into_iter::<Value>();
        let mut consumed = 0;
        loop {
            match values.next() {
                Some(Ok(value)) => {
                    consumed = values.byte_offset();
                    let Some(size) = from_json(&value) else {
                        return;
                    };
                    if tx.send(size).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => return,
                None => break,
            }
        }
        pending.drain(..consumed);
        if pending.len() > MAX_PENDING {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn decodes_sizes_split_across_reads() {
        let (mut client, server) = tokio::io::duplex(64);
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(forward(server, tx));
        client
            .write_all(b"{\"Width\":80,\"Height\":24}\n{\"width\":1")
            .await
            .expect("writes");
        assert_eq!(
            rx.recv().await,
            Some(TermSize {
                width: 80,
                height: 24
            })
        );
        client
            .write_all(b"20,\"HEIGHT\":40}\n{}")
            .await
            .expect("writes");
        assert_eq!(
            rx.recv().await,
            Some(TermSize {
                width: 120,
                height: 40
            })
        );
        assert_eq!(rx.recv().await, Some(TermSize::default()));
        drop(client);
        assert_eq!(rx.recv().await, None);
        task.await.expect("task");
    }

    #[tokio::test]
    async fn stops_at_the_first_bad_value() {
        let (mut client, server) = tokio::io::duplex(64);
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(forward(server, tx));
        client
            .write_all(b"{\"Width\":70000,\"Height\":1}{\"Width\":1}")
            .await
            .expect("writes");
        assert_eq!(rx.recv().await, None);
        task.await.expect("task");
    }
}
