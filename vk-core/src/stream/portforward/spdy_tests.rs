//! The session against a SPDY test client playing client-go's port forwarder.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::DuplexStream;

use super::serve;
use crate::stream::portforward::test_forwarder::{
    ECHO, GREETER, GREETING, REFUSED, REFUSED_MESSAGE, SILENT, TestForwarder,
};
use crate::stream::spdy::frame::{Frame, RstStatus, StreamId};
use crate::stream::spdy::test_client::TestClient;
use crate::stream::spdy::{SpdyConfig, SpdyConnection};

const CREATION_TIMEOUT: Duration = Duration::from_secs(2);

fn start(forwarder: &TestForwarder) -> (TestClient<DuplexStream>, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let config = SpdyConfig {
        close_linger: Duration::from_millis(200),
        ..SpdyConfig::default()
    };
    let forwarder: Arc<TestForwarder> = Arc::new(forwarder.clone());
    let task = tokio::spawn(async move {
        serve(
            SpdyConnection::new(server, config),
            forwarder,
            CREATION_TIMEOUT,
        )
        .await;
    });
    (TestClient::new(client), task)
}

/// client-go's order: the error stream, then the data stream, same headers.
async fn open_pair(
    client: &mut TestClient<DuplexStream>,
    port: &str,
    request: &str,
) -> (StreamId, StreamId) {
    let error = client
        .open(&[
            ("streamType", "error"),
            ("port", port),
            ("requestID", request),
        ])
        .await;
    // client-go closes its side of the error stream at once.
    client.data(error, b"", true).await;
    let data = client
        .open(&[
            ("streamType", "data"),
            ("port", port),
            ("requestID", request),
        ])
        .await;
    (error, data)
}

/// Everything the server sent per stream, until each of `until` has FIN or RST.
#[derive(Debug, Default)]
struct Seen {
    data: HashMap<StreamId, Vec<u8>>,
    fin: Vec<StreamId>,
    rst: Vec<(StreamId, RstStatus)>,
    replies: Vec<StreamId>,
}

impl Seen {
    fn text(&self, id: StreamId) -> String {
        String::from_utf8_lossy(self.data.get(&id).map_or(&[][..], Vec::as_slice)).into_owned()
    }

    fn ended(&self, id: StreamId) -> bool {
        self.fin.contains(&id) || self.rst.iter().any(|(r, _)| *r == id)
    }
}

async fn read_until_ended(client: &mut TestClient<DuplexStream>, until: &[StreamId]) -> Seen {
    let mut seen = Seen::default();
    while !until.iter().all(|id| seen.ended(*id)) {
        match client.next().await.expect("session still open") {
            Frame::Data(d) => {
                seen.data
                    .entry(d.stream_id)
                    .or_default()
                    .extend_from_slice(&d.payload);
                if d.fin {
                    seen.fin.push(d.stream_id);
                }
            }
            Frame::RstStream(r) => seen.rst.push((r.stream_id, r.status)),
            Frame::SynReply(r) => seen.replies.push(r.stream_id),
            _ => {}
        }
    }
    seen
}

#[tokio::test]
async fn a_pair_is_forwarded_both_ways_and_closed_when_the_pod_side_is_done() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let (error, data) = open_pair(&mut client, "80", "0").await;
    client.data(data, b"GET / HTTP/1.0\r\n\r\n", false).await;
    client.data(data, b"more", true).await;
    let seen = read_until_ended(&mut client, &[error, data]).await;
    assert_eq!(seen.replies, vec![error, data]);
    assert_eq!(seen.text(data), "GET / HTTP/1.0\r\n\r\nmore");
    assert_eq!(
        seen.text(error),
        "",
        "nothing on the error stream on success"
    );
    assert!(seen.fin.contains(&error) && seen.fin.contains(&data));
    assert!(seen.rst.is_empty(), "{:?}", seen.rst);
    assert_eq!(forwarder.calls(), vec![ECHO]);
}

#[tokio::test]
async fn pairs_are_matched_by_request_id_whatever_the_order_and_run_concurrently() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let e1 = client
        .open(&[("streamType", "error"), ("port", "80"), ("requestID", "1")])
        .await;
    let e2 = client
        .open(&[("streamType", "error"), ("port", "82"), ("requestID", "2")])
        .await;
    let d3 = client
        .open(&[("streamType", "data"), ("port", "80"), ("requestID", "3")])
        .await;
    let e3 = client
        .open(&[("streamType", "error"), ("port", "80"), ("requestID", "3")])
        .await;
    let d2 = client
        .open(&[("streamType", "data"), ("port", "82"), ("requestID", "2")])
        .await;
    let d1 = client
        .open(&[("streamType", "data"), ("port", "80"), ("requestID", "1")])
        .await;
    // Both echo pairs are open at once: neither has ended when the other gets its data.
    client.data(d3, b"three", false).await;
    client.data(d1, b"one", false).await;
    client.data(d1, b"", true).await;
    client.data(d3, b"", true).await;
    let seen = read_until_ended(&mut client, &[e1, d1, e2, d2, e3, d3]).await;
    assert_eq!(seen.text(d1), "one");
    assert_eq!(seen.text(d3), "three");
    assert_eq!(seen.text(d2).as_bytes(), GREETING);
    for e in [e1, e2, e3] {
        assert_eq!(seen.text(e), "");
    }
    let mut calls = forwarder.calls();
    calls.sort_unstable();
    assert_eq!(calls, vec![ECHO, ECHO, GREETER]);
}

