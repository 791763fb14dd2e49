//! Sequencing of stream data on the data channel, the same on both sides: each direction
//! numbers its `*_stream_data` messages from 0; the receiver acknowledges each one it keeps
//! and hands them on strictly in order (a message ahead of the next expected one is kept
//! until the gap fills; one already handed on is a duplicate: acknowledged again, dropped);
//! the sender keeps each message until it is acknowledged and sends it again when no
//! acknowledgement came in time.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::codec::AgentMessage;

/// What to do with a stream data message that arrived.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Acknowledge it (false: it was dropped and must come again).
    pub ack: bool,
    /// The messages that are now next in order, to hand on.
    pub ready: Vec<AgentMessage>,
}

/// The receiving side of one direction.
#[derive(Debug)]
pub struct Inbound {
    expected: i64,
    ahead: BTreeMap<i64, AgentMessage>,
    ahead_bytes: usize,
    max_bytes: usize,
}

impl Inbound {
    /// Keeps at most `max_bytes` of messages (payload and header) that arrived ahead of a gap.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            expected: 0,
            ahead: BTreeMap::new(),
            ahead_bytes: 0,
            max_bytes,
        }
    }

    /// What a message kept ahead counts against the limit: its payload and its header.
    fn cost(message: &AgentMessage) -> usize {
        message.payload.len() + 128
    }

    /// The sequence number handed on next.
    pub fn expected(&self) -> i64 {
        self.expected
    }

    pub fn accept(&mut self, message: AgentMessage) -> Accepted {
        let seq = message.sequence_number;
        if seq < self.expected {
            return Accepted {
                ack: true,
                ready: Vec::new(),
            };
        }
        if seq > self.expected {
            if self.ahead.contains_key(&seq) {
                return Accepted {
                    ack: true,
                    ready: Vec::new(),
                };
            }
            let cost = Self::cost(&message);
            if self.ahead_bytes + cost > self.max_bytes {
                return Accepted::default();
            }
            self.ahead_bytes += cost;
            self.ahead.insert(seq, message);
            return Accepted {
                ack: true,
                ready: Vec::new(),
            };
        }
        let mut ready = vec![message];
        self.expected += 1;
        while let Some(next) = self.ahead.remove(&self.expected) {
            self.ahead_bytes -= Self::cost(&next);
            ready.push(next);
            self.expected += 1;
        }
        Accepted { ack: true, ready }
    }
}

#[derive(Debug)]
struct Pending {
    seq: i64,
    frame: Vec<u8>,
    sent: Instant,
    first_sent: Instant,
}

/// The sending side of one direction.
#[derive(Debug)]
pub struct Outbound {
    message_type: &'static str,
    next: i64,
    unacked: VecDeque<Pending>,
}

impl Outbound {
    /// Messages of `message_type` (`input_stream_data` from a client, `output_stream_data`
    /// from an agent).
    pub fn new(message_type: &'static str) -> Self {
        Self {
            message_type,
            next: 0,
            unacked: VecDeque::new(),
        }
    }

    /// Number the next message; its frame, to send now (it is kept until acknowledged).
    pub fn push(&mut self, payload_type: u32, data: Vec<u8>) -> Vec<u8> {
        let m = AgentMessage::stream(self.message_type, self.next, payload_type, data);
        self.next += 1;
        let frame = m.encode();
        let now = Instant::now();
        self.unacked.push_back(Pending {
            seq: m.sequence_number,
            frame: frame.clone(),
            sent: now,
            first_sent: now,
        });
        frame
    }

    /// The message `seq` arrived.
    pub fn acked(&mut self, seq: i64) {
        if let Some(i) = self.unacked.iter().position(|p| p.seq == seq) {
            self.unacked.remove(i);
        }
    }

    /// How many are not acknowledged yet.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// How long the oldest unacknowledged message has waited since it was first sent.
    pub fn oldest_wait(&self) -> Option<Duration> {
        self.unacked.front().map(|p| p.first_sent.elapsed())
    }

    /// The frames to send again: those sent longer than `after` ago without an answer.
    pub fn due(&mut self, after: Duration) -> Vec<Vec<u8>> {
        let now = Instant::now();
        let mut out = Vec::new();
        for p in self.unacked.iter_mut() {
            if now.duration_since(p.sent) >= after {
                p.sent = now;
                out.push(p.frame.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::{message_type, payload};
    use super::*;

    fn m(seq: i64, data: &str) -> AgentMessage {
        AgentMessage::stream(
            message_type::OUTPUT_STREAM_DATA,
            seq,
            payload::OUTPUT,
            data.as_bytes().to_vec(),
        )
    }

    fn texts(v: &[AgentMessage]) -> Vec<String> {
        v.iter()
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect()
    }

    #[test]
    fn out_of_order_messages_are_handed_on_in_order_and_duplicates_dropped() {
        let mut inbound = Inbound::new(1024);
        let a = inbound.accept(m(1, "b"));
        assert!(a.ack && a.ready.is_empty());
        let a = inbound.accept(m(1, "b"));
        assert!(
            a.ack && a.ready.is_empty(),
            "a duplicate ahead is kept once"
        );
        let a = inbound.accept(m(0, "a"));
        assert_eq!(texts(&a.ready), ["a", "b"]);
        let a = inbound.accept(m(0, "a"));
        assert!(
            a.ack && a.ready.is_empty(),
            "an old one is acknowledged again"
        );
        assert_eq!(inbound.expected(), 2);
        let mut small = Inbound::new(130);
        assert!(small.accept(m(3, "xy")).ack);
        assert!(
            !small.accept(m(4, "z")).ack,
            "no room ahead: dropped, not acked"
        );
    }

    #[test]
    fn unacknowledged_messages_come_again() {
        let mut out = Outbound::new(message_type::INPUT_STREAM_DATA);
        out.push(payload::OUTPUT, b"a".to_vec());
        out.push(payload::OUTPUT, b"b".to_vec());
        assert_eq!(out.due(Duration::from_secs(60)).len(), 0);
        out.acked(0);
        let again = out.due(Duration::ZERO);
        assert_eq!(again.len(), 1);
        assert_eq!(AgentMessage::decode(&again[0]).unwrap().sequence_number, 1);
        out.acked(1);
        assert_eq!(out.unacked(), 0);
    }
}
