//! Leader election on a `coordination.k8s.io/v1` Lease, for running two or more replicas of vk
//! for the same nodes: one is active (runs the node and pod controllers), the others wait warm.
//!
//! The Lease names its holder (`holderIdentity`), when it last renewed (`renewTime`) and for how
//! long that renewal counts (`leaseDurationSeconds`). The holder renews every
//! [`LeaderConfig::retry_period`]; the others read it as often and take it over only when it is
//! free (released) or expired. Every write carries the resourceVersion that was read, so of two
//! replicas trying at once the API server lets one win (the other gets 409 and reads again).
//!
//! Expiry is judged on this replica's clock twice over: the holder's `renewTime` plus the
//! duration must be past, and so must the moment this replica first saw that renewal plus the
//! duration. A holder whose clock runs ahead is therefore never cut short, and one whose clock
//! runs behind is waited for a full duration after its last visible renewal.
//!
//! The holder gives up when it could not renew for [`LeaderConfig::renew_deadline`] (shorter
//! than the duration, so it stops before anyone may take over), or when a read shows another
//! holder. On a graceful stop it releases the Lease (empty holder, duration 1 s): the next
//! replica takes it at its next read instead of waiting for expiry.
//!
//! [`decide`] is the whole decision, a pure function of the Lease, the clock and who we are.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

/// Where the election happens and how fast it moves.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    /// The Lease's name; every replica of one deployment uses the same.
    pub name: String,
    /// This replica (its pod name, or host name and process id); unique among the replicas.
    pub identity: String,
    /// How long a renewal counts (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// The holder stops when it could not renew for this long (less than the duration).
    pub renew_deadline: Duration,
    /// How often the holder renews and the others read.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// 15 s duration, 10 s renew deadline, 2 s retry (a standby takes over within about 17 s
    /// of the holder's last renewal: well inside the node heartbeat's 40 s).
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// The settings must let the holder stop before anyone may take over.
    pub fn validate(&self) -> Result<(), String> {
        if self.identity.is_empty() {
            return Err("the leader election identity is empty".into());
        }
        if self.namespace.is_empty() || self.name.is_empty() {
            return Err("the leader election Lease needs a namespace and a name".into());
        }
        if self.retry_period.is_zero() {
            return Err("the leader election retry period must be above 0".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "the leader election renew deadline ({:?}) must be longer than the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "the leader election lease duration ({:?}) must be longer than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.lease_duration.as_secs() > i32::MAX as u64 {
            return Err("the leader election lease duration is too long".into());
        }
        Ok(())
    }
}

/// What to do after reading the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// There is none: create it, held by us.
    Create,
    /// We hold it: write a new renewTime.
    Renew,
    /// It is free or expired: take it, with this `leaseTransitions`.
    Acquire { transitions: i32 },
    /// Another replica holds it for `remaining` more (as far as we can tell).
    Follow { holder: String, remaining: Duration },
}

/// The part of a Lease that decides who holds it; a change of it is a sign of life.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Record {
    pub holder: Option<String>,
    pub renew_time: Option<Timestamp>,
    pub duration_seconds: Option<i32>,
    pub transitions: i32,
}

