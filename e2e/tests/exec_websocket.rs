//! Exec over WebSocket through the API server, with the mock provider running the commands
//! as local processes:
//!
//! - kube-rs `Api::<Pod>::exec` offers `v5.channel.k8s.io, v4.channel.k8s.io`. Up to 1.35
//!   kube-apiserver translates v5 to SPDY/3.1 towards vk; from 1.36 it proxies the
//!   WebSocket as it is to a node that declares `ExtendWebSocketsToKubelet` (vk does),
//!   so vk's WebSocket server answers v5 itself. vk's debug log says which way it came.
//! - a legacy client offering only `v4.channel.k8s.io`, which kube-apiserver passes through
//!   unchanged on every version (its translator only takes requests that offer v5).

use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::kubectl_ok;
use e2e::pods::pod_for_node;
use e2e::vk::Vk;
use futures::{SinkExt, StreamExt};
use hyper::http::{self, header};
use hyper_util::rt::TokioIo;
use kube::api::AttachParams;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// A vk with its serving certificate and a running pod `shell` (container `main`) that
/// answers exec.
async fn setup(prefix: &str) -> TestBed {
    let s = Options::mock(prefix).serving_cert().start().await;
    s.run_pod(&pod_for_node("shell", &s.vk.node, &["main"], &[]))
        .await;
    s
}

/// What a kube-rs exec produced.
#[derive(Debug)]
struct Ran {
    stdout: String,
    stderr: String,
    status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
}

impl Ran {
    /// The exit code, as kubectl reads it from the status.
    fn exit_code(&self) -> i32 {
        if self.status.status.as_deref() == Some("Success") {
            return 0;
        }
        self.status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref()?.parse().ok())
            .unwrap_or(-1)
    }
}

