//! WebSocket exec sessions end to end: hyper serves the upgrade on one end of a pipe and a
//! tokio-tungstenite client plays kubectl / a browser console on the other.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::Request;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

use super::*;
use crate::provider::{ExecIo, ExecOutcome};
use crate::stream::remotecommand::{Executor, StreamOptions};

const WAIT: Duration = Duration::from_secs(10);

/// Reads one line of stdin (or up to EOF), reports the first terminal size it gets, echoes
/// the line on stdout, complains on stderr and exits with `code`.
struct LineEcho {
    code: i32,
}

#[async_trait::async_trait]
impl Executor for LineEcho {
    async fn execute(&self, mut io: ExecIo) -> ExecOutcome {
        let mut line = Vec::new();
        if let Some(stdin) = io.stdin.take() {
            let mut stdin = BufReader::new(stdin);
            if let Err(e) = stdin.read_until(b'\n', &mut line).await {
                return ExecOutcome::Error(e.to_string());
            }
        }
        if let Some(resize) = io.resize.as_mut()
            && let Some(size) = resize.recv().await
        {
            line.extend_from_slice(format!("[{}x{}]", size.width, size.height).as_bytes());
        }
        if let Some(stdout) = io.stdout.as_mut() {
            let _ = stdout.write_all(b"got:").await;
            let _ = stdout.write_all(&line).await;
        }
        if let Some(stderr) = io.stderr.as_mut() {
            let _ = stderr.write_all(b"oops\n").await;
        }
        ExecOutcome::Exited(self.code)
    }
}

/// Reads stdin to its end (a v5 CLOSE), then reports how many bytes came.
struct CountStdin;

#[async_trait::async_trait]
impl Executor for CountStdin {
    async fn execute(&self, mut io: ExecIo) -> ExecOutcome {
        let mut all = Vec::new();
        if let Some(stdin) = io.stdin.as_mut() {
            let _ = tokio::io::AsyncReadExt::read_to_end(stdin, &mut all).await;
        }
        if let Some(stdout) = io.stdout.as_mut() {
            let _ = stdout
                .write_all(format!("{} bytes", all.len()).as_bytes())
                .await;
        }
        ExecOutcome::Exited(0)
    }
}

/// Never ends on its own.
struct Forever;

#[async_trait::async_trait]
impl Executor for Forever {
    async fn execute(&self, _io: ExecIo) -> ExecOutcome {
        std::future::pending().await
    }
}

/// How a served session ended: `Some(result of finish)`, or `None` when the client went
/// away first and the command was cancelled.
type Served = JoinHandle<Option<std::io::Result<()>>>;

/// Serves one upgrade on `io` the way the kubelet's exec handler does.
fn serve(
    io: DuplexStream,
    opts: StreamOptions,
    executor: impl Executor + 'static,
    config: WebSocketConfig,
) -> Served {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let service = service_fn(move |mut req: Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        let config = config.clone();
        async move {
            let response = match upgrade(&mut req, opts, config) {
                Ok((response, pending)) => {
                    if let Some(tx) = tx.lock().expect("lock").take() {
                        let _ = tx.send(pending);
                    }
                    response
                }
                Err(rejection) => rejection.into_response(),
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades(),
    );
    tokio::spawn(async move {
        let pending = rx.await.ok()?;
        let mut session = pending.connect().await.ok()?;
        let io = session.take_io();
        let outcome = tokio::select! {
            outcome = executor.execute(io) => outcome,
            () = session.closed() => return None,
        };
        Some(session.finish(outcome).await)
    })
}

fn config() -> WebSocketConfig {
    WebSocketConfig {
        finish_timeout: WAIT,
        ..WebSocketConfig::default()
    }
}

type Client = WebSocketStream<DuplexStream>;

async fn connect(
    query: &str,
    protocols: &str,
    executor: impl Executor + 'static,
) -> (Client, Option<String>, Served) {
    connect_with(query, protocols, executor, config()).await
}

async fn connect_with(
    query: &str,
    protocols: &str,
    executor: impl Executor + 'static,
    config: WebSocketConfig,
) -> (Client, Option<String>, Served) {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let opts = StreamOptions::from_query(query).expect("streams");
    let served = serve(server_io, opts, executor, config);
    let mut request = format!("ws://127.0.0.1:10250/exec/ci/build/app?{query}")
        .into_client_request()
        .expect("request");
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocols).expect("header"),
        );
    }
    let (client, response) = tokio::time::timeout(WAIT, client_async(request, client_io))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (client, chosen, served)
}

