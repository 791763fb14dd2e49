//! DeleteContainerGroup of a group with running containers, as ECI does it: the group turns
//! `Terminating` (still listed, its logs still readable), every running container is stopped
//! the way a runtime stops it (preStop hook, SIGTERM, the kill when
//! `TerminationGracePeriodSeconds` is over: [`hooks::stop`]), then the group goes. A group
//! with nothing running, or one the `simulate` executor runs without preStop hooks, goes at
//! once.
//!
//! A stop (ECS's StopTask, an essential container's exit) stops the containers the same way
//! but keeps the group, ended (`Succeeded` when every app container exited 0, else `Failed`):
//! its face still describes it and its logs stay readable.

use std::sync::Arc;

use super::group::{CState, Group, Phase};
use super::hooks::{self, HookError, HookKind, HookTarget};
use super::inner::Inner;

/// What stopping a group's running containers takes.
struct Plan {
    targets: Vec<HookTarget>,
    grace: std::time::Duration,
    generation: u64,
}

/// Under the engine's lock: the group's running containers (`with_init`: init containers too,
/// native sidecars among them). When some must be stopped for real the group turns
/// `Terminating` and the plan says how; `None` when nothing needs stopping (nothing runs, or the
/// `simulate` executor runs it without preStop hooks).
fn plan(inner: &Inner, g: &mut Group, with_init: bool) -> Option<Plan> {
    let init = g.init.iter().filter(|_| with_init);
    let targets: Vec<HookTarget> = init
        .chain(&g.apps)
        .filter(|c| matches!(c.state, CState::Running { .. }))
        .map(|c| HookTarget {
            group: g.spec.clone(),
            container: c.spec.clone(),
            log: c.log.clone(),
        })
        .collect();
    let simulated = inner.executor.name() == "simulate"
        && targets.iter().all(|t| t.container.pre_stop.is_none());
    if targets.is_empty() || simulated {
        return None;
    }
    let now = inner.clock.now();
    g.set_status(Phase::Terminating, now);
    g.event(
        "Normal",
        "Killing",
        "Stopping the containers of the group".into(),
        now,
    );
    inner.notify(super::inner::Change::Changed(g));
    Some(Plan {
        targets,
        grace: g.termination_grace.unwrap_or(hooks::DEFAULT_GRACE),
        generation: g.generation,
    })
}

/// Stop every target of `plan` at once (preStop, SIGTERM, the kill at the grace period's end),
/// then `then`.
fn run(
    inner: &Arc<Inner>,
    id: &str,
    plan: Plan,
    then: impl FnOnce(&Arc<Inner>, &str) + Send + 'static,
) {
    let inner = inner.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + plan.grace;
        let stops = plan
            .targets
            .iter()
            .map(|t| stop_one(&inner, &id, plan.generation, t, deadline));
        futures::future::join_all(stops).await;
        then(&inner, &id);
    });
}

/// Start deleting group `id`; `false` when there is no such group.
pub(super) fn delete(inner: &Arc<Inner>, id: &str) -> bool {
    let plan = {
        let mut state = inner.lock();
        let Some(g) = state.group_mut(id) else {
            return false;
        };
        if g.status == Phase::Terminating {
            return true;
        }
        plan(inner, g, false)
    };
    match plan {
        Some(plan) => run(inner, id, plan, |inner, id| {
            inner.remove(id);
        }),
        None => {
            inner.remove(id);
        }
    }
    true
}

/// Start stopping group `id` and keep it once ended; `false` when there is no such group.
/// A group already ended or stopping is left as it is.
pub(super) fn stop(inner: &Arc<Inner>, id: &str) -> bool {
    let plan = {
        let mut state = inner.lock();
        let Some(g) = state.group_mut(id) else {
            return false;
        };
        if g.is_terminal() || g.status == Phase::Terminating {
            return true;
        }
        let plan = plan(inner, g, true);
        if plan.is_none() {
            end_stopped(g, inner.clock.now());
            inner.notify(super::inner::Change::Changed(g));
        }
        plan
    };
    if let Some(plan) = plan {
        run(inner, id, plan, |inner, id| {
            let mut state = inner.lock();
            inner.change(&mut state, id, |g| {
                if !g.is_terminal() {
                    end_stopped(g, inner.clock.now());
                }
            });
        });
    }
    true
}

/// The group's lifecycle ends here: what still runs is killed, the group is over.
fn end_stopped(g: &mut Group, now: jiff::Timestamp) {
    g.cancel.cancel();
    g.generation += 1;
    let clean = g
        .apps
        .iter()
        .all(|c| matches!(&c.state, CState::Terminated { exit, .. } if exit.code == 0));
    g.finish(
        if clean {
            Phase::Succeeded
        } else {
            Phase::Failed
        },
        "Stopped",
        now,
    );
    g.event("Normal", "Stopped", "The group was stopped".into(), now);
}

/// preStop, SIGTERM, and the wait for the container's run to end (the lifecycle task records
/// its exit), up to `deadline`.
async fn stop_one(
    inner: &Inner,
    id: &str,
    generation: u64,
    target: &HookTarget,
    deadline: tokio::time::Instant,
) {
    let hook = hooks::run(inner, target, HookKind::PreStop);
    let failure = match tokio::time::timeout_at(deadline, hook).await {
        Ok(result) => result.err(),
        Err(_) => Some(HookError::TimedOut {
            container: target.container.name.clone(),
            grace: None,
        }),
    };
    if let Some(why) = failure {
        inner.with_group(id, generation, |g, now| {
            g.event(
                "Warning",
                HookKind::PreStop.failed_reason(),
                why.to_string(),
                now,
            );
        });
    }
    if !inner
        .executor
        .terminate(&target.group, &target.container)
        .await
    {
        return;
    }
    let name = target.container.name.as_str();
    while tokio::time::Instant::now() < deadline {
        let running = inner
            .peek(id, generation, |g| {
                g.apps
                    .iter()
                    .any(|c| c.spec.name == name && matches!(c.state, CState::Running { .. }))
            })
            .unwrap_or(false);
        if !running {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
