//! What the reader task, the writer task and the stream handles share.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{CloseReason, DEFAULT_WINDOW, FlowControl, SpdyConfig};
use crate::stream::spdy::frame::{
    Data, Frame, GoAway, GoAwayStatus, MAX_WINDOW, RstStatus, RstStream, StreamId, WindowUpdate,
};

/// Control frames the reader may queue in reply to the peer (PING echoes, resets of unknown
/// streams) before it drops them: a peer that sends but never reads cannot grow the queue.
const MAX_QUEUED_REPLIES: usize = 1024;

/// What the writer task is asked to do.
pub(super) enum Outgoing {
    Frame(Frame),
    /// Flush, close the write side, stop.
    Shutdown,
}

/// Who reset a stream, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reset {
    Local(RstStatus),
    Remote(RstStatus),
}

/// One open stream.
pub(super) struct Slot {
    pub recv_buf: VecDeque<Bytes>,
    pub recv_buffered: usize,
    /// The peer half-closed (FIN).
    pub recv_fin: bool,
    pub recv_waker: Option<Waker>,
    /// Consumed bytes not yet given back with WINDOW_UPDATE.
    pub recv_unacked: u64,
    /// A `RecvStream` exists; without one, data is dropped (and credited).
    pub recv_handle: bool,
    pub send_window: i64,
    /// This side half-closed.
    pub send_fin: bool,
    pub send_waker: Option<Waker>,
    pub send_handle: bool,
    pub reset: Option<Reset>,
}

