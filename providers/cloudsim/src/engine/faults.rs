//! Fault injection: set at start (config) or at run time (`POST /admin/faults` with a JSON
//! [`FaultConfig`], `GET /admin/faults` to read it back). The persistent knobs stay until the
//! next POST replaces them; `throttle_calls`, `vanish` and `expire` act once.

use std::sync::Mutex;

use rand::RngExt as _;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every API call before it is answered.
    pub latency_ms: u64,
    /// The fraction of API calls answered with a 5xx (InternalError or ServiceUnavailable).
    /// Half of them fail before the action runs, half after it ran (the answer is lost), which
    /// is what makes idempotency matter.
    pub error_rate: f64,
    /// The next N API calls are answered `Throttling.User`, whatever the quota says.
    pub throttle_calls: u64,
    /// The API accepts connections and closes them without an answer.
    pub api_down: bool,
    /// Groups do not get past Pending while this is set.
    pub stuck_pending: bool,
    /// The fraction of new groups that end ScheduleFailed.
    pub schedule_fail_rate: f64,
    /// These groups disappear at once, without a trace (as if the service lost them).
    pub vanish: Vec<String>,
    /// These groups end Expired (as a reclaimed spot instance does).
    pub expire: Vec<String>,
}

/// Where an injected 5xx happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    BeforeAction,
    AfterAction,
}

#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultConfig>,
}

impl Faults {
    pub fn new(initial: FaultConfig) -> Self {
        Self {
            state: Mutex::new(initial),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultConfig> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self) -> FaultConfig {
        self.lock().clone()
    }

    /// Replace the knobs; the one-shot lists are returned for the engine to act on and are
    /// not kept.
    pub fn set(&self, mut config: FaultConfig) -> (Vec<String>, Vec<String>) {
        let vanish = std::mem::take(&mut config.vanish);
        let expire = std::mem::take(&mut config.expire);
        *self.lock() = config;
        (vanish, expire)
    }

    /// Consume one injected throttling answer, if any are left.
    pub fn take_throttle(&self) -> bool {
        let mut state = self.lock();
        if state.throttle_calls > 0 {
            state.throttle_calls -= 1;
            true
        } else {
            false
        }
    }

    /// Should this call fail with a 5xx, and when?
    pub fn roll_error(&self) -> Option<Injected> {
        let rate = self.lock().error_rate.clamp(0.0, 1.0);
        let mut rng = rand::rng();
        if rate > 0.0 && rng.random_bool(rate) {
            Some(if rng.random_bool(0.5) {
                Injected::BeforeAction
            } else {
                Injected::AfterAction
            })
        } else {
            None
        }
    }

    pub fn roll_schedule_failure(&self) -> bool {
        let rate = self.lock().schedule_fail_rate.clamp(0.0, 1.0);
        rate > 0.0 && rand::rng().random_bool(rate)
    }

    pub fn latency_ms(&self) -> u64 {
        self.lock().latency_ms
    }

    pub fn api_down(&self) -> bool {
        self.lock().api_down
    }

    pub fn stuck_pending(&self) -> bool {
        self.lock().stuck_pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_faults_are_handed_back_and_throttling_counts_down() {
        let faults = Faults::default();
        let (vanish, expire) = faults.set(FaultConfig {
            throttle_calls: 2,
            vanish: vec!["eci-1".into()],
            expire: vec!["eci-2".into()],
            ..Default::default()
        });
        assert_eq!(vanish, ["eci-1"]);
        assert_eq!(expire, ["eci-2"]);
        assert!(faults.get().vanish.is_empty());
        assert!(faults.take_throttle());
        assert!(faults.take_throttle());
        assert!(!faults.take_throttle());
        assert_eq!(faults.roll_error(), None);
        faults.set(FaultConfig {
            error_rate: 1.0,
            ..Default::default()
        });
        assert!(faults.roll_error().is_some());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<FaultConfig>(r#"{"error_rate": 0.3}"#).is_ok());
        assert!(serde_json::from_str::<FaultConfig>(r#"{"eror_rate": 0.3}"#).is_err());
    }
}