/// Everything the server sent, per channel, until its Close.
#[derive(Debug, Default)]
struct Transcript {
    /// (channel, payload) in arrival order.
    messages: Vec<(u8, Vec<u8>)>,
    close: Option<CloseCode>,
}

impl Transcript {
    fn text(&self, channel: u8) -> String {
        let bytes: Vec<u8> = self
            .messages
            .iter()
            .filter(|(c, _)| *c == channel)
            .flat_map(|(_, d)| d.clone())
            .collect();
        String::from_utf8(bytes).expect("utf-8")
    }
}

fn decode(base64: bool, message: Message) -> Option<(u8, Vec<u8>)> {
    match message {
        Message::Binary(b) => Some((b[0], b[1..].to_vec())),
        Message::Text(t) if base64 => {
            let t = t.as_bytes();
            Some((t[0] - b'0', STANDARD.decode(&t[1..]).expect("base64")))
        }
        Message::Text(t) => panic!("text message on a binary protocol: {t}"),
        _ => None,
    }
}

async fn collect(client: &mut Client, base64: bool) -> Transcript {
    let mut t = Transcript::default();
    loop {
        let next = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("server sends in time");
        match next {
            Some(Ok(Message::Close(frame))) => {
                t.close = frame.map(|f| f.code);
                break;
            }
            Some(Ok(message)) => t.messages.extend(decode(base64, message)),
            None | Some(Err(_)) => break,
        }
    }
    t
}

fn frame(base64: bool, channel: u8, data: &[u8]) -> Message {
    if base64 {
        Message::text(format!(
            "{}{}",
            char::from(b'0' + channel),
            STANDARD.encode(data)
        ))
    } else {
        let mut v = vec![channel];
        v.extend_from_slice(data);
        Message::binary(v)
    }
}

const FAILURE_TEXT: &str = "command terminated with non-zero exit code: exit status 3";
const FAILURE_JSON: &str = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
const SUCCESS_JSON: &str = r#"{"metadata":{},"status":"Success"}"#;

/// One exec per subprotocol: stdin in, stdout and stderr out, the status on channel 3 in the
/// protocol's form, an empty first message on stdout, and a normal Close at the end.
async fn exec_round_trip(offer: &str, chosen: Option<&str>, base64: bool, code: i32) -> Transcript {
    let (mut client, negotiated, served) = connect(
        "command=sh&input=1&output=1&error=1",
        offer,
        LineEcho { code },
    )
    .await;
    assert_eq!(negotiated.as_deref(), chosen);
    client
        .send(frame(base64, 0, b"hello\n"))
        .await
        .expect("sends stdin");
    let t = collect(&mut client, base64).await;
    assert_eq!(
        t.messages.first(),
        Some(&(1, Vec::new())),
        "first message is an empty one on stdout"
    );
    assert_eq!(t.text(1), "got:hello\n");
    assert_eq!(t.text(2), "oops\n");
    assert_eq!(t.close, Some(CloseCode::Normal));
    // tungstenite queued its answer to the Close; reading on sends it and sees the end.
    let _ = tokio::time::timeout(WAIT, client.next()).await;
    let finished = tokio::time::timeout(WAIT, served)
        .await
        .expect("session ends")
        .expect("task");
    assert!(matches!(finished, Some(Ok(()))), "{finished:?}");
    t
}

