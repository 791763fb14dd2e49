//! Containers whose main is a timer ([`Main::Simulated`]) in the `process` executor: the run
//! is the `simulate` executor's timer ([`simulate::run_timer`]), and no process runs for it.
//! Exec still works as in a real container: the first exec (or exec probe, or exec hook) of a
//! run starts a holder, `cat` on a pipe nobody writes to, in the container's sandbox (its
//! mounts, environment and working directory, in the group's shared PID namespace when it
//! has one), and the exec'd commands join that sandbox. Later execs of the run join the same
//! holder. When the run ends (the timer exits, the run is dropped or replaced by a restart,
//! the group is removed) the holder's process group is killed, and with its PID namespace
//! every process exec started in it: background jobs end with the container. A group nobody
//! execs into starts nothing and writes nothing beyond what `prepare` makes.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::executor::process::{ProcessExecutor, RunMain};
use crate::engine::executor::process_main::Holder;
use crate::engine::executor::simulate::{self, DEFAULT_LOG_INTERVAL_MS, TimerPlan};
use crate::engine::executor::{ExecutorError, Exit, GroupSpec, RunContext};
use crate::engine::spec::{ContainerSpec, SimulatedMain};

impl ProcessExecutor {
    /// One run of a container whose main is a timer; its holder goes when the run ends.
    pub(super) async fn run_timer_main(&self, ctx: &RunContext, main: &SimulatedMain) -> Exit {
        let holder = Arc::new(Holder::default());
        let _registered = self.register(&ctx.group.id, &ctx.container.name, RunMain::Timer(holder));
        let mut plan = TimerPlan::of(main, Duration::from_millis(DEFAULT_LOG_INTERVAL_MS));
        plan.run = plan.run.map(|run| run.saturating_sub(ctx.elapsed));
        simulate::run_timer(&ctx.container.name, ctx.restart_count, plan, &ctx.log).await
    }

    /// The outer bwrap of the run's holder, started now if it has none yet.
    pub(super) async fn holder_bwrap(
        &self,
        holder: &Holder,
        group: &GroupSpec,
        container: &ContainerSpec,
    ) -> Result<u32, ExecutorError> {
        if holder.ended() {
            return Err(ExecutorError::NotRunning(container.name.clone()));
        }
        holder
            .bwrap
            .get_or_try_init(|| self.start_holder(holder, group, container))
            .await
            .copied()
    }

    async fn start_holder(
        &self,
        holder: &Holder,
        group: &GroupSpec,
        container: &ContainerSpec,
    ) -> Result<u32, ExecutorError> {
        let shared_pid = if group.share_process_namespace {
            Some(self.pause_init(&group.id).await?)
        } else {
            None
        };
        let mut args = self.sandbox(group, container).await?;
        args.extend(["--".to_string(), "cat".to_string()]);
        // `cat` waits on a pipe this side keeps open, on no terminal whatever the container says.
        let spec = ContainerSpec {
            stdin: true,
            tty: false,
            ..container.clone()
        };
        let spawned = self.spawn_sandbox(&args, &spec, shared_pid)?;
        let mut child = spawned.child;
        let gone = || ExecutorError::NotRunning(container.name.clone());
        let bwrap = child.id().ok_or_else(gone)?;
        if !holder.adopt(spawned.group, spawned.stdin) {
            // The run ended while the holder started: it is gone already.
            return Err(gone());
        }
        // Reaps the holder once it is killed.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        tracing::debug!(group = %group.id, container = %container.name, bwrap, "started a holder for exec");
        Ok(bwrap)
    }
}
