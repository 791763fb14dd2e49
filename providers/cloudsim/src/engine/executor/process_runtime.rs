//! What the `process` executor applies around a container's command, as a container runtime
//! does: the user, group and capabilities of every process of the container
//! ([`crate::sandbox::run_as`]); the termination-message file (a host file bound at the
//! container's termination-message path, read when the run ends); the group's shared PID
//! namespace (a pause sandbox holds it, every container's bwrap runs
//! in it through nsenter); and SIGTERM to a container's main process before it is killed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::engine::executor::process::ProcessExecutor;
use crate::engine::executor::{ExecutorError, Exit, GroupSpec};
use crate::engine::logstore::LogStore;
use crate::engine::spec::ContainerSpec;
use crate::sandbox::run_as::RunAs;
use crate::sandbox::{self, Bind, SandboxError, join, set_mode};

/// The kubelet's limits: a message file is read up to 4096 bytes; the log fallback takes
/// the last 80 lines, up to 2048 bytes.
const MAX_MESSAGE_BYTES: usize = 4096;
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

/// The user, group and capabilities the container asked for.
pub(super) fn run_as(container: &ContainerSpec) -> RunAs {
    let s = &container.security;
    let id = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    RunAs {
        uid: id(s.run_as_user),
        gid: id(s.run_as_group),
        add: s.capabilities_add.clone(),
        privileged: s.privileged,
    }
}

impl ProcessExecutor {
    /// `argv` as the container's processes run it.
    pub(super) fn as_container(&self, container: &ContainerSpec, argv: Vec<String>) -> Vec<String> {
        run_as(container).wrap(&self.setpriv, argv)
    }

    fn termination_file(&self, group: &str, container: &str) -> PathBuf {
        self.group_dir(group)
            .join("termination")
            .join(sandbox::sanitize(container))
    }

    /// A fresh, empty termination-message file for a new run, bound at the container's path;
    /// writable by any user, as the kubelet makes it.
    pub(super) async fn termination_bind(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
    ) -> Result<Bind, ExecutorError> {
        let file = self.termination_file(&group.id, &container.name);
        if let Some(dir) = file.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(SandboxError::io("creating", dir))?;
        }
        tokio::fs::write(&file, b"")
            .await
            .map_err(SandboxError::io("creating", &file))?;
        set_mode(&file, 0o666).await?;
        Ok(Bind {
            source: file,
            target: container.termination_message.path.clone(),
            read_only: false,
        })
    }

    /// The message of a run that ended with `exit`: the file's contents, else (with
    /// the fallback to logs and a failed run) the tail of its log.
    pub(super) async fn termination_message(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        exit: &Exit,
        log: &LogStore,
    ) -> Option<String> {
        let file = self.termination_file(&group.id, &container.name);
        let bytes = tokio::fs::read(&file).await.unwrap_or_default();
        let cut = &bytes[..bytes.len().min(MAX_MESSAGE_BYTES)];
        let message = String::from_utf8_lossy(cut).into_owned();
        if !message.is_empty() {
            return Some(message);
        }
        if !(container.termination_message.fallback_to_logs && exit.code != 0) {
            return None;
        }
        let lines: Vec<String> = log
            .select(None, Some(FALLBACK_LINES))
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        let mut tail = lines.join("\n");
        if tail.len() > FALLBACK_BYTES {
            let mut start = tail.len() - FALLBACK_BYTES;
            while !tail.is_char_boundary(start) {
                start += 1;
            }
            tail = tail[start..].to_string();
        }
        (!tail.is_empty()).then_some(tail)
    }

    /// Starts the sandbox that holds the group's shared PID namespace (a pause process).
    pub(super) async fn start_pause(&self, group: &GroupSpec) -> Result<(), ExecutorError> {
        let mut command = Command::new(&self.config.bwrap);
        command
            .args([
                "--die-with-parent",
                "--unshare-pid",
                "--ro-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--",
                "sleep",
                "infinity",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().map_err(ExecutorError::PauseStart)?;
        let pid = child.id().ok_or(ExecutorError::PauseExited)?;
        self.pauses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.id.clone(), (pid, child));
        Ok(())
    }

    /// The first process of the group's shared PID namespace, once it exists.
    pub(super) async fn pause_init(&self, group: &str) -> Result<u32, ExecutorError> {
        let pid = self
            .pauses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .map(|(pid, _)| *pid)
            .ok_or(ExecutorError::SharedPidGone)?;
        // Its root is the host's: any child of bwrap is already in the new namespace.
        Ok(join::namespace_init(pid, Path::new("/")).await?)
    }

    pub(super) fn stop_pause(&self, group: &str) {
        // Dropping the child kills it; the namespace goes with its first process.
        self.pauses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(group);
    }

    /// SIGTERM to the container's main process; `false` when it is not running.
    pub(super) async fn signal_main(&self, group: &GroupSpec, container: &ContainerSpec) -> bool {
        let Some(bwrap) = self.run_pid(&group.id, &container.name) else {
            return false;
        };
        let root = self.root_dir(&group.id, &container.name);
        let Ok(Ok(init)) =
            tokio::time::timeout(Duration::from_secs(1), join::namespace_init(bwrap, &root)).await
        else {
            return false;
        };
        let main = join::main_process(init);
        let Some(pid) = i32::try_from(main)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
    }
}

/// What to tell a person whose machine lacks setpriv.
pub const SETPRIV_MISSING: &str = "setpriv (util-linux) is needed by the process executor to run a container as its user with its capabilities: install it with `apt-get install -y util-linux`, or run vk-cloud with --executor simulate";

/// Is setpriv there (on the host's `PATH`, which the sandboxes bind)? The error says what
/// to do.
pub async fn check_setpriv() -> Result<(), ExecutorError> {
    let setpriv = sandbox::on_path(Path::new("setpriv"));
    match Command::new(&setpriv)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(_) => Err(ExecutorError::VersionFailed {
            program: setpriv,
            hint: SETPRIV_MISSING,
        }),
        Err(source) => Err(ExecutorError::Program {
            verb: "running",
            program: setpriv,
            source,
            hint: SETPRIV_MISSING,
        }),
    }
}
