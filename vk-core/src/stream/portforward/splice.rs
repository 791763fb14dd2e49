//! Copying between the client's stream and the connection to the pod, as the kubelet's
//! container runtimes do it.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Bytes read at once in each direction.
const BUFFER: usize = 32 * 1024;

/// Copies client → pod until the client closes its side (then the pod's write side is shut
/// down, so a server waiting for the end of a request sees it) and pod → client until the pod
/// closes its side (then the client's write side is shut down). Done when the pod's side is
/// done, or as soon as the client's side fails (it went away). A reset on either side ends it
/// too; that is not an error of the forward, since the connection was made.
pub async fn splice<C, U>(client: C, upstream: U)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (client_r, mut client_w) = tokio::io::split(client);
    let (upstream_r, mut upstream_w) = tokio::io::split(upstream);
    let to_pod = async {
        let copied = tokio::io::copy_buf(
            &mut BufReader::with_capacity(BUFFER, client_r),
            &mut upstream_w,
        )
        .await;
        let _ = upstream_w.shutdown().await;
        copied
    };
    let to_client = async {
        let copied = tokio::io::copy_buf(
            &mut BufReader::with_capacity(BUFFER, upstream_r),
            &mut client_w,
        )
        .await;
        let _ = client_w.shutdown().await;
        copied
    };
    tokio::pin!(to_pod, to_client);
    let mut to_pod_done = false;
    loop {
        tokio::select! {
            copied = &mut to_client => {
                if let Err(err) = copied {
                    tracing::debug!(%err, "port-forward: pod to client ended");
                }
                return;
            }
            copied = &mut to_pod, if !to_pod_done => {
                to_pod_done = true;
                if let Err(err) = copied {
                    tracing::debug!(%err, "port-forward: client to pod ended");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::splice;

    #[tokio::test]
    async fn half_closes_travel_and_the_pods_close_ends_it() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, mut pod) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(client, upstream));
        client_peer.write_all(b"GET /").await.unwrap();
        client_peer.shutdown().await.unwrap();
        let mut request = Vec::new();
        pod.read_to_end(&mut request).await.unwrap();
        assert_eq!(
            request, b"GET /",
            "the client's close reaches the pod as EOF"
        );
        pod.write_all(b"200 OK").await.unwrap();
        drop(pod);
        let mut response = Vec::new();
        client_peer.read_to_end(&mut response).await.unwrap();
        assert_eq!(response, b"200 OK");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_pod_closing_first_ends_it_while_the_client_still_sends() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, pod) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(client, upstream));
        drop(pod);
        task.await.unwrap();
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
