//! The reconcile's decision: from what is known about one pod, as plain values ([`Facts`]),
//! what this reconcile does ([`Decision`]). No I/O, no locks and no clock: the reconcile
//! gathers the facts (with the time it read), decides, and applies the decision.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::pods::queue::Action;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::deadline;
use super::record::PodRecord;
use super::status::{has_started, is_terminal_phase, pod_phase};
use crate::provider::{InstancePhase, InstanceStatus, PodRef};

/// Right after a create, a `Pending` status is held back this long: a provider that starts
/// at once reports `Running` first, and the pod gets one status write instead of two.
pub const INTERIM_DELAY: Duration = Duration::from_millis(250);
/// A created instance that the provider has not reported yet is not created again for this
/// long (a polling provider lists it a little later); then the create is repeated (it is
/// idempotent by UID).
pub const REPORT_WAIT: Duration = Duration::from_secs(30);
/// Wake-ups are set a little past the moment they wait for, so the check then finds it passed.
const PAST: Duration = Duration::from_millis(50);
/// A pod being deleted whose instance still stops is looked at again at least this often.
const STOP_CHECK: Duration = Duration::from_secs(5);
/// A running pod's status is mirrored again at least this often.
const MIRROR_EVERY: Duration = Duration::from_secs(300);

/// What one reconcile of a pod does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Deletion asked, and the instance was not told yet: stop it within the grace period,
    /// then decide again.
    StopInstance { grace: Duration },
    /// Deletion asked and the instance stopped or gone, or the grace period is over
    /// (`still_running`): delete the pod object.
    DeleteFromApi { still_running: bool },
    /// Deletion asked and the instance still stops: look again after this.
    AwaitStop { after: Duration },
    /// A terminal pod: nothing to do; its instance stays for `kubectl logs` until the pod is
    /// deleted.
    Leave,
    /// `activeDeadlineSeconds` passed: stop the instance within the termination grace period
    /// and fail the pod.
    StopForDeadline { grace: Duration },
    /// The instance exists: hand it what changed (if anything), then mirror its status.
    Mirror { update: Option<Update> },
    /// The pod ran, and its instance is gone (deleted outside Kubernetes, or lost): Failed.
    InstanceLost,
    /// Created a moment ago and not reported yet: show that it is being created; look again
    /// after this (then it is created again).
    AwaitReport { after: Duration },
    /// No instance: create it.
    Create,
}

impl Decision {
    /// Whether the pod goes on reading secrets and configMaps, so its namespace stays watched
    /// for it: not once it is deleted or terminal. None: the deadline stop releases them
    /// once the pod is failed.
    pub fn reads_references(self) -> Option<bool> {
        match self {
            Self::StopInstance { .. }
            | Self::DeleteFromApi { .. }
            | Self::AwaitStop { .. }
            | Self::Leave => Some(false),
            Self::StopForDeadline { .. } => None,
            Self::Mirror { .. } | Self::InstanceLost | Self::AwaitReport { .. } | Self::Create => {
                Some(true)
            }
        }
    }
}

/// Why a running instance is handed the pod again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Update {
    /// A new generation of the spec (new images).
    pub respec: bool,
    /// Its service-account tokens are due to be re-issued.
    pub tokens: bool,
    /// A mounted secret or configMap changed.
    pub files: bool,
}

/// What the decision reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Facts {
    /// `deletionTimestamp` is set.
    pub deletion: Option<Deletion>,
    /// The API's phase is Succeeded or Failed.
    pub terminal: bool,
    /// The API's status shows the pod ran.
    pub started: bool,
    /// `activeDeadlineSeconds` has passed.
    pub deadline_passed: bool,
    /// `terminationGracePeriodSeconds` (30 s when unset).
    pub termination_grace: Duration,
    /// `metadata.generation`.
    pub generation: i64,
    /// The phase of the instance as the provider last reported it.
    pub instance: Option<InstancePhase>,
    /// The deletion was handled once already.
    pub delete_sent: bool,
    /// How long ago this process created the instance.
    pub created_ago: Option<Duration>,
    /// The last generation handed to the provider.
    pub generation_sent: Option<i64>,
    /// The pod mounts service-account tokens, and they are due to be re-issued.
    pub tokens_due: bool,
    /// A mounted secret or configMap changed since the files were last sent.
    pub mounted_changed: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Deletion {
    /// `deletionGracePeriodSeconds` (30 s when unset).
    pub grace: Duration,
    /// Time left until `deletionTimestamp`; zero once it passed.
    pub left: Duration,
}

/// The time a reconcile read: the wall clock for the API's timestamps, the monotonic one for
/// this process's own.
#[derive(Clone, Copy, Debug)]
pub(super) struct Now {
    pub wall: Timestamp,
    pub mono: Instant,
}

impl Now {
    pub fn read() -> Self {
        Self {
            wall: Timestamp::now(),
            mono: Instant::now(),
        }
    }
}