impl Record {
    pub fn of(spec: Option<&LeaseSpec>) -> Self {
        let Some(spec) = spec else {
            return Self::default();
        };
        Self {
            holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
            renew_time: spec
                .renew_time
                .as_ref()
                .or(spec.acquire_time.as_ref())
                .map(|t| t.0),
            duration_seconds: spec.lease_duration_seconds,
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// The decision. `lease`: the Lease's record (None: no Lease); `seen_since`: when this replica
/// first read that same record (its own clock); `default_duration` when the Lease names none.
pub fn decide(
    lease: Option<&Record>,
    seen_since: Timestamp,
    now: Timestamp,
    me: &str,
    default_duration: Duration,
) -> Action {
    let Some(record) = lease else {
        return Action::Create;
    };
    let Some(holder) = record.holder.as_deref() else {
        return Action::Acquire {
            transitions: record.transitions.saturating_add(1),
        };
    };
    if holder == me {
        return Action::Renew;
    }
    let duration = record
        .duration_seconds
        .filter(|d| *d > 0)
        .map_or(default_duration, |d| Duration::from_secs(d as u64));
    // The later of the holder's renewal and our first sight of it: never early.
    let from = record
        .renew_time
        .map_or(seen_since, |renewed| renewed.max(seen_since));
    let expires = from.checked_add(duration).unwrap_or(Timestamp::MAX);
    if now >= expires {
        return Action::Acquire {
            transitions: record.transitions.saturating_add(1),
        };
    }
    let remaining = expires
        .duration_since(now)
        .try_into()
        .unwrap_or(Duration::ZERO);
    Action::Follow {
        holder: holder.to_string(),
        remaining,
    }
}

/// Why the holder stopped holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// Asked to stop (the caller then releases).
    Cancelled,
    /// Another replica holds the Lease now.
    TakenBy(String),
    /// No renewal succeeded within the renew deadline.
    RenewDeadline(String),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Cancelled => write!(f, "stopped"),
            Lost::TakenBy(holder) => write!(f, "the leader Lease is held by {holder} now"),
            Lost::RenewDeadline(e) => {
                write!(f, "the leader Lease could not be renewed in time: {e}")
            }
        }
    }
}

/// Where we stand after one round.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Leader,
    Follower { holder: String, remaining: Duration },
}

/// One replica's side of the election (the I/O around [`decide`]).
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
    /// The record last read and when we first saw it.
    seen: Option<(Record, Timestamp)>,
    /// The Lease as we last wrote it while holding it (its resourceVersion makes the next
    /// renewal a single update).
    written: Option<Lease>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaderConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            seen: None,
            written: None,
        }
    }

    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    /// Wait until this replica holds the Lease; false when cancelled first.
    pub async fn acquire(&mut self, cancel: &CancellationToken) -> bool {
        let mut last_holder = None;
        loop {
            match self.round().await {
                Ok(Standing::Leader) => {
                    tracing::info!(
                        lease = %self.config.name,
                        identity = %self.config.identity,
                        "leader Lease acquired; this replica is active"
                    );
                    return true;
                }
                Ok(Standing::Follower { holder, remaining }) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(
                            lease = %self.config.name,
                            %holder,
                            expires_in = ?remaining,
                            "another replica is active; standing by"
                        );
                        last_holder = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the leader Lease failed; retrying"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
    }

    /// Renew until cancelled or lost. Never returns while this replica still holds a valid
    /// renewal, except for [`Lost::Cancelled`].
    pub async fn hold(&mut self, cancel: &CancellationToken) -> Lost {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Lost::Cancelled,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            let deadline = renewed + self.config.renew_deadline;
            let started = tokio::time::Instant::now();
            let result = tokio::select! {
                _ = cancel.cancelled() => return Lost::Cancelled,
                r = tokio::time::timeout_at(deadline, self.renew()) => r,
            };
            match result {
                Ok(Ok(Standing::Leader)) => renewed = started,
                Ok(Ok(Standing::Follower { holder, .. })) => return Lost::TakenBy(holder),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "renewing the leader Lease failed");
                    if tokio::time::Instant::now() >= deadline {
                        return Lost::RenewDeadline(e.to_string());
                    }
                }
                Err(_) => {
                    return Lost::RenewDeadline(format!(
                        "no renewal within {:?}",
                        self.config.renew_deadline
                    ));
                }
            }
        }
    }

    /// Give the Lease up (after the active work stopped): the next replica takes it at its next
    /// read. Nothing to do when another replica holds it.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        for _ in 0..3 {
            let current = match self.written.take() {
                Some(lease) => lease,
                None => match self.api.get_opt(&self.config.name).await? {
                    Some(lease) => lease,
                    None => return Ok(()),
                },
            };
            if Record::of(current.spec.as_ref()).holder.as_deref() != Some(&self.config.identity) {
                return Ok(());
            }
            let mut lease = current;
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            match self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => {
                    tracing::info!(lease = %self.config.name, "leader Lease released");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The holder's renewal: one update of what we last wrote, else a full round.
    async fn renew(&mut self) -> Result<Standing, kube::Error> {
        if let Some(mut lease) = self.written.take() {
            let now = Timestamp::now();
            lease.spec.get_or_insert_with(LeaseSpec::default).renew_time = Some(MicroTime(now));
            match self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
            {
                Ok(written) => {
                    self.written = Some(written);
                    return Ok(Standing::Leader);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tracing::debug!("the leader Lease changed since our renewal; reading it")
                }
                Err(e) => return Err(e),
            }
        }
        self.round().await
    }

    /// Read the Lease, decide, act.
    async fn round(&mut self) -> Result<Standing, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        let now = Timestamp::now();
        let record = current.as_ref().map(|l| Record::of(l.spec.as_ref()));
        let seen_since = match (&self.seen, &record) {
            (Some((before, since)), Some(record)) if before == record => *since,
            _ => now,
        };
        if let Some(record) = &record {
            self.seen = Some((record.clone(), seen_since));
        }
        let action = decide(
            record.as_ref(),
            seen_since,
            now,
            &self.config.identity,
            self.config.lease_duration,
        );
        let duration = self.config.lease_duration.as_secs() as i32;
        let me = Some(self.config.identity.clone());
        let written = match (action, current) {
            (Action::Follow { holder, remaining }, _) => {
                self.written = None;
                return Ok(Standing::Follower { holder, remaining });
            }
            (Action::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        labels: Some([("app.kubernetes.io/name".into(), "vk".into())].into()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: me,
                        lease_duration_seconds: Some(duration),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (action, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if let Action::Acquire { transitions } = action {
                    spec.holder_identity = me;
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(transitions);
                }
                spec.lease_duration_seconds = Some(duration);
                spec.renew_time = Some(MicroTime(now));
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                self.written = Some(lease);
                Ok(Standing::Leader)
            }
            // Another replica wrote first (created it, or took it over): it won this round.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                self.written = None;
                Ok(Standing::Follower {
                    holder: "another replica".into(),
                    remaining: self.config.lease_duration,
                })
            }
            Err(e) => {
                self.written = None;
                Err(e)
            }
        }
    }
}

