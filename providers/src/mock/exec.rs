//! `kubectl exec` on the mock: the command really runs, as a local child process, so output
//! and exit codes are real.
//!
//! - It runs in a per-instance working directory under the system temp dir
//!   (`<tmp>/vk-mock-exec/<pod uid>`), with the host's `PATH`, `HOME` set to that directory,
//!   `HOSTNAME` the pod name, and the container's env on top. The image is not used and the
//!   container's `workingDir` is ignored: it names a path inside an image that does not exist.
//! - No pseudo-terminal: with a TTY the child still gets pipes, its stderr is merged into
//!   stdout (as a terminal would show it), and terminal sizes are read and dropped.
//! - The child leads its own process group. When the client goes away (writing its output
//!   fails, or the call is cancelled, which the kubelet API does when the connection closes)
//!   and when the command ends, the whole group is killed: nothing outlives the exec, not even
//!   a command's background jobs.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use vk_core::provider::{ContainerState, ExecIo, ExecOutcome, PodRef, ProviderError};

use super::{MockProvider, lock, pod_key};

/// After the command exits, how long its output pipes may stay open (a background job holding
/// them) before the rest is dropped.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

type Writer = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// What the exec needs from the instance, read under the state lock.
struct Target {
    env: Vec<(String, String)>,
    dir: PathBuf,
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
        let Some((program, args)) = command.split_first() else {
            return Err(ProviderError::invalid(
                "EmptyCommand",
                "you must specify at least one command for the container",
            ));
        };
        if let Err(err) = tokio::fs::create_dir_all(&target.dir).await {
            return Ok(ExecOutcome::Error(format!(
                "creating the working directory {}: {err}",
                target.dir.display()
            )));
        }
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(&target.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &target.dir)
            .env("HOSTNAME", &pod.name)
            .envs(target.env)
            .stdin(pipe_if(io.stdin.is_some()))
            .stdout(pipe_if(io.stdout.is_some()))
            .stderr(pipe_if(
                io.stderr.is_some() || (io.tty && io.stdout.is_some()),
            ))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => {
                return Ok(ExecOutcome::Error(format!("exec: {program:?}: {err}",)));
            }
        };
        let _group = GroupKiller(child.id());
        tracing::debug!(%pod, container, ?command, "mock exec started");

        let ExecIo {
            stdin,
            stdout,
            stderr,
            tty,
            resize,
        } = io;
        let stdout: Option<Writer> = stdout.map(|w| Arc::new(Mutex::new(w)));
        let stderr: Option<Writer> = if tty {
            stdout.clone()
        } else {
            stderr.map(|w| Arc::new(Mutex::new(w)))
        };
        let feed_stdin = {
            let child_stdin = child.stdin.take();
            async move {
                if let (Some(mut from), Some(mut to)) = (stdin, child_stdin) {
                    // A client that closes stdin (or goes away) gives the child EOF.
                    let _ = tokio::io::copy(&mut from, &mut to).await;
                    let _ = to.shutdown().await;
                }
            }
        };
        let drain_resize = async move {
            if let Some(mut sizes) = resize {
                while sizes.recv().await.is_some() {}
            }
        };
        let background = async move {
            tokio::join!(feed_stdin, drain_resize);
        };
        let outputs = {
            let (out, err) = (child.stdout.take(), child.stderr.take());
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
    fn exec_target(&self, pod: &PodRef, container: &str) -> Result<Target, ProviderError> {
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
        Ok(Target {
            env: spec
                .env
                .iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect(),
            dir: std::env::temp_dir().join("vk-mock-exec").join(dir_name),
        })
    }
}

fn pipe_if(on: bool) -> Stdio {
    if on { Stdio::piped() } else { Stdio::null() }
}

/// Copies the child's output to the client's stream chunk by chunk; `Err` when the client's
/// side fails (it went away).
async fn pump<R: AsyncRead + Unpin>(from: Option<R>, to: Option<Writer>) -> std::io::Result<()> {
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

/// The shell's convention: 128 + signal for a command killed by one.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Kills the command's process group when the exec ends, however it ends.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let Some(pid) = self.0 else { return };
        // Without libc: `kill` on the negative id signals the group.
        let group = format!("-{pid}");
        let args = ["-KILL", "--", group.as_str()];
        let result = if tokio::runtime::Handle::try_current().is_ok() {
            // tokio reaps it once it has exited.
            tokio::process::Command::new("kill")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(drop)
        } else {
            std::process::Command::new("kill")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(drop)
        };
        if let Err(err) = result {
            tracing::warn!(pid, %err, "killing an exec's process group");
        }
    }
}
