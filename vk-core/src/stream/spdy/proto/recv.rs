//! What the reader task does with each frame the peer sends.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::CloseReason;
use super::state::{Reset, Shared, Slot, State};
use super::stream::SpdyStream;
use crate::stream::spdy::frame::{
    Data, Frame, MAX_WINDOW, Ping, RstStatus, SettingId, Settings, StreamId, SynReply, SynStream,
    WindowUpdate,
};

/// A stream-level error found while decoding: reset the stream, open or not.
pub(super) fn reset_from_reader(shared: &Shared, id: StreamId, status: RstStatus) {
    let mut st = shared.lock();
    if st.streams.contains_key(&id) {
        shared.reset_stream(&mut st, id, status);
    } else {
        if id.is_client_initiated() && id > st.last_peer_stream {
            // A SYN_STREAM with a bad header block still used up its id.
            st.last_peer_stream = id;
        }
        shared.reset_unknown(&mut st, id, status);
    }
}

pub(super) async fn on_frame(
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<SpdyStream>,
    frame: Frame,
) -> Result<(), CloseReason> {
    match frame {
        Frame::SynStream(f) => on_syn_stream(shared, accept_tx, f),
        Frame::Data(f) => on_data(shared, f).await,
        Frame::RstStream(f) => {
            let mut st = shared.lock();
            if let Some(slot) = st.streams.get_mut(&f.stream_id)
                && slot.reset.is_none()
            {
                slot.reset = Some(Reset::Remote(f.status));
                if let Some(w) = slot.recv_waker.take() {
                    w.wake();
                }
                if let Some(w) = slot.send_waker.take() {
                    w.wake();
                }
                shared.maybe_remove(&mut st, f.stream_id);
            }
            Ok(())
        }
        Frame::Settings(f) => on_settings(shared, &f),
        Frame::Ping(ping) => {
            // Odd ids are the client's own pings; even ones would answer ours (we send none).
            if ping.is_from_client() {
                let mut st = shared.lock();
                shared.send_reply(&mut st, Frame::Ping(Ping { id: ping.id }));
            }
            Ok(())
        }
        Frame::GoAway(f) => {
            // The peer opens no more streams; the ones open go on until it closes the socket.
            tracing::debug!(status = %f.status, "peer sent GOAWAY");
            Ok(())
        }
        Frame::Headers(f) => {
            let mut st = shared.lock();
            match st.streams.get_mut(&f.stream_id) {
                Some(slot) => {
                    if f.fin && !slot.recv_fin {
                        slot.recv_fin = true;
                        if let Some(w) = slot.recv_waker.take() {
                            w.wake();
                        }
                        shared.maybe_remove(&mut st, f.stream_id);
                    }
                }
                None => unknown_stream(shared, &mut st, f.stream_id),
            }
            Ok(())
        }
        Frame::WindowUpdate(f) => on_window_update(shared, f),
        Frame::SynReply(f) => {
            // This side opens no streams, so there is nothing to reply to.
            let mut st = shared.lock();
            if st.streams.contains_key(&f.stream_id) {
                shared.reset_stream(&mut st, f.stream_id, RstStatus::PROTOCOL_ERROR);
            } else {
                shared.reset_unknown(&mut st, f.stream_id, RstStatus::INVALID_STREAM);
            }
            Ok(())
        }
        Frame::Unknown { kind, .. } => {
            tracing::debug!(kind, "ignoring SPDY control frame of unknown type");
            Ok(())
        }
    }
}

/// A frame for a stream that is not open: if it was never opened, that is INVALID_STREAM;
/// if it was closed, frames still in flight are dropped quietly.
fn unknown_stream(shared: &Shared, st: &mut State, id: StreamId) {
    if !id.is_client_initiated() || id > st.last_peer_stream {
        shared.reset_unknown(st, id, RstStatus::INVALID_STREAM);
    }
}

fn on_syn_stream(
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<SpdyStream>,
    f: SynStream,
) -> Result<(), CloseReason> {
    let id = f.stream_id;
    let mut st = shared.lock();
    if st.goaway_sent {
        // After GOAWAY new streams are ignored (the peer knows from last-good-stream-id).
        return Ok(());
    }
    if !id.is_client_initiated() || id <= st.last_peer_stream {
        return Err(CloseReason::Protocol(format!(
            "SYN_STREAM {id} is not odd and above {}",
            st.last_peer_stream
        )));
    }
    st.last_peer_stream = id;
    if st.streams.len() >= shared.config.max_concurrent_streams || accept_tx.is_closed() {
        tracing::debug!(stream = %id, "refusing SPDY stream");
        shared.reset_unknown(&mut st, id, RstStatus::REFUSED_STREAM);
        return Ok(());
    }
    let send_window = st.initial_send_window;
    st.streams
        .insert(id, Slot::new(send_window, f.fin, f.unidirectional));
    if !f.unidirectional {
        shared.send(&mut st, SynReply::new(id).into());
    }
    drop(st);
    let stream = SpdyStream::new(shared.clone(), id, f.headers);
    if let Err(e) = accept_tx.try_send(stream) {
        // Only if the acceptor went away just now: refuse instead of half-accepting.
        let stream = match e {
            mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s) => s,
        };
        stream.reset(RstStatus::REFUSED_STREAM);
    }
    Ok(())
}