/// This replica's identity: `$POD_NAME` (the Deployment sets it from the downward API), else
/// the host name and the process id.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "vk".into());
    format!("{host}_{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn held_by(holder: &str, renewed: i64) -> Record {
        Record {
            holder: Some(holder.into()),
            renew_time: Some(t(renewed)),
            duration_seconds: Some(15),
            transitions: 3,
        }
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(decide(None, t(0), t(0), "a", D), Action::Create);
    }

    #[test]
    fn the_holder_renews_even_late() {
        let lease = held_by("a", 0);
        assert_eq!(decide(Some(&lease), t(0), t(1), "a", D), Action::Renew);
        // Its own stale lease (a restart with the same identity) is simply renewed.
        assert_eq!(decide(Some(&lease), t(0), t(100), "a", D), Action::Renew);
    }

    #[test]
    fn a_released_lease_is_taken_at_once_with_one_more_transition() {
        let lease = Record {
            holder: None,
            duration_seconds: Some(1),
            ..held_by("a", 0)
        };
        assert_eq!(
            decide(Some(&lease), t(0), t(0), "b", D),
            Action::Acquire { transitions: 4 }
        );
        let empty = Record {
            holder: Some(String::new()),
            ..held_by("a", 0)
        };
        assert_eq!(
            decide(
                Some(&Record::of(Some(&spec_of(&empty)))),
                t(0),
                t(0),
                "b",
                D
            ),
            Action::Acquire { transitions: 4 }
        );
    }

    fn spec_of(r: &Record) -> LeaseSpec {
        LeaseSpec {
            holder_identity: r.holder.clone(),
            renew_time: r.renew_time.map(MicroTime),
            lease_duration_seconds: r.duration_seconds,
            lease_transitions: Some(r.transitions),
            ..Default::default()
        }
    }

    #[test]
    fn a_fresh_lease_of_another_replica_is_followed() {
        let lease = held_by("a", 0);
        assert_eq!(
            decide(Some(&lease), t(0), t(5), "b", D),
            Action::Follow {
                holder: "a".into(),
                remaining: Duration::from_secs(10)
            }
        );
        // One second before the end: still theirs.
        assert!(matches!(
            decide(Some(&lease), t(0), t(14), "b", D),
            Action::Follow { .. }
        ));
    }

    #[test]
    fn an_expired_lease_is_taken_over() {
        let lease = held_by("a", 0);
        assert_eq!(
            decide(Some(&lease), t(0), t(15), "b", D),
            Action::Acquire { transitions: 4 }
        );
        assert_eq!(
            decide(Some(&lease), t(1), t(40), "b", D),
            Action::Acquire { transitions: 4 }
        );
    }

    #[test]
    fn expiry_counts_from_our_first_sight_when_that_is_later() {
        // The holder's clock runs behind (or we just started): its renewTime is long past,
        // but we saw this renewal only at 30, so it counts until 45.
        let lease = held_by("a", 0);
        assert_eq!(
            decide(Some(&lease), t(30), t(31), "b", D),
            Action::Follow {
                holder: "a".into(),
                remaining: Duration::from_secs(14)
            }
        );
        assert!(matches!(
            decide(Some(&lease), t(30), t(45), "b", D),
            Action::Acquire { .. }
        ));
    }

    #[test]
    fn a_holder_clock_ahead_is_never_cut_short() {
        // renewTime in our future: it counts from there.
        let lease = held_by("a", 20);
        assert!(matches!(
            decide(Some(&lease), t(0), t(30), "b", D),
            Action::Follow { .. }
        ));
        assert!(matches!(
            decide(Some(&lease), t(0), t(35), "b", D),
            Action::Acquire { .. }
        ));
    }

    #[test]
    fn the_leases_own_duration_wins_and_a_missing_one_falls_back() {
        let long = Record {
            duration_seconds: Some(60),
            ..held_by("a", 0)
        };
        assert!(matches!(
            decide(Some(&long), t(0), t(30), "b", D),
            Action::Follow { .. }
        ));
        let none = Record {
            duration_seconds: None,
            ..held_by("a", 0)
        };
        assert!(matches!(
            decide(Some(&none), t(0), t(14), "b", D),
            Action::Follow { .. }
        ));
        assert!(matches!(
            decide(Some(&none), t(0), t(15), "b", D),
            Action::Acquire { .. }
        ));
        // Nonsense durations are not trusted either.
        let negative = Record {
            duration_seconds: Some(-5),
            ..held_by("a", 0)
        };
        assert!(matches!(
            decide(Some(&negative), t(0), t(1), "b", D),
            Action::Follow { .. }
        ));
    }

    #[test]
    fn a_holder_without_renew_time_is_timed_from_our_first_sight() {
        let lease = Record {
            renew_time: None,
            ..held_by("a", 0)
        };
        assert!(matches!(
            decide(Some(&lease), t(10), t(20), "b", D),
            Action::Follow { .. }
        ));
        assert!(matches!(
            decide(Some(&lease), t(10), t(25), "b", D),
            Action::Acquire { .. }
        ));
    }

    #[test]
    fn transitions_saturate() {
        let lease = Record {
            holder: None,
            transitions: i32::MAX,
            ..held_by("a", 0)
        };
        assert_eq!(
            decide(Some(&lease), t(0), t(0), "b", D),
            Action::Acquire {
                transitions: i32::MAX
            }
        );
    }

    #[test]
    fn the_record_reads_acquire_time_when_there_is_no_renew_time() {
        let spec = LeaseSpec {
            holder_identity: Some("a".into()),
            acquire_time: Some(MicroTime(t(7))),
            ..Default::default()
        };
        let record = Record::of(Some(&spec));
        assert_eq!(record.renew_time, Some(t(7)));
        assert_eq!(record.transitions, 0);
        assert_eq!(Record::of(None), Record::default());
    }

    #[test]
    fn settings_that_could_overlap_two_holders_are_refused() {
        let ok = LeaderConfig::new("vk-system", "vk", "a");
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.renew_deadline = Duration::from_secs(20);
        assert!(bad.validate().unwrap_err().contains("renew deadline"));
        let mut bad = ok.clone();
        bad.retry_period = Duration::from_secs(10);
        assert!(bad.validate().unwrap_err().contains("retry period"));
        let mut bad = ok.clone();
        bad.identity.clear();
        assert!(bad.validate().is_err());
        let mut bad = ok;
        bad.retry_period = Duration::ZERO;
        assert!(bad.validate().is_err());
    }
}
