//! The mock cloud runs its containers' liveness and readiness probes as ECI does, with the
//! kubelet's semantics (vk-core's [`probe`](vk_core::probe) state machine): exec probes
//! through the executor's `exec` in the container's sandbox, HTTP and TCP probes to the
//! sandbox, which shares the host's network (127.0.0.1). The results land in the group: each
//! container's `Ready`, `Unhealthy` events for failed checks, a `Killing` event when a
//! liveness failure ends the run (the lifecycle then restarts it by the restart policy).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use vk_core::probe::{self, Checker, Kill, Outcome, ProbeUpdate};
use vk_core::provider::ProbeHandler;

use super::executor::{Executor, GroupSpec};
use super::group::{CState, Group, Kind, probe_spec};
use super::inner::Inner;
use super::spec::ContainerSpec;

/// Where the sandbox's ports are reached: the host's loopback, which it shares.
const SANDBOX_HOST: &str = "127.0.0.1";
/// An exec that cannot reach the container is tried again this often, this far apart.
const START_RETRIES: u32 = 5;
const START_RETRY_DELAY: Duration = Duration::from_millis(100);

struct SandboxChecker {
    executor: Arc<dyn Executor>,
    group: Arc<GroupSpec>,
    container: Arc<ContainerSpec>,
}

#[async_trait]
impl Checker for SandboxChecker {
    async fn check(&self, handler: &ProbeHandler, _timeout: Duration) -> Outcome {
        if let Some(outcome) = crate::probe_net::check(handler, SANDBOX_HOST).await {
            return outcome;
        }
        let ProbeHandler::Exec { command } = handler else {
            return Outcome::Failure("unsupported probe".into());
        };
        // The run's sandbox may still be coming up when its first check is due; a check that
        // cannot reach the container after that is an error, which the state machine does
        // not count (the kubelet throws prober errors away).
        let mut attempts = 0;
        loop {
            match self
                .executor
                .exec(&self.group, &self.container, command)
                .await
            {
                Ok(out) if out.exit_code == 0 => return Outcome::Success,
                // The kubelet reports the command's output (often empty, e.g. `test -f`).
                Ok(out) => {
                    return Outcome::Failure(
                        String::from_utf8_lossy(&out.output).trim_end().to_string(),
                    );
                }
                Err(_) if attempts < START_RETRIES => {
                    attempts += 1;
                    tokio::time::sleep(START_RETRY_DELAY).await;
                }
                Err(err) => return Outcome::Error(err.to_string()),
            }
        }
    }
}

/// Runs the probes of container `idx` (an app container or a sidecar) for its current run
/// (generation `generation` of group `id`) until a liveness or startup failure calls for a
/// kill, which it records and returns. Without such a probe it never returns; drop it when
/// the run ends.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    inner: Arc<Inner>,
    id: String,
    generation: u64,
    kind: Kind,
    idx: usize,
    group: Arc<GroupSpec>,
    container: Arc<ContainerSpec>,
) -> Kill {
    let spec = probe_spec(&container);
    let name = container.name.clone();
    let checker = SandboxChecker {
        executor: inner.executor.clone(),
        group,
        container,
    };
    let report = {
        let (inner, id) = (inner.clone(), id.clone());
        move |update: ProbeUpdate| {
            inner.with_group(&id, generation, |g, now| apply(g, kind, idx, update, now));
        }
    };
    let kill = probe::run(&spec, &checker, &report).await;
    inner.with_group(&id, generation, |g, now| {
        g.container_event(Some(&name), "Normal", "Killing", kill.message.clone(), now);
    });
    kill
}

fn apply(g: &mut Group, kind: Kind, idx: usize, update: ProbeUpdate, now: jiff::Timestamp) {
    match update {
        ProbeUpdate::Status { started, ready } => {
            if let Some(c) = g.container(kind, idx)
                && matches!(c.state, CState::Running { .. })
            {
                c.started = started;
                c.ready = ready;
                g.updated = now;
            }
        }
        ProbeUpdate::Unhealthy { message, .. } => {
            let name = g.container(kind, idx).map(|c| c.spec.name.clone());
            g.container_event(name.as_deref(), "Warning", "Unhealthy", message, now);
        }
    }
}
