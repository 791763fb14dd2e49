//! The timers of one instance. A single task per instance walks the lifecycle (provisioning,
//! init containers in order, app containers together); native sidecars get a task each. All of
//! them stop when the instance's cancellation token fires (delete, provider dropped), and each
//! step goes through [`Shared::update`], which ignores a step for an instance that is gone.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vk_core::provider::{InstancePhase, RestartPolicy};

use super::Shared;
use crate::config::{ContainerPlan, MainCommand, PodPlan};
use crate::instance::{Instance, Kind, STOP_EXIT_CODE};
use crate::logs::LogRun;
use crate::probes;
use crate::process;
use crate::sandbox::Target;

/// Exit code of a container killed for a failed liveness or startup probe (128 + SIGKILL).
const LIVENESS_KILL_EXIT_CODE: i32 = 137;

pub(crate) struct Driver {
    pub shared: Arc<Shared>,
    pub key: String,
    pub id: u64,
    pub plan: PodPlan,
    pub log_interval: Duration,
    pub backoff: Duration,
    pub cancel: CancellationToken,
}

impl Driver {
    pub fn spawn(self) {
        let driver = Arc::new(self);
        tokio::spawn(async move {
            let cancel = driver.cancel.clone();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {}
                _ = driver.run() => {}
            }
        });
    }

    fn update<R>(&self, f: impl FnOnce(&mut Instance, Timestamp) -> R) -> Option<R> {
        self.shared.update(&self.key, self.id, f)
    }

    async fn run(self: &Arc<Self>) {
        tokio::time::sleep(self.plan.start_latency).await;
        if self.update(|i, _| i.provision()).is_none() {
            return;
        }
        // Sidecars stop with this task, whatever way it ends.
        let sidecars = self.cancel.child_token();
        let _stop_sidecars = sidecars.clone().drop_guard();

        for (idx, plan) in self.plan.init.iter().enumerate() {
            let Some(Some(run)) = self.update(|i, now| i.start(Kind::Init, idx, now)) else {
                return;
            };
            if plan.sidecar {
                let driver = Arc::clone(self);
                let token = sidecars.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        biased;
                        _ = token.cancelled() => {}
                        _ = driver.container_loop(Kind::Init, idx, run) => {}
                    }
                });
                continue;
            }
            match self.container_loop(Kind::Init, idx, run).await {
                Some(0) => {}
                Some(_) => {
                    // Only reached with restartPolicy Never: the others retry failed init
                    // containers forever.
                    self.update(|i, now| i.finish(InstancePhase::Failed, now));
                    return;
                }
                None => return,
            }
        }

        let Some(runs) = self.update(|i, now| i.start_apps(now)) else {
            return;
        };
        let loops = runs
            .into_iter()
            .enumerate()
            .map(|(idx, run)| self.container_loop(Kind::App, idx, run));
        let results = futures::future::join_all(loops).await;
        let Some(codes) = results.into_iter().collect::<Option<Vec<i32>>>() else {
            return;
        };
        let phase = if codes.iter().all(|&c| c == 0) {
            InstancePhase::Succeeded
        } else {
            InstancePhase::Failed
        };
        self.update(|i, now| i.finish(phase, now));
    }

    /// Run a started container until it is done for good; its last exit code, or `None` when
    /// the instance went away meanwhile.
    async fn container_loop(
        self: &Arc<Self>,
        kind: Kind,
        idx: usize,
        mut run: Arc<LogRun>,
    ) -> Option<i32> {
        let plan = match kind {
            Kind::Init => self.plan.init.get(idx),
            Kind::App => self.plan.apps.get(idx),
        }?;
        loop {
            // Whatever exec started in the container ends with this run.
            let sandbox = self.shared.sandboxes.stop_on_drop(&self.key, &plan.name);
            let main = async {
                match &plan.process {
                    Some(main) => self.run_process(plan, main, &run).await,
                    None => {
                        self.run_for(plan, &run).await;
                        plan.exit_code
                    }
                }
            };
            let exit = match kind {
                Kind::Init if !plan.sidecar => main.await,
                _ => {
                    let probes =
                        probes::run(self.shared.clone(), self.key.clone(), self.id, kind, idx);
                    tokio::select! {
                        exit = main => exit,
                        // Dropping the run stops it (its process group is killed), as the
                        // kubelet kills a container whose liveness probe failed.
                        _kill = probes => LIVENESS_KILL_EXIT_CODE,
                    }
                }
            };
            drop(sandbox);
            self.update(|i, now| i.terminate(kind, idx, exit, now))?;
            if !self.restarts(kind, plan, exit) {
                return Some(exit);
            }
            self.update(|i, _| i.back_off(kind, idx, self.backoff))?;
            tokio::time::sleep(self.backoff).await;
            run = self.update(|i, now| i.start(kind, idx, now))??;
        }
    }

    fn restarts(&self, kind: Kind, plan: &ContainerPlan, exit: i32) -> bool {
        match (kind, self.plan.restart_policy) {
            (Kind::Init, _) if plan.sidecar => true,
            (Kind::Init, policy) => exit != 0 && policy != RestartPolicy::Never,
            (Kind::App, RestartPolicy::Always) => true,
            (Kind::App, RestartPolicy::OnFailure) => exit != 0,
            (Kind::App, RestartPolicy::Never) => false,
        }
    }

    /// Run the container's real main process until it exits; its exit code.
    async fn run_process(&self, plan: &ContainerPlan, main: &MainCommand, run: &LogRun) -> i32 {
        let target = self.update(|i, _| {
            let container = i
                .spec
                .init_containers
                .iter()
                .chain(&i.spec.containers)
                .find(|c| c.name == plan.name)?;
            let container_id = i
                .status
                .init_containers
                .iter()
                .chain(&i.status.containers)
                .find(|c| c.name == plan.name)
                .and_then(|c| c.container_id.clone())
                .unwrap_or_default();
            let target = Target {
                container_id,
                ..Target::of(
                    &i.spec,
                    container,
                    true,
                    i.status.pod_ip.as_deref().unwrap_or_default(),
                )
            };
            Some((i.spec.pod.clone(), target))
        });
        let Some(Some((pod, target))) = target else {
            // The instance is gone: the caller's next step finds that out.
            return STOP_EXIT_CODE;
        };
        process::run(&self.shared, &self.key, &pod, &target, main, run).await
    }

    /// Let the container run its time, writing a log line per interval.
    async fn run_for(&self, plan: &ContainerPlan, run: &LogRun) {
        let deadline = plan.run.and_then(|d| Instant::now().checked_add(d));
        let first = Instant::now().checked_add(self.log_interval);
        let (Some(mut next), false) = (first, self.log_interval.is_zero()) else {
            sleep_until(deadline).await;
            return;
        };
        let mut n = 0u64;
        loop {
            if let Some(deadline) = deadline
                && next >= deadline
            {
                tokio::time::sleep_until(deadline).await;
                return;
            }
            tokio::time::sleep_until(next).await;
            n += 1;
            run.push(self.shared.clock.now(), format!("{} line {n}", plan.name));
            match next.checked_add(self.log_interval) {
                Some(later) => next = later,
                None => {
                    sleep_until(deadline).await;
                    return;
                }
            }
        }
    }
}

/// Sleep until the deadline; forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
