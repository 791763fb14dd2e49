//! The `process` executor: every container runs for real, as a local process in its own
//! bubblewrap sandbox. Layout under the work directory:
//!
//! ```text
//! <work>/<group>/volumes/<volume>/...      emptyDirs and config files, shared by the group
//! <work>/<group>/rootfs/<container>/       the container's writable root
//! ```
//!
//! The sandbox binds the container's root at `/`, the host's `/usr`, `/bin`, `/lib`, `/lib64`,
//! `/etc` (and `/sbin`) read-only, the volumes at their mount paths, a fresh `/proc` and
//! `/dev`; it has its own PID, IPC and UTS namespaces (`--unshare-pid`), dies with the cloud
//! (`--die-with-parent`), starts with a clean environment plus the container's env, in the
//! container's working directory. The network is the host's (a group's containers share one
//! network, as ECI's do). The sandbox is built by [`crate::sandbox`], shared with the mock
//! provider. Exec joins the running container's sandbox ([`sandbox::join`]); an interactive
//! exec streams its stdin/stdout/stderr (with `TTY`, through a pseudo-terminal that is also its
//! controlling terminal, sized as the client asks, see `executor_process_exec`). The user,
//! group and capabilities of every process, a read-only root, the termination-message file,
//! the group's shared PID namespace and SIGTERM before a kill are in
//! `executor_process_runtime`. While a main process runs, attach joins it: its stdin, its
//! output as it comes, its terminal (`process_attach`). A container whose main is a timer
//! ([`Main::Simulated`]) runs no process: its sandbox is a holder started by the first exec
//! and killed with the run (`process_holder`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;
use tokio::process::Command;

use crate::engine::catalog::argv;
use crate::engine::executor::process_main::{Holder, MainProcess};
use crate::engine::executor::procstat::ProcTable;
use crate::engine::executor::simulate::simulated_usage;
use crate::engine::executor::{
    ExecOutput, ExecStreams, Executor, ExecutorError, Exit, GroupSpec, RunContext,
    RunningContainer, Usage,
};
use crate::engine::spec::{ContainerSpec, Main, VolumeSpec};
use crate::sandbox::spawn::{Spawned, Streams, spawn};
use crate::sandbox::{self, Sandbox, SandboxError, etc, join, on_path, set_mode};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    /// Where sandboxes live; default: a directory in the system's temp dir.
    pub work_dir: Option<PathBuf>,
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// Host directories bound read-only into every sandbox (skipped when absent).
    pub host_dirs: Vec<PathBuf>,
    /// Synchronous exec commands are killed after this long.
    pub exec_timeout_ms: u64,
    /// util-linux's nsenter, which joins an exec'd command to its container's sandbox.
    pub nsenter: PathBuf,
    /// An interactive exec of a program the container does not have is an error, as runc
    /// reports it (the kubelet's way), instead of the shell's exit code 127.
    pub missing_program_is_error: bool,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            work_dir: None,
            bwrap: PathBuf::from("bwrap"),
            host_dirs: ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"]
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            exec_timeout_ms: 60_000,
            nsenter: PathBuf::from("nsenter"),
            missing_program_is_error: false,
        }
    }
}

/// What to tell a person whose machine lacks bubblewrap.
pub const BWRAP_MISSING: &str = "bubblewrap (bwrap) is needed by the process executor: install it with `apt-get install -y bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`, or run vk-cloud with --executor simulate";

/// What to tell a person whose machine lacks nsenter.
pub const NSENTER_MISSING: &str = "nsenter (util-linux) is needed by the process executor to run exec'd commands inside their container: install it with `apt-get install -y util-linux`, or run vk-cloud with --executor simulate";

/// nsenter (which runs a command in a container) could not be started.
pub(super) fn nsenter_failed(nsenter: &Path, source: std::io::Error) -> ExecutorError {
    ExecutorError::Program {
        verb: "running",
        program: nsenter.to_path_buf(),
        source,
        hint: NSENTER_MISSING,
    }
}

/// Is nsenter there? The error says what to do.
pub async fn check_nsenter(nsenter: &Path) -> Result<(), ExecutorError> {
    let output = Command::new(on_path(nsenter))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| ExecutorError::Program {
            verb: "running",
            program: nsenter.to_path_buf(),
            source,
            hint: NSENTER_MISSING,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ExecutorError::VersionFailed {
            program: nsenter.to_path_buf(),
            hint: NSENTER_MISSING,
        })
    }
}

