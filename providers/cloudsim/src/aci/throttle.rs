//! Request limits as ARM and ACI apply them, per subscription: ARM's read and write budgets
//! (fixed windows; what is left goes out in `x-ms-ratelimit-remaining-subscription-reads` /
//! `-writes`), and ACI's own limits on creates and deletes of container groups (sliding
//! windows of 5 minutes and an hour). Over a limit: 429 with `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::config::{AciQuotas, ArmBudget};
use super::error::AciError;
use aci::wire::codes;

#[derive(Default)]
struct Window {
    start: Option<Instant>,
    reads: u32,
    writes: u32,
}

/// Which ACI limit an operation counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Create,
    Delete,
}

#[derive(Default)]
pub struct Throttle {
    windows: Mutex<HashMap<String, Window>>,
    recent: Mutex<HashMap<(String, Kind), VecDeque<Instant>>>,
}

const FIVE_MIN: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);

impl Throttle {
    /// Count a call of `subscription` (a write unless `read`): what is left of the budget
    /// afterwards, or the 429.
    pub fn arm(&self, budget: &ArmBudget, subscription: &str, read: bool) -> Result<u32, AciError> {
        let now = Instant::now();
        let window = Duration::from_secs(budget.window_secs.max(1));
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows
            .entry(subscription.to_ascii_lowercase())
            .or_default();
        let start = *w.start.get_or_insert(now);
        if now.duration_since(start) >= window {
            *w = Window {
                start: Some(now),
                reads: 0,
                writes: 0,
            };
        }
        let (used, limit) = if read {
            (&mut w.reads, budget.reads)
        } else {
            (&mut w.writes, budget.writes)
        };
        if *used >= limit {
            let left = window.saturating_sub(now.duration_since(w.start.unwrap_or(now)));
            return Err(AciError {
                code: codes::SUBSCRIPTION_REQUESTS_THROTTLED.into(),
                ..AciError::throttled(
                    left.as_secs().max(1),
                    format!(
                        "Number of {} requests for subscription '{subscription}' exceeded the limit of '{limit}' for time interval '{}'. Please try again after '{}' seconds.",
                        if read { "read" } else { "write" },
                        humantime(window),
                        left.as_secs().max(1)
                    ),
                )
            });
        }
        *used += 1;
        Ok(limit - *used)
    }

    /// Count a create or delete of a group of `subscription` against ACI's limits.
    pub fn aci(&self, quotas: &AciQuotas, subscription: &str, kind: Kind) -> Result<(), AciError> {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let log = recent
            .entry((subscription.to_ascii_lowercase(), kind))
            .or_default();
        while log.front().is_some_and(|t| now.duration_since(*t) >= HOUR) {
            log.pop_front();
        }
        let in_5_min = log
            .iter()
            .filter(|t| now.duration_since(**t) < FIVE_MIN)
            .count();
        let what = match kind {
            Kind::Create => "ContainerGroupCreates",
            Kind::Delete => "ContainerGroupDeletes",
        };
        let over = |limit: u32, period: Duration, count: usize| -> Option<AciError> {
            (count >= limit as usize).then(|| {
                let oldest = log.get(log.len().saturating_sub(count)).copied().unwrap_or(now);
                let wait = period.saturating_sub(now.duration_since(oldest)).as_secs().max(1);
                AciError::throttled(
                    wait,
                    format!("Resource type 'Microsoft.ContainerInstance/containerGroups' has exceeded the limit of '{limit}' for '{what}' in '{}'. Please try again after '{wait}' seconds.", humantime(period)),
                )
            })
        };
        if let Some(e) = over(quotas.creates_per_5_min, FIVE_MIN, in_5_min) {
            return Err(e);
        }
        if let Some(e) = over(quotas.creates_per_hour, HOUR, log.len()) {
            return Err(e);
        }
        log.push_back(now);
        Ok(())
    }
}

fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
