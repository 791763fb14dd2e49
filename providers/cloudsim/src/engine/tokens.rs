//! ClientToken idempotency: a token remembers the request it came with and the group it made
//! for a limited time, after which it is forgotten (a retry that late creates anew). Alibaba
//! Cloud documents no lifetime for ECI tokens; the default here is 24 hours.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// What a token was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remembered {
    /// The request it came with, to tell a retry from a different request.
    pub fingerprint: String,
    pub group_id: String,
}

#[derive(Debug)]
pub struct TokenTable {
    ttl: SignedDuration,
    entries: HashMap<String, (Remembered, Timestamp)>,
    /// Expired entries are swept when the table reaches this size, then it doubles, so the
    /// sweeps cost O(1) per insert.
    sweep_at: usize,
}

const MIN_SWEEP_AT: usize = 1024;

impl TokenTable {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX),
            entries: HashMap::new(),
            sweep_at: MIN_SWEEP_AT,
        }
    }

    fn expired(&self, at: Timestamp, now: Timestamp) -> bool {
        now.duration_since(at) >= self.ttl
    }

    /// The token's first use, unless it has expired.
    pub fn get(&self, token: &str, now: Timestamp) -> Option<&Remembered> {
        self.entries
            .get(token)
            .filter(|(_, at)| !self.expired(*at, now))
            .map(|(r, _)| r)
    }

    /// Every token not yet expired at `now`, with when it was first used (to be saved).
    pub fn live(&self, now: Timestamp) -> impl Iterator<Item = (&str, &Remembered, Timestamp)> {
        self.entries
            .iter()
            .filter(move |(_, (_, at))| !self.expired(*at, now))
            .map(|(token, (r, at))| (token.as_str(), r, *at))
    }

    pub fn insert(&mut self, token: &str, remembered: Remembered, now: Timestamp) {
        if self.entries.len() >= self.sweep_at {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (_, at)| now.duration_since(*at) < ttl);
            self.sweep_at = (self.entries.len() * 2).max(MIN_SWEEP_AT);
        }
        self.entries.insert(token.to_string(), (remembered, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(id: &str) -> Remembered {
        Remembered {
            fingerprint: format!("request for {id}"),
            group_id: id.into(),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn a_token_is_remembered_until_it_expires() {
        let mut table = TokenTable::new(Duration::from_secs(3600));
        table.insert("t", made("eci-1"), at(0));
        assert_eq!(table.get("t", at(3599)), Some(&made("eci-1")));
        assert_eq!(table.get("t", at(3600)), None);
        // Reused after expiry: it now stands for the new group.
        table.insert("t", made("eci-2"), at(4000));
        assert_eq!(table.get("t", at(4001)), Some(&made("eci-2")));
        assert_eq!(table.get("other", at(4001)), None);
    }

    #[test]
    fn expired_tokens_are_swept_as_the_table_grows() {
        let mut table = TokenTable::new(Duration::from_secs(60));
        for i in 0..MIN_SWEEP_AT {
            table.insert(&format!("old-{i}"), made("eci-old"), at(0));
        }
        assert_eq!(table.entries.len(), MIN_SWEEP_AT);
        // Past the threshold, the next insert sweeps what expired: only the new one stays.
        table.insert("new", made("eci-new"), at(120));
        assert_eq!(table.entries.len(), 1);
        // Live tokens are never swept, however many.
        for i in 0..3 * MIN_SWEEP_AT {
            table.insert(&format!("live-{i}"), made("eci-live"), at(130));
        }
        assert_eq!(table.entries.len(), 3 * MIN_SWEEP_AT + 1);
        assert!(table.get("live-0", at(130)).is_some());
    }
}
