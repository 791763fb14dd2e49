//! Starting the mock's real processes (exec commands and containers' main processes) the
//! same way: in the pod's directory, with the container's environment, on pipes or on a
//! pseudo-terminal, each leading its own process group so that it can be killed with
//! everything it started.

use std::io;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, Command};
use vk_core::provider::TermSize;

use super::pty::{self, PtyMaster};

pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// What to run, and with which streams.
pub(crate) struct Launch<'a> {
    pub command: &'a [String],
    /// The pod's directory: working directory and `HOME`.
    pub dir: &'a Path,
    pub hostname: &'a str,
    pub env: &'a [(String, String)],
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Run on a pseudo-terminal (stderr goes to it too), of this size when known.
    pub tty: Option<Option<TermSize>>,
}

/// A started process and this side's ends of its streams.
pub(crate) struct Spawned {
    pub child: Child,
    pub stdin: Option<Writer>,
    pub stdout: Option<Reader>,
    pub stderr: Option<Reader>,
    /// With a TTY: the terminal, for resizes.
    pub pty: Option<PtyMaster>,
    /// Kills the process group when dropped.
    pub group: GroupKiller,
}

/// Starts `launch.command`. `Err` when it cannot be started (no such program, no pty).
pub(crate) fn spawn(launch: &Launch<'_>) -> io::Result<Spawned> {
    let Some((program, args)) = launch.command.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    std::fs::create_dir_all(launch.dir)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(launch.dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", launch.dir)
        .env("HOSTNAME", launch.hostname)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    let pty = match launch.tty {
        Some(size) => {
            if !launch.env.iter().any(|(k, _)| k == "TERM") {
                cmd.env("TERM", "xterm");
            }
            let (master, slave) = pty::open(size)?;
            pty::run_on(&mut cmd, &slave)?;
            let child = cmd.spawn()?;
            // Only the command may hold the slave: the master reads EIO once it is gone.
            drop(cmd);
            drop(slave);
            let stdin = if launch.stdin {
                Some(Box::new(master.writer()?) as Writer)
            } else {
                None
            };
            let stdout = if launch.stdout {
                Some(Box::new(master.reader()?) as Reader)
            } else {
                None
            };
            let group = GroupKiller(child.id());
            return Ok(Spawned {
                child,
                stdin,
                stdout,
                stderr: None,
                pty: Some(master),
                group,
            });
        }
        None => None,
    };
    cmd.stdin(pipe_if(launch.stdin))
        .stdout(pipe_if(launch.stdout))
        .stderr(pipe_if(launch.stderr))
        .process_group(0);
    let mut child = cmd.spawn()?;
    let group = GroupKiller(child.id());
    Ok(Spawned {
        stdin: child.stdin.take().map(|w| Box::new(w) as Writer),
        stdout: child.stdout.take().map(|r| Box::new(r) as Reader),
        stderr: child.stderr.take().map(|r| Box::new(r) as Reader),
        child,
        pty,
        group,
    })
}

fn pipe_if(on: bool) -> Stdio {
    if on { Stdio::piped() } else { Stdio::null() }
}

/// The shell's convention: 128 + signal for a command killed by one.
pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Kills a process group when dropped: nothing a process started outlives it.
pub(crate) struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let Some(pid) = self.0 else { return };
        let Ok(pid) = i32::try_from(pid) else { return };
        let Some(group) = rustix::process::Pid::from_raw(pid) else {
            return;
        };
        // ESRCH: the group is gone already.
        if let Err(err) = rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
            && err != rustix::io::Errno::SRCH
        {
            tracing::warn!(pid, %err, "killing a mock process group");
        }
    }
}