impl Slot {
    pub fn new(send_window: i64, recv_fin: bool, send_fin: bool) -> Slot {
        Slot {
            recv_buf: VecDeque::new(),
            recv_buffered: 0,
            recv_fin,
            recv_waker: None,
            recv_unacked: 0,
            recv_handle: true,
            send_window,
            send_fin,
            send_waker: None,
            send_handle: true,
            reset: None,
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.recv_waker.take() {
            w.wake();
        }
        if let Some(w) = self.send_waker.take() {
            w.wake();
        }
    }
}

pub(super) struct State {
    pub streams: HashMap<StreamId, Slot>,
    /// Highest stream id the peer opened (all of them were answered).
    pub last_peer_stream: StreamId,
    pub goaway_sent: bool,
    /// The writer takes no more frames.
    pub write_shut: bool,
    /// Set once the session is over for the streams: reads end, writes fail.
    pub closed: Option<CloseReason>,
    /// Why the session is being closed (the first reason given wins).
    pub close_reason: Option<CloseReason>,
    pub initial_send_window: i64,
    pub session_send_window: i64,
    pub stream_flow: bool,
    pub session_flow: bool,
    pub session_recv_unacked: u64,
    /// DATA bytes queued for the writer, and the writers waiting for that to drop.
    pub queued_data: usize,
    pub budget_waiters: Vec<Waker>,
    pub queued_frames: usize,
}

pub(super) struct Shared {
    pub config: SpdyConfig,
    state: Mutex<State>,
    out: mpsc::UnboundedSender<Outgoing>,
    /// Signalled when a stream's receive buffer shrinks (the reader may be waiting for room).
    pub recv_space: Notify,
    /// Cancelled when a close starts: the reader stops taking frames.
    pub closing: CancellationToken,
    /// Cancelled when I/O must stop now, flushed or not.
    pub hard_stop: CancellationToken,
    closed_tx: watch::Sender<Option<CloseReason>>,
    started: Instant,
    last_activity_ms: AtomicU64,
}

impl Shared {
    pub fn new(
        config: SpdyConfig,
        out: mpsc::UnboundedSender<Outgoing>,
        closed_tx: watch::Sender<Option<CloseReason>>,
    ) -> Shared {
        let (stream_flow, session_flow) = match config.flow_control {
            FlowControl::Always => (true, true),
            FlowControl::Auto | FlowControl::Never => (false, false),
        };
        Shared {
            config,
            state: Mutex::new(State {
                streams: HashMap::new(),
                last_peer_stream: StreamId::ZERO,
                goaway_sent: false,
                write_shut: false,
                closed: None,
                close_reason: None,
                initial_send_window: i64::from(DEFAULT_WINDOW),
                session_send_window: i64::from(DEFAULT_WINDOW),
                stream_flow,
                session_flow,
                session_recv_unacked: 0,
                queued_data: 0,
                budget_waiters: Vec::new(),
                queued_frames: 0,
            }),
            out,
            recv_space: Notify::new(),
            closing: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            closed_tx,
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent-enough state to close.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that a frame moved, for the idle timeout.
    pub fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    /// When the session becomes idle if nothing moves before then.
    pub fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.config.idle_timeout?;
        let last = self.last_activity_ms.load(Ordering::Relaxed);
        Some(self.started + std::time::Duration::from_millis(last) + idle)
    }

    /// Queues a frame for the writer.
    pub fn send(&self, st: &mut State, frame: Frame) {
        if st.write_shut {
            return;
        }
        if let Frame::Data(d) = &frame {
            st.queued_data += d.payload.len();
        }
        st.queued_frames += 1;
        // The writer only goes away after `write_shut` is set, so this does not fail.
        let _ = self.out.send(Outgoing::Frame(frame));
    }

    /// Queues a reply the session can do without (coalescible per the spec).
    pub fn send_reply(&self, st: &mut State, frame: Frame) {
        if st.queued_frames < MAX_QUEUED_REPLIES {
            self.send(st, frame);
        }
    }

    /// The writer wrote `frames` frames carrying `data` DATA bytes.
    pub fn wrote(&self, frames: usize, data: usize) {
        let mut st = self.lock();
        st.queued_frames = st.queued_frames.saturating_sub(frames);
        st.queued_data = st.queued_data.saturating_sub(data);
        if st.queued_data < self.config.send_buffer {
            for w in st.budget_waiters.drain(..) {
                w.wake();
            }
        }
    }

    /// Whether DATA waits for the peer's stream and session windows.
    pub fn flow(&self, st: &State) -> (bool, bool) {
        match self.config.flow_control {
            FlowControl::Never => (false, false),
            FlowControl::Always => (true, true),
            FlowControl::Auto => (st.stream_flow, st.session_flow),
        }
    }

    /// Resets a stream from this side.
    pub fn reset_stream(&self, st: &mut State, id: StreamId, status: RstStatus) {
        let Some(slot) = st.streams.get_mut(&id) else {
            return;
        };
        if slot.reset.is_some() {
            return;
        }
        slot.reset = Some(Reset::Local(status));
        slot.recv_buf.clear();
        slot.recv_buffered = 0;
        slot.wake();
        self.send(st, RstStream::new(id, status).into());
        self.maybe_remove(st, id);
        self.recv_space.notify_one();
    }

    /// Answers a frame for a stream that is not open here.
    pub fn reset_unknown(&self, st: &mut State, id: StreamId, status: RstStatus) {
        self.send_reply(st, RstStream::new(id, status).into());
    }

    /// Forgets a stream once nobody holds it and it is over in both directions.
    pub fn maybe_remove(&self, st: &mut State, id: StreamId) {
        let done = st.streams.get(&id).is_some_and(|s| {
            !s.recv_handle && !s.send_handle && (s.reset.is_some() || (s.recv_fin && s.send_fin))
        });
        if done {
            st.streams.remove(&id);
        }
    }

    /// `n` received bytes of stream `id` were consumed (or dropped): give them back to the
    /// peer's windows once half a window has built up.
    pub fn credit(&self, st: &mut State, id: StreamId, n: usize) {
        let threshold = u64::from(DEFAULT_WINDOW / 2);
        let mut update = None;
        if let Some(slot) = st.streams.get_mut(&id)
            && !slot.recv_fin
            && slot.reset.is_none()
        {
            slot.recv_unacked += n as u64;
            if slot.recv_unacked >= threshold {
                update = Some(slot.recv_unacked.min(u64::from(MAX_WINDOW)) as u32);
                slot.recv_unacked = 0;
            }
        }
        if let Some(delta) = update {
            self.send(
                st,
                WindowUpdate {
                    stream_id: id,
                    delta,
                }
                .into(),
            );
        }
        self.credit_session(st, n);
    }

    pub fn credit_session(&self, st: &mut State, n: usize) {
        st.session_recv_unacked += n as u64;
        if st.session_recv_unacked >= u64::from(DEFAULT_WINDOW / 2) {
            let delta = st.session_recv_unacked.min(u64::from(MAX_WINDOW)) as u32;
            st.session_recv_unacked = 0;
            self.send(
                st,
                WindowUpdate {
                    stream_id: StreamId::ZERO,
                    delta,
                }
                .into(),
            );
        }
    }

    /// Wakes every writer waiting for a window.
    pub fn wake_senders(st: &mut State) {
        for slot in st.streams.values_mut() {
            if let Some(w) = slot.send_waker.take() {
                w.wake();
            }
        }
    }

    /// Starts closing: GOAWAY (once), then the writer flushes and closes its side.
    pub fn close(&self, reason: CloseReason, status: GoAwayStatus) {
        let mut st = self.lock();
        if st.close_reason.is_none() {
            st.close_reason = Some(reason);
        }
        if !st.goaway_sent {
            st.goaway_sent = true;
            let last_good_stream_id = st.last_peer_stream;
            self.send(
                &mut st,
                GoAway {
                    last_good_stream_id,
                    status,
                }
                .into(),
            );
            st.write_shut = true;
            let _ = self.out.send(Outgoing::Shutdown);
        }
        drop(st);
        self.closing.cancel();
    }

    /// The reason recorded by [`Shared::close`].
    pub fn close_reason(&self) -> CloseReason {
        self.lock()
            .close_reason
            .clone()
            .unwrap_or(CloseReason::Local)
    }

    /// The session is over for the streams: pending reads end, writes fail.
    pub fn mark_closed(&self, reason: CloseReason) {
        let mut st = self.lock();
        st.write_shut = true;
        if st.closed.is_none() {
            st.closed = Some(reason.clone());
        }
        for slot in st.streams.values_mut() {
            slot.wake();
        }
        for w in st.budget_waiters.drain(..) {
            w.wake();
        }
        drop(st);
        self.recv_space.notify_one();
    }

    /// The session's I/O is over: what [`super::SpdyConnection::closed`] waits for.
    pub fn signal_done(&self, reason: CloseReason) {
        self.closed_tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Resets every open stream (idle timeout).
    pub fn reset_all(&self, status: RstStatus) {
        let mut st = self.lock();
        let ids: Vec<StreamId> = st.streams.keys().copied().collect();
        for id in ids {
            self.reset_stream(&mut st, id, status);
        }
    }

    /// Queues DATA, charging the windows.
    pub fn send_data(&self, st: &mut State, data: Data) {
        let n = data.payload.len() as i64;
        if let Some(slot) = st.streams.get_mut(&data.stream_id) {
            slot.send_window -= n;
        }
        st.session_send_window -= n;
        self.send(st, data.into());
    }
}