#[tokio::test]
async fn a_failed_forward_is_reported_on_its_error_stream_and_the_session_goes_on() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let (error, data) = open_pair(&mut client, "81", "0").await;
    let seen = read_until_ended(&mut client, &[error, data]).await;
    assert_eq!(seen.text(error), REFUSED_MESSAGE);
    assert!(seen.fin.contains(&error), "the message ends with FIN");
    assert_eq!(seen.text(data), "");

    let (error, data) = open_pair(&mut client, "82", "1").await;
    let seen = read_until_ended(&mut client, &[error, data]).await;
    assert_eq!(seen.text(data).as_bytes(), GREETING);
    assert_eq!(forwarder.calls(), vec![REFUSED, GREETER]);
}

#[tokio::test]
async fn streams_without_a_valid_port_or_type_are_reset_and_nothing_is_forwarded() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let bad: &[&[(&str, &str)]] = &[
        &[("streamType", "data")],
        &[("streamType", "data"), ("port", "")],
        &[("streamType", "data"), ("port", "0")],
        &[("streamType", "data"), ("port", "65536")],
        &[("streamType", "data"), ("port", "http")],
        &[("port", "80")],
        &[("streamType", "stdin"), ("port", "80")],
    ];
    let mut ids = Vec::new();
    for headers in bad {
        ids.push(client.open(headers).await);
    }
    let seen = read_until_ended(&mut client, &ids).await;
    for id in &ids {
        assert!(
            seen.rst.contains(&(*id, RstStatus::CANCEL)),
            "stream {id} reset: {seen:?}"
        );
    }
    let (error, data) = open_pair(&mut client, "82", "7").await;
    let seen = read_until_ended(&mut client, &[error, data]).await;
    assert_eq!(seen.text(data).as_bytes(), GREETING);
    assert_eq!(forwarder.calls(), vec![GREETER]);
}

#[tokio::test]
async fn without_request_ids_consecutive_stream_ids_make_the_pair() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let error = client
        .open(&[("streamType", "error"), ("port", "82")])
        .await;
    let data = client.open(&[("streamType", "data"), ("port", "82")]).await;
    assert_eq!(data.get(), error.get() + 2);
    let seen = read_until_ended(&mut client, &[error, data]).await;
    assert_eq!(seen.text(data).as_bytes(), GREETING);
}

#[tokio::test]
async fn a_second_stream_of_the_same_type_is_reported_on_the_error_stream() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let error = client
        .open(&[("streamType", "error"), ("port", "80"), ("requestID", "5")])
        .await;
    let _again = client
        .open(&[("streamType", "error"), ("port", "80"), ("requestID", "5")])
        .await;
    let data = client
        .open(&[("streamType", "data"), ("port", "80"), ("requestID", "5")])
        .await;
    client.data(data, b"x", true).await;
    let seen = read_until_ended(&mut client, &[error, data]).await;
    assert_eq!(
        seen.text(error),
        "error processing stream for request 5: error stream already assigned"
    );
    assert_eq!(seen.text(data), "x", "the pair still works");
}

#[tokio::test(start_paused = true)]
async fn a_pair_missing_its_data_stream_times_out_with_a_message() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let error = client
        .open(&[("streamType", "error"), ("port", "80"), ("requestID", "9")])
        .await;
    let seen = read_until_ended(&mut client, &[error]).await;
    assert_eq!(
        seen.text(error),
        "(request=9) timed out waiting for streams"
    );
    // A data stream that comes later starts a new pair, which times out in turn.
    let data = client
        .open(&[("streamType", "data"), ("port", "80"), ("requestID", "9")])
        .await;
    let seen = read_until_ended(&mut client, &[data]).await;
    assert_eq!(seen.text(data), "");
    assert!(forwarder.calls().is_empty());
}

#[tokio::test]
async fn closing_the_connection_cancels_the_forwards_and_ends_the_session() {
    let forwarder = TestForwarder::default();
    let (mut client, task) = start(&forwarder);
    let (_error, data) = open_pair(&mut client, &SILENT.to_string(), "0").await;
    client.data(data, b"", true).await;
    while forwarder.calls().is_empty() {
        tokio::task::yield_now().await;
    }
    client.shutdown().await;
    drop(client);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the session ends although the forward never would")
        .expect("no panic");
}

#[tokio::test]
async fn forty_requests_on_two_ports_share_one_session() {
    let forwarder = TestForwarder::default();
    let (mut client, _task) = start(&forwarder);
    let mut pairs = Vec::new();
    // Open every pair before any data moves, so all forty are in flight together.
    for i in 0..40 {
        let port = if i % 2 == 0 { "80" } else { "82" };
        let (error, data) = open_pair(&mut client, port, &i.to_string()).await;
        pairs.push((i, error, data));
    }
    for (i, _, data) in &pairs {
        if i % 2 == 0 {
            client
                .data(*data, format!("request {i}").as_bytes(), true)
                .await;
        }
    }
    let all: Vec<StreamId> = pairs.iter().flat_map(|(_, e, d)| [*e, *d]).collect();
    let seen = read_until_ended(&mut client, &all).await;
    for (i, error, data) in &pairs {
        let want = if i % 2 == 0 {
            format!("request {i}").into_bytes()
        } else {
            GREETING.to_vec()
        };
        assert_eq!(
            seen.data.get(data).cloned().unwrap_or_default(),
            want,
            "pair {i}"
        );
        assert_eq!(seen.text(*error), "", "pair {i}");
    }
    assert_eq!(forwarder.calls().len(), 40);
}
