//! One task per group walks its lifecycle: Scheduling, Pending (sandbox and image pulls),
//! init containers one by one (a native sidecar starts and keeps running beside the rest),
//! then the app containers together, restarts by the restart policy with doubling back-off,
//! and the final status. Delete, restart and expiry cancel the task; dropping it drops the
//! runs, which stops them. An active deadline fails the group.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt as _;
use tokio_util::sync::CancellationToken;

use super::catalog::ImageEntry;
use super::executor::Exit;
use super::group::Phase;
use super::group::{CState, Group, Kind, restarts};
use super::hooks::{self, HookKind, HookTarget};
use super::inner::Inner;
use super::latency::{CacheUse, LatencyModel, PullPlan, reasons as image_event, seconds};
use super::probes;

/// Where a lifecycle task begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    /// A new group: scheduling first.
    Schedule,
    /// A restarted or pending group: provisioning, then the containers.
    Provision,
    /// A running group the engine read back from its state file: its running containers go
    /// on from where they were (`persist`).
    Resume,
}

pub(crate) fn spawn(
    inner: Arc<Inner>,
    id: String,
    generation: u64,
    cancel: CancellationToken,
    schedule: bool,
) {
    let begin = if schedule {
        Begin::Schedule
    } else {
        Begin::Provision
    };
    spawn_at(inner, id, generation, cancel, begin);
}

pub(crate) fn spawn_at(
    inner: Arc<Inner>,
    id: String,
    generation: u64,
    cancel: CancellationToken,
    begin: Begin,
) {
    tokio::spawn(async move {
        let deadline = inner
            .peek(&id, generation, |g| {
                g.active_deadline.map(|d| {
                    let age = g.created.duration_until(inner.clock.now());
                    d.saturating_sub(age.unsigned_abs())
                })
            })
            .flatten();
        let deadline_sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let driver = Driver {
            inner: inner.clone(),
            id: id.clone(),
            generation,
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {}
            _ = driver.begin(begin) => {}
            _ = deadline_sleep => {
                inner.with_group(&id, generation, |g, now| {
                    g.finish(Phase::Failed, "DeadlineExceeded", now);
                    g.event("Warning", "DeadlineExceeded", "The container group ran longer than its ActiveDeadlineSeconds.".into(), now);
                });
            }
        }
    });
}

/// The events of a group's image cache, once it is placed.
fn cache_events(g: &mut Group, cache: &CacheUse, now: jiff::Timestamp) {
    match cache {
        CacheUse::None => {}
        CacheUse::Hit { id, .. } => g.event(
            "Normal",
            image_event::HIT_IMAGE_CACHE,
            format!(
                "Successfully hit image cache {id}, eci will be scheduled with this image cache."
            ),
            now,
        ),
        CacheUse::Missed { auto_created } => {
            g.event(
                "Normal",
                image_event::MISSED_IMAGE_CACHE,
                "No image cache matched the images of the container group; the images will be pulled."
                    .into(),
                now,
            );
            if let Some(id) = auto_created {
                g.event(
                    "Normal",
                    image_event::AUTO_CREATED_IMAGE_CACHE,
                    format!("Image cache {id} is auto created"),
                    now,
                );
            }
        }
    }
}

#[derive(Clone)]
struct Driver {
    inner: Arc<Inner>,
    id: String,
    generation: u64,
}

impl Driver {
    fn update<R>(&self, f: impl FnOnce(&mut Group, jiff::Timestamp) -> R) -> Option<R> {
        self.inner.with_group(&self.id, self.generation, f)
    }

    fn peek<R>(&self, f: impl FnOnce(&Group) -> R) -> Option<R> {
        self.inner.peek(&self.id, self.generation, f)
    }

    /// A configured latency plus jitter.
    fn latency(&self, base_ms: u64) -> Duration {
        let jitter = self.inner.config.latency_jitter_ms;
        let extra = if jitter > 0 {
            rand::rng().random_range(0..=jitter)
        } else {
            0
        };
        Duration::from_millis(base_ms.saturating_add(extra))
    }

    async fn begin(&self, begin: Begin) {
        match begin {
            Begin::Resume => self.resume().await,
            Begin::Schedule => self.run(true).await,
            Begin::Provision => self.run(false).await,
        }
    }

