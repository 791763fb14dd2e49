//! Sessions driven by the test client over an in-memory pipe.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{CloseReason, FlowControl, SpdyConfig, SpdyConnection};
use crate::stream::spdy::frame::{
    Frame, GoAway, GoAwayStatus, Ping, RstStatus, RstStream, Setting, SettingId, Settings,
    StreamId, SynReply, WindowUpdate, golden,
};
use crate::stream::spdy::test_client::{TestClient, WAIT};

fn config() -> SpdyConfig {
    SpdyConfig {
        close_linger: Duration::from_millis(500),
        ..SpdyConfig::default()
    }
}

fn pair(config: SpdyConfig) -> (SpdyConnection, TestClient<DuplexStream>) {
    let (server, client) = tokio::io::duplex(1 << 20);
    (SpdyConnection::new(server, config), TestClient::new(client))
}

fn id(n: u32) -> StreamId {
    StreamId::from_wire(n)
}

async fn accept(conn: &mut SpdyConnection) -> super::SpdyStream {
    tokio::time::timeout(WAIT, conn.accept())
        .await
        .expect("stream arrives in time")
        .expect("session open")
}

/// Asserts the server sends nothing for a while.
async fn assert_quiet(client: &mut TestClient<DuplexStream>) {
    let quiet = tokio::time::timeout(Duration::from_millis(200), client.next()).await;
    assert!(quiet.is_err(), "unexpected frame: {quiet:?}");
}

#[tokio::test]
async fn accepts_a_stream_replies_and_echoes_client_pings() {
    let (mut conn, mut client) = pair(config());
    let sid = client
        .open(&[("streamType", "stdin"), ("port", "80")])
        .await;
    let stream = accept(&mut conn).await;
    assert_eq!(stream.id(), sid);
    assert_eq!(stream.headers().get("streamtype"), Some("stdin"));
    assert_eq!(client.next().await, Some(SynReply::new(sid).into()));
    client.send(Ping { id: 2 }).await; // looks like an answer to a ping of ours: ignored
    client.send(Ping { id: 1 }).await;
    assert_eq!(client.next().await, Some(Ping { id: 1 }.into()));
}

#[tokio::test]
async fn moves_data_both_ways_and_half_closes() {
    let (mut conn, mut client) = pair(config());
    let sid = client.open(&[("streamtype", "stdin")]).await;
    let mut stream = accept(&mut conn).await;
    client.data(sid, b"hello ", false).await;
    client.data(sid, b"world", true).await;
    let mut got = String::new();
    stream.read_to_string(&mut got).await.expect("reads");
    assert_eq!(got, "hello world");
    stream.write_all(b"bye").await.expect("writes");
    stream.shutdown().await.expect("fin");
    drop(stream);
    conn.close();
    let t = client.collect().await;
    assert_eq!(t.text(sid), "bye");
    assert_eq!(t.fin, vec![sid]);
    assert_eq!(
        t.control.last(),
        Some(&Frame::GoAway(GoAway {
            last_good_stream_id: sid,
            status: GoAwayStatus::OK
        }))
    );
    client.shutdown().await;
    assert_eq!(conn.closed().await, CloseReason::Local);
}

#[tokio::test]
async fn a_dropped_writer_sends_fin() {
    let (mut conn, mut client) = pair(config());
    let sid = client.open(&[("streamtype", "stdout")]).await;
    let (recv, mut send) = accept(&mut conn).await.split();
    send.write_all(b"out").await.expect("writes");
    drop(send);
    drop(recv);
    assert_eq!(client.next().await, Some(SynReply::new(sid).into()));
    assert!(matches!(client.next().await, Some(Frame::Data(d)) if d.payload == "out" && !d.fin));
    assert!(matches!(client.next().await, Some(Frame::Data(d)) if d.payload.is_empty() && d.fin));
}

