//! `kubectl port-forward` through the API server to vk's kubelet API. On 1.35 kubectl tunnels
//! SPDY over WebSocket to the apiserver, which unwraps it and speaks SPDY/3.1
//! (`portforward.k8s.io`) to vk. The mock provider connects pod port `P` to the address in the
//! pod's `mock.vk.io/port-forward.P` annotation: here a small HTTP server of the test's own.
//! kube-rs speaks WebSocket channels (`v4.channel.k8s.io`), which the API server passes
//! through to vk unchanged. From 1.36, for a node that declares `ExtendWebSocketsToKubelet`,
//! the API server passes kubectl's WebSocket through too, and vk unwraps the SPDY inside.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use e2e::harness::{Options, TestBed};
use e2e::pods::pod_for_node;
use e2e::{client, kubectl, kubectl_command, kubectl_ok};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The "container": an HTTP/1.0 server answering `hello from the pod: <path>`. Requests for
/// `/together` are held until two of them are in flight at once (then answered `together`),
/// which shows that concurrent connections really travel at the same time.
struct HttpServer {
    address: String,
    requests: Arc<AtomicUsize>,
}

impl HttpServer {
    fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new((Mutex::new(0usize), Condvar::new()));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (counter, in_flight) = (counter.clone(), in_flight.clone());
                std::thread::spawn(move || serve_http(conn, &counter, &in_flight));
            }
        });
        HttpServer { address, requests }
    }
}

fn serve_http(mut conn: TcpStream, requests: &AtomicUsize, in_flight: &(Mutex<usize>, Condvar)) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split(' ').nth(1).unwrap_or("?").to_string();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap_or(0);
        let _ = write!(conn, "HTTP/1.0 200 OK\r\nContent-Length: {n}\r\n\r\n");
        let chunk: Vec<u8> = (0..64 * 1024).map(pattern).collect();
        let mut left = n;
        while left > 0 {
            let take = left.min(chunk.len());
            if conn.write_all(&chunk[..take]).is_err() {
                return;
            }
            left -= take;
        }
        return;
    }
    let body = if path == "/together" {
        let (count, cond) = in_flight;
        let mut n = count.lock().unwrap();
        *n += 1;
        cond.notify_all();
        let (n, _) = cond
            .wait_timeout_while(n, Duration::from_secs(20), |n| *n < 2)
            .unwrap();
        if *n >= 2 { "together" } else { "alone" }.to_string()
    } else {
        format!("hello from the pod: {path}")
    };
    let _ = write!(
        conn,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// Byte `i` of a `/bytes/N` body (64 KiB chunks repeat).
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// A GET through the forwarded local port; the response body.
fn get(local_port: u16, path: &str) -> std::io::Result<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", local_port))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!(
            "not an HTTP 200 response: {response:?}"
        ))),
    }
}

/// An address where nothing listens.
fn closed_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A vk with its serving certificate and a running pod `web` whose port 80 is the test's HTTP
/// server and whose port 81 has nothing listening (at the address returned last).
async fn setup(prefix: &str) -> (TestBed, HttpServer, String) {
    let s = Options::mock(prefix).serving_cert().start().await;
    let server = HttpServer::start();
    let refused = closed_address();
    let pod = pod_for_node(
        "web",
        &s.vk.node,
        &["main"],
        &[
            ("mock.vk.io/port-forward.80", &server.address),
            ("mock.vk.io/port-forward.81", &refused),
        ],
    );
    s.run_pod(&pod).await;
    (s, server, refused)
}

/// A running `kubectl port-forward pod/web :P...` on 127.0.0.1.
struct PortForward {
    child: Child,
    /// Remote port to the local port kubectl chose.
    local: HashMap<u16, u16>,
    stderr: Arc<Mutex<String>>,
}

impl PortForward {
    fn start(s: &TestBed, remote_ports: &[u16]) -> PortForward {
        let specs: Vec<String> = remote_ports.iter().map(|p| format!(":{p}")).collect();
        let mut child =
            kubectl_command(&["-n", &s.ns.name, "port-forward", "--address", "127.0.0.1"])
                .arg("pod/web")
                .args(&specs)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        // "Forwarding from 127.0.0.1:41234 -> 80"
        let mut local = HashMap::new();
        while local.len() < remote_ports.len() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!(
                        "kubectl port-forward did not start: {}",
                        stderr.lock().unwrap()
                    )
                });
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                && let Some((l, r)) = rest.split_once(" -> ")
            {
                local.insert(r.trim().parse().unwrap(), l.parse().unwrap());
            }
        }
        PortForward {
            child,
            local,
            stderr,
        }
    }

    fn port(&self, remote: u16) -> u16 {
        self.local[&remote]
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (up to 30 s) for kubectl to exit; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn kubectl_port_forward_carries_http_requests_also_concurrently() {
    let (s, server, _refused) = setup("vk-pf").await;
    let mut pf = PortForward::start(&s, &[80]);
    let port = pf.port(80);

    let body = get(port, "/hello").unwrap_or_else(|e| panic!("{e}; kubectl: {}", pf.stderr()));
    assert_eq!(body, "hello from the pod: /hello");
    let body = get(port, "/again").unwrap();
    assert_eq!(body, "hello from the pod: /again");

    // Two requests at once: the server answers only when both are in flight together.
    let both: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(port, "/together")))
        .collect();
    let bodies: Vec<String> = both
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert_eq!(bodies, vec!["together", "together"]);
    // Twenty connections at once, each its own stream pair on kubectl's one connection.
    let many: Vec<_> = (0..20)
        .map(|i| std::thread::spawn(move || (i, get(port, &format!("/many/{i}")))))
        .collect();
    for t in many {
        let (i, body) = t.join().unwrap();
        assert_eq!(body.unwrap(), format!("hello from the pod: /many/{i}"));
    }

    // A large body arrives intact (the figure is printed, not asserted).
    const SIZE: usize = 64 * 1024 * 1024;
    let started = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(conn, "GET /bytes/{SIZE} HTTP/1.0\r\n\r\n").unwrap();
    let mut response = Vec::with_capacity(SIZE + 100);
    conn.read_to_end(&mut response).unwrap();
    let elapsed = started.elapsed();
    let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &response[body_at..];
    assert_eq!(body.len(), SIZE);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| *b == pattern(i % (64 * 1024))),
        "the body arrived altered"
    );
    eprintln!(
        "[port-forward] {} MiB through kubectl port-forward in {elapsed:.2?}: {:.1} MB/s",
        SIZE >> 20,
        SIZE as f64 / elapsed.as_secs_f64() / 1e6
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 25);
    assert!(pf.running(), "kubectl still forwards: {}", pf.stderr());
}

