//! `kubectl exec` on the mock: the command really runs, inside the container's sandbox
//! ([`sandbox`](crate::sandbox)), as `runc exec` runs it: it joins the container's
//! namespaces and root with `nsenter` ([`cloudsim::sandbox::join`]), starts in the container's
//! working directory with its environment, sees its volumes at their mount paths, and is a
//! process of the container from then on.
//!
//! - What it starts in the background outlives the exec, until the container stops.
//! - When the client goes away the command is not killed, as under containerd's CRI: its
//!   stdin ends (on a terminal, an end-of-file), its output is read and dropped until it
//!   exits; the exec call ends at once with an error.
//! - A program that is not in the container is an error, as runc reports it.
//! - With a TTY the command runs on a pseudo-terminal ([`pty`](cloudsim::pty)): stderr goes to
//!   it, stdin bytes go to it raw, terminal sizes set its window size. The command starts once
//!   the client's first size has come (or after [`FIRST_SIZE_WAIT`]), so it sees the size.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, oneshot};
use tokio_util::sync::CancellationToken;
use vk_core::provider::{ContainerState, ExecIo, ExecOutcome, PodRef, ProviderError, TermSize};

use super::{MockProvider, lock, pod_key};
use crate::config::annotations::PROCESS;
use crate::sandbox::{NSENTER_MISSING, Target, find_program};
use cloudsim::sandbox::join;
use cloudsim::sandbox::spawn::{Streams, exit_code, spawn, supervise};

/// After the command exits, how long its output may stay open (a background job holding it)
/// before the rest is dropped.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// With a TTY, how long the command waits for the client's terminal size before it starts.
pub(crate) const FIRST_SIZE_WAIT: Duration = Duration::from_secs(1);

type SharedWriter = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// The end-of-file character of a terminal (Ctrl-D).
const EOF: u8 = 4;

impl MockProvider {
    pub(super) async fn run_exec(
        &self,
        pod: &PodRef,
        container: &str,
        command: Vec<String>,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        let target = self.exec_target(pod, container)?;
        if command.is_empty() {
            return Err(ProviderError::invalid(
                "EmptyCommand",
                "you must specify at least one command for the container",
            ));
        }
        let joinable = match self.shared.sandboxes.joinable(pod, &target).await {
            Ok(joinable) => joinable,
            Err(e) => return Ok(ExecOutcome::Error(format!("exec: {e}"))),
        };
        let init = match join::namespace_init(joinable.bwrap, &joinable.root).await {
            Ok(init) => init,
            Err(e) => return Ok(ExecOutcome::Error(format!("exec: {e}"))),
        };
        let ExecIo {
            stdin,
            stdout,
            stderr,
            tty,
            mut resize,
        } = io;
        let mut env = target.env();
        if tty && !env.iter().any(|(k, _)| k == "TERM") {
            env.push(("TERM".into(), "xterm".into()));
        }
        if let Err(e) = find_program(init, &command[0], &env, target.workdir()) {
            return Ok(ExecOutcome::Error(e));
        }
        let first_size = match (&mut resize, tty) {
            (Some(sizes), true) => tokio::time::timeout(FIRST_SIZE_WAIT, sizes.recv())
                .await
                .ok()
                .flatten(),
            _ => None,
        };
        let nsenter = cloudsim::sandbox::on_path(std::path::Path::new("nsenter"));
        let joined = join::join_command(&nsenter, init, target.workdir(), &env, &command);
        let streams = Streams {
            stdin: stdin.is_some(),
            stdout: stdout.is_some(),
            stderr: stderr.is_some(),
            tty: tty.then_some(first_size),
            ptmx: tty.then(|| PathBuf::from(format!("/proc/{init}/root/dev/pts/ptmx"))),
        };
        let mut spawned = match spawn(joined, &streams) {
            Ok(spawned) => spawned,
            Err(err) => {
                return Ok(ExecOutcome::Error(format!(
                    "exec: running nsenter: {err}. {NSENTER_MISSING}"
                )));
            }
        };
        // The command is the container's now: it and its background jobs end on their own
        // or with the container, never with the exec.
        spawned.group.disarm();
        tracing::debug!(%pod, container, ?command, tty, "mock exec started");

        let stdout: Option<SharedWriter> = stdout.map(|w| Arc::new(Mutex::new(w)));
        let stderr: Option<SharedWriter> = if tty {
            stdout.clone()
        } else {
            stderr.map(|w| Arc::new(Mutex::new(w)))
        };
        let gone = CancellationToken::new();
        let pty = spawned.pty.take();
        let feed_stdin = {
            let child_stdin = spawned.stdin.take();
            async move {
                if let (Some(mut from), Some(mut to)) = (stdin, child_stdin) {
                    // A client that closes stdin (or goes away) gives the command its end.
                    let _ = tokio::io::copy(&mut from, &mut to).await;
                    if tty {
                        let _ = to.write_all(&[EOF]).await;
                    }
                    let _ = to.shutdown().await;
                }
            }
        };
        let apply_resize = async move {
            if let Some(mut sizes) = resize {
                while let Some(size) = sizes.recv().await {
                    apply_size(pty.as_ref(), size);
                }
            }
            // The terminal stays open until the command is done with it.
            std::future::pending::<()>().await;
        };
        let outputs = {
            let (out, err) = (spawned.stdout.take(), spawned.stderr.take());
            let (to_out, to_err) = (stdout.clone(), stderr.clone());
            let gone = gone.clone();
            async move {
                tokio::join!(pump(out, to_out, &gone), pump(err, to_err, &gone));
            }
        };
        let (done, result) = oneshot::channel();
        let client_gone = gone.clone();
        let child = spawned.child;
        // The command lives on its own task: the exec call going away must not end it.
        tokio::spawn(async move {
            let background = async move {
                tokio::join!(feed_stdin, apply_resize);
            };
            let status = supervise(child, outputs, background, OUTPUT_DRAIN).await;
            if !gone.is_cancelled() {
                for writer in [stdout, stderr].into_iter().flatten() {
                    let _ = writer.lock().await.shutdown().await;
                }
            }
            let _ = done.send(status);
        });
        tokio::select! {
            status = result => Ok(match status {
                Ok(Ok(status)) => ExecOutcome::Exited(exit_code(status)),
                Ok(Err(err)) => ExecOutcome::Error(format!("waiting for the command: {err}")),
                Err(_) => ExecOutcome::Error("the command's supervisor ended".into()),
            }),
            () = client_gone.cancelled() => {
                tracing::debug!(%pod, container, "exec client went away; the command goes on");
                Ok(ExecOutcome::Error("client went away".into()))
            }
        }
    }

