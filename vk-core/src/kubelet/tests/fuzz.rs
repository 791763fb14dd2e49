//! The kubelet API's request parsing fuzzed: paths, methods, the query options of logs, exec,
//! attach and port-forward, and upgrade headers, built at random from the parts real clients
//! send and junk (empty, huge, negative, percent-encoded, traversal, unicode), through the
//! whole of [`KubeletServer::handle`] (auth off, a scripted provider, the build pod in the
//! store). Every answer is a success or a 4xx with a reason (a `metav1.Status` when JSON),
//! never a panic, a hang or a 5xx.
//!
//! `cargo test` runs a few thousand requests from a fixed seed; `VK_FUZZ_SECONDS=600` runs for
//! that long (see [`crate::fuzz`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, Uri};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use super::provider::{TestProvider, store_with_build_pod};
use super::{KubeletAuth, KubeletServer, NODE};
use crate::fuzz::{Budget, Rng};

const ROOTS: &[&str] = &[
    "",
    "/",
    "//",
    "/containerLogs",
    "/exec",
    "/attach",
    "/portForward",
    "/run",
    "/pods",
    "/stats/summary",
    "/stats",
    "/metrics/resource",
    "/metrics",
    "/healthz",
    "/runningpods",
    "/logs",
    "/debug/pprof",
    "/configz",
    "/containerLogs/",
    "/exec/ci/build",
    "/attach/ci/build",
];

const ROUTES: &[&str] = &[
    "/containerLogs/ci/build/app",
    "/containerLogs/ci/build/setup",
    "/exec/ci/build/app",
    "/exec/ci/build/uid-build/sidecar",
    "/attach/ci/build/app",
    "/attach/ci/build/uid-build/app",
    "/portForward/ci/build",
    "/portForward/ci/build/uid-build",
    "/run/ci/build/app",
    "/pods",
    "/stats/summary",
    "/metrics/resource",
    "/runningpods",
];

const SEGMENTS: &[&str] = &[
    "ci",
    "build",
    "app",
    "a b",
    "<x>",
    "{}",
    "\"",
    "sidecar",
    "setup",
    "uid-build",
    "default",
    "nope",
    "",
    ".",
    "..",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff%fe",
    "caf%C3%A9",
    "a%20b",
    "~",
    "-",
    "_",
    "UPPER",
    "8080",
    "0",
    "-1",
    "65536",
    "x;y",
    "x,y",
    "@",
    "!",
    "$",
    "'",
    "(",
    "*",
];

const KEYS: &[&str] = &[
    "follow",
    "tailLines",
    "sinceSeconds",
    "sinceTime",
    "timestamps",
    "limitBytes",
    "previous",
    "command",
    "input",
    "output",
    "error",
    "stdin",
    "stdout",
    "stderr",
    "tty",
    "container",
    "port",
    "insecureSkipTLSVerifyBackend",
    "pretty",
    "",
    "Follow",
    "command[]",
];

const VALUES: &[&str] = &[
    "true",
    "false",
    "1",
    "0",
    "-1",
    "",
    "yes",
    "TRUE",
    "t",
    "f",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "1e3",
    "0x10",
    "2026-12-03T10:00:00Z",
    "2026-12-03T10:00:00.123456789+05:30",
    "2026-13-45T99:99:99Z",
    "now",
    "sh",
    "ls%20-l",
    "%",
    "%zz",
    "%00",
    "a+b",
    "%E2%80%AE",
    "8080",
    "65536",
    "0,80",
    "-5",
];

const UPGRADES: &[&[(&str, &str)]] = &[
    &[],
    &[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")],
    &[
        ("connection", "Upgrade"),
        ("upgrade", "SPDY/3.1"),
        ("x-stream-protocol-version", "v4.channel.k8s.io"),
    ],
    &[
        ("connection", "Upgrade"),
        ("upgrade", "SPDY/3.1"),
        ("x-stream-protocol-version", "portforward.k8s.io"),
    ],
    &[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-protocol", "v5.channel.k8s.io"),
    ],
    &[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "8"),
        ("sec-websocket-protocol", "nonsense, base64.channel.k8s.io"),
    ],
    &[("connection", "upgrade, keep-alive"), ("upgrade", "h2c")],
];

