//! Events yield to pod status writes: a status write marks itself urgent while in flight, and
//! the publisher waits until urgent calls have been quiet for a moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Status writes must have been idle this long before an event is published ...
pub const QUIET: Duration = Duration::from_millis(100);
/// ... unless the event occurred this long ago.
pub const HOLD_MAX: Duration = Duration::from_secs(2);

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
