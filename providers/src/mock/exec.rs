//! `kubectl exec` on the mock: the command really runs, as a local child process, so output
//! and exit codes are real.
//!
//! - It runs in a per-instance directory under the system temp dir
//!   (`<tmp>/vk-mock-exec/<pod uid>`, see [`pod_dir`]), with the host's `PATH`, `HOME` set to
//!   that directory, `HOSTNAME` the pod name, and the container's env on top. The image is not
//!   used and the container's `workingDir` is ignored: it names a path inside an image that
//!   does not exist. The filesystem is the host's: an absolute container path is that host
//!   path, a relative one (and `~`) is inside the pod's directory, which every container of
//!   the pod shares (like an emptyDir). So `kubectl cp f pod:f` lands in the pod's directory
//!   and `kubectl cp pod:f f` reads it back (kubectl runs `tar` through exec).
//! - With a TTY the command runs on a pseudo-terminal ([`pty`](super::pty)): stderr goes to
//!   it, stdin bytes go to it raw, terminal sizes set its window size. The command starts once
//!   the client's first size has come (or after [`FIRST_SIZE_WAIT`]), so it sees the size.
//! - The child leads its own process group (its own session with a TTY). When the client goes
//!   away (writing its output fails, or the call is cancelled, which the kubelet API does when
//!   the connection closes) and when the command ends, the whole group is killed: nothing
//!   outlives the exec, not even a command's background jobs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use vk_core::provider::{ContainerState, ExecIo, ExecOutcome, PodRef, ProviderError, TermSize};

use super::spawn::{Launch, exit_code, spawn};
use super::{MockProvider, lock, pod_key};

/// After the command exits, how long its output pipes may stay open (a background job holding
/// them) before the rest is dropped.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// With a TTY, how long the command waits for the client's terminal size before it starts.
pub(crate) const FIRST_SIZE_WAIT: Duration = Duration::from_secs(1);

type SharedWriter = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// What a process in a container needs from the instance, read under the state lock.
pub(crate) struct Target {
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
}

/// The directory a pod's processes run in: `<tmp>/vk-mock-exec/<pod uid>` (the UID with
/// anything but ASCII letters, digits and `-` replaced by `_`).
pub(crate) fn pod_dir(pod: &PodRef) -> PathBuf {
    let dir_name: String = pod_key(pod)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::env::temp_dir().join("vk-mock-exec").join(dir_name)
}

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
        let ExecIo {
            stdin,
            stdout,
            stderr,
            tty,
            mut resize,
        } = io;
        let first_size = match (&mut resize, tty) {
            (Some(sizes), true) => tokio::time::timeout(FIRST_SIZE_WAIT, sizes.recv())
                .await
                .ok()
                .flatten(),
            _ => None,
        };
        let launch = Launch {
            command: &command,
            dir: &target.dir,
            hostname: &pod.name,
            env: &target.env,
            stdin: stdin.is_some(),
            stdout: stdout.is_some(),
            stderr: stderr.is_some() || (tty && stdout.is_some()),
            tty: tty.then_some(first_size),
        };
        let mut spawned = match spawn(&launch) {
            Ok(spawned) => spawned,
            Err(err) => {
                return Ok(ExecOutcome::Error(format!("exec: {:?}: {err}", command[0])));
            }
        };
        let mut child = spawned.child;
        let _group = spawned.group;
        tracing::debug!(%pod, container, ?command, tty, "mock exec started");

        let stdout: Option<SharedWriter> = stdout.map(|w| Arc::new(Mutex::new(w)));
        let stderr: Option<SharedWriter> = if tty {
            stdout.clone()
        } else {
            stderr.map(|w| Arc::new(Mutex::new(w)))
        };
        let pty = spawned.pty.take();
        let feed_stdin = {
            let child_stdin = spawned.stdin.take();
            async move {
                if let (Some(mut from), Some(mut to)) = (stdin, child_stdin) {
                    // A client that closes stdin (or goes away) gives the child EOF.
                    let _ = tokio::io::copy(&mut from, &mut to).await;
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
        };
        let background = async move {
            tokio::join!(feed_stdin, apply_resize);
        };
        let outputs = {
            let (out, err) = (spawned.stdout.take(), spawned.stderr.take());
            let (to_out, to_err) = (stdout.clone(), stderr.clone());
            async move {
                // The first failed write (the client is gone) ends both.
                tokio::try_join!(pump(out, to_out), pump(err, to_err)).map(drop)
            }
        };
        tokio::pin!(outputs, background);
        let (mut outputs_done, mut background_done) = (false, false);
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                copied = &mut outputs, if !outputs_done => {
                    outputs_done = true;
                    if let Err(err) = copied {
                        tracing::debug!(%pod, container, %err, "exec client went away; killing the command");
                        let _ = child.kill().await;
                        return Ok(ExecOutcome::Error(format!("client went away: {err}")));
                    }
                }
                () = &mut background, if !background_done => background_done = true,
            }
        };
        // Output the command wrote just before it exited.
        if !outputs_done
            && tokio::time::timeout(OUTPUT_DRAIN, &mut outputs)
                .await
                .is_err()
        {
            tracing::debug!(%pod, container, "exec output still open after the command ended");
        }
        for writer in [stdout, stderr].into_iter().flatten() {
            let _ = writer.lock().await.shutdown().await;
        }
        Ok(match status {
            Ok(status) => ExecOutcome::Exited(exit_code(status)),
            Err(err) => ExecOutcome::Error(format!("waiting for the command: {err}")),
        })
    }

    /// The container must exist and run, as the kubelet requires.
    pub(crate) fn exec_target(
        &self,
        pod: &PodRef,
        container: &str,
    ) -> Result<Target, ProviderError> {
        let state = lock(&self.shared.state);
        let instance = state
            .instances
            .get(&pod_key(pod))
            .ok_or_else(|| Self::not_found(pod))?;
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
        Ok(Target {
            env: spec
                .env
                .iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect(),
            dir: pod_dir(pod),
        })
    }
}

/// Copies the child's output to the client's stream chunk by chunk; `Err` when the client's
/// side fails (it went away).
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    from: Option<R>,
    to: Option<SharedWriter>,
) -> std::io::Result<()> {
    let (Some(mut from), Some(to)) = (from, to) else {
        return Ok(());
    };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        let mut to = to.lock().await;
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}

/// Sets the terminal size of a TTY command; sizes for a command without one are dropped.
fn apply_size(pty: Option<&super::pty::PtyMaster>, size: TermSize) {
    if let Some(pty) = pty
        && let Err(err) = pty.resize(size)
    {
        tracing::debug!(%err, "resizing an exec's terminal");
    }
}
