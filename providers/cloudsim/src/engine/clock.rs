//! The engine's time: the wall clock at its start plus tokio's monotonic time since, so the
//! timestamps of groups, containers and log lines advance with tokio's (paused) test time as
//! its timers do, and never step back.

use jiff::Timestamp;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall: Timestamp,
    mono: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            wall: Timestamp::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.wall
            .checked_add(self.mono.elapsed())
            .unwrap_or_else(|_| Timestamp::now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