#[tokio::test]
async fn a_port_with_nothing_listening_is_an_error_for_kubectl_and_vk_keeps_forwarding() {
    let (s, _server, refused) = setup("vk-pf-err").await;
    let mut pf = PortForward::start(&s, &[81]);
    // The local connection is accepted, then closed without a response.
    assert!(get(pf.port(81), "/").is_err());
    // kubectl (client-go >= 1.28) reports the error stream's text and, on any error from the
    // pod's side, closes the whole connection and exits ("lost connection to pod").
    let code = pf.wait_exit();
    let stderr = pf.stderr();
    assert!(
        stderr
            .to_lowercase()
            .contains("an error occurred forwarding")
            && stderr.contains("error forwarding port 81 to pod ")
            && stderr.contains("lost connection to pod")
            && stderr.contains(&format!(
                "failed to connect to {} (the mock's address for port 81)",
                refused
            )),
        "kubectl's stderr: {stderr}"
    );
    assert_eq!(code, Some(1), "kubectl exits with an error: {stderr}");

    // vk is unaffected: a new forward works.
    let pf = PortForward::start(&s, &[80]);
    let body = get(pf.port(80), "/after").unwrap_or_else(|e| panic!("{e}; {}", pf.stderr()));
    assert_eq!(body, "hello from the pod: /after");
}

#[tokio::test]
async fn kube_rs_port_forward_over_websocket_channels_passed_through_the_api_server() {
    let (s, server, closed) = setup("vk-pf-ws").await;
    let pods: Api<Pod> = Api::namespaced(client().await, &s.ns.name);
    let mut pf = pods.portforward("web", &[80, 81]).await.unwrap();
    let refused = pf.take_error(81).unwrap();
    let mut stream = pf.take_stream(80).unwrap();
    stream
        .write_all(b"GET /websocket HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // v4 channels have no half-close: the stream ends when vk closes the socket, once the
    // forwards of both ports are over.
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the response and the end of the socket come")
    .unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200 OK")
            && response.ends_with("\r\n\r\nhello from the pod: /websocket"),
        "{response:?}"
    );
    let message = tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .expect("the error channel answers")
        .expect("an error for port 81");
    assert!(
        message.starts_with("error forwarding port 81 to pod ")
            && message.contains(&format!("failed to connect to {}", closed)),
        "{message}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

/// `apiserver_websocket_streaming_requests_total` for port-forward, by how the API server
/// handled them (1.36+; nothing before).
fn websocket_streaming_requests(proxy_type: &str) -> u64 {
    let metrics = kubectl(&["get", "--raw", "/metrics"]);
    let prefix = "apiserver_websocket_streaming_requests_total{";
    String::from_utf8_lossy(&metrics.stdout)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter(|l| {
            l.contains(&format!("proxy_type=\"{proxy_type}\""))
                && l.contains("subresource=\"portforward\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn kubectl_port_forward_to_a_node_declaring_extend_websockets_to_kubelet() {
    let (s, _server, _refused) = setup("vk-pf-tunnel").await;
    // Declared here by hand, as a node status field (the API server reads it from there).
    kubectl_ok(&[
        "patch",
        "node",
        &s.vk.node,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"declaredFeatures":["ExtendWebSocketsToKubelet"]}}"#,
    ]);
    let version = client().await.apiserver_version().await.unwrap();
    let minor: u32 = version.minor.trim_end_matches('+').parse().unwrap();
    let before = websocket_streaming_requests("proxied_to_kubelet");

    let pf = PortForward::start(&s, &[80]);
    let body = get(pf.port(80), "/tunnel").unwrap_or_else(|e| panic!("{e}; {}", pf.stderr()));
    assert_eq!(body, "hello from the pod: /tunnel");
    let body = get(pf.port(80), "/tunnel-again").unwrap();
    assert_eq!(body, "hello from the pod: /tunnel-again");

    let after = websocket_streaming_requests("proxied_to_kubelet");
    if minor >= 36 {
        assert!(
            after > before,
            "the API server proxied the WebSocket to vk ({before} -> {after})"
        );
    } else {
        assert_eq!(after, 0, "no such path before 1.36");
    }
}
