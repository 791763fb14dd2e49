//! Lifecycle hooks as a cloud runs them, with the kubelet's semantics: `postStart` right after a
//! container starts (a failure kills the run, which restarts by the restart policy), `preStop`
//! before a container is stopped (delete, restart, a failed liveness probe), bounded by the
//! group's termination grace period, then SIGTERM, then the kill when the grace is
//! over. An exec hook runs in the container's sandbox as its user, its output going to the
//! container's log; HTTP and TCP hooks reach the sandbox on the host's loopback. The
//! `simulate` executor runs no processes: its hooks are recorded as events and succeed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use vk_core::probe::Outcome;
use vk_core::provider::ProbeHandler;

use super::executor::{ExecutorError, Exit, GroupSpec};
use super::inner::Inner;
use super::logstore::LogStore;
use super::spec::{ContainerSpec, Hook};

/// Where the sandbox's ports are reached: the host's loopback, which it shares.
const SANDBOX_HOST: &str = "127.0.0.1";

/// The kubelet's default termination grace period (ECI's too).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    PostStart,
    PreStop,
}

impl HookKind {
    /// The kubelet's event reason when the hook fails.
    pub fn failed_reason(self) -> &'static str {
        match self {
            Self::PostStart => "FailedPostStartHook",
            Self::PreStop => "FailedPreStopHook",
        }
    }
}

/// Why a hook failed, in the kubelet's words (the text of its `Failed...Hook` event).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(
        "Exec lifecycle hook ({command:?}) for Container {container:?} in Pod {pod:?} failed - error: {source}"
    )]
    Exec {
        command: Vec<String>,
        container: String,
        pod: String,
        #[source]
        source: ExecutorError,
    },
    #[error(
        "Exec lifecycle hook ({command:?}) for Container {container:?} in Pod {pod:?} failed - error: command '{}' exited with {code}: {output}",
        command.join(" ")
    )]
    Exited {
        command: Vec<String>,
        container: String,
        pod: String,
        code: i32,
        output: String,
    },
    #[error(
        "{protocol} lifecycle hook for Container {container:?} in Pod {pod:?} failed - error: {why}"
    )]
    Network {
        protocol: &'static str,
        container: String,
        pod: String,
        why: String,
    },
    #[error("PreStopHook for Container {container:?} did not finish within the grace period{}", grace.map(|g| format!(" of {g:?}")).unwrap_or_default())]
    TimedOut {
        container: String,
        grace: Option<Duration>,
    },
}

/// Everything a hook needs, cloned out of the group.
pub struct HookTarget {
    pub group: Arc<GroupSpec>,
    pub container: Arc<ContainerSpec>,
    pub log: Arc<LogStore>,
}

/// Run `kind`'s hook of the container, if it has one; `Err` says why it failed, in the
/// kubelet's words. Events are the caller's.
pub async fn run(inner: &Inner, target: &HookTarget, kind: HookKind) -> Result<(), HookError> {
    let hook = match kind {
        HookKind::PostStart => target.container.post_start.as_ref(),
        HookKind::PreStop => target.container.pre_stop.as_ref(),
    };
    let Some(hook) = hook else {
        return Ok(());
    };
    let name = &target.container.name;
    let group = &target.group.name;
    match hook {
        Hook::Exec(command) => {
            let out = inner
                .executor
                .exec(&target.group, &target.container, command)
                .await
                .map_err(|source| HookError::Exec {
                    command: command.clone(),
                    container: name.clone(),
                    pod: group.clone(),
                    source,
                })?;
            let text = String::from_utf8_lossy(&out.output);
            for line in text.lines() {
                target.log.push(line);
            }
            if out.exit_code == 0 {
                Ok(())
            } else {
                Err(HookError::Exited {
                    command: command.clone(),
                    container: name.clone(),
                    pod: group.clone(),
                    code: out.exit_code,
                    output: text.trim_end().to_string(),
                })
            }
        }
        Hook::HttpGet { .. } | Hook::TcpSocket { .. } => {
            if inner.executor.name() == "simulate" {
                return Ok(());
            }
            let handler = network_handler(hook);
            match crate::probe_net::check(&handler, SANDBOX_HOST).await {
                Some(Outcome::Failure(why)) => Err(HookError::Network {
                    protocol: if matches!(hook, Hook::HttpGet { .. }) {
                        "HTTP"
                    } else {
                        "TCP"
                    },
                    container: name.clone(),
                    pod: group.clone(),
                    why,
                }),
                _ => Ok(()),
            }
        }
    }
}

fn network_handler(hook: &Hook) -> ProbeHandler {
    match hook {
        Hook::HttpGet {
            host,
            port,
            path,
            https,
            headers,
        } => ProbeHandler::HttpGet {
            host: host.clone(),
            port: *port,
            path: path.clone(),
            https: *https,
            headers: headers.clone(),
        },
        Hook::TcpSocket { host, port } => ProbeHandler::TcpSocket {
            host: host.clone(),
            port: *port,
        },
        Hook::Exec(command) => ProbeHandler::Exec {
            command: command.clone(),
        },
    }
}

/// A future that fails with the postStart hook's error, and otherwise never ends: raced
/// against the run, it ends the run only when the hook fails.
pub async fn post_start_failure(inner: Arc<Inner>, target: HookTarget) -> HookError {
    match run(&inner, &target, HookKind::PostStart).await {
        Ok(()) => std::future::pending().await,
        Err(why) => why,
    }
}

/// Stops a running container the way a runtime does: its preStop hook (bounded by `grace`;
/// a failure is returned for the caller's event), then SIGTERM to its main process, then the
/// run's own end or, when `grace` is over, the kill (`run` dropped). The run's exit.
pub async fn stop<F: Future<Output = Exit>>(
    inner: &Inner,
    target: &HookTarget,
    grace: Duration,
    running: std::pin::Pin<&mut F>,
) -> (Exit, Option<HookError>) {
    let deadline = tokio::time::Instant::now() + grace;
    let hook = run(inner, target, HookKind::PreStop);
    let hook_error = match tokio::time::timeout_at(deadline, hook).await {
        Ok(result) => result.err(),
        Err(_) => Some(HookError::TimedOut {
            container: target.container.name.clone(),
            grace: Some(grace),
        }),
    };
    let killed = Exit {
        code: 137,
        signal: Some(9),
        reason: "Error".into(),
        message: None,
    };
    if !inner
        .executor
        .terminate(&target.group, &target.container)
        .await
    {
        return (killed, hook_error);
    }
    let exit = tokio::time::timeout_at(deadline, running)
        .await
        .unwrap_or(killed);
    (exit, hook_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_hooks_have_the_kubelets_reasons() {
        assert_eq!(HookKind::PostStart.failed_reason(), "FailedPostStartHook");
        assert_eq!(HookKind::PreStop.failed_reason(), "FailedPreStopHook");
    }
}
