//! Events off the reconcile's hot path: [`EventRecorder::record`] only queues (it never waits
//! for the API server, and drops the event when the bounded queue is full); one background
//! task publishes them (`events.k8s.io/v1`) with a few calls in flight.
//!
//! Like client-go's recorder it keeps the API server from drowning in events:
//! - the same event again (object, field path, type, reason, note) within [`SERIES_WINDOW`]
//!   patches the count of the first one (`series`) instead of creating another;
//! - more than [`SIMILAR_LIMIT`] different notes for the same object, type and reason within
//!   the window are combined into one series whose note says so;
//! - each object has a token bucket ([`SPAM_BURST`] events, then one per
//!   [`SPAM_REFILL`]); what exceeds it is dropped.
//!
//! Occurrences that arrive while a call for the same series is in flight are folded into the
//! next patch, so a series is never patched before it was created.
//!
//! Events yield to pod status: while the controller writes statuses (a burst of pods starting)
//! an event waits until no status write has been in flight for [`QUIET`], but never longer
//! than [`HOLD_MAX`] after it occurred. Its `eventTime` is when it occurred, not when it was
//! published.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as ApiEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Occurrences waiting to be published; more are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 1024;
/// API calls in flight at once.
pub const IN_FLIGHT: usize = 4;
/// Status writes must have been idle this long before an event is published ...
pub const QUIET: Duration = Duration::from_millis(100);
/// ... unless the event occurred this long ago.
pub const HOLD_MAX: Duration = Duration::from_secs(2);
/// An identical event within this window counts into the first one's series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(600);
/// Different notes for one object, type and reason before they are combined.
pub const SIMILAR_LIMIT: usize = 10;
/// Events per object at once, then one per [`SPAM_REFILL`].
pub const SPAM_BURST: f64 = 25.0;
pub const SPAM_REFILL: Duration = Duration::from_secs(300);
/// The API server refuses longer notes.
const NOTE_MAX_BYTES: usize = 1024;
/// Series remembered at most (the oldest idle ones are forgotten first).
const MAX_SERIES: usize = 4096;
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

/// Queues events for the background publisher. Cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Occurrence>,
    dropped: Arc<AtomicU64>,
    priority: Priority,
}

/// Tells the publisher when more urgent API calls (pod status writes) are in flight.
#[derive(Clone)]
pub struct Priority {
    inner: Arc<PriorityState>,
}

struct PriorityState {
    busy: AtomicUsize,
    base: tokio::time::Instant,
    /// When the last urgent call ended (nanoseconds after `base`; 0: none has).
    last_end: AtomicU64,
}

/// An urgent call in flight; dropping it ends it.
pub struct Urgent {
    priority: Priority,
}

impl Default for Priority {
    fn default() -> Self {
        Self {
            inner: Arc::new(PriorityState {
                busy: AtomicUsize::new(0),
                base: tokio::time::Instant::now(),
                last_end: AtomicU64::new(0),
            }),
        }
    }
}

impl Priority {
    /// Mark an urgent call in flight until the returned guard is dropped.
    pub fn urgent(&self) -> Urgent {
        self.inner.busy.fetch_add(1, Ordering::SeqCst);
        Urgent {
            priority: self.clone(),
        }
    }

    /// How much longer until urgent calls have been idle for [`QUIET`]; `None`: they are.
    fn quiet_in(&self) -> Option<Duration> {
        if self.inner.busy.load(Ordering::SeqCst) > 0 {
            return Some(QUIET);
        }
        let ended = match self.inner.last_end.load(Ordering::SeqCst) {
            0 => return None,
            ended => Duration::from_nanos(ended),
        };
        let since = self.inner.base.elapsed().saturating_sub(ended);
        QUIET.checked_sub(since).filter(|d| !d.is_zero())
    }

    /// Wait until urgent calls have been quiet, or until `deadline`.
    pub async fn until_quiet(&self, deadline: tokio::time::Instant) {
        while let Some(wait) = self.quiet_in() {
            let until = tokio::time::Instant::now() + wait;
            if until >= deadline {
                tokio::time::sleep_until(deadline).await;
                return;
            }
            tokio::time::sleep_until(until).await;
        }
    }
}