/// Is bwrap there and able to make a sandbox? The error says what to do.
pub async fn check_bwrap(bwrap: &Path) -> Result<(), ExecutorError> {
    let output = Command::new(bwrap)
        .args([
            "--ro-bind",
            "/",
            "/",
            "--unshare-pid",
            "--dev",
            "/dev",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| ExecutorError::Program {
            verb: "running",
            program: bwrap.to_path_buf(),
            source,
            hint: BWRAP_MISSING,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ExecutorError::NoSandbox {
            program: bwrap.to_path_buf(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

pub struct ProcessExecutor {
    pub(super) config: ProcessConfig,
    work_dir: PathBuf,
    /// `config.nsenter`, found on the host's `PATH` (exec'd commands get the container's).
    pub(super) nsenter: PathBuf,
    /// util-linux's setpriv, found on the host's `PATH` (the sandbox binds the host's `/usr`).
    pub(super) setpriv: PathBuf,
    runs: Arc<std::sync::Mutex<Runs>>,
    /// Per group with a shared PID namespace: the pause sandbox holding it (pid, process).
    pub(super) pauses:
        std::sync::Mutex<std::collections::HashMap<String, (u32, tokio::process::Child)>>,
}

/// The runs going on now, by (group, container): exec joins them, attach and usage find
/// their processes.
#[derive(Default)]
struct Runs {
    by_container: std::collections::HashMap<(String, String), Run>,
    next_serial: u64,
}

struct Run {
    /// Tells this run from a later one of the same container.
    serial: u64,
    main: RunMain,
}

/// What a run runs as the container's main.
pub(super) enum RunMain {
    /// A process in its sandbox.
    Process {
        /// The sandbox's outer bwrap: the container is it and everything below it.
        pid: u32,
        samples: Samples,
        /// What attach joins.
        main: Arc<MainProcess>,
    },
    /// A timer; its sandbox is started by the first exec.
    Timer(Arc<Holder>),
}

/// A run as exec and attach find it.
pub(super) enum Current {
    Process { pid: u32, main: Arc<MainProcess> },
    Timer(Arc<Holder>),
}

/// Earlier (time, CPU time) samples of a run, oldest first, starting with (start, 0).
pub(super) struct Samples(std::collections::VecDeque<(Instant, u64)>);

/// After an exec'd command exits, how long its output may stay open (a background job
/// holding it) before the rest is left unread.
pub(super) const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// The usage rate is taken over at least this long when the samples allow it: CPU time
/// comes in 10 ms ticks, too coarse for shorter windows.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Samples kept per run; more frequent askers get a window from the oldest of them.
const MAX_SAMPLES: usize = 32;

impl Samples {
    fn new(start: Instant) -> Self {
        Self([(start, 0)].into())
    }

    /// The usage rate, in nano-cores, up to a CPU time of `cpu_ns` now: since the newest
    /// sample at least [`RATE_WINDOW`] old, else since the oldest one (the start).
    fn rate(&mut self, cpu_ns: u64, now: Instant) -> u64 {
        let samples = &mut self.0;
        while samples.len() >= 2 && now.saturating_duration_since(samples[1].0) >= RATE_WINDOW {
            samples.pop_front();
        }
        let (since, before) = samples.front().copied().unwrap_or((now, cpu_ns));
        let window = now.saturating_duration_since(since).as_nanos().max(1);
        let used = u128::from(cpu_ns.saturating_sub(before));
        if samples.len() >= MAX_SAMPLES {
            samples.remove(1);
        }
        samples.push_back((now, cpu_ns));
        u64::try_from(used * 1_000_000_000 / window).unwrap_or(u64::MAX)
    }
}

/// Ends a run's attachments or holder and forgets the run when it ends (however it ends),
/// unless a later run of the container replaced it.
pub(super) struct Registered {
    runs: Arc<std::sync::Mutex<Runs>>,
    key: (String, String),
    serial: u64,
    ending: Current,
}

impl Drop for Registered {
    fn drop(&mut self) {
        match &self.ending {
            Current::Process { main, .. } => main.end(),
            Current::Timer(holder) => holder.kill(),
        }
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs
            .by_container
            .get(&self.key)
            .is_some_and(|r| r.serial == self.serial)
        {
            runs.by_container.remove(&self.key);
        }
    }
}

impl RunMain {
    fn current(&self) -> Current {
        match self {
            Self::Process { pid, main, .. } => Current::Process {
                pid: *pid,
                main: main.clone(),
            },
            Self::Timer(holder) => Current::Timer(holder.clone()),
        }
    }
}

impl ProcessExecutor {
    pub fn new(config: ProcessConfig) -> Self {
        let work_dir = config.work_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("vk-cloud-{}", std::process::id()))
        });
        let nsenter = on_path(&config.nsenter);
        Self {
            config,
            work_dir,
            nsenter,
            setpriv: on_path(Path::new("setpriv")),
            runs: Arc::default(),
            pauses: Default::default(),
        }
    }

    /// A run starts: exec, attach and usage find it until the returned guard drops.
    pub(super) fn register(&self, group: &str, container: &str, main: RunMain) -> Registered {
        let key = (group.to_string(), container.to_string());
        let ending = main.current();
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.next_serial += 1;
        let serial = runs.next_serial;
        let replaced = runs.by_container.insert(key.clone(), Run { serial, main });
        drop(runs);
        // An earlier run's holder never outlives it (its guard kills it too).
        if let Some(Run {
            main: RunMain::Timer(holder),
            ..
        }) = replaced
        {
            holder.kill();
        }
        Registered {
            runs: self.runs.clone(),
            key,
            serial,
            ending,
        }
    }

    /// The container's current run, if it has one.
    pub(super) fn current(&self, group: &str, container: &str) -> Option<Current> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.by_container
            .get(&(group.to_string(), container.to_string()))
            .map(|r| r.main.current())
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The outer process of the container's current run, when its main is a process.
    pub(super) fn run_pid(&self, group: &str, container: &str) -> Option<u32> {
        match self.current(group, container)? {
            Current::Process { pid, .. } => Some(pid),
            Current::Timer(_) => None,
        }
    }

    /// Group ids come from the engine, but never let one escape the work directory.
    pub(super) fn group_dir(&self, id: &str) -> PathBuf {
        self.work_dir.join(sandbox::dir_name(id))
    }

    fn volume_dir(&self, group: &str, volume: &str) -> PathBuf {
        self.group_dir(group)
            .join("volumes")
            .join(sandbox::sanitize(volume))
    }

    pub(super) fn root_dir(&self, group: &str, container: &str) -> PathBuf {
        self.group_dir(group)
            .join("rootfs")
            .join(sandbox::sanitize(container))
    }

    async fn write_config_files(&self, group: &GroupSpec) -> Result<(), ExecutorError> {
        for volume in &group.volumes {
            let VolumeSpec::Files { name, files } = volume else {
                continue;
            };
            let dir = self.volume_dir(&group.id, name);
            for file in files {
                sandbox::write_file(&dir, &file.path, &file.content, file.mode).await?;
            }
        }
        Ok(())
    }

    /// Starts bwrap with `args` (`sandbox()`, `--`, the argv): stdout and stderr piped, stdin
    /// open when the container has `Stdin`, on a pseudo-terminal with `Tty`; the leader of its
    /// own process group, which the returned killer kills when dropped: the PID namespace's
    /// first process goes with it, and so does every process the container started.
    /// In a group with a shared PID namespace, bwrap runs in it: nsenter joins the pause
    /// sandbox's namespace (`shared_pid`: its first process) first.
    pub(super) fn spawn_sandbox(
        &self,
        args: &[String],
        container: &ContainerSpec,
        shared_pid: Option<u32>,
    ) -> Result<Spawned, ExecutorError> {
        let mut command = match shared_pid {
            Some(init) => {
                let mut c = Command::new(&self.nsenter);
                c.arg(format!("--target={init}"))
                    .args(["--pid", "--"])
                    .arg(&self.config.bwrap);
                c
            }
            None => Command::new(&self.config.bwrap),
        };
        command.args(args);
        let streams = Streams {
            stdin: container.stdin,
            stdout: true,
            stderr: true,
            tty: container.tty.then_some(None),
            ptmx: None,
        };
        spawn(command, &streams).map_err(|source| ExecutorError::Program {
            verb: "starting",
            program: self.config.bwrap.clone(),
            source,
            hint: BWRAP_MISSING,
        })
    }

    /// The bwrap arguments of `container`'s sandbox, up to (not including) `--` and the argv.
    pub(super) async fn sandbox(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
    ) -> Result<Vec<String>, ExecutorError> {
        let root = self.root_dir(&group.id, &container.name);
        // The group's /etc/hosts and /etc/resolv.conf, then the volumes.
        let mut binds = etc::binds(&self.group_dir(&group.id), &identity(group)).await?;
        binds.push(self.termination_bind(group, container).await?);
        for mount in &container.mounts {
            binds.push(
                sandbox::volume_bind(
                    &self.volume_dir(&group.id, &mount.volume),
                    mount.sub_path.as_deref().unwrap_or_default(),
                    &mount.mount_path,
                    mount.read_only,
                )
                .await?,
            );
        }
        let workdir = container.working_dir.as_deref().unwrap_or("/");
        sandbox::bwrap_args(&Sandbox {
            root: &root,
            hostname: &etc::host_name(&group.names, &group.name),
            host_dirs: &self.config.host_dirs,
            binds: &binds,
            workdir,
            env: &container_env(group, container),
            read_only_root: container.security.read_only_root,
            shared_pid: group.share_process_namespace,
        })
        .await
        .map_err(ExecutorError::from)
    }

    /// A command that runs `argv` inside the running container's sandbox (see
    /// [`sandbox::join`]), or why it cannot. A container whose main is a timer gets its
    /// holder now if it has none yet (see `process_holder`).
    pub(super) async fn join(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        argv: &[String],
    ) -> Result<Command, ExecutorError> {
        let init = self.sandbox_init(group, container).await?;
        let workdir = container.working_dir.as_deref().unwrap_or("/");
        Ok(join::join_command(
            &self.nsenter,
            init,
            workdir,
            &container_env(group, container),
            &self.as_container(container, argv.to_vec()),
        ))
    }

    /// Like [`join`](Self::join) for an interactive exec, as a runtime runs one: `TERM` set
    /// with a terminal, and (with `missing_program_is_error`) a missing program refused. Also
    /// the first process of the sandbox joined, whose `/dev/pts` the terminal comes from.
    pub(super) async fn join_interactive(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        argv: &[String],
        tty: bool,
    ) -> Result<(Command, u32), ExecutorError> {
        let init = self.sandbox_init(group, container).await?;
        let workdir = container.working_dir.as_deref().unwrap_or("/");
        let mut env = container_env(group, container);
        if tty && !env.iter().any(|(k, _)| k == "TERM") {
            env.push(("TERM".into(), "xterm".into()));
        }
        if self.config.missing_program_is_error
            && let Some(program) = argv.first()
        {
            join::find_program(init, program, &env, workdir)
                .map_err(ExecutorError::ProgramNotFound)?;
        }
        let command = join::join_command(
            &self.nsenter,
            init,
            workdir,
            &env,
            &self.as_container(container, argv.to_vec()),
        );
        Ok((command, init))
    }

    /// The first process of the running container's sandbox (a timer container's holder,
    /// started on demand), which a joined command enters.
    async fn sandbox_init(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
    ) -> Result<u32, ExecutorError> {
        // The engine reports a container Running as its run starts; the sandbox may be a moment
        // behind.
        let deadline = tokio::time::Instant::now() + join::SETUP_WAIT;
        let current = loop {
            match self.current(&group.id, &container.name) {
                Some(current) => break current,
                None if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                None => return Err(ExecutorError::NotRunning(container.name.clone())),
            }
        };
        let bwrap = match current {
            Current::Process { pid, .. } => pid,
            Current::Timer(holder) => self.holder_bwrap(&holder, group, container).await?,
        };
        Ok(join::namespace_init(bwrap, &self.root_dir(&group.id, &container.name)).await?)
    }
}

/// The group's names, for its sandboxes' `/etc/hosts` and `/etc/resolv.conf`.
fn identity(group: &GroupSpec) -> etc::Identity<'_> {
    etc::Identity {
        names: &group.names,
        name: &group.name,
        ip: &group.ip,
    }
}

/// The environment of a container's processes, main and exec'd alike.
fn container_env(group: &GroupSpec, container: &ContainerSpec) -> Vec<(String, String)> {
    sandbox::container_env(
        &etc::host_name(&group.names, &group.name),
        container.tty,
        container
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str())),
    )
}

