//! The publisher's bookkeeping, without I/O (unit-tested on its own): identical events become
//! one series, many similar notes one combined series, and each object has a token bucket.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as ApiEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::runtime::events::EventType;

/// An identical event within this window counts into the first one's series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(600);
/// Different notes for one object, type and reason before they are combined.
pub const SIMILAR_LIMIT: usize = 10;
/// Events per object at once, then one per [`SPAM_REFILL`].
pub const SPAM_BURST: f64 = 25.0;
pub const SPAM_REFILL: Duration = Duration::from_secs(300);
/// The API server refuses longer notes.
const NOTE_MAX_BYTES: usize = 1024;
/// Series remembered at most (the oldest idle ones are forgotten first); also the most
/// similarity and rate-limit entries.
pub(crate) const MAX_SERIES: usize = 4096;
/// An eviction cuts a map down to this, so that the next is thousands of events away (each
/// sorts the map: once per event, a burst of pods spent its time there).
pub(crate) const EVICT_TO: usize = MAX_SERIES * 3 / 4;
const COMBINED_PREFIX: &str = "(combined from similar events): ";

/// Who reports the events.
#[derive(Clone, Debug)]
pub struct Reporter {
    pub controller: String,
    pub instance: String,
}

/// One occurrence of an event about an object.
#[derive(Clone, Debug)]
pub struct Occurrence {
    pub regarding: ObjectReference,
    pub type_: EventType,
    pub reason: String,
    pub note: String,
    pub at: Timestamp,
}

/// What identifies one series: the object (and container) and everything the user reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct SeriesKey {
    object: ObjectKey,
    field_path: Option<String>,
    type_: &'static str,
    reason: String,
    /// The note, or empty for the combined series of similar events.
    note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ObjectKey {
    namespace: String,
    name: String,
    uid: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SimilarKey {
    object: ObjectKey,
    field_path: Option<String>,
    type_: &'static str,
    reason: String,
}

struct Series {
    /// The event as created (name, first time, note); later occurrences only patch `series`.
    /// Boxed: the map's table holds a pointer per slot, not a whole Event.
    event: Box<ApiEvent>,
    count: i32,
    last: Timestamp,
    created: bool,
    in_flight: bool,
    /// Occurrences not yet written.
    dirty: bool,
}

struct Similar {
    since: Timestamp,
    notes: HashSet<String>,
}

struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// The API call a series needs next.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Call {
    Create(Box<ApiEvent>),
    /// Merge-patch the series of the named event.
    Patch {
        namespace: String,
        name: String,
        series: EventSeries,
    },
}

/// The bookkeeping of the publisher, without I/O (unit-tested on its own).
pub(crate) struct Aggregator {
    reporter: Reporter,
    series: HashMap<SeriesKey, Series>,
    similar: HashMap<SimilarKey, Similar>,
    buckets: HashMap<ObjectKey, Bucket>,
    /// Series with unwritten occurrences and no call in flight, oldest first.
    ready: VecDeque<SeriesKey>,
    pub(crate) spam_dropped: u64,
}

fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

fn truncate(mut note: String) -> String {
    if note.len() > NOTE_MAX_BYTES {
        let mut end = NOTE_MAX_BYTES;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    note
}

pub(super) fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    let d = to.duration_since(from);
    if d.is_positive() {
        d.unsigned_abs()
    } else {
        Duration::ZERO
    }
}

impl Aggregator {
    pub(crate) fn new(reporter: Reporter) -> Self {
        Self {
            reporter,
            series: HashMap::new(),
            similar: HashMap::new(),
            buckets: HashMap::new(),
            ready: VecDeque::new(),
            spam_dropped: 0,
        }
    }

