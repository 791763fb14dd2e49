//! Exec sessions end to end: the test client plays client-go's SPDY executor.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::*;
use crate::stream::spdy::frame::{Frame, GoAway, GoAwayStatus, RstStream, StreamId, SynReply};
use crate::stream::spdy::test_client::{TestClient, WAIT};
use crate::stream::spdy::{SpdyConfig, upgrade};

fn config() -> SpdyConfig {
    SpdyConfig {
        close_linger: Duration::from_millis(500),
        ..SpdyConfig::default()
    }
}

/// Echoes stdin to stdout, complains on stderr, reports the terminal sizes it saw on stdout,
/// and exits with a fixed code.
struct Echo {
    code: i32,
}

#[async_trait::async_trait]
impl Executor for Echo {
    async fn execute(&self, mut io: ExecIo) -> ExecOutcome {
        let mut input = Vec::new();
        if let Some(stdin) = io.stdin.as_mut()
            && let Err(e) = stdin.read_to_end(&mut input).await
        {
            return ExecOutcome::Error(e.to_string());
        }
        if let Some(resize) = io.resize.as_mut()
            && let Some(size) = resize.recv().await
        {
            input.extend_from_slice(format!("[{}x{}]", size.width, size.height).as_bytes());
        }
        if let Some(stdout) = io.stdout.as_mut() {
            let _ = stdout.write_all(&input).await;
        }
        if let Some(stderr) = io.stderr.as_mut() {
            let _ = stderr.write_all(b"oops\n").await;
        }
        ExecOutcome::Exited(self.code)
    }
}

fn serve_on(
    server: DuplexStream,
    protocol: &'static str,
    opts: StreamOptions,
    code: i32,
) -> JoinHandle<Result<(), RemoteCommandError>> {
    tokio::spawn(async move {
        let conn = SpdyConnection::new(server, config());
        let session = RemoteCommandSession::accept(conn, protocol, opts, WAIT).await?;
        serve(session, &Echo { code }).await
    })
}

fn id(n: u32) -> StreamId {
    StreamId::from_wire(n)
}

const NON_ZERO_EXIT_3: &str = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;

/// The client-go v4 executor's side: error, stdin, stdout, stderr, in that order.
async fn exec_v4(client: &mut TestClient<DuplexStream>) {
    let error = client.open(&[("streamType", "error")]).await;
    let stdin = client.open(&[("streamType", "stdin")]).await;
    let stdout = client.open(&[("streamType", "stdout")]).await;
    let stderr = client.open(&[("streamType", "stderr")]).await;
    assert_eq!((error, stdin, stdout, stderr), (id(1), id(3), id(5), id(7)));
    client.data(stdin, b"hello\n", false).await;
    client.data(stdin, b"", true).await;
}

#[tokio::test]
async fn exec_v4_echoes_and_reports_a_non_zero_exit_code() {
    let (server, client_io) = tokio::io::duplex(1 << 20);
    let opts = StreamOptions::new(true, true, true, false).expect("streams");
    let task = serve_on(server, "v4.channel.k8s.io", opts, 3);
    let mut client = TestClient::new(client_io);
    exec_v4(&mut client).await;
    let t = client.collect().await;
    assert_eq!(t.text(id(5)), "hello\n");
    assert_eq!(t.text(id(7)), "oops\n");
    assert_eq!(t.text(id(1)), NON_ZERO_EXIT_3);
    let mut fins = t.fin.clone();
    fins.sort();
    assert_eq!(fins, vec![id(1), id(3), id(5), id(7)]);
    let replies: Vec<Frame> = (0..4)
        .map(|n| SynReply::new(id(2 * n + 1)).into())
        .collect();
    assert_eq!(&t.control[..4], &replies[..]);
    assert_eq!(
        t.control.last(),
        Some(&Frame::GoAway(GoAway {
            last_good_stream_id: id(7),
            status: GoAwayStatus::OK
        }))
    );
    client.shutdown().await;
    tokio::time::timeout(WAIT, task)
        .await
        .expect("server finishes")
        .expect("server task")
        .expect("session succeeds");
}