/// Everything a pipe gives until its end.
async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
    }
    bytes
}

pub(super) fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::code(code),
        (None, Some(signal)) => Exit {
            code: 128 + signal,
            signal: Some(signal),
            reason: "Error".into(),
            message: Some(format!("killed by signal {signal}")),
        },
        (None, None) => Exit::code(1),
    }
}

fn start_error(why: impl std::fmt::Display) -> Exit {
    Exit {
        code: 128,
        signal: None,
        reason: "StartError".into(),
        message: Some(why.to_string()),
    }
}

impl ProcessExecutor {
    /// One run of a container whose main is a process in its sandbox.
    async fn run_process(&self, ctx: RunContext) -> Exit {
        let command = argv(&ctx.image, &ctx.container.command, &ctx.container.args);
        if command.is_empty() {
            return start_error("no command: the pod sets none and the image has none");
        }
        let shared_pid = if ctx.group.share_process_namespace {
            match self.pause_init(&ctx.group.id).await {
                Ok(init) => Some(init),
                Err(e) => return start_error(e),
            }
        } else {
            None
        };
        let mut args = match self.sandbox(&ctx.group, &ctx.container).await {
            Ok(args) => args,
            Err(e) => return start_error(e),
        };
        args.push("--".into());
        args.extend(self.as_container(&ctx.container, command));
        let mut spawned = match self.spawn_sandbox(&args, &ctx.container, shared_pid) {
            Ok(spawned) => spawned,
            Err(e) => return start_error(e),
        };
        // With `stdin` the process's stdin is open for attached clients (`cat` waits on it
        // for the container's life); it closes when the run ends. On a terminal the master
        // (kept for resizes) holds it open.
        let _sandbox = spawned.group;
        let main = Arc::new(MainProcess::new(spawned.stdin.take(), spawned.pty.take()));
        let mut child = spawned.child;
        let _registered = child.id().map(|pid| {
            let run = RunMain::Process {
                pid,
                samples: Samples::new(Instant::now()),
                main: main.clone(),
            };
            self.register(&ctx.group.id, &ctx.container.name, run)
        });
        // On a terminal everything comes on its master (stdout); reading it ends (EIO) when
        // the last process holding the terminal is gone.
        let pumps = main.pump(spawned.stdout.take(), spawned.stderr.take(), &ctx.log);
        let status = child.wait().await;
        // The PID namespace is gone with its first process, so the pipes close now.
        for pump in pumps {
            let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
        }
        // Attached clients end once they have the output.
        main.end();
        let mut exit = match status {
            Ok(status) => exit_of(status),
            Err(e) => return start_error(format_args!("waiting for the container: {e}")),
        };
        if let Some(message) = self
            .termination_message(&ctx.group, &ctx.container, &exit, &ctx.log)
            .await
        {
            exit.message = Some(message);
        }
        exit
    }
}

