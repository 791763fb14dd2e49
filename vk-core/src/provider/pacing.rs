//! Staying under a cloud API's published limits instead of finding them by failing, the
//! pieces every provider shares:
//!
//! - [`TokenBucket`]: `burst` calls at once, refilled at `per_second` ([`RateLimit`]).
//! - [`retry_after`]: a `Retry-After` header (seconds or an HTTP date).
//! - [`RetryPolicy`]: exponential backoff with jitter for throttling, 5xx answers and
//!   timeouts.

use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt as _;
use serde::Deserialize;
use tokio::time::Instant;

/// A token bucket setting.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct RateLimit {
    pub burst: u32,
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: 100,
            per_second: 10.0,
        }
    }
}

#[derive(Debug)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket; a burst of 0 is 1, a rate of 0 (or not a number) never refills.
    pub fn new(limit: RateLimit) -> Self {
        let burst = f64::from(limit.burst.max(1));
        let per_second = if limit.per_second.is_finite() {
            limit.per_second.max(0.0)
        } else {
            0.0
        };
        Self {
            burst,
            per_second,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Take a token now, or say how long until one is there (`None`: never).
    pub fn try_take(&self) -> Result<(), Option<Duration>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.per_second).min(self.burst);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            return Ok(());
        }
        if self.per_second <= 0.0 {
            return Err(None);
        }
        Err(Some(
            Duration::try_from_secs_f64((1.0 - state.0) / self.per_second).unwrap_or(Duration::MAX),
        ))
    }

    pub async fn acquire(&self) {
        loop {
            match self.try_take() {
                Ok(()) => return,
                Err(Some(wait)) => tokio::time::sleep(wait.max(Duration::from_millis(1))).await,
                Err(None) => std::future::pending::<()>().await,
            }
        }
    }
}

/// `Retry-After`: delta-seconds or an HTTP date; `None` when absent or unreadable.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let left = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// How failed calls are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay_ms: 500,
            max_delay_ms: 10_000,
            max_retry_after_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// Exponential with "equal jitter": half of each step fixed, half random.
    pub fn delay(&self, attempt: u32) -> Duration {
        let step = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_delay_ms)
            .max(1);
        let half = step / 2;
        Duration::from_millis(half + rand::rng().random_range(0..=step - half))
    }

    pub fn cap_retry_after(&self, wait: Duration) -> Duration {
        wait.min(Duration::from_millis(self.max_retry_after_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buckets_allow_the_burst_then_the_rate() {
        let bucket = TokenBucket::new(RateLimit {
            burst: 2,
            per_second: 4.0,
        });
        let start = Instant::now();
        for _ in 0..6 {
            bucket.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(990) && took < Duration::from_millis(1100),
            "{took:?}"
        );
        assert_eq!(
            TokenBucket::new(RateLimit {
                burst: 1,
                per_second: f64::NAN
            })
            .try_take(),
            Ok(())
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(retry_after(Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
        assert_eq!(
            retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        let p = RetryPolicy::default();
        assert_eq!(
            p.cap_retry_after(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        for _ in 0..20 {
            let d = p.delay(1).as_millis();
            assert!((500..=1000).contains(&d), "{d}");
        }
    }
}