#[tokio::test]
async fn refuses_streams_beyond_the_limit() {
    let (mut conn, mut client) = pair(SpdyConfig {
        max_concurrent_streams: 1,
        ..config()
    });
    let first = client.open(&[("streamtype", "error")]).await;
    let second = client.open(&[("streamtype", "stdin")]).await;
    assert_eq!(client.next().await, Some(SynReply::new(first).into()));
    assert_eq!(
        client.next().await,
        Some(RstStream::new(second, RstStatus::REFUSED_STREAM).into())
    );
    assert_eq!(accept(&mut conn).await.id(), first);
}

#[tokio::test]
async fn a_writer_blocked_on_a_zero_window_resumes_on_window_update() {
    let (mut conn, mut client) = pair(config());
    // Announcing a window makes the server keep it (FlowControl::Auto).
    client
        .send(Settings {
            clear_persisted: false,
            entries: vec![Setting {
                flags: 0,
                id: SettingId::INITIAL_WINDOW_SIZE,
                value: 0,
            }],
        })
        .await;
    let sid = client.open(&[("streamtype", "stdout")]).await;
    let mut stream = accept(&mut conn).await;
    let writer = tokio::spawn(async move {
        stream.write_all(b"abcdef").await.expect("writes");
        stream.shutdown().await.expect("fin");
        stream
    });
    assert_eq!(client.next().await, Some(SynReply::new(sid).into()));
    assert_quiet(&mut client).await;
    assert!(!writer.is_finished());

    client
        .send(WindowUpdate {
            stream_id: sid,
            delta: 4,
        })
        .await;
    assert!(matches!(client.next().await, Some(Frame::Data(d)) if d.payload == "abcd"));
    assert_quiet(&mut client).await;

    client
        .send(WindowUpdate {
            stream_id: sid,
            delta: 100,
        })
        .await;
    assert!(matches!(client.next().await, Some(Frame::Data(d)) if d.payload == "ef"));
    assert!(matches!(client.next().await, Some(Frame::Data(d)) if d.fin));
    tokio::time::timeout(WAIT, writer)
        .await
        .expect("writer finishes")
        .expect("writer task");
}

