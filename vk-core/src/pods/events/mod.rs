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

mod priority;
mod series;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as ApiEvent;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use priority::{HOLD_MAX, Priority, QUIET, Urgent};
pub(crate) use series::{Aggregator, Call};
pub use series::{Occurrence, Reporter, SERIES_WINDOW, SIMILAR_LIMIT, SPAM_BURST, SPAM_REFILL};
use series::{SeriesKey, elapsed};

/// Occurrences waiting to be published; more are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 1024;
/// API calls in flight at once.
pub const IN_FLIGHT: usize = 4;

/// Queues events for the background publisher. Cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Occurrence>,
    dropped: Arc<AtomicU64>,
    priority: Priority,
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

/// A failed call is tried twice more, 0.5 s and then 1 s later.
fn call_retries() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_factor(2.0)
        .with_max_times(2)
}

/// Whether another try may help: not when the namespace is being deleted, the request is
/// invalid or we may not (a 4xx other than 429).
fn retryable(err: &kube::Error) -> bool {
    !matches!(err, kube::Error::Api(e) if (400..500).contains(&e.code) && e.code != 429)
}

/// Make one call, retried per [`call_retries`]; `Err(true)`: the event to patch is gone.
async fn call(client: kube::Client, call: Call) -> Result<(), bool> {
    let call = &call;
    let once = || {
        let client = client.clone();
        async move {
            match call {
                Call::Create(event) => {
                    let ns = event.metadata.namespace.as_deref().unwrap_or("default");
                    Api::<ApiEvent>::namespaced(client, ns)
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
                    Api::<ApiEvent>::namespaced(client, namespace)
                        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                }
            }
        }
    };
    let result = once
        .retry(call_retries())
        .when(retryable)
        .notify(|e, after| {
            tracing::debug!(error = %e, ?after, "publishing an event failed; retrying");
        })
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 && matches!(call, Call::Patch { .. }) => {
            Err(true)
        }
        Err(e) => {
            tracing::debug!(error = %e, "publishing an event failed");
            Err(false)
        }
    }
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
mod tests;