impl Drop for Urgent {
    fn drop(&mut self) {
        let state = &self.priority.inner;
        let now = u64::try_from(state.base.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        state.last_end.fetch_max(now, Ordering::SeqCst);
        state.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EventRecorder {
    /// Start the publisher; it ends once every recorder handle is dropped and what was
    /// queued is published.
    pub fn spawn(client: kube::Client, reporter: Reporter) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let priority = Priority::default();
        tokio::spawn(publish(client, reporter, rx, priority.clone()));
        Self {
            tx,
            dropped: Arc::default(),
            priority,
        }
    }

    /// Mark an urgent API call (a pod status write) in flight: events wait for it.
    pub fn urgent(&self) -> Urgent {
        self.priority.urgent()
    }

    /// Queue an event; never waits.
    pub fn record(&self, regarding: ObjectReference, type_: EventType, reason: &str, note: String) {
        let occurrence = Occurrence {
            regarding,
            type_,
            reason: reason.to_string(),
            note,
            at: Timestamp::now(),
        };
        if let Err(e) = self.tx.try_send(occurrence) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if let mpsc::error::TrySendError::Full(o) = e {
                // Powers of two only, so a flood does not become a flood of log lines.
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, reason = %o.reason, "event queue full; events dropped");
                }
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What identifies one series: the object (and container) and everything the user reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
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
    event: ApiEvent,
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

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
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
                name: Some(format!(
                    "{}.{:x}",
                    if key.object.name.is_empty() {
                        &self.reporter.controller
                    } else {
                        &key.object.name
                    },
                    o.at.as_nanosecond()
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
            event,
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

    /// Forget idle series (and similarity and rate-limit state) once there are too many.
    fn evict(&mut self, now: Timestamp) {
        if self.series.len() <= MAX_SERIES {
            return;
        }
        self.series
            .retain(|_, s| s.in_flight || s.dirty || elapsed(s.last, now) <= SERIES_WINDOW);
        self.similar
            .retain(|_, s| elapsed(s.since, now) <= SERIES_WINDOW);
        self.buckets
            .retain(|_, b| b.tokens < SPAM_BURST || elapsed(b.at, now) <= SPAM_REFILL);
        if self.series.len() > MAX_SERIES {
            let mut idle: Vec<(Timestamp, SeriesKey)> = self
                .series
                .iter()
                .filter(|(_, s)| !s.in_flight && !s.dirty)
                .map(|(k, s)| (s.last, k.clone()))
                .collect();
            idle.sort_by_key(|(at, _)| *at);
            let excess = self.series.len() - MAX_SERIES;
            for (_, key) in idle.into_iter().take(excess) {
                self.series.remove(&key);
            }
        }
    }

    /// The next call to make (and when its latest occurrence happened), marking its series in
    /// flight.
    fn next_call(&mut self) -> Option<(SeriesKey, Call, Timestamp)> {
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
                Call::Create(Box::new(event))
            };
            return Some((key, call, series.last));
        }
        None
    }

    /// A call finished: `Ok` when written, `Err(true)` when the event no longer exists (it
    /// is created again), `Err(false)` when it failed for good (its occurrences are lost).
    fn finished(&mut self, key: &SeriesKey, outcome: Result<(), bool>) {
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

/// Make one call, retrying a failed one twice; `Err(true)`: the event to patch is gone.
async fn call(client: kube::Client, call: Call) -> Result<(), bool> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=3 {
        let result = match &call {
            Call::Create(event) => {
                let ns = event.metadata.namespace.as_deref().unwrap_or("default");
                Api::<ApiEvent>::namespaced(client.clone(), ns)
                    .create(&PostParams::default(), event)
                    .await
                    .map(|_| ())
            }
            Call::Patch {
                namespace,
                name,
                series,
            } => {
                let patch = serde_json::json!({ "series": series });
                Api::<ApiEvent>::namespaced(client.clone(), namespace)
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 && matches!(call, Call::Patch { .. }) => {
                return Err(true);
            }
            // The namespace is being deleted, the request is invalid, or we may not: a retry
            // will not help.
            Err(kube::Error::Api(e)) if (400..500).contains(&e.code) && e.code != 429 => {
                tracing::debug!(error = %e, "publishing an event failed");
                return Err(false);
            }
            Err(e) => {
                tracing::debug!(error = %e, attempt, "publishing an event failed");
                if attempt < 3 {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
    Err(false)
}

async fn publish(
    client: kube::Client,
    reporter: Reporter,
    mut rx: mpsc::Receiver<Occurrence>,
    priority: Priority,
) {
    let mut aggregator = Aggregator::new(reporter);
    let mut calls: JoinSet<(SeriesKey, Result<(), bool>)> = JoinSet::new();
    let mut open = true;
    loop {
        while calls.len() < IN_FLIGHT {
            let Some((key, c, occurred)) = aggregator.next_call() else {
                break;
            };
            let client = client.clone();
            let priority = priority.clone();
            let held = HOLD_MAX.saturating_sub(elapsed(occurred, Timestamp::now()));
            let deadline = tokio::time::Instant::now() + held;
            calls.spawn(async move {
                priority.until_quiet(deadline).await;
                (key, call(client, c).await)
            });
        }
        if !open && calls.is_empty() {
            return;
        }
        tokio::select! {
            Some(done) = calls.join_next(), if !calls.is_empty() => {
                if let Ok((key, outcome)) = done {
                    aggregator.finished(&key, outcome);
                }
            }
            occurrence = rx.recv(), if open => match occurrence {
                Some(o) => aggregator.observe(o),
                None => open = false,
            },
        }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