    /// Go on with a group that was running when the state was saved: its images were pulled
    /// and its init containers done; sidecars and app containers that were running run the
    /// rest of their time, the others start as they would have.
    async fn resume(&self) {
        let catalog = &self.inner.config.catalog;
        let Some((init, apps)) = self.peek(|g| {
            let images = |cs: &[super::group::ContainerRt]| {
                cs.iter()
                    .map(|c| catalog.resolve(&c.spec.image).ok())
                    .collect::<Vec<_>>()
            };
            (images(&g.init), images(&g.apps))
        }) else {
            return;
        };
        let sidecars = tokio_util::sync::CancellationToken::new();
        let _stop_sidecars = sidecars.clone().drop_guard();
        for (idx, image) in init.into_iter().enumerate() {
            let running_sidecar = self.peek(|g| {
                g.init
                    .get(idx)
                    .is_some_and(|c| c.spec.sidecar && matches!(c.state, CState::Running { .. }))
            });
            let (Some(true), Some(image)) = (running_sidecar, image) else {
                continue;
            };
            let driver = self.clone();
            let stop = sidecars.clone();
            tokio::spawn(async move {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => {}
                    _ = driver.container_loop_from(Kind::Init, idx, image, true) => {}
                }
            });
        }
        let Some(apps) = apps.into_iter().collect::<Option<Vec<_>>>() else {
            return std::future::pending().await;
        };
        let runs = apps
            .into_iter()
            .enumerate()
            .map(|(idx, image)| self.container_loop_from(Kind::App, idx, image, true));
        let Some(codes) = futures::future::join_all(runs)
            .await
            .into_iter()
            .collect::<Option<Vec<i32>>>()
        else {
            return;
        };
        self.apps_ended(&codes);
    }

    /// Every app container is done for good: the group ends by their exit codes.
    fn apps_ended(&self, codes: &[i32]) {
        let status = if codes.iter().all(|c| *c == 0) {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        self.update(|g, now| {
            // A terminating group is removed by its delete, in its own time.
            if g.status != Phase::Terminating {
                g.finish(status, "Completed", now);
            }
        });
    }

    async fn run(&self, schedule: bool) {
        let Some((start_latency, cache)) = self.peek(|g| (g.start_latency, g.image_cache.clone()))
        else {
            return;
        };
        let config = &self.inner.config;
        let realistic = config.latency_model == LatencyModel::Realistic;
        if schedule {
            if start_latency.is_none() {
                let wait = if realistic {
                    Duration::from_millis(config.realistic.placement_ms)
                } else {
                    self.latency(config.schedule_latency_ms)
                };
                tokio::time::sleep(wait).await;
            }
            if self.inner.faults.roll_schedule_failure() {
                self.update(|g, now| {
                    g.finish(Phase::ScheduleFailed, "ScheduleFailed", now);
                    g.event(
                        "Warning",
                        "FailedScheduling",
                        "Schedule eci failed: no resources in the zone (injected).".into(),
                        now,
                    );
                });
                return;
            }
            let scheduled = self.update(|g, now| {
                g.set_status(Phase::Pending, now);
                g.event(
                    "Normal",
                    "Scheduled",
                    format!("Successfully assigned {} to a node", g.spec.name),
                    now,
                );
                cache_events(g, &cache, now);
            });
            if scheduled.is_none() {
                return;
            }
        }
        while self.inner.faults.stuck_pending() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The realistic model's pulls; a restart finds the images on the machine already.
        let plan = if realistic { self.plan(&cache) } else { None };
        let wait = match start_latency {
            Some(latency) => latency,
            None if realistic && !schedule => Duration::ZERO,
            None if realistic => {
                let attach = config.realistic.eni_attach_ms
                    + if plan.as_ref().is_some_and(|p| p.uses_cache) {
                        config.realistic.cache_attach_ms
                    } else {
                        0
                    };
                Duration::from_millis(attach)
            }
            None => self.latency(config.provision_latency_ms),
        };
        tokio::time::sleep(wait).await;
        let Some(spec) = self.update(|g, _| g.spec.clone()) else {
            return;
        };
        // Idempotent, so a restart prepares again: it may come while Pending, before the first.
        if let Err(e) = self.inner.executor.prepare(&spec).await {
            self.update(|g, now| {
                g.finish(Phase::Failed, "FailedCreatePodSandBox", now);
                g.event("Warning", "FailedCreatePodSandBox", e.to_string(), now);
            });
            return;
        }
        if let Some(plan) = plan
            && !Box::pin(self.timed_pulls(plan, !schedule)).await
        {
            return;
        }
        let Some(images) = self.pull() else {
            // An image the catalog refuses never arrives: the group stays Pending with the
            // container waiting in ErrImagePull, until it is deleted.
            return std::future::pending().await;
        };
        let (init_images, app_images) = images;
        // Sidecars stop with this task, whatever way it ends.
        let sidecars = tokio_util::sync::CancellationToken::new();
        let _stop_sidecars = sidecars.clone().drop_guard();
        for (idx, image) in init_images.into_iter().enumerate() {
            let Some(sidecar) = self.is_sidecar(idx) else {
                return;
            };
            if sidecar {
                let driver = self.clone();
                let stop = sidecars.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        biased;
                        _ = stop.cancelled() => {}
                        _ = driver.container_loop(Kind::Init, idx, image) => {}
                    }
                });
                // As the kubelet: the next container starts once the sidecar has started
                // (passed its startup probe, when it has one).
                if !self.sidecar_started(idx).await {
                    return;
                }
                continue;
            }
            // Boxed: the group's task does not carry an init run's state while its apps run.
            match Box::pin(self.container_loop(Kind::Init, idx, image)).await {
                Some(0) => {}
                Some(code) => {
                    self.update(|g, now| {
                        g.finish(Phase::Failed, "Init:Error", now);
                        g.event(
                            "Warning",
                            "Failed",
                            format!("Init container {idx} exited with {code}"),
                            now,
                        );
                    });
                    return;
                }
                None => return,
            }
        }
        let runs = app_images
            .into_iter()
            .enumerate()
            .map(|(idx, image)| self.container_loop(Kind::App, idx, image));
        let Some(codes) = futures::future::join_all(runs)
            .await
            .into_iter()
            .collect::<Option<Vec<i32>>>()
        else {
            return;
        };
        self.apps_ended(&codes);
    }

    /// Wait until sidecar `idx` runs and has started; `false` when the group went away.
    async fn sidecar_started(&self, idx: usize) -> bool {
        loop {
            let started = self.peek(|g| {
                g.init
                    .get(idx)
                    .is_some_and(|c| matches!(c.state, CState::Running { .. }) && c.started)
            });
            match started {
                None => return false,
                Some(true) => return true,
                Some(false) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Init container `idx` is a native sidecar; `None` when the group went away.
    fn is_sidecar(&self, idx: usize) -> Option<bool> {
        self.peek(|g| g.init.get(idx).is_some_and(|c| c.spec.sidecar))
    }

    /// The realistic model's pulls of the group's images (init containers first) with its
    /// cache; `None` when an image is refused (`pull` then says why).
    fn plan(&self, cache: &CacheUse) -> Option<PullPlan> {
        let images = self.peek(|g| {
            g.init
                .iter()
                .chain(&g.apps)
                .map(|c| c.spec.image.clone())
                .collect::<Vec<_>>()
        })?;
        let cached = match cache {
            CacheUse::Hit { images, .. } => images.as_slice(),
            _ => &[],
        };
        let config = &self.inner.config;
        config.realistic.plan(&config.catalog, &images, cached).ok()
    }

    /// The pulls one after another: `Pulling`, the modelled time, `Pulled` with it; an
    /// image the cache holds (or, with `present`, every image) is already on the machine.
    /// `false` when the group went away.
    async fn timed_pulls(&self, plan: PullPlan, present: bool) -> bool {
        for pull in plan.images {
            let image = pull.image;
            if pull.cached || present {
                let message = format!("Container image \"{image}\" already present on machine");
                if self
                    .update(|g, now| g.event("Normal", image_event::PULLED, message, now))
                    .is_none()
                {
                    return false;
                }
                continue;
            }
            let pulling = format!("Pulling image \"{image}\"");
            if self
                .update(|g, now| g.event("Normal", image_event::PULLING, pulling, now))
                .is_none()
            {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(pull.ms)).await;
            let pulled = format!(
                "Successfully pulled image \"{image}\" in {} ({:.1} MB new)",
                seconds(pull.ms),
                pull.new_mb
            );
            if self
                .update(|g, now| g.event("Normal", image_event::PULLED, pulled, now))
                .is_none()
            {
                return false;
            }
        }
        true
    }

    /// Resolve every image; `None` when one is refused (the containers say why).
    fn pull(&self) -> Option<(Vec<ImageEntry>, Vec<ImageEntry>)> {
        let catalog = &self.inner.config.catalog;
        let instant = self.inner.config.latency_model == LatencyModel::Instant;
        self.update(|g, now| {
            let mut refused = Vec::new();
            let mut resolve =
                |c: &mut super::group::ContainerRt| match catalog.resolve(&c.spec.image) {
                    Ok(entry) => Some(entry),
                    Err(e) => {
                        let message = e.to_string();
                        c.state = CState::Waiting {
                            reason: "ErrImagePull".into(),
                            message: Some(message.clone()),
                        };
                        refused.push(message);
                        None
                    }
                };
            let init: Vec<_> = g.init.iter_mut().map(&mut resolve).collect();
            let apps: Vec<_> = g.apps.iter_mut().map(&mut resolve).collect();
            if refused.is_empty() {
                // The realistic model told of each image as it was pulled.
                if instant {
                    let name = g.spec.name.clone();
                    g.event(
                        "Normal",
                        "Pulled",
                        format!("Pulled the images of {name}"),
                        now,
                    );
                }
                Some((
                    init.into_iter().flatten().collect(),
                    apps.into_iter().flatten().collect(),
                ))
            } else {
                for message in refused {
                    g.event("Warning", "Failed", message, now);
                }
                None
            }
        })
        .flatten()
    }

    /// One run of an app container or sidecar with its probes and postStart hook. A failed
    /// liveness or startup probe or postStart hook stops the run as the kubelet does
    /// (preStop, SIGTERM, the kill after the grace period); the lifecycle then restarts it by
    /// the restart policy.
    async fn run_app(
        &self,
        ctx: super::executor::RunContext,
        kind: Kind,
        idx: usize,
        grace: Duration,
    ) -> Exit {
        let target = HookTarget {
            group: ctx.group.clone(),
            container: ctx.container.clone(),
            log: ctx.log.clone(),
        };
        // Probes and a postStart hook are raced against the run only when the container has
        // them, each boxed: a parked group then holds a few pointers, not their whole state.
        let c = &ctx.container;
        let has_probes =
            c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some();
        let probes: Pin<Box<dyn Future<Output = vk_core::probe::Kill> + Send>> = if has_probes {
            Box::pin(probes::run(
                self.inner.clone(),
                self.id.clone(),
                self.generation,
                kind,
                idx,
                ctx.group.clone(),
                ctx.container.clone(),
            ))
        } else {
            Box::pin(std::future::pending())
        };
        let post_start: Pin<Box<dyn Future<Output = hooks::HookError> + Send>> =
            if c.post_start.is_some() {
                Box::pin(hooks::post_start_failure(
                    self.inner.clone(),
                    HookTarget {
                        group: target.group.clone(),
                        container: target.container.clone(),
                        log: target.log.clone(),
                    },
                ))
            } else {
                Box::pin(std::future::pending())
            };
        let run = self.inner.executor.run(ctx);
        tokio::pin!(run);
        let hook_failure = tokio::select! {
            exit = &mut run => return exit,
            _kill = probes => None,
            why = post_start => Some(why),
        };
        if let Some(why) = &hook_failure {
            let name = target.container.name.clone();
            self.update(|g, now| {
                g.event(
                    "Warning",
                    HookKind::PostStart.failed_reason(),
                    why.to_string(),
                    now,
                );
                g.event(
                    "Normal",
                    "Killing",
                    format!("Container {name} failed its postStart hook, will be restarted"),
                    now,
                );
            });
        }
        let (exit, pre_stop_failure) =
            Box::pin(hooks::stop(&self.inner, &target, grace, run.as_mut())).await;
        if let Some(why) = pre_stop_failure {
            self.update(|g, now| {
                g.event(
                    "Warning",
                    HookKind::PreStop.failed_reason(),
                    why.to_string(),
                    now,
                );
            });
        }
        exit
    }

    /// A container that must run as non-root but names no user would run as root here (the
    /// catalog's images have no user of their own): it is not started, as the kubelet refuses
    /// it. `None` when the group went away.
    fn refused_as_root(&self, kind: Kind, idx: usize) -> Option<bool> {
        self.update(|g, now| {
            let c = g.container(kind, idx)?;
            let s = &c.spec.security;
            if !s.run_as_non_root || s.run_as_user.is_some() {
                return Some(false);
            }
            let message = "container has runAsNonRoot and image will run as root".to_string();
            c.state = CState::Waiting {
                reason: "CreateContainerConfigError".into(),
                message: Some(message.clone()),
            };
            g.event("Warning", "Failed", format!("Error: {message}"), now);
            Some(true)
        })
        .map(|refused| refused.unwrap_or(false))
    }

    /// Run a container until it is done for good; its last exit code, `None` when the group
    /// went away or was restarted.
    async fn container_loop(&self, kind: Kind, idx: usize, image: ImageEntry) -> Option<i32> {
        self.container_loop_from(kind, idx, image, false).await
    }

    /// [`Driver::container_loop`]; with `resume`, a run that was going when the state was
    /// saved goes on (its start time kept), and one that had ended counts as this loop's run.
    async fn container_loop_from(
        &self,
        kind: Kind,
        idx: usize,
        image: ImageEntry,
        mut resume: bool,
    ) -> Option<i32> {
        if resume {
            let ended = self.peek(|g| {
                let c = match kind {
                    Kind::Init => g.init.get(idx),
                    Kind::App => g.apps.get(idx),
                }?;
                match &c.state {
                    CState::Terminated { exit, .. }
                        if !c.spec.sidecar && !restarts(g.restart_policy, kind, exit.code) =>
                    {
                        Some(exit.code)
                    }
                    _ => None,
                }
            })?;
            if ended.is_some() {
                return ended;
            }
        }
        let mut backoff = Duration::from_millis(self.inner.config.restart_backoff_ms.max(1));
        let max_backoff =
            Duration::from_millis(self.inner.config.max_restart_backoff_ms).max(backoff);
        if self.refused_as_root(kind, idx)? {
            // As the kubelet: the container waits in CreateContainerConfigError.
            return std::future::pending().await;
        }
        loop {
            let (ctx, grace) = self.update(|g, now| {
                let grace = g.termination_grace.unwrap_or(hooks::DEFAULT_GRACE);
                let resumed = if resume {
                    g.resume(kind, idx, image.clone(), now)
                } else {
                    None
                };
                resumed
                    .or_else(|| g.start(kind, idx, image.clone(), now))
                    .map(|ctx| (ctx, grace))
            })??;
            resume = false;
            let exit = if kind == Kind::App || ctx.container.sidecar {
                self.run_app(ctx, kind, idx, grace).await
            } else {
                self.inner.executor.run(ctx).await
            };
            let code = exit.code;
            let again = self.update(|g, now| {
                g.terminate(kind, idx, exit, now);
                // A terminating group's containers stop for good; a sidecar runs as long
                // as the group.
                let sidecar = g.container(kind, idx).is_some_and(|c| c.spec.sidecar);
                g.status != Phase::Terminating
                    && !g.is_terminal()
                    && (sidecar || restarts(g.restart_policy, kind, code))
            })?;
            if !again {
                return Some(code);
            }
            self.update(|g, now| {
                let message = format!("back-off {backoff:?} restarting failed container");
                let name = g.container(kind, idx).map(|c| {
                    c.back_off("CrashLoopBackOff", message.clone());
                    c.spec.name.clone()
                });
                g.event(
                    "Warning",
                    "BackOff",
                    format!("{message} {}", name.unwrap_or_default()),
                    now,
                );
            })?;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns (without calling it).
    fn future_size<A, B, Fut, F: FnOnce(A, B) -> Fut>(_: &F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every group's task holds its lifecycle future for as long as the group lives; what a
    /// run needs only at times (init containers, probes, hooks, the stop) is boxed when it
    /// happens, so 10 000 parked groups stay small.
    #[test]
    fn a_parked_group_holds_a_small_future() {
        let run = future_size(&|d: &'static Driver, s: bool| d.run(s));
        assert!(run <= 1024, "Driver::run is {run} bytes");
        let app =
            future_size(&|d: &'static Driver, e: ImageEntry| d.container_loop(Kind::App, 0, e));
        assert!(app <= 4096, "Driver::container_loop is {app} bytes");
    }
}