#[async_trait]
impl Executor for ProcessExecutor {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn prepare(&self, group: &GroupSpec) -> Result<(), ExecutorError> {
        for volume in &group.volumes {
            let dir = self.volume_dir(&group.id, volume.name());
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(SandboxError::io("creating", &dir))?;
            // An emptyDir is writable by any user in the group, as the kubelet makes it.
            if matches!(volume, VolumeSpec::EmptyDir { .. }) {
                set_mode(&dir, 0o777).await?;
            }
        }
        if group.share_process_namespace {
            self.start_pause(group).await?;
        }
        self.write_config_files(group).await
    }

    async fn update_volumes(&self, group: &GroupSpec) -> Result<(), ExecutorError> {
        self.write_config_files(group).await
    }

    async fn run(&self, ctx: RunContext) -> Exit {
        if let Main::Simulated(main) = &ctx.container.main {
            return self.run_timer_main(&ctx, main).await;
        }
        // Boxed: a process run's state is large, and a timer run (most of a mock node's
        // containers, each holding its run for its life) should not carry room for it.
        Box::pin(self.run_process(ctx)).await
    }

    async fn exec(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        command: &[String],
    ) -> Result<ExecOutput, ExecutorError> {
        let joined = self.join(group, container, command).await?;
        let pipes = Streams {
            stdin: false,
            stdout: true,
            stderr: true,
            tty: None,
            ptmx: None,
        };
        let spawned =
            spawn(joined, &pipes).map_err(|source| nsenter_failed(&self.nsenter, source))?;
        // Like a CRI runtime's ExecSync: the command is killed when it overruns its timeout
        // or its caller gives up; once it has exited, what it left in the background stays.
        let mut overrun = spawned.group;
        let stdout = tokio::spawn(read_all(spawned.stdout));
        let stderr = tokio::spawn(read_all(spawned.stderr));
        let mut child = spawned.child;
        let timeout = Duration::from_millis(self.config.exec_timeout_ms.max(1));
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .map_err(|_| ExecutorError::TimedOut(timeout))?
            .map_err(ExecutorError::Wait)?;
        overrun.disarm();
        // A background job may hold the pipes: take what came within a moment (containerd's
        // drain of exec IO).
        let mut combined = Vec::new();
        for pipe in [stdout, stderr] {
            if let Ok(Ok(bytes)) = tokio::time::timeout(OUTPUT_DRAIN, pipe).await {
                combined.extend_from_slice(&bytes);
            }
        }
        Ok(ExecOutput {
            output: combined,
            exit_code: exit_of(status).code,
        })
    }