async fn on_data(shared: &Arc<Shared>, data: Data) -> Result<(), CloseReason> {
    let mut pending = Some(data);
    while let Some(data) = pending.take() {
        pending = deliver(shared, data);
        if pending.is_some() {
            // The stream's buffer is full: stop reading the socket until the reader catches
            // up. This is the only brake on a peer that ignores flow control.
            tokio::select! {
                biased;
                _ = shared.closing.cancelled() => return Ok(()),
                _ = shared.recv_space.notified() => {}
            }
        }
    }
    Ok(())
}

/// Hands DATA to its stream; gives it back if the stream's buffer has no room.
fn deliver(shared: &Shared, data: Data) -> Option<Data> {
    let mut st = shared.lock();
    let id = data.stream_id;
    let len = data.payload.len();
    let cap = shared.config.stream_recv_buffer;
    let Some(slot) = st.streams.get_mut(&id) else {
        // The peer counted these bytes against the session window: give them back.
        shared.credit_session(&mut st, len);
        unknown_stream(shared, &mut st, id);
        return None;
    };
    if slot.reset.is_some() {
        shared.credit_session(&mut st, len);
        return None;
    }
    if slot.recv_fin {
        shared.reset_stream(&mut st, id, RstStatus::STREAM_ALREADY_CLOSED);
        shared.credit_session(&mut st, len);
        return None;
    }
    if data.compressed {
        // Compressed DATA (a SPDY/3 draft feature) is not implemented.
        shared.reset_stream(&mut st, id, RstStatus::INTERNAL_ERROR);
        shared.credit_session(&mut st, len);
        return None;
    }
    if !slot.recv_handle {
        if data.fin {
            slot.recv_fin = true;
        }
        shared.credit(&mut st, id, len);
        shared.maybe_remove(&mut st, id);
        return None;
    }
    if slot.recv_buffered > 0 && slot.recv_buffered + len > cap {
        return Some(data);
    }
    if len > 0 {
        slot.recv_buf.push_back(data.payload);
        slot.recv_buffered += len;
    }
    if data.fin {
        slot.recv_fin = true;
    }
    if let Some(w) = slot.recv_waker.take() {
        w.wake();
    }
    if data.fin {
        shared.maybe_remove(&mut st, id);
    }
    None
}

fn on_settings(shared: &Shared, f: &Settings) -> Result<(), CloseReason> {
    let Some(window) = f.get(SettingId::INITIAL_WINDOW_SIZE) else {
        return Ok(());
    };
    if window > MAX_WINDOW {
        return Err(CloseReason::Protocol(format!(
            "SETTINGS_INITIAL_WINDOW_SIZE {window} exceeds 2^31-1"
        )));
    }
    let mut st = shared.lock();
    let delta = i64::from(window) - st.initial_send_window;
    st.initial_send_window = i64::from(window);
    for slot in st.streams.values_mut() {
        slot.send_window += delta;
    }
    // A peer that announces its receive window keeps it.
    st.stream_flow = true;
    Shared::wake_senders(&mut st);
    Ok(())
}

fn on_window_update(shared: &Shared, f: WindowUpdate) -> Result<(), CloseReason> {
    let mut st = shared.lock();
    if f.stream_id.is_zero() {
        if f.delta == 0 {
            return Err(CloseReason::Protocol(
                "session WINDOW_UPDATE with delta 0".into(),
            ));
        }
        st.session_send_window += i64::from(f.delta);
        if st.session_send_window > i64::from(MAX_WINDOW) {
            return Err(CloseReason::Protocol("session window above 2^31-1".into()));
        }
        st.session_flow = true;
        Shared::wake_senders(&mut st);
        return Ok(());
    }
    let id = f.stream_id;
    let Some(slot) = st.streams.get_mut(&id) else {
        // Updates may trail a stream's end; the spec says to ignore them.
        return Ok(());
    };
    if f.delta == 0 {
        shared.reset_stream(&mut st, id, RstStatus::PROTOCOL_ERROR);
        return Ok(());
    }
    slot.send_window += i64::from(f.delta);
    if slot.send_window > i64::from(MAX_WINDOW) {
        shared.reset_stream(&mut st, id, RstStatus::FLOW_CONTROL_ERROR);
        return Ok(());
    }
    if let Some(w) = slot.send_waker.take() {
        w.wake();
    }
    st.stream_flow = true;
    Ok(())
}
