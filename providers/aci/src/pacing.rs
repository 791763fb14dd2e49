//! How the client stays under ARM's and ACI's limits instead of finding them by failing.
//!
//! - [`TokenBucket`] (vk-core's): `burst` calls at once, refilled at `per_second`.
//! - Creates and deletes of container groups wait on every bucket of
//!   [`default_group_write_limits`]: ACI's published limits are 100 per 5 minutes and 300 per
//!   hour per subscription (each, for creates and for deletes).
//! - [`Remaining`]: ARM reports on every answer how many writes (reads) the subscription has
//!   left (`x-ms-ratelimit-remaining-subscription-writes` / `-reads`). Below
//!   `low_water`, the next call of that kind waits `pause * (low_water - left) / low_water`
//!   (so 0 left waits the whole `pause`): ARM refills its buckets continuously, and spreading
//!   the last calls lets it.
//! - A 429 waits for its `Retry-After` (seconds or an HTTP date; capped) before the retry, and
//!   holds back every call of its kind for that long, not only the one that got it.
//! - [`RetryPolicy`] (vk-core's): exponential backoff with jitter for 5xx answers and timeouts.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
pub use vk_core::provider::pacing::{RateLimit, RetryPolicy, TokenBucket, retry_after};

/// ACI's published group create (and delete) limits: 100 per 5 min, 300 per hour.
pub fn default_group_write_limits() -> Vec<RateLimit> {
    vec![
        RateLimit {
            burst: 100,
            per_second: 100.0 / 300.0,
        },
        RateLimit {
            burst: 300,
            per_second: 300.0 / 3600.0,
        },
    ]
}

/// What ARM says is left, and a hold set by a 429, for one kind of call.
#[derive(Debug)]
pub struct Remaining {
    low_water: u32,
    pause: Duration,
    /// No call of this kind before this instant.
    hold_until: Mutex<Option<Instant>>,
}

impl Remaining {
    pub fn new(low_water: u32, pause: Duration) -> Self {
        Self {
            low_water,
            pause,
            hold_until: Mutex::new(None),
        }
    }

    /// The delay the rule above gives for `left` remaining calls.
    pub fn delay_for(&self, left: u32) -> Duration {
        if self.low_water == 0 || left >= self.low_water {
            return Duration::ZERO;
        }
        self.pause
            .mul_f64(f64::from(self.low_water - left) / f64::from(self.low_water))
    }

    /// ARM said `left` calls remain: hold the next one accordingly.
    pub fn note(&self, left: u32) {
        self.hold(self.delay_for(left));
    }

    /// Hold every call of this kind for `wait` (a 429's Retry-After), unless held longer.
    pub fn hold(&self, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        let until = Instant::now() + wait;
        let mut held = self.hold_until.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_none_or(|h| h < until) {
            *held = Some(until);
        }
    }

    /// Wait out a hold, if any.
    pub async fn wait(&self) {
        let until = *self.hold_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until
            && until > Instant::now()
        {
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_limits_hold_over_an_hour() {
        // Each bucket alone caps the hour at burst + rate * 3600; together, at the smaller.
        let hour: f64 = default_group_write_limits()
            .iter()
            .map(|l| f64::from(l.burst) + l.per_second * 3600.0)
            .fold(f64::MAX, f64::min);
        assert!(hour <= 600.0, "{hour}");
        let five_min = default_group_write_limits()[0];
        assert_eq!(five_min.burst, 100);
    }

    #[tokio::test(start_paused = true)]
    async fn low_remaining_counts_and_429s_hold_calls_back() {
        let r = Remaining::new(20, Duration::from_secs(2));
        assert_eq!(r.delay_for(20), Duration::ZERO);
        assert_eq!(r.delay_for(10), Duration::from_secs(1));
        assert_eq!(r.delay_for(0), Duration::from_secs(2));
        let start = Instant::now();
        r.note(100);
        r.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        r.hold(Duration::from_secs(3));
        r.note(10); // a shorter hold does not shorten it
        r.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
