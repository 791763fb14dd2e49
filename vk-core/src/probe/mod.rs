//! Probes with the kubelet's semantics (its `prober` package), for providers that run them
//! themselves. [`ContainerProbes`] is the pure part: results counted against the thresholds,
//! readiness false until the first success, the startup probe gating the other two, a
//! liveness or startup failure turning into a kill. [`run`] drives it on tokio's clock for one
//! run of a container; the provider says how to check (a [`Checker`]) and what to do with the
//! updates and the kill.
//!
//! Timing: each probe first runs `initialDelaySeconds` after the container started, then
//! every `periodSeconds`; liveness and readiness wait for the startup probe's success, and the
//! startup probe stops once it succeeded. A check longer than `timeoutSeconds` fails.

mod run;
#[cfg(test)]
mod tests;

pub use run::{Checker, run};

use crate::provider::{ContainerSpec, Probe};

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// As the kubelet spells it in events: `Liveness probe failed: ...`.
    pub fn title(self) -> &'static str {
        match self {
            Self::Startup => "Startup",
            Self::Liveness => "Liveness",
            Self::Readiness => "Readiness",
        }
    }

    fn lower(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Liveness => "liveness",
            Self::Readiness => "readiness",
        }
    }
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Why it failed (the command's output, the HTTP status, the connection error).
    Failure(String),
    /// The check could not be made (the container cannot be reached to run the command): the
    /// kubelet throws such a result away, counting neither way, and records the error.
    Error(String),
}

/// Something a provider reports about the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeUpdate {
    /// `started` (the startup probe passed) or `ready` changed.
    Status { started: bool, ready: bool },
    /// A check failed: the kubelet's Warning `Unhealthy` event.
    Unhealthy { kind: ProbeKind, message: String },
}

/// A liveness or startup probe failed `failureThreshold` times in a row: the container must be
/// killed (and restarted as the restart policy says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    pub kind: ProbeKind,
    /// The kubelet's `Killing` event message.
    pub message: String,
    /// The probe's own grace period, when it has one.
    pub grace_period_seconds: Option<i64>,
}

/// `started` and `ready` of a container that just started, before any probe ran.
pub fn initial(spec: &ContainerSpec) -> (bool, bool) {
    let probes = ContainerProbes::new(spec);
    (probes.started(), probes.ready())
}

/// One probe's consecutive results and its current verdict.
#[derive(Clone, Debug)]
struct Counter {
    success_threshold: u32,
    failure_threshold: u32,
    last: Option<bool>,
    run: u32,
    /// `None`: no verdict yet (a startup probe before its first success or failure run).
    result: Option<bool>,
}

impl Counter {
    fn new(kind: ProbeKind, probe: &Probe) -> Self {
        Self {
            success_threshold: probe.success_threshold.max(1),
            failure_threshold: probe.failure_threshold.max(1),
            last: None,
            run: 0,
            // Readiness is false until the first success, liveness true until it fails.
            result: match kind {
                ProbeKind::Startup => None,
                ProbeKind::Liveness => Some(true),
                ProbeKind::Readiness => Some(false),
            },
        }
    }

    /// Count one result; the verdict changes only after a threshold's worth in a row.
    fn observe(&mut self, ok: bool) {
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let threshold = if ok {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run >= threshold {
            self.result = Some(ok);
        }
    }
}

/// The probes of one run of one container.
#[derive(Clone, Debug)]
pub struct ContainerProbes {
    container: String,
    startup: Option<(Counter, Probe)>,
    liveness: Option<(Counter, Probe)>,
    readiness: Option<(Counter, Probe)>,
}

impl ContainerProbes {
    pub fn new(spec: &ContainerSpec) -> Self {
        let counter = |kind, probe: &Option<Probe>| {
            probe.as_ref().map(|p| (Counter::new(kind, p), p.clone()))
        };
        Self {
            container: spec.name.clone(),
            startup: counter(ProbeKind::Startup, &spec.startup_probe),
            liveness: counter(ProbeKind::Liveness, &spec.liveness_probe),
            readiness: counter(ProbeKind::Readiness, &spec.readiness_probe),
        }
    }

    pub fn probe(&self, kind: ProbeKind) -> Option<&Probe> {
        self.slot(kind).as_ref().map(|(_, p)| p)
    }

    fn slot(&self, kind: ProbeKind) -> &Option<(Counter, Probe)> {
        match kind {
            ProbeKind::Startup => &self.startup,
            ProbeKind::Liveness => &self.liveness,
            ProbeKind::Readiness => &self.readiness,
        }
    }

    fn slot_mut(&mut self, kind: ProbeKind) -> &mut Option<(Counter, Probe)> {
        match kind {
            ProbeKind::Startup => &mut self.startup,
            ProbeKind::Liveness => &mut self.liveness,
            ProbeKind::Readiness => &mut self.readiness,
        }
    }

    /// The startup probe passed (or there is none).
    pub fn started(&self) -> bool {
        self.startup
            .as_ref()
            .is_none_or(|(c, _)| c.result == Some(true))
    }

    /// Started, and the readiness probe's verdict is success (or there is none).
    pub fn ready(&self) -> bool {
        self.started()
            && self
                .readiness
                .as_ref()
                .is_none_or(|(c, _)| c.result == Some(true))
    }

    /// Count one check's outcome: the updates to report, and the kill it calls for.
    pub fn observe(
        &mut self,
        kind: ProbeKind,
        outcome: &Outcome,
    ) -> (Vec<ProbeUpdate>, Option<Kill>) {
        let before = (self.started(), self.ready());
        let container = self.container.clone();
        let Some((counter, probe)) = self.slot_mut(kind).as_mut() else {
            return (Vec::new(), None);
        };
        let mut updates = Vec::new();
        match outcome {
            Outcome::Success => counter.observe(true),
            Outcome::Failure(why) => {
                counter.observe(false);
                updates.push(ProbeUpdate::Unhealthy {
                    kind,
                    message: format!("{} probe failed: {why}", kind.title()),
                });
            }
            Outcome::Error(why) => {
                updates.push(ProbeUpdate::Unhealthy {
                    kind,
                    message: format!(
                        "{} probe errored and resulted in unknown state: {why}",
                        kind.title()
                    ),
                });
                return (updates, None);
            }
        }
        let kill = (kind != ProbeKind::Readiness && counter.result == Some(false)).then(|| Kill {
            kind,
            message: format!(
                "Container {container} failed {} probe, will be restarted",
                kind.lower()
            ),
            grace_period_seconds: probe.termination_grace_period_seconds,
        });
        let after = (self.started(), self.ready());
        if after != before {
            updates.push(ProbeUpdate::Status {
                started: after.0,
                ready: after.1,
            });
        }
        (updates, kill)
    }
}