fn junk(rng: &mut Rng, pool: &[&str]) -> String {
    match rng.below(10) {
        0 => "a".repeat(1 + rng.below(20_000)),
        1 => format!("{}", rng.next_u64()),
        2 => format!("%{:02X}", rng.below(256)),
        _ => rng.pick(pool).to_string(),
    }
}

/// A request line and headers as a client might send them, or None when the string is not a
/// URI at all (the HTTP layer refuses those before the kubelet sees them).
fn request(rng: &mut Rng) -> Option<Request<Empty<Bytes>>> {
    let mut path = if rng.one_in(3) {
        let mut path = rng.pick(ROOTS).to_string();
        for _ in 0..rng.below(6) {
            path.push('/');
            path.push_str(&junk(rng, SEGMENTS));
        }
        path
    } else {
        // A route the server has, one part of it sometimes replaced.
        let mut parts: Vec<String> = rng.pick(ROUTES).split('/').map(str::to_owned).collect();
        if rng.one_in(2) {
            let at = 1 + rng.below(parts.len() - 1);
            parts[at] = junk(rng, SEGMENTS);
        }
        parts.join("/")
    };
    if path.is_empty() || !path.starts_with('/') {
        path.insert(0, '/');
    }
    if rng.below(4) > 0 {
        let pairs: Vec<String> = (0..rng.below(8))
            .map(|_| format!("{}={}", junk(rng, KEYS), junk(rng, VALUES)))
            .collect();
        path.push('?');
        path.push_str(&pairs.join(*rng.pick(&["&", "&&", ";"])));
    }
    let uri: Uri = path.parse().ok()?;
    let method = rng
        .pick(&[
            Method::GET,
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
            Method::PATCH,
        ])
        .clone();
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in *rng.pick(UPGRADES) {
        builder = builder.header(*name, *value);
    }
    builder.body(Empty::new()).ok()
}

/// What is wrong with the answer, if anything; counts its status in `seen`.
async fn judge(
    server: &KubeletServer,
    req: Request<Empty<Bytes>>,
    seen: &mut BTreeMap<u16, u64>,
) -> Result<(), String> {
    let answer = tokio::time::timeout(Duration::from_secs(10), server.handle(req, None))
        .await
        .map_err(|_| "no answer in 10 s".to_string())?;
    let status = answer.status();
    *seen.entry(status.as_u16()).or_default() += 1;
    if status.is_server_error() {
        return Err(format!("answered {status}"));
    }
    if !status.is_client_error() {
        return Ok(());
    }
    let json = answer
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let body = tokio::time::timeout(Duration::from_secs(10), answer.into_body().collect())
        .await
        .map_err(|_| format!("{status}: the body did not end in 10 s"))?
        .map_err(|e| format!("{status}: the body failed: {e}"))?
        .to_bytes();
    if !json {
        return match body.is_empty() {
            true => Err(format!("{status} with an empty body")),
            false => Ok(()),
        };
    }
    let parsed: Status = serde_json::from_slice(&body)
        .map_err(|e| format!("{status}: not a Status ({e}): {body:?}"))?;
    let reason_given = parsed.message.as_deref().is_some_and(|m| !m.is_empty());
    if parsed.code != Some(i32::from(status.as_u16())) || !reason_given {
        return Err(format!(
            "{status}: a Status without its code or reason: {body:?}"
        ));
    }
    Ok(())
}

#[tokio::test]
async fn random_requests_get_a_success_or_a_4xx_with_a_reason() {
    let provider = Arc::new(TestProvider::new());
    let server = KubeletServer::new(
        NODE,
        provider,
        store_with_build_pod(),
        KubeletAuth::DisabledForDev,
    );
    let mut budget = Budget::from_env(3000);
    let mut rng = budget.rng();
    let (mut unparsable, mut failures, mut seen) = (0u64, Vec::new(), BTreeMap::new());
    while budget.another() {
        let Some(req) = request(&mut rng) else {
            unparsable += 1;
            continue;
        };
        let line = format!("{} {:.300}", req.method(), req.uri());
        if let Err(why) = judge(&server, req, &mut seen).await {
            failures.push(format!("{line}: {why}"));
        }
        if failures.len() >= 10 {
            break;
        }
    }
    eprintln!(
        "[fuzz] the kubelet API: {} requests ({unparsable} not URIs), answers {seen:?}, seed {}, \
         {} bad answers",
        budget.done(),
        budget.seed,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "seed {}:\n{}",
        budget.seed,
        failures.join("\n")
    );
}
