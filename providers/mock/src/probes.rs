//! The mock runs its app containers' and native sidecars' probes locally with vk-core's state
//! machine (the kubelet's semantics): exec probes inside the container's sandbox, joined as
//! `kubectl exec` joins it, HTTP, TCP and gRPC probes to 127.0.0.1. Results become the container's `started`/`ready`, `Unhealthy` events, and a
//! `Killing` event when a liveness or startup failure ends the run (the driver then restarts
//! it by the restart policy).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::io::AsyncReadExt;
use vk_core::probe::{self, Checker, Kill, Outcome, ProbeUpdate};
use vk_core::provider::{ContainerState, InstanceEvent, PodRef, ProbeHandler};

use super::Shared;
use crate::exec::target_of;
use crate::instance::{Instance, Kind};
use cloudsim::sandbox::join;
use cloudsim::sandbox::spawn::{Streams, exit_code, spawn};

/// Events kept per instance (the oldest go), as a cloud keeps a group's.
const MAX_EVENTS: usize = 50;

struct LocalChecker {
    shared: Arc<Shared>,
    pod: PodRef,
    container: String,
}

#[async_trait]
impl Checker for LocalChecker {
    async fn check(&self, handler: &ProbeHandler, _timeout: Duration) -> Outcome {
        if let Some(outcome) = cloudsim::probe_net::check(handler, "127.0.0.1").await {
            return outcome;
        }
        let ProbeHandler::Exec { command } = handler else {
            return Outcome::Failure("unsupported probe".into());
        };
        // Inside the container, as `kubectl exec` runs: its files, working directory and env.
        let target = match target_of(&self.shared, &self.pod, &self.container) {
            Ok(target) => target,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let joinable = match self.shared.sandboxes.joinable(&self.pod, &target).await {
            Ok(joinable) => joinable,
            Err(e) => return Outcome::Error(e),
        };
        let init = match join::namespace_init(joinable.bwrap, &joinable.root).await {
            Ok(init) => init,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let nsenter = cloudsim::sandbox::on_path(std::path::Path::new("nsenter"));
        let joined = join::join_command(&nsenter, init, target.workdir(), &target.env(), command);
        let streams = Streams {
            stdin: false,
            stdout: true,
            stderr: true,
            tty: None,
            ptmx: None,
        };
        let mut spawned = match spawn(joined, &streams) {
            Ok(spawned) => spawned,
            Err(err) => return Outcome::Failure(format!("exec: {:?}: {err}", command[0])),
        };
        // Dropped when the check ends or times out: the command's whole group dies with it,
        // as a runtime kills an ExecSync that overran.
        let _group = spawned.group;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            if let Some(mut r) = spawned.stdout.take() {
                let _ = r.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(mut r) = spawned.stderr.take() {
                let _ = r.read_to_end(&mut err).await;
            }
        };
        let (status, (), ()) = tokio::join!(spawned.child.wait(), read_out, read_err);
        match status {
            Ok(status) if exit_code(status) == 0 => Outcome::Success,
            Ok(_) => {
                out.extend_from_slice(&err);
                Outcome::Failure(String::from_utf8_lossy(&out).trim_end().to_string())
            }
            Err(err) => Outcome::Error(format!("waiting for the command: {err}")),
        }
    }
}

/// Runs the probes of container `idx` (an app container or a native sidecar) of instance
/// `id` for its current run, until a
/// liveness or startup failure calls for a kill, which it records and returns. Without such
/// a probe it never returns; drop it when the run ends.
pub(crate) async fn run(shared: Arc<Shared>, key: String, id: u64, kind: Kind, idx: usize) -> Kill {
    let target = shared.update(&key, id, |i, _| {
        let specs = match kind {
            Kind::App => &i.spec.containers,
            Kind::Init => &i.spec.init_containers,
        };
        specs.get(idx).cloned().map(|c| (i.spec.pod.clone(), c))
    });
    let Some(Some((pod, spec))) = target else {
        return std::future::pending().await;
    };
    let checker = LocalChecker {
        shared: shared.clone(),
        pod,
        container: spec.name.clone(),
    };
    let report = {
        let (shared, key) = (shared.clone(), key.clone());
        let name = spec.name.clone();
        move |update: ProbeUpdate| {
            shared.update(&key, id, |i, now| {
                i.probe_update(kind, idx, &name, update, now)
            });
        }
    };
    let kill = probe::run(&spec, &checker, &report).await;
    shared.update(&key, id, |i, now| {
        i.container_event(&spec.name, false, "Killing", kill.message.clone(), now);
    });
    kill
}

impl Instance {
    fn probe_update(
        &mut self,
        kind: Kind,
        idx: usize,
        name: &str,
        update: ProbeUpdate,
        now: Timestamp,
    ) {
        match update {
            ProbeUpdate::Status { started, ready } => {
                let statuses = match kind {
                    Kind::App => &mut self.status.containers,
                    Kind::Init => &mut self.status.init_containers,
                };
                if let Some(c) = statuses.get_mut(idx)
                    && matches!(c.state, ContainerState::Running { .. })
                {
                    c.started = Some(started);
                    c.ready = ready;
                }
            }
            ProbeUpdate::Unhealthy { message, .. } => {
                self.container_event(name, true, "Unhealthy", message, now);
            }
        }
    }

    /// Record an event; the same one as the last counts up instead.
    pub(crate) fn container_event(
        &mut self,
        container: &str,
        warning: bool,
        reason: &str,
        message: String,
        now: Timestamp,
    ) {
        let events = &mut self.status.events;
        if let Some(last) = events.last_mut()
            && last.container.as_deref() == Some(container)
            && last.reason == reason
            && last.message == message
        {
            last.count = last.count.saturating_add(1);
            last.last_seen = now;
            return;
        }
        events.push(InstanceEvent {
            container: Some(container.to_string()),
            warning,
            reason: reason.to_string(),
            message,
            count: 1,
            first_seen: now,
            last_seen: now,
        });
        if events.len() > MAX_EVENTS {
            events.remove(0);
        }
    }
}
