//! Joining a running container's sandbox, as `runc exec` joins a container: an exec'd command
//! enters the namespaces (mount, PID, UTS, IPC) and the root of the container's main process
//! with `nsenter`, starts in the container's working directory with its environment, and is a
//! process of the container from then on. What it starts in the background stays in the
//! container's PID namespace after the exec ends, and goes when the container stops (its
//! namespace's first process dies, and the kernel ends the rest).
//!
//! bwrap with `--unshare-pid` forks once into the new namespaces: its child is the namespace's
//! first process (bwrap's own init), which sets up the mounts, pivots into the container's
//! root, then forks the command. That child is the process to join, once its root is the
//! container's root (before that it still sees the host's).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::error::SandboxError;

/// How long a just-started container may take to finish setting up its sandbox.
pub const SETUP_WAIT: Duration = Duration::from_secs(5);

/// The first process of the sandbox that `bwrap_pid` (the outer bwrap) made, once its root is
/// `root` (the container's root directory on the host). `Err` says why it cannot be joined.
pub async fn namespace_init(bwrap_pid: u32, root: &Path) -> Result<u32, SandboxError> {
    let want = std::fs::metadata(root)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|source| SandboxError::Root {
            root: root.to_path_buf(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + SETUP_WAIT;
    loop {
        // The first process down the line of first children whose root is the container's:
        // bwrap's child, or one level deeper when bwrap was started by nsenter to join a
        // group's shared PID namespace.
        let mut next = first_child(bwrap_pid);
        for _ in 0..3 {
            let Some(pid) = next else { break };
            let theirs = std::fs::metadata(format!("/proc/{pid}/root/"))
                .map(|m| (m.dev(), m.ino()))
                .ok();
            if theirs == Some(want) {
                return Ok(pid);
            }
            next = first_child(pid);
        }
        if !Path::new(&format!("/proc/{bwrap_pid}")).exists() {
            return Err(SandboxError::Gone);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SandboxError::NotSetUp(SETUP_WAIT));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The container's main process below its sandbox's first process `init`: bwrap's own init
/// when it made a PID namespace (then its first child is the command), else `init` itself.
pub fn main_process(init: u32) -> u32 {
    let comm = std::fs::read_to_string(format!("/proc/{init}/comm")).unwrap_or_default();
    if comm.trim() == "bwrap" {
        first_child(init).unwrap_or(init)
    } else {
        init
    }
}

/// The oldest child of `pid` (`/proc/<pid>/task/<pid>/children`; bwrap is single-threaded).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A command that runs `argv` inside the sandbox whose first process is `init`: in its
/// namespaces and root, in `workdir` (a path inside the container), with exactly `env`.
/// `nsenter` forks into the PID namespace and waits for the command, so the returned
/// process's exit status is the command's.
pub fn join_command(
    nsenter: &Path,
    init: u32,
    workdir: &str,
    env: &[(String, String)],
    argv: &[String],
) -> Command {
    let mut command = Command::new(nsenter);
    // nsenter opens the working directory before it enters the mount namespace: reach the
    // container's directory through the init's root.
    let wd: PathBuf =
        Path::new(&format!("/proc/{init}/root")).join(workdir.trim_start_matches('/'));
    command
        .arg(format!("--target={init}"))
        .args(["--mount", "--uts", "--ipc", "--pid", "--root"])
        .arg(format!("--wd={}", wd.display()))
        .arg("--")
        .args(argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// Is `program` there for a command started in `workdir` of the sandbox whose first
/// process is `init`, with `PATH` from `env`? Why not, in runc's words, when it is not.
pub fn find_program(
    init: u32,
    program: &str,
    env: &[(String, String)],
    workdir: &str,
) -> Result<(), String> {
    let root = PathBuf::from(format!("/proc/{init}/root"));
    let exists = |path: &Path| std::fs::symlink_metadata(path).is_ok();
    let inside = |path: &str| root.join(path.trim_start_matches('/'));
    if program.contains('/') {
        let path = if program.starts_with('/') {
            program.to_string()
        } else {
            format!("{workdir}/{program}")
        };
        if exists(&inside(&path)) {
            return Ok(());
        }
        return Err(format!(
            "exec: {program:?}: stat {program}: no such file or directory"
        ));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if path
        .split(':')
        .filter(|dir| !dir.is_empty())
        .any(|dir| exists(&inside(&format!("{dir}/{program}"))))
    {
        return Ok(());
    }
    Err(format!(
        "exec: {program:?}: executable file not found in $PATH"
    ))
}