impl Facts {
    /// The facts about `pod` and its record at `now`. `mounts_tokens`: the pod has projected
    /// service-account tokens (to be re-issued from time to time).
    pub fn of(pod: &Pod, record: Option<&PodRecord>, mounts_tokens: bool, now: Now) -> Self {
        let seconds = |s: Option<i64>| Duration::from_secs(s.unwrap_or(30).max(0).unsigned_abs());
        let deletion = pod.metadata.deletion_timestamp.as_ref().map(|at| Deletion {
            grace: seconds(pod.metadata.deletion_grace_period_seconds),
            left: until(at.0, now.wall),
        });
        Self {
            deletion,
            terminal: is_terminal_phase(pod_phase(pod)),
            started: has_started(pod),
            deadline_passed: deadline::remaining(pod, now.wall).is_some_and(|l| l.is_zero()),
            termination_grace: seconds(
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds),
            ),
            generation: pod.metadata.generation.unwrap_or_default(),
            instance: record.and_then(|r| r.instance.as_ref()).map(|i| i.phase),
            delete_sent: record.is_some_and(|r| r.delete_sent),
            created_ago: record
                .and_then(|r| r.created)
                .map(|at| now.mono.saturating_duration_since(at)),
            generation_sent: record.and_then(|r| r.generation_sent),
            // Unknown after a restart: the tokens' age is unknown too, so re-issue them now.
            tokens_due: mounts_tokens
                && record
                    .and_then(|r| r.tokens_due)
                    .is_none_or(|at| at <= now.wall),
            mounted_changed: record.is_some_and(|r| r.mounted_changed),
        }
    }
}

pub(super) fn decide(facts: &Facts) -> Decision {
    let finished =
        |phase: InstancePhase| matches!(phase, InstancePhase::Succeeded | InstancePhase::Failed);
    if let Some(deletion) = facts.deletion {
        if facts.instance.is_some() && !facts.delete_sent {
            return Decision::StopInstance {
                grace: deletion.grace,
            };
        }
        let stopped = facts.instance.is_none_or(finished);
        if stopped || deletion.left.is_zero() {
            return Decision::DeleteFromApi {
                still_running: !stopped,
            };
        }
        return Decision::AwaitStop {
            after: deletion.left.min(STOP_CHECK),
        };
    }
    if facts.terminal {
        return Decision::Leave;
    }
    // An instance that ended on its own is reported, not stopped.
    if facts.deadline_passed && !facts.instance.is_some_and(finished) {
        return Decision::StopForDeadline {
            grace: facts.termination_grace,
        };
    }
    match (facts.instance, facts.created_ago) {
        (Some(phase), _) => {
            let live = matches!(phase, InstancePhase::Pending | InstancePhase::Running);
            let update = Update {
                respec: facts
                    .generation_sent
                    .is_some_and(|sent| sent != facts.generation),
                tokens: live && facts.tokens_due,
                files: live && facts.mounted_changed,
            };
            Decision::Mirror {
                update: (update != Update::default()).then_some(update),
            }
        }
        (None, _) if facts.started => Decision::InstanceLost,
        (None, Some(ago)) if ago < REPORT_WAIT => Decision::AwaitReport {
            after: REPORT_WAIT - ago + PAST,
        },
        (None, _) => Decision::Create,
    }
}

/// How much longer a status of phase `phase` is held back for an instance created
/// `created_ago` (only `Pending`, right after a create).
pub(super) fn interim_wait(phase: Option<&str>, created_ago: Option<Duration>) -> Option<Duration> {
    if phase != Some("Pending") {
        return None;
    }
    INTERIM_DELAY
        .checked_sub(created_ago?)
        .filter(|d| !d.is_zero())
}

/// When a running pod is looked at again: when its tokens are due (`tokens_due_in`), at the
/// latest after [`MIRROR_EVERY`].
pub(super) fn mirror_wake(tokens_due_in: Option<Duration>) -> Duration {
    tokens_due_in.map_or(MIRROR_EVERY, |d| d.min(MIRROR_EVERY) + PAST)
}

/// Requeue after `after`, or when the pod's active deadline comes, whichever is first.
pub(super) fn requeue(pod: &Pod, after: Option<Duration>, now: Timestamp) -> Action {
    let deadline = deadline::remaining(pod, now).map(|d| d + PAST);
    after
        .into_iter()
        .chain(deadline)
        .min()
        .map_or_else(Action::await_change, Action::requeue)
}

/// How long the pod's projected service-account tokens may be used before they are
/// re-issued: `interval` when configured, else 80% of the shortest requested lifetime, as
/// the kubelet does. None: the pod mounts no token.
pub(super) fn tokens_valid_for(pod: &Pod, interval: Option<Duration>) -> Option<Duration> {
    let shortest = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.service_account_token.as_ref())
        .map(|t| t.expiration_seconds.unwrap_or(3600).max(1))
        .min()?;
    Some(interval.unwrap_or(Duration::from_secs(shortest as u64 * 4 / 5)))
}

/// The delay before retrying a pod whose reconcile failed `attempts` times in a row:
/// 0.5 s doubling to 60 s (the caller adds jitter).
pub(super) fn backoff(attempts: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1u32 << attempts.min(7))
        .min(Duration::from_secs(60))
}

/// The instances whose pod is not among the `known` pod UIDs (deleted while vk was away, or
/// whose removal was missed): they are deleted.
pub(super) fn orphans<'a>(
    instances: &'a [InstanceStatus],
    known: &'a HashSet<String>,
) -> impl Iterator<Item = &'a PodRef> {
    instances
        .iter()
        .map(|i| &i.pod)
        .filter(|pod| !known.contains(&pod.uid))
}

/// How long from `now` until `at`; zero when it has passed.
pub(super) fn until(at: Timestamp, now: Timestamp) -> Duration {
    let left = at.duration_since(now);
    if left.is_positive() {
        left.unsigned_abs()
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