#[tokio::test]
async fn channel_k8s_io_reports_failure_as_text() {
    let t = exec_round_trip("channel.k8s.io", Some("channel.k8s.io"), false, 3).await;
    assert_eq!(t.text(3), FAILURE_TEXT);
}

#[tokio::test]
async fn unnamed_protocol_is_channel_k8s_io_and_says_nothing_on_success() {
    let t = exec_round_trip("", None, false, 0).await;
    assert_eq!(t.text(3), "");
    assert!(t.messages.iter().all(|(c, _)| *c != 3));
}

#[tokio::test]
async fn base64_channel_k8s_io_is_text_both_ways() {
    let t = exec_round_trip(
        "base64.channel.k8s.io",
        Some("base64.channel.k8s.io"),
        true,
        3,
    )
    .await;
    assert_eq!(t.text(3), FAILURE_TEXT);
}

#[tokio::test]
async fn v4_channel_k8s_io_reports_a_status() {
    let t = exec_round_trip("v4.channel.k8s.io", Some("v4.channel.k8s.io"), false, 3).await;
    assert_eq!(t.text(3), FAILURE_JSON);
    let t = exec_round_trip("v4.channel.k8s.io", Some("v4.channel.k8s.io"), false, 0).await;
    assert_eq!(t.text(3), SUCCESS_JSON);
}

#[tokio::test]
async fn v4_base64_channel_k8s_io_reports_a_status_in_base64() {
    let t = exec_round_trip(
        "v4.base64.channel.k8s.io",
        Some("v4.base64.channel.k8s.io"),
        true,
        3,
    )
    .await;
    assert_eq!(t.text(3), FAILURE_JSON);
}

#[tokio::test]
async fn v5_channel_k8s_io_is_chosen_when_offered_anywhere() {
    let t = exec_round_trip(
        "v4.channel.k8s.io, v5.channel.k8s.io",
        Some("v5.channel.k8s.io"),
        false,
        3,
    )
    .await;
    assert_eq!(t.text(3), FAILURE_JSON);
}

#[tokio::test]
async fn v5_close_signal_ends_stdin() {
    let (mut client, negotiated, served) = connect(
        "command=wc&input=1&output=1",
        "v5.channel.k8s.io",
        CountStdin,
    )
    .await;
    assert_eq!(negotiated.as_deref(), Some("v5.channel.k8s.io"));
    for _ in 0..3 {
        client
            .send(frame(false, 0, &[b'x'; 1000]))
            .await
            .expect("stdin");
    }
    client
        .send(Message::binary(vec![255, 0]))
        .await
        .expect("close signal");
    let t = collect(&mut client, false).await;
    assert_eq!(t.text(1), "3000 bytes");
    assert_eq!(t.text(3), SUCCESS_JSON);
    // tungstenite queued its answer to the Close; reading on sends it and sees the end.
    let _ = tokio::time::timeout(WAIT, client.next()).await;
    let finished = tokio::time::timeout(WAIT, served).await.expect("ends");
    assert!(matches!(finished, Ok(Some(Ok(())))), "{finished:?}");
}