#[tokio::test]
async fn exec_v5_over_spdy_is_v4_and_success_is_a_status() {
    let (server, client_io) = tokio::io::duplex(1 << 20);
    let opts = StreamOptions::new(true, true, true, false).expect("streams");
    let task = serve_on(server, "v5.channel.k8s.io", opts, 0);
    let mut client = TestClient::new(client_io);
    exec_v4(&mut client).await;
    let t = client.collect().await;
    assert_eq!(t.text(id(1)), r#"{"metadata":{},"status":"Success"}"#);
    client.shutdown().await;
    task.await.expect("server task").expect("session succeeds");
}

#[tokio::test]
async fn exec_v3_with_tty_delivers_resizes_and_writes_nothing_on_success() {
    let (server, client_io) = tokio::io::duplex(1 << 20);
    let opts = StreamOptions::new(false, true, true, true).expect("streams");
    assert!(!opts.stderr, "a TTY has no separate stderr");
    let task = serve_on(server, "v3.channel.k8s.io", opts, 0);
    let mut client = TestClient::new(client_io);
    let error = client.open(&[("streamtype", "error")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let resize = client.open(&[("streamtype", "resize")]).await;
    client
        .data(resize, b"{\"Width\":80,\"Height\":24}\n", false)
        .await;
    let t = client.collect().await;
    assert_eq!(t.text(stdout), "[80x24]");
    assert_eq!(t.text(error), "");
    assert!(t.fin.contains(&error));
    client.shutdown().await;
    task.await.expect("server task").expect("session succeeds");
}

#[tokio::test]
async fn exec_v2_reports_failure_as_text() {
    let (server, client_io) = tokio::io::duplex(1 << 20);
    let opts = StreamOptions::new(false, true, false, false).expect("streams");
    let task = serve_on(server, "v2.channel.k8s.io", opts, 2);
    let mut client = TestClient::new(client_io);
    let error = client.open(&[("streamtype", "error")]).await;
    let _stdout = client.open(&[("streamtype", "stdout")]).await;
    let t = client.collect().await;
    assert_eq!(
        t.text(error),
        "command terminated with non-zero exit code: exit status 2"
    );
    client.shutdown().await;
    task.await.expect("server task").expect("session succeeds");
}

#[tokio::test]
async fn exec_v1_resets_the_error_stream_and_closes_stdin_at_once() {
    let (server, client_io) = tokio::io::duplex(1 << 20);
    let opts = StreamOptions::new(true, true, false, false).expect("streams");
    let task = serve_on(server, "channel.k8s.io", opts, 1);
    let mut client = TestClient::new(client_io);
    let error = client.open(&[("streamtype", "error")]).await;
    let stdin = client.open(&[("streamtype", "stdin")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    client.data(stdin, b"v1", true).await;
    let t = client.collect().await;
    assert!(
        t.control
            .contains(&RstStream::new(error, RstStatus::CANCEL).into()),
        "{:?}",
        t.control
    );
    assert_eq!(t.text(error), "");
    assert_eq!(t.text(stdout), "v1");
    assert!(t.fin.contains(&stdin));
    client.shutdown().await;
    task.await.expect("server task").expect("session succeeds");
}

#[tokio::test]
async fn missing_streams_time_out() {
    let (server, client_io) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(async move {
        let conn = SpdyConnection::new(server, config());
        let opts = StreamOptions::new(true, true, false, false).expect("streams");
        RemoteCommandSession::accept(conn, "v4.channel.k8s.io", opts, Duration::from_millis(200))
            .await
            .map(|_| ())
    });
    let mut client = TestClient::new(client_io);
    client.open(&[("streamtype", "error")]).await;
    let result = task.await.expect("server task");
    assert!(matches!(
        result,
        Err(RemoteCommandError::StreamCreationTimeout)
    ));
    // The session was dropped: the client is told with GOAWAY.
    let t = client.collect().await;
    assert!(matches!(t.control.last(), Some(Frame::GoAway(_))));
}

#[tokio::test]
async fn unknown_protocols_are_refused() {
    let (server, _client) = tokio::io::duplex(1024);
    let conn = SpdyConnection::new(server, config());
    let opts = StreamOptions::new(true, false, false, false).expect("streams");
    let result = RemoteCommandSession::accept(conn, "v9.channel.k8s.io", opts, WAIT).await;
    assert!(matches!(
        result,
        Err(RemoteCommandError::UnknownProtocol(_))
    ));
}

#[test]
fn reads_options_like_the_kubelet() {
    assert_eq!(
        StreamOptions::from_query("command=sh&input=1&output=1&error=1"),
        Ok(StreamOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false
        })
    );
    assert_eq!(
        StreamOptions::from_query("output=1&error=1&tty=1"),
        Ok(StreamOptions {
            stdin: false,
            stdout: true,
            stderr: false,
            tty: true
        })
    );
    assert_eq!(
        StreamOptions::from_query("input=true&output=0&tty=1"),
        Err(NoStreamsRequested)
    );
    assert_eq!(ProtocolVersion::from_name(""), Some(ProtocolVersion::V1));
    assert_eq!(SUPPORTED_PROTOCOLS[0], "v5.channel.k8s.io");
}

/// The whole path: hyper serves the HTTP/1.1 request, the upgrade helper answers 101, and
/// the exec runs on the upgraded connection.
#[tokio::test]
async fn exec_through_the_http_upgrade() {
    let (server, client_io) = tokio::io::duplex(1 << 20);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let done_tx = std::sync::Mutex::new(Some(done_tx));
    let service = service_fn(move |mut req: Request<hyper::body::Incoming>| {
        let done = done_tx.lock().ok().and_then(|mut d| d.take());
        async move {
            let opts =
                StreamOptions::from_query(req.uri().query().unwrap_or_default()).expect("streams");
            let response = match upgrade::upgrade(&mut req, SUPPORTED_PROTOCOLS, config()) {
                Ok((response, pending)) => {
                    tokio::spawn(async move {
                        let protocol = pending.protocol().to_owned();
                        let result = async {
                            let conn = pending.connect().await.map_err(io::Error::other)?;
                            let session =
                                RemoteCommandSession::accept(conn, &protocol, opts, WAIT).await?;
                            serve(session, &Echo { code: 3 }).await
                        }
                        .await;
                        if let Some(done) = done {
                            let _ = done.send(result.map_err(|e| e.to_string()));
                        }
                    });
                    response
                }
                Err(rejection) => rejection.into_response(),
            };
            Ok::<Response<Full<Bytes>>, std::convert::Infallible>(response)
        }
    });
    tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .with_upgrades(),
    );

    let mut reader = BufReader::new(client_io);
    reader
        .get_mut()
        .write_all(
            b"POST /exec/default/pod/c?command=cat&input=1&output=1&error=1 HTTP/1.1\r\n\
              Host: 127.0.0.1:10250\r\n\
              Connection: Upgrade\r\n\
              Upgrade: SPDY/3.1\r\n\
              X-Stream-Protocol-Version: v5.channel.k8s.io\r\n\
              X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .await
        .expect("request");
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("response line");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push(line.trim_end().to_ascii_lowercase());
    }
    assert_eq!(head[0], "http/1.1 101 switching protocols");
    assert!(head.contains(&"upgrade: spdy/3.1".to_owned()), "{head:?}");
    assert!(
        head.contains(&"x-stream-protocol-version: v5.channel.k8s.io".to_owned()),
        "{head:?}"
    );
    assert!(
        reader.buffer().is_empty(),
        "no SPDY bytes before the client speaks"
    );

    let mut client = TestClient::new(reader.into_inner());
    exec_v4(&mut client).await;
    let t = client.collect().await;
    assert_eq!(t.text(id(5)), "hello\n");
    assert_eq!(t.text(id(1)), NON_ZERO_EXIT_3);
    client.shutdown().await;
    let result = tokio::time::timeout(WAIT, done_rx)
        .await
        .expect("session ends in time")
        .expect("session result");
    assert_eq!(result, Ok(()));
}
