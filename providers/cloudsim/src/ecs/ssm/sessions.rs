//! The sessions `ExecuteCommand` filed and no client connected to yet. A session is taken
//! once (a second connection finds nothing) and expires when nobody connects in time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt as _;
use tokio::time::Instant;

/// How long a session waits for its client by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Pending {
    pub session_id: String,
    pub task_id: String,
    pub container: String,
    pub argv: Vec<String>,
    pub token: String,
}

pub struct Sessions {
    pending: Mutex<HashMap<String, (Pending, Instant)>>,
    ttl: Mutex<Duration>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            pending: Mutex::default(),
            ttl: Mutex::new(DEFAULT_TTL),
        }
    }
}

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Pending, Instant)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long a new session waits for its client.
    pub fn set_ttl(&self, ttl: Duration) {
        *self.ttl.lock().unwrap_or_else(|p| p.into_inner()) = ttl;
    }

    /// File a session: its id and token.
    pub fn issue(&self, task_id: &str, container: &str, argv: Vec<String>) -> (String, String) {
        let ttl = *self.ttl.lock().unwrap_or_else(|p| p.into_inner());
        let session_id = format!("ecs-execute-command-{}", random(17).to_lowercase());
        let token = random(160);
        let now = Instant::now();
        let mut pending = self.lock();
        pending.retain(|_, (_, expires)| *expires > now);
        let p = Pending {
            session_id: session_id.clone(),
            task_id: task_id.into(),
            container: container.into(),
            argv,
            token: token.clone(),
        };
        pending.insert(session_id.clone(), (p, now + ttl));
        (session_id, token)
    }

    /// Take a session: `None` if unknown, used or expired.
    pub fn take(&self, session_id: &str) -> Option<Pending> {
        let (p, expires) = self.lock().remove(session_id)?;
        (expires > Instant::now()).then_some(p)
    }

    pub fn pending(&self) -> usize {
        self.lock().len()
    }
}