#[tokio::test]
async fn tty_resize_reaches_the_command() {
    let (mut client, _, served) = connect(
        "command=sh&input=1&output=1&tty=1",
        "v4.channel.k8s.io",
        LineEcho { code: 0 },
    )
    .await;
    client.send(frame(false, 0, b"ls\n")).await.expect("stdin");
    client
        .send(frame(false, 4, br#"{"Width":120,"Height":40}"#))
        .await
        .expect("resize");
    let t = collect(&mut client, false).await;
    assert_eq!(t.text(1), "got:ls\n[120x40]");
    // With a TTY there is no stderr channel.
    assert!(t.messages.iter().all(|(c, _)| *c != 2));
    assert_eq!(t.text(3), SUCCESS_JSON);
    drop(client);
    let _ = tokio::time::timeout(WAIT, served).await.expect("ends");
}

#[tokio::test]
async fn output_only_session_announces_itself_on_the_lowest_writable_channel() {
    // stderr only: the empty first message goes to channel 2.
    let (mut client, _, _served) = connect(
        "command=x&error=1",
        "v4.channel.k8s.io",
        LineEcho { code: 0 },
    )
    .await;
    let t = collect(&mut client, false).await;
    assert_eq!(t.messages.first(), Some(&(2, Vec::new())));
    assert_eq!(t.text(2), "oops\n");
    // stdin only: the error channel.
    let (mut client, _, _served) =
        connect("command=x&input=1", "v4.channel.k8s.io", CountStdin).await;
    client
        .send(Message::binary(vec![0, b'a']))
        .await
        .expect("stdin");
    let first = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("in time")
        .expect("message")
        .expect("ok");
    assert_eq!(first, Message::binary(vec![3]));
}

#[tokio::test]
async fn client_going_away_cancels_the_command() {
    let (mut client, _, served) =
        connect("command=sleep&output=1", "v4.channel.k8s.io", Forever).await;
    let first = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("in time")
        .expect("message")
        .expect("ok");
    assert_eq!(first, Message::binary(vec![1]));
    drop(client);
    let finished = tokio::time::timeout(WAIT, served)
        .await
        .expect("the session notices")
        .expect("task");
    assert!(finished.is_none(), "cancelled, not finished: {finished:?}");
}

#[tokio::test]
async fn pings_are_answered_and_big_output_arrives_whole() {
    struct Big;
    #[async_trait::async_trait]
    impl Executor for Big {
        async fn execute(&self, mut io: ExecIo) -> ExecOutcome {
            let chunk = vec![b'z'; 100_000];
            let stdout = io.stdout.as_mut().expect("stdout");
            for _ in 0..50 {
                if stdout.write_all(&chunk).await.is_err() {
                    return ExecOutcome::Error("client gone".into());
                }
            }
            ExecOutcome::Exited(0)
        }
    }
    let (mut client, _, served) = connect_with(
        "command=cat&output=1",
        "v4.channel.k8s.io",
        Big,
        WebSocketConfig {
            max_output_message: 16 * 1024,
            send_queue: 2,
            ..config()
        },
    )
    .await;
    client
        .send(Message::Ping(Bytes::from_static(b"hb")))
        .await
        .expect("ping");
    let mut pong = false;
    let mut stdout = 0usize;
    let mut largest = 0usize;
    loop {
        let next = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("in time");
        match next {
            Some(Ok(Message::Pong(p))) => {
                assert_eq!(&p[..], b"hb");
                pong = true;
            }
            Some(Ok(Message::Binary(b))) if b[0] == 1 => {
                stdout += b.len() - 1;
                largest = largest.max(b.len() - 1);
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
        }
    }
    assert!(pong, "the ping was answered");
    assert_eq!(stdout, 5_000_000);
    assert!(largest <= 16 * 1024, "{largest}");
    // tungstenite queued its answer to the Close; reading on sends it and sees the end.
    let _ = tokio::time::timeout(WAIT, client.next()).await;
    let finished = tokio::time::timeout(WAIT, served).await.expect("ends");
    assert!(matches!(finished, Ok(Some(Ok(())))), "{finished:?}");
}

#[tokio::test]
async fn unknown_protocols_are_refused_with_403() {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let opts = StreamOptions::from_query("output=1").expect("streams");
    let _served = serve(server_io, opts, Forever, config());
    let mut request = "ws://127.0.0.1:10250/exec/ci/build/app?output=1"
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("v9.channel.k8s.io"),
    );
    let err = client_async(request, client_io).await.expect_err("refused");
    match err {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("{other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_is_closed() {
    let (mut client, _, served) = connect_with(
        "command=sleep&output=1",
        "v4.channel.k8s.io",
        Forever,
        WebSocketConfig {
            idle_timeout: Some(Duration::from_secs(60)),
            ..config()
        },
    )
    .await;
    let _first = client.next().await;
    let finished = tokio::time::timeout(Duration::from_secs(120), served)
        .await
        .expect("closed after the idle timeout")
        .expect("task");
    assert!(finished.is_none());
}