    fn allow(&mut self, object: &ObjectKey, at: Timestamp) -> bool {
        let bucket = self.buckets.entry(object.clone()).or_insert(Bucket {
            tokens: SPAM_BURST,
            at,
        });
        let refill = elapsed(bucket.at, at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        bucket.tokens = (bucket.tokens + refill).min(SPAM_BURST);
        bucket.at = at;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Account for one occurrence; the series it belongs to becomes ready unless a call for
    /// it is already in flight.
    pub(crate) fn observe(&mut self, o: Occurrence) {
        let object = ObjectKey {
            namespace: o
                .regarding
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: o.regarding.name.clone().unwrap_or_default(),
            uid: o.regarding.uid.clone().unwrap_or_default(),
        };
        if !self.allow(&object, o.at) {
            self.spam_dropped += 1;
            tracing::debug!(object = %object.name, reason = %o.reason, "event dropped by the per-object rate limit");
            return;
        }
        let type_ = type_name(o.type_);
        let note = truncate(o.note);
        let similar_key = SimilarKey {
            object: object.clone(),
            field_path: o.regarding.field_path.clone(),
            type_,
            reason: o.reason.clone(),
        };
        let similar = self.similar.entry(similar_key).or_insert_with(|| Similar {
            since: o.at,
            notes: HashSet::new(),
        });
        if elapsed(similar.since, o.at) > SERIES_WINDOW {
            similar.since = o.at;
            similar.notes.clear();
        }
        if similar.notes.len() < SIMILAR_LIMIT {
            similar.notes.insert(note.clone());
        }
        let combined = !similar.notes.contains(&note);
        let key = SeriesKey {
            object,
            field_path: o.regarding.field_path.clone(),
            type_,
            reason: o.reason.clone(),
            note: if combined {
                String::new()
            } else {
                note.clone()
            },
        };
        // A series with a call in flight always takes the occurrence (a new event for it
        // could not be told apart from the old one when the call finishes).
        if let Some(series) = self.series.get_mut(&key)
            && (series.in_flight || elapsed(series.last, o.at) <= SERIES_WINDOW)
        {
            series.count = series.count.saturating_add(1);
            series.last = o.at;
            if !series.dirty && !series.in_flight {
                self.ready.push_back(key.clone());
            }
            series.dirty = true;
            return;
        }
        let note = if combined {
            format!("{COMBINED_PREFIX}{note}")
        } else {
            note
        };
        let event = ApiEvent {
            metadata: ObjectMeta {
                namespace: Some(key.object.namespace.clone()),
                name: Some(event_name(
                    if key.object.name.is_empty() {
                        &self.reporter.controller
                    } else {
                        &key.object.name
                    },
                    o.at.as_nanosecond(),
                )),
                ..Default::default()
            },
            action: Some(o.reason.clone()),
            reason: Some(o.reason),
            note: Some(truncate(note)),
            type_: Some(type_.into()),
            event_time: Some(MicroTime(o.at)),
            regarding: Some(o.regarding),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            ..Default::default()
        };
        // A series seen again after its window starts over as a new event.
        let queued = self.series.get(&key).is_some_and(|s| s.dirty);
        let fresh = Series {
            event: Box::new(event),
            count: 1,
            last: o.at,
            created: false,
            in_flight: false,
            dirty: true,
        };
        self.series.insert(key.clone(), fresh);
        if !queued {
            self.ready.push_back(key);
        }
        self.evict(o.at);
    }

    /// Forget idle series, similarity and rate-limit state once there are too many of one:
    /// first what is past its window (a refilled bucket is as a new one), then the oldest,
    /// down to [`EVICT_TO`].
    fn evict(&mut self, now: Timestamp) {
        if self.series.len() > MAX_SERIES {
            self.series
                .retain(|_, s| s.in_flight || s.dirty || elapsed(s.last, now) <= SERIES_WINDOW);
            if self.series.len() > EVICT_TO {
                let mut idle: Vec<(Timestamp, SeriesKey)> = self
                    .series
                    .iter()
                    .filter(|(_, s)| !s.in_flight && !s.dirty)
                    .map(|(k, s)| (s.last, k.clone()))
                    .collect();
                idle.sort_by_key(|(at, _)| *at);
                let excess = self.series.len() - EVICT_TO;
                for (_, key) in idle.into_iter().take(excess) {
                    self.series.remove(&key);
                }
            }
        }
        if self.similar.len() > MAX_SERIES {
            self.similar
                .retain(|_, s| elapsed(s.since, now) <= SERIES_WINDOW);
            if self.similar.len() > EVICT_TO {
                let mut oldest: Vec<(Timestamp, SimilarKey)> = self
                    .similar
                    .iter()
                    .map(|(k, s)| (s.since, k.clone()))
                    .collect();
                oldest.sort_by_key(|(at, _)| *at);
                let excess = self.similar.len() - EVICT_TO;
                for (_, key) in oldest.into_iter().take(excess) {
                    self.similar.remove(&key);
                }
            }
        }
        if self.buckets.len() > MAX_SERIES {
            let refill = SPAM_REFILL.as_secs_f64();
            self.buckets
                .retain(|_, b| b.tokens + elapsed(b.at, now).as_secs_f64() / refill < SPAM_BURST);
            if self.buckets.len() > EVICT_TO {
                // Forgetting a bucket only forgives that object's spam.
                let mut oldest: Vec<(Timestamp, ObjectKey)> = self
                    .buckets
                    .iter()
                    .map(|(k, b)| (b.at, k.clone()))
                    .collect();
                oldest.sort_by_key(|(at, _)| *at);
                let excess = self.buckets.len() - EVICT_TO;
                for (_, key) in oldest.into_iter().take(excess) {
                    self.buckets.remove(&key);
                }
            }
        }
    }

    /// The next call to make (and when its latest occurrence happened), marking its series in
    /// flight.
    pub(super) fn next_call(&mut self) -> Option<(SeriesKey, Call, Timestamp)> {
        while let Some(key) = self.ready.pop_front() {
            let Some(series) = self.series.get_mut(&key) else {
                continue;
            };
            if series.in_flight || !series.dirty {
                continue;
            }
            series.in_flight = true;
            series.dirty = false;
            let series_now = EventSeries {
                count: series.count,
                last_observed_time: MicroTime(series.last),
            };
            let call = if series.created {
                Call::Patch {
                    namespace: key.object.namespace.clone(),
                    name: series.event.metadata.name.clone().unwrap_or_default(),
                    series: series_now,
                }
            } else {
                let mut event = series.event.clone();
                event.series = (series.count > 1).then_some(series_now);
                Call::Create(event)
            };
            return Some((key, call, series.last));
        }
        None
    }

    /// A call finished: `Ok` when written, `Err(true)` when the event no longer exists (it
    /// is created again), `Err(false)` when it failed for good (its occurrences are lost).
    pub(super) fn finished(&mut self, key: &SeriesKey, outcome: Result<(), bool>) {
        let Some(series) = self.series.get_mut(key) else {
            return;
        };
        series.in_flight = false;
        match outcome {
            Ok(()) => series.created = true,
            Err(true) => {
                series.created = false;
                series.dirty = true;
            }
            Err(false) => {}
        }
        if series.dirty {
            self.ready.push_back(key.clone());
        }
    }

    /// How many series, similarity and rate-limit entries are kept (for tests).
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        (self.series.len(), self.similar.len(), self.buckets.len())
    }

    /// Whether a rate-limit bucket is kept for the object named `name` (for tests).
    #[cfg(test)]
    pub(crate) fn has_bucket(&self, name: &str) -> bool {
        self.buckets.keys().any(|k| k.name == name)
    }

    #[cfg(test)]
    pub(crate) fn drain_calls(&mut self) -> Vec<Call> {
        let mut calls = Vec::new();
        while let Some((key, call, _)) = self.next_call() {
            self.finished(&key, Ok(()));
            calls.push(call);
        }
        calls
    }
}

/// `<object>.<nanoseconds in hex>`, the object's name cut so the whole stays within the 253
/// characters an Event's name may have (a pod may use all 253 itself).
fn event_name(object: &str, nanos: i128) -> String {
    let suffix = format!(".{nanos:x}");
    let room = 253usize.saturating_sub(suffix.len());
    let mut cut = object.len().min(room);
    while !object.is_char_boundary(cut) {
        cut -= 1;
    }
    // A name may not end in '.' or '-' before the suffix's dot.
    let head = object[..cut].trim_end_matches(['.', '-']);
    format!("{head}{suffix}")
}

#[cfg(test)]
mod event_name_tests {
    use super::event_name;

    #[test]
    fn long_object_names_are_cut_to_fit() {
        assert_eq!(event_name("build", 255), "build.ff");
        let long = "a".repeat(253);
        let name = event_name(&long, 1_764_000_000_000_000_000);
        assert_eq!(name.len(), 253, "{name}");
        assert!(name.starts_with("aaaa") && name.contains('.'));
        let dotted = format!("{}.b", "a".repeat(240));
        assert!(!event_name(&dotted, 1 << 60).contains(".."));
    }
}
