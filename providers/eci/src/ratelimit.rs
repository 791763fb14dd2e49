//! A token bucket: `burst` tokens at most, refilled continuously at `per_second`. The mock
//! cloud answers `Throttling` when its quota bucket is empty; the client waits on its own,
//! smaller bucket so that it stays under that quota instead of finding it by failing.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    state: Mutex<Refill>,
}

#[derive(Debug)]
struct Refill {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket. A `per_second` of 0 never refills; a `burst` of 0 is treated as 1.
    pub fn new(burst: u32, per_second: f64) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_second: per_second.max(0.0),
            state: Mutex::new(Refill {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    /// Take a token now, or say how long until one is there (`None`: never).
    pub fn try_take(&self) -> Result<(), Option<Duration>> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.per_second).min(self.burst);
        state.at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            return Ok(());
        }
        if self.per_second <= 0.0 {
            return Err(None);
        }
        let missing = 1.0 - state.tokens;
        // A rate too small to express waits "forever" instead of overflowing.
        Err(Some(
            Duration::try_from_secs_f64(missing / self.per_second).unwrap_or(Duration::MAX),
        ))
    }

    /// Wait for a token. With a bucket that never refills and is empty this waits forever,
    /// which is what a quota of zero means.
    pub async fn acquire(&self) {
        loop {
            match self.try_take() {
                Ok(()) => return,
                Err(Some(wait)) => tokio::time::sleep(wait.max(Duration::from_millis(1))).await,
                Err(None) => std::future::pending::<()>().await,
            }
        }
    }

    /// Empty the bucket at once (a burst of throttling, injected by the mock cloud).
    pub fn drain(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tokens = 0.0;
        state.at = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_refill_rate() {
        let bucket = TokenBucket::new(3, 2.0);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(), Ok(()));
        }
        let wait = bucket.try_take().unwrap_err().unwrap();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(bucket.try_take(), Ok(()));
        assert!(bucket.try_take().is_err());

        // Ten seconds refill at most the burst.
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..3 {
            assert_eq!(bucket.try_take(), Ok(()));
        }
        assert!(bucket.try_take().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_the_rate() {
        let bucket = TokenBucket::new(1, 10.0);
        let start = Instant::now();
        for _ in 0..11 {
            bucket.acquire().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(990), "{took:?}");
        assert!(took < Duration::from_millis(1100), "{took:?}");
    }

    #[test]
    fn odd_rates_do_not_panic() {
        let tiny = TokenBucket::new(1, 1e-300);
        assert_eq!(tiny.try_take(), Ok(()));
        assert_eq!(tiny.try_take(), Err(Some(Duration::MAX)));
        let nan = TokenBucket::new(1, f64::NAN);
        assert_eq!(nan.try_take(), Ok(()));
        assert_eq!(nan.try_take(), Err(None));
    }

    #[test]
    fn zero_rate_never_refills() {
        let bucket = TokenBucket::new(1, 0.0);
        assert_eq!(bucket.try_take(), Ok(()));
        assert_eq!(bucket.try_take(), Err(None));
    }
}