/// `Api::<Pod>::exec` in `shell`/`main`, with `input` on stdin when given.
async fn run(s: &TestBed, command: &[&str], input: Option<&[u8]>) -> anyhow::Result<Ran> {
    let params = AttachParams::default()
        .container("main")
        .stdin(input.is_some())
        .stdout(true)
        .stderr(true);
    let mut attached = s.pods.exec("shell", command.to_vec(), &params).await?;
    let mut stdout = attached.stdout().expect("stdout");
    let mut stderr = attached.stderr().expect("stderr");
    let status = attached.take_status().expect("status");
    if let Some(input) = input {
        let mut stdin = attached.stdin().expect("stdin");
        stdin.write_all(input).await?;
        // The end of stdin: kube-rs sends v5's CLOSE for it.
        stdin.shutdown().await?;
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (r1, r2) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    r1?;
    r2?;
    let status = status.await.ok_or_else(|| anyhow::anyhow!("no status"))?;
    attached.join().await?;
    Ok(Ran {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        status,
    })
}

/// The minor version of the API server.
async fn server_minor(client: &kube::Client) -> u32 {
    let info = client.apiserver_version().await.expect("version");
    info.minor
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .expect("minor version")
}

/// vk's debug lines for exec/attach sessions that came over `transport`.
fn exec_lines(vk: &Vk, transport: &str) -> Vec<String> {
    vk.logs()
        .lines()
        .filter(|l| l.contains("streaming session") && l.contains("transport="))
        .filter(|l| l.contains(transport))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn kube_rs_exec_streams_stdout_stderr_stdin_and_the_exit_status() {
    let s = setup("vk-exec-ws").await;

    let ran = run(&s, &["sh", "-c", "echo out; echo err >&2; exit 3"], None)
        .await
        .expect("exec");
    assert_eq!(ran.stdout, "out\n");
    assert_eq!(ran.stderr, "err\n");
    assert_eq!(ran.exit_code(), 3, "{ran:?}");
    assert_eq!(ran.status.reason.as_deref(), Some("NonZeroExitCode"));

    let ran = run(&s, &["cat"], Some(b"hello\nworld\n"))
        .await
        .expect("exec with stdin");
    assert_eq!(ran.stdout, "hello\nworld\n");
    assert_eq!(ran.exit_code(), 0, "{ran:?}");

    let ran = run(
        &s,
        &["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"],
        None,
    )
    .await
    .expect("big output");
    assert_eq!(ran.stdout.len(), 3_000_000);
    assert!(ran.stdout.bytes().all(|b| b == b'x'));

    // Which way the sessions reached vk: translated to SPDY by a 1.35 apiserver, WebSocket v5
    // straight from a 1.36+ one (vk declared ExtendWebSocketsToKubelet).
    let minor = server_minor(&s.client).await;
    if minor >= 36 {
        let ws = exec_lines(&s.vk, "websocket");
        assert!(
            ws.iter().any(|l| l.contains("v5.channel.k8s.io")),
            "no WebSocket v5 exec in vk's log:\n{}",
            s.vk.logs()
        );
        // The typed Node (k8s-openapi v1_33) has no such field: read it raw.
        let declared = kubectl_ok(&[
            "get",
            "node",
            &s.vk.node,
            "-o",
            "jsonpath={.status.declaredFeatures}",
        ]);
        assert_eq!(declared, r#"["ExtendWebSocketsToKubelet"]"#);
    } else {
        assert!(
            !exec_lines(&s.vk, "SPDY/3.1").is_empty(),
            "no SPDY exec in vk's log:\n{}",
            s.vk.logs()
        );
        assert!(exec_lines(&s.vk, "websocket").is_empty());
    }
    eprintln!(
        "vk exec log lines (apiserver 1.{minor}):\n{}",
        exec_lines(&s.vk, "transport").join("\n")
    );
}

/// A `v4.channel.k8s.io` WebSocket to pods/exec, as browser consoles and older client
/// libraries open it; returns the upgraded stream and the protocol the answer named.
async fn legacy_websocket(
    s: &TestBed,
    query: &str,
) -> (WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, String) {
    let uri = format!(
        "/api/v1/namespaces/{}/pods/shell/exec?container=main&{query}",
        s.ns.name
    );
    let request = http::Request::get(uri)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, generate_key())
        .header(header::SEC_WEBSOCKET_PROTOCOL, "v4.channel.k8s.io")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = s.client.send(request).await.expect("exec request");
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    let protocol = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let upgraded = hyper::upgrade::on(response).await.expect("upgraded");
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    (ws, protocol)
}

/// Reads channel messages until the server closes: (stdout, stderr, error channel).
async fn read_channels(
    ws: &mut WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
) -> (Vec<Vec<u8>>, String, String) {
    let mut messages = Vec::new();
    let (mut stderr, mut error) = (String::new(), String::new());
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("the server answers")
    {
        match message.expect("message") {
            Message::Binary(b) => match b.first() {
                Some(1) => messages.push(b[1..].to_vec()),
                Some(2) => stderr.push_str(&String::from_utf8_lossy(&b[1..])),
                Some(3) => error.push_str(&String::from_utf8_lossy(&b[1..])),
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    (messages, stderr, error)
}

#[tokio::test]
async fn legacy_v4_websocket_is_passed_through_to_vk() {
    let s = setup("vk-exec-v4").await;

    let (mut ws, protocol) = legacy_websocket(
        &s,
        "command=sh&command=-c&command=read%20line%3B%20echo%20got%20%24line%3B%20echo%20err%20%3E%262%3B%20exit%205&stdin=true&stdout=true&stderr=true",
    )
    .await;
    // Only vk's WebSocket server speaks v4 here: the apiserver's translator speaks v5 only.
    assert_eq!(protocol, "v4.channel.k8s.io");
    ws.send(Message::binary(b"\0hello\n".to_vec()))
        .await
        .expect("stdin");
    let (stdout, stderr, error) = read_channels(&mut ws).await;
    assert_eq!(
        stdout.first().map(Vec::len),
        Some(0),
        "vk's first message is an empty one on stdout"
    );
    assert_eq!(String::from_utf8(stdout.concat()).unwrap(), "got hello\n");
    assert_eq!(stderr, "err\n");
    let status: serde_json::Value = serde_json::from_str(&error).expect("a JSON status");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "5");
    drop(ws);

    let lines = exec_lines(&s.vk, "websocket");
    assert!(
        lines.iter().any(|l| l.contains("v4.channel.k8s.io")),
        "vk did not see a v4 WebSocket:\n{}",
        s.vk.logs()
    );
    eprintln!("vk exec log lines:\n{}", lines.join("\n"));
}
