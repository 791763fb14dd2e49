//! What runs a container. The engine owns the lifecycle (scheduling, init containers in order,
//! restarts, group status); an executor only prepares a group's shared sandbox, runs one
//! container run to its exit, runs commands in a container and attaches to its main process.
//! Two exist: `simulate` (timers and synthetic logs, cheap for thousands of groups) and
//! `process` (real processes in bubblewrap sandboxes; a container whose main is a timer gets
//! a sandbox only when something execs into it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub mod process;
mod process_attach;
mod process_exec;
mod process_holder;
mod process_main;
pub mod process_runtime;
pub mod procstat;
pub mod simulate;
#[cfg(test)]
mod tests_process;

use crate::engine::catalog::ImageEntry;
use crate::engine::logstore::LogStore;
use crate::engine::spec::{ContainerSpec, Names, VolumeSpec};
use crate::sandbox::SandboxError;

/// Which executor runs the containers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    #[default]
    Simulate,
    Process,
}

/// Why an executor could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A program the executor runs (bwrap, nsenter, setpriv) could not be started; `hint`
    /// says what to do.
    #[error("{verb} {}: {source}. {hint}", program.display())]
    Program {
        /// `running` or `starting`.
        verb: &'static str,
        program: PathBuf,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("{} --version failed. {hint}", program.display())]
    VersionFailed {
        program: PathBuf,
        hint: &'static str,
    },
    #[error("{} cannot create a sandbox here ({status}): {stderr}", program.display())]
    NoSandbox {
        program: PathBuf,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("creating the work directory {}: {source}", dir.display())]
    WorkDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {0:?} is not running")]
    NotRunning(String),
    #[error("no command")]
    NoCommand,
    #[error("the command did not finish within {0:?}")]
    TimedOut(Duration),
    #[error("waiting for the command: {0}")]
    Wait(#[source] std::io::Error),
    #[error("the command's supervisor ended unexpectedly")]
    SupervisorGone,
    #[error("the command's terminal is missing")]
    NoTerminal,
    #[error("starting the group's pause sandbox: {0}")]
    PauseStart(#[source] std::io::Error),
    #[error("the pause sandbox exited at once")]
    PauseExited,
    #[error("the group's shared PID namespace is gone")]
    SharedPidGone,
    /// The interactive exec's client went away.
    #[error("the client went away")]
    ClientGone,
    /// This executor has no main processes to attach to (its name).
    #[error("the {0} executor cannot attach to a container")]
    CannotAttach(&'static str),
    /// The container's main is a timer: no process to attach to.
    #[error("container {0:?} has no main process to attach to: its main is simulated")]
    NoMainProcess(String),
    /// The program of an exec is not in the container (runc's words).
    #[error("{0}")]
    ProgramNotFound(String),
}

/// What a group's containers share, as the engine accepted it.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub id: String,
    pub name: String,
    pub volumes: Vec<VolumeSpec>,
    /// The group's private IP (its `/etc/hosts` line).
    pub ip: String,
    /// Its hostname, resolver and host aliases.
    pub names: Names,
    /// The containers share one PID namespace.
    pub share_process_namespace: bool,
}

/// One run of one container.
pub struct RunContext {
    pub group: Arc<GroupSpec>,
    pub container: Arc<ContainerSpec>,
    pub image: ImageEntry,
    pub log: Arc<LogStore>,
    /// 0 for the first run, then the restart count.
    pub restart_count: i32,
    /// How long the run has been going already: zero for a new run; a run the engine resumed
    /// from its state file (`persist`) started this long ago, and a timer runs only the rest.
    pub elapsed: Duration,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub code: i32,
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `StartError`, `OOMKilled`.
    pub reason: String,
    pub message: Option<String>,
}

impl Exit {
    pub fn code(code: i32) -> Self {
        Self {
            code,
            signal: None,
            reason: if code == 0 { "Completed" } else { "Error" }.to_string(),
            message: None,
        }
    }
}

/// A command run in a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub output: Vec<u8>,
    pub exit_code: i32,
}

/// Which of a command's outputs a chunk came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

/// The streams of an interactive exec (the WebSocket session's side).
pub struct ExecStreams {
    /// Bytes for the command's stdin; `None`: it has none (`/dev/null`). The channel closing
    /// is EOF.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Output chunks by stream. A failed send means the
    /// client is gone: the command is killed.
    pub output: mpsc::Sender<(Output, Bytes)>,
    /// A terminal was asked for: everything comes on stdout (`process` gives the command a
    /// pseudo-terminal).
    pub tty: bool,
    /// Terminal sizes (width, height).
    pub resize: mpsc::Receiver<(u16, u16)>,
}

/// A running container whose usage is asked for.
#[derive(Clone, Debug)]
pub struct RunningContainer {
    pub group_id: String,
    pub spec: ContainerSpec,
    /// When its current run started.
    pub started: Timestamp,
}

/// A container's usage at one moment, in the kubelet's units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Cores in use lately, in billionths of a core.
    pub nano_cores: u64,
    /// CPU time since the run started.
    pub core_nano_seconds: u64,
    pub working_set_bytes: u64,
    pub rss_bytes: u64,
}

#[async_trait]
pub trait Executor: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Create what the group's containers share (volumes, their files) before any runs.
    async fn prepare(&self, group: &GroupSpec) -> Result<(), ExecutorError>;

    /// Rewrite the group's file volumes (an update).
    async fn update_volumes(&self, group: &GroupSpec) -> Result<(), ExecutorError>;

    /// Run the container until it exits. Dropping the future stops the run.
    async fn run(&self, ctx: RunContext) -> Exit;

    /// Run a command in the container's sandbox and collect its output.
    async fn exec(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        command: &[String],
    ) -> Result<ExecOutput, ExecutorError>;

    /// Run a command in the container's sandbox with streams; its exit code, or why it could
    /// not run. Dropping the future kills the command.
    async fn exec_interactive(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        command: &[String],
        streams: ExecStreams,
    ) -> Result<i32, ExecutorError>;

    /// Attach `streams` to the container's running main process until the client goes away
    /// (a send on `streams.output` fails) or the process exits; it never stops the process.
    /// The client gets the output from now on (stdout, and stderr on its own unless the
    /// container has a terminal; a client too slow to keep up misses chunks rather than
    /// slowing the process), its stdin bytes go to the process's stdin when the container has
    /// one (its stdin ending does not close the process's), its sizes to the process's
    /// terminal. By default: [`ExecutorError::CannotAttach`].
    async fn attach(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        streams: ExecStreams,
    ) -> Result<(), ExecutorError> {
        let _ = (group, container, streams);
        Err(ExecutorError::CannotAttach(self.name()))
    }

    /// Ask the container's running main process to stop (SIGTERM), as a runtime does before
    /// it kills; `false` when this executor cannot, and the run is simply dropped.
    async fn terminate(&self, group: &GroupSpec, container: &ContainerSpec) -> bool {
        let _ = (group, container);
        false
    }

    /// Forget the group: its runs are over (or being stopped).
    async fn remove(&self, group_id: &str);

    /// The usage of each running container, in order; `None` for one it cannot measure.
    async fn usage(&self, running: &[RunningContainer]) -> Vec<Option<Usage>> {
        vec![None; running.len()]
    }
}