    async fn exec_interactive(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        command: &[String],
        streams: ExecStreams,
    ) -> Result<i32, ExecutorError> {
        self.exec_streams(group, container, command, streams).await
    }

    async fn attach(
        &self,
        group: &GroupSpec,
        container: &ContainerSpec,
        streams: ExecStreams,
    ) -> Result<(), ExecutorError> {
        self.attach_main(group, container, streams).await
    }

    /// The sandbox's processes as `/proc` shows them (one pass for all the containers): CPU
    /// time and resident memory of the whole tree, the rate from the last sample. A container
    /// whose main is a timer has the `simulate` executor's figures.
    async fn usage(&self, running: &[RunningContainer]) -> Vec<Option<Usage>> {
        let keys: Vec<(String, String)> = running
            .iter()
            .map(|c| (c.group_id.clone(), c.spec.name.clone()))
            .collect();
        let pids: Vec<Option<u32>> = keys
            .iter()
            .map(|(group, container)| self.run_pid(group, container))
            .collect();
        let trees = tokio::task::spawn_blocking(move || {
            let table = ProcTable::read();
            pids.into_iter()
                .map(|pid| table.tree(pid?))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|_| vec![None; keys.len()]);
        let now = Instant::now();
        let wall = jiff::Timestamp::now();
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        running
            .iter()
            .zip(keys.iter().zip(trees))
            .map(|(c, (key, tree))| {
                if matches!(c.spec.main, Main::Simulated(_)) {
                    return Some(simulated_usage(c, wall));
                }
                let tree = tree?;
                let Some(Run {
                    main: RunMain::Process { samples, .. },
                    ..
                }) = runs.by_container.get_mut(key)
                else {
                    return None;
                };
                Some(Usage {
                    nano_cores: samples.rate(tree.cpu_ns, now),
                    core_nano_seconds: tree.cpu_ns,
                    working_set_bytes: tree.rss_bytes,
                    rss_bytes: tree.rss_bytes,
                })
            })
            .collect()
    }

    async fn terminate(&self, group: &GroupSpec, container: &ContainerSpec) -> bool {
        self.signal_main(group, container).await
    }

    async fn remove(&self, group_id: &str) {
        // Timer runs' holders go now, with what exec started in them.
        let holders: Vec<Arc<Holder>> = {
            let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            runs.by_container
                .iter()
                .filter(|((group, _), _)| group == group_id)
                .filter_map(|(_, run)| match &run.main {
                    RunMain::Timer(holder) => Some(holder.clone()),
                    RunMain::Process { .. } => None,
                })
                .collect()
        };
        for holder in holders {
            holder.kill();
        }
        self.stop_pause(group_id);
        let dir = self.group_dir(group_id);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a sandbox");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_rate_is_taken_over_a_second_when_it_can() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut run = Samples::new(t0);
        // Half a second of CPU in the first second: half a core.
        assert_eq!(run.rate(500_000_000, t0 + ms(1000)), 500_000_000);
        // A tenth of a second later the window still reaches back to the start.
        assert_eq!(run.rate(600_000_000, t0 + ms(1100)), 545_454_545);
        // A second later: one full core since the newest sample a second old.
        assert_eq!(run.rate(1_600_000_000, t0 + ms(2100)), 1_000_000_000);
        assert_eq!(run.0.len(), 2);
        // Asked very often, the samples kept stay bounded.
        for i in 0..100 {
            run.rate(1_600_000_000, t0 + ms(2100) + Duration::from_micros(i));
        }
        assert!(run.0.len() <= MAX_SAMPLES);
    }
}