    /// The container must exist and run, as the kubelet requires.
    pub(crate) fn exec_target(
        &self,
        pod: &PodRef,
        container: &str,
    ) -> Result<Target, ProviderError> {
        target_of(&self.shared, pod, container)
    }
}

/// A running container of `pod`, as its processes see it (for exec and exec probes).
pub(crate) fn target_of(
    shared: &super::Shared,
    pod: &PodRef,
    container: &str,
) -> Result<Target, ProviderError> {
    {
        let state = lock(&shared.state);
        let instance = state
            .instances
            .get(&pod_key(pod))
            .ok_or_else(|| MockProvider::not_found(pod))?;
        let spec = instance
            .spec
            .containers
            .iter()
            .chain(&instance.spec.init_containers)
            .find(|c| c.name == container)
            .ok_or_else(|| {
                ProviderError::NotFound(format!(
                    "container {container} is not valid for pod {}",
                    pod.name
                ))
            })?;
        let status = instance
            .status
            .containers
            .iter()
            .chain(&instance.status.init_containers)
            .find(|c| c.name == container);
        match status.map(|s| &s.state) {
            Some(ContainerState::Running { .. }) => {}
            Some(ContainerState::Terminated { .. }) => {
                return Err(ProviderError::invalid(
                    "ContainerNotRunning",
                    format!(
                        "cannot exec in a stopped container: container {container} is terminated"
                    ),
                ));
            }
            _ => {
                return Err(ProviderError::invalid(
                    "ContainerNotRunning",
                    format!("container not found ({container:?})"),
                ));
            }
        }
        let main_process = instance
            .spec
            .annotations
            .contains_key(&format!("{PROCESS}.{container}"));
        Ok(Target {
            container_id: status
                .and_then(|s| s.container_id.clone())
                .unwrap_or_default(),
            ..Target::of(
                &instance.spec,
                spec,
                main_process,
                instance.status.pod_ip.as_deref().unwrap_or_default(),
            )
        })
    }
}

/// Copies the command's output to the client's stream chunk by chunk. Once a write fails
/// (the client is gone, which cancels `gone`), the rest is read and dropped, so the command
/// never blocks on a full pipe.
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    from: Option<R>,
    to: Option<SharedWriter>,
    gone: &CancellationToken,
) {
    let Some(mut from) = from else { return };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            // EIO from a terminal nobody holds any more is its end too.
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Some(to) = to.as_ref().filter(|_| !gone.is_cancelled()) else {
            continue;
        };
        let mut to = to.lock().await;
        let written = async {
            to.write_all(&buf[..n]).await?;
            to.flush().await
        };
        if written.await.is_err() {
            gone.cancel();
        }
    }
}

/// Sets the terminal size of a TTY command; sizes for a command without one are dropped.
fn apply_size(pty: Option<&cloudsim::pty::PtyMaster>, size: TermSize) {
    if let Some(pty) = pty
        && let Err(err) = pty.resize(size)
    {
        tracing::debug!(%err, "resizing an exec's terminal");
    }
}
