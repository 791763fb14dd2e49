//! The service's flow control on creates and deletes: `burst` calls at once, then
//! `per_second` on average (a generic cell rate: each call moves a "theoretical arrival time"
//! forward by one interval; a call is refused when that time would run more than the burst
//! ahead of now). A `per_second` of 0 admits the burst and then nothing more.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct FlowControl {
    /// One call's share of time; `None`: the quota never refills.
    interval: Option<Duration>,
    burst: u32,
    state: Mutex<Admitted>,
}

#[derive(Debug)]
enum Admitted {
    /// With a refill: the theoretical arrival time of the next call.
    Paced(Instant),
    /// Without one: calls still admitted.
    Left(u32),
}

impl FlowControl {
    pub fn new(burst: u32, per_second: f64) -> Self {
        let burst = burst.max(1);
        let interval = (per_second > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / per_second).ok())
            .flatten();
        let state = match interval {
            Some(_) => Admitted::Paced(Instant::now()),
            None => Admitted::Left(burst),
        };
        Self {
            interval,
            burst,
            state: Mutex::new(state),
        }
    }

    /// Whether one more call is admitted now (and count it when it is).
    pub fn admit(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match (&mut *state, self.interval) {
            (Admitted::Left(left), _) => {
                let admitted = *left > 0;
                *left = left.saturating_sub(1);
                admitted
            }
            (Admitted::Paced(tat), Some(interval)) => {
                let now = Instant::now();
                let next = (*tat).max(now) + interval;
                // The burst is how far ahead of now the arrival time may run.
                if next.saturating_duration_since(now) > interval * self.burst {
                    return false;
                }
                *tat = next;
                true
            }
            (Admitted::Paced(_), None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn admits_the_burst_then_the_rate() {
        let fc = FlowControl::new(3, 2.0);
        assert!((0..3).all(|_| fc.admit()));
        assert!(!fc.admit());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(fc.admit());
        assert!(!fc.admit());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!((0..5).filter(|_| fc.admit()).count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_rate_admits_the_burst_only() {
        let fc = FlowControl::new(2, 0.0);
        assert!(fc.admit() && fc.admit());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!fc.admit());
        assert!(FlowControl::new(0, 0.0).admit());
    }
}