#[tokio::test]
async fn the_session_window_holds_back_data_once_the_peer_keeps_it() {
    let (mut conn, mut client) = pair(config());
    client
        .send(WindowUpdate {
            stream_id: StreamId::ZERO,
            delta: 1,
        })
        .await;
    let sid = client.open(&[("streamtype", "stdout")]).await;
    let mut stream = accept(&mut conn).await;
    let writer = tokio::spawn(async move {
        stream
            .write_all(&vec![b'x'; 70 * 1024])
            .await
            .expect("writes");
        stream
    });
    let mut received = 0;
    assert_eq!(client.next().await, Some(SynReply::new(sid).into()));
    // 64 KiB + 1: the default session window plus the update.
    while received < 64 * 1024 + 1 {
        match client.next().await {
            Some(Frame::Data(d)) => received += d.payload.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, 64 * 1024 + 1);
    assert_quiet(&mut client).await;
    client
        .send(WindowUpdate {
            stream_id: StreamId::ZERO,
            delta: 64 * 1024,
        })
        .await;
    while received < 70 * 1024 {
        match client.next().await {
            Some(Frame::Data(d)) => received += d.payload.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::time::timeout(WAIT, writer)
        .await
        .expect("writer finishes")
        .expect("writer task");
}

#[tokio::test]
async fn a_peer_without_flow_control_gets_more_than_a_window() {
    let (mut conn, mut client) = pair(config());
    let _sid = client.open(&[("streamtype", "stdout")]).await;
    let mut stream = accept(&mut conn).await;
    let payload = vec![b'y'; 300 * 1024];
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        stream.write_all(&sent).await.expect("writes");
        stream.shutdown().await.expect("fin");
        stream
    });
    let mut received = Vec::new();
    loop {
        match client.next().await {
            Some(Frame::Data(d)) => {
                received.extend_from_slice(&d.payload);
                if d.fin {
                    break;
                }
            }
            Some(Frame::SynReply(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, payload);
    writer.await.expect("writer task");
}

#[tokio::test]
async fn reading_gives_windows_back_and_a_slow_reader_slows_the_peer() {
    let (mut conn, mut client) = pair(SpdyConfig {
        stream_recv_buffer: 16 * 1024,
        ..config()
    });
    let sid = client.open(&[("streamtype", "stdin")]).await;
    let mut stream = accept(&mut conn).await;
    // Far more than the stream buffer, without waiting for windows (like spdystream).
    let chunk = vec![b'z'; 8 * 1024];
    for _ in 0..32 {
        client.data(sid, &chunk, false).await;
    }
    client.data(sid, b"", true).await;
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut all))
        .await
        .expect("reads in time")
        .expect("reads");
    assert_eq!(all.len(), 256 * 1024);
    let (mut stream_updates, mut session_updates) = (0, 0);
    assert_eq!(client.next().await, Some(SynReply::new(sid).into()));
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(200), client.next()).await {
        match frame {
            Some(Frame::WindowUpdate(w)) if w.stream_id == sid => stream_updates += w.delta,
            Some(Frame::WindowUpdate(w)) if w.stream_id.is_zero() => session_updates += w.delta,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Stream updates stop at the peer's FIN (the spec says not to send them after it).
    assert!(stream_updates >= 128 * 1024, "{stream_updates}");
    assert!(session_updates >= 224 * 1024, "{session_updates}");
}

#[tokio::test]
async fn a_peer_reset_fails_the_writer() {
    let (mut conn, mut client) = pair(config());
    let sid = client.open(&[("streamtype", "stdout")]).await;
    let mut stream = accept(&mut conn).await;
    client.send(RstStream::new(sid, RstStatus::CANCEL)).await;
    let err = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = stream.write_all(b"x").await {
                return e;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("write fails in time");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn a_bad_header_block_resets_only_its_stream() {
    let (mut conn, mut client) = pair(config());
    // An uppercase header name is invalid, but the block inflates: the session survives.
    let bad = client
        .open_with_block(b"\0\0\0\x01\0\0\0\x01A\0\0\0\x01x")
        .await;
    assert_eq!(
        client.next().await,
        Some(RstStream::new(bad, RstStatus::PROTOCOL_ERROR).into())
    );
    let good = client.open(&[("streamtype", "stdin")]).await;
    assert_eq!(accept(&mut conn).await.id(), good);
    assert_eq!(client.next().await, Some(SynReply::new(good).into()));
}

#[tokio::test]
async fn malformed_input_ends_only_that_connection_with_goaway() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("SPDY/2 ping", vec![0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]),
        (
            "SYN_STREAM with garbage zlib",
            [
                &[0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
                &[0xde, 0xad, 0xbe, 0xef],
            ]
            .concat(),
        ),
        ("DATA on stream 0", vec![0, 0, 0, 0, 0, 0, 0, 1, b'x']),
        (
            "RST_STREAM status 0",
            vec![0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
        ),
        (
            "oversized control frame",
            vec![0x80, 3, 0, 4, 0, 0xff, 0xff, 0xff],
        ),
        (
            "even stream id",
            [golden::SYN_STREAM_1_ERROR, golden::SYN_STREAM_3_STDIN_FIN]
                .concat()
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i == 11 { 2 } else { b })
                .collect(),
        ),
    ];
    for (name, bytes) in cases {
        let (conn, mut client) = pair(config());
        client.send_raw(&bytes).await;
        let t = client.collect().await;
        assert!(
            matches!(
                t.control.last(),
                Some(Frame::GoAway(GoAway {
                    status: GoAwayStatus::PROTOCOL_ERROR,
                    ..
                }))
            ),
            "{name}: {:?}",
            t.control
        );
        let reason = tokio::time::timeout(WAIT, conn.closed())
            .await
            .expect("closes in time");
        assert!(
            matches!(reason, CloseReason::Protocol(_)),
            "{name}: {reason:?}"
        );
    }
}

#[tokio::test]
async fn stream_ids_must_increase() {
    let (mut conn, mut client) = pair(config());
    client.send_raw(golden::SYN_STREAM_1_ERROR).await;
    let _ = accept(&mut conn).await;
    // Same id again (on the same zlib stream, so only the id is wrong).
    let mut again = golden::SYN_STREAM_3_STDIN_FIN.to_vec();
    again[11] = 1;
    client.send_raw(&again).await;
    let t = client.collect().await;
    assert!(matches!(
        t.control.last(),
        Some(Frame::GoAway(GoAway { status: GoAwayStatus::PROTOCOL_ERROR, last_good_stream_id })) if last_good_stream_id.get() == 1
    ));
}

#[tokio::test]
async fn frames_for_unknown_streams_get_invalid_stream() {
    let (_conn, mut client) = pair(config());
    client
        .send(crate::stream::spdy::frame::Data::new(
            id(9),
            Bytes::from_static(b"x"),
            false,
        ))
        .await;
    assert_eq!(
        client.next().await,
        Some(RstStream::new(id(9), RstStatus::INVALID_STREAM).into())
    );
}

#[tokio::test]
async fn data_after_fin_is_stream_already_closed() {
    let (mut conn, mut client) = pair(config());
    let sid = client.open(&[("streamtype", "stdin")]).await;
    let _stream = accept(&mut conn).await;
    client.data(sid, b"a", true).await;
    client.data(sid, b"b", false).await;
    assert_eq!(client.next().await, Some(SynReply::new(sid).into()));
    assert_eq!(
        client.next().await,
        Some(RstStream::new(sid, RstStatus::STREAM_ALREADY_CLOSED).into())
    );
}

#[tokio::test]
async fn idle_sessions_are_closed() {
    let (mut conn, mut client) = pair(SpdyConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..config()
    });
    let sid = client.open(&[("streamtype", "stdout")]).await;
    let mut stream = accept(&mut conn).await;
    let t = client.collect().await;
    assert_eq!(
        t.control,
        vec![
            SynReply::new(sid).into(),
            RstStream::new(sid, RstStatus::CANCEL).into(),
            GoAway {
                last_good_stream_id: sid,
                status: GoAwayStatus::OK
            }
            .into()
        ]
    );
    assert!(stream.write_all(b"late").await.is_err());
    client.shutdown().await;
    assert_eq!(conn.closed().await, CloseReason::IdleTimeout);
}

#[tokio::test]
async fn pings_keep_an_idle_session_alive() {
    let (_conn, mut client) = pair(SpdyConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..config()
    });
    for n in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.send(Ping { id: 2 * n + 1 }).await;
        assert_eq!(client.next().await, Some(Ping { id: 2 * n + 1 }.into()));
    }
}

#[tokio::test]
async fn the_peer_closing_ends_reads_and_the_session() {
    let (mut conn, mut client) = pair(config());
    let _sid = client.open(&[("streamtype", "stdin")]).await;
    let mut stream = accept(&mut conn).await;
    client.shutdown().await;
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("ends in time")
        .expect("clean end");
    assert_eq!(conn.closed().await, CloseReason::PeerClosed);
    assert!(conn.accept().await.is_none());
}

#[tokio::test]
async fn strict_flow_control_waits_for_the_default_window() {
    let (mut conn, mut client) = pair(SpdyConfig {
        flow_control: FlowControl::Always,
        ..config()
    });
    let sid = client.open(&[("streamtype", "stdout")]).await;
    let mut stream = accept(&mut conn).await;
    let writer = tokio::spawn(async move {
        stream
            .write_all(&vec![0u8; 64 * 1024 + 10])
            .await
            .expect("writes");
        stream
    });
    let mut received = 0;
    while received < 64 * 1024 {
        match client.next().await {
            Some(Frame::Data(d)) => received += d.payload.len(),
            Some(Frame::SynReply(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_quiet(&mut client).await;
    client
        .send(WindowUpdate {
            stream_id: sid,
            delta: 10,
        })
        .await;
    assert_quiet(&mut client).await; // the session window is still empty
    client
        .send(WindowUpdate {
            stream_id: StreamId::ZERO,
            delta: 10,
        })
        .await;
    assert!(matches!(client.next().await, Some(Frame::Data(d)) if d.payload.len() == 10));
    writer.await.expect("writer task");
}
