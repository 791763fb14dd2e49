//! The engine's own definitions of what runs in a group: its containers, volumes and names,
//! with only what the engine and its executors read. A face maps its API's request onto them
//! (defaults applied, encodings undone); what only the face echoes stays in its own record.
//! Probes and the resolver use vk-core's neutral types, which the kubelet side shares.

/// The parts the engine takes from vk-core's neutral model as they are: an environment
/// variable, a volume mount, and a file of a [`VolumeSpec::Files`] volume.
pub use vk_core::provider::{EnvVar, VolumeFile as FileSpec, VolumeMount as Mount};
use vk_core::provider::{HostAlias, PodDns, Probe, ResolvedPod};

/// Where the container writes its termination message when nothing else is said (the
/// kubelet's default).
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// One container of a group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerSpec {
    /// Unique in the group, init containers included.
    pub name: String,
    /// What the container's main process is: its command (the default), or a timer.
    pub main: Main,
    /// An init container that keeps running beside the app containers (a native sidecar,
    /// the kubelet's `restartPolicy: Always`): the next container starts once it has
    /// started, it restarts whenever it exits, and it stops when the group ends.
    pub sidecar: bool,
    /// An image the catalog resolves.
    pub image: String,
    /// Replaces the image's entrypoint; empty: the image's.
    pub command: Vec<String>,
    /// Replaces the image's arguments; empty: the image's (when `command` is empty too).
    pub args: Vec<String>,
    /// `None`: `/`.
    pub working_dir: Option<String>,
    /// In order; a later one of the same name wins.
    pub env: Vec<EnvVar>,
    pub mounts: Vec<Mount>,
    /// The main process gets an open stdin.
    pub stdin: bool,
    /// The main process runs on a terminal.
    pub tty: bool,
    /// The vCPUs and GiB the container asked for; `None`: a share of the group's.
    pub cpu: Option<f64>,
    pub memory_gib: Option<f64>,
    /// Kubelet semantics, defaults applied (vk-core's probe state machine runs them).
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub post_start: Option<Hook>,
    pub pre_stop: Option<Hook>,
    pub security: Security,
    pub termination_message: TerminationMessage,
}

/// What a container's main process is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Main {
    /// Its command and arguments (or the image's), as the executor runs them.
    #[default]
    Command,
    /// No process: a timer that writes a log line per interval and exits as told. The
    /// `process` executor still gives the container a sandbox when something execs into it.
    Simulated(SimulatedMain),
}

/// A main process that is only a timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedMain {
    /// How long it runs; `None`: until it is stopped.
    pub run: Option<std::time::Duration>,
    pub exit_code: i32,
    /// One log line per interval; `None`: the executor's setting.
    pub log_interval: Option<std::time::Duration>,
}

/// A `postStart` or `preStop` hook (vk-core's handlers without `sleep`, which no face sends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// A command in the container, as its user.
    Exec(Vec<String>),
    /// An HTTP GET to the sandbox; `host` None: the sandbox's address.
    HttpGet {
        host: Option<String>,
        port: u16,
        path: String,
        https: bool,
        headers: Vec<(String, String)>,
    },
    /// A TCP connection to the sandbox.
    TcpSocket { host: Option<String>, port: u16 },
}

/// Who the container's processes are and what they may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// `None`: the image's user (root, for the catalog's images).
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    /// Refuse to start the container when it would run as root.
    pub run_as_non_root: bool,
    pub privileged: bool,
    pub read_only_root: bool,
    /// Capabilities added to the default set.
    pub capabilities_add: Vec<String>,
}

/// Where the container leaves its termination message, and whether a failed run without one
/// takes the tail of its log instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminationMessage {
    pub path: String,
    pub fallback_to_logs: bool,
}

impl Default for TerminationMessage {
    fn default() -> Self {
        Self {
            path: DEFAULT_TERMINATION_MESSAGE_PATH.into(),
            fallback_to_logs: false,
        }
    }
}

/// A volume the group's containers share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeSpec {
    /// An empty directory, writable by any user in the group.
    EmptyDir { name: String },
    /// Files written into a directory (configuration, credentials); the only kind an update
    /// may replace.
    Files { name: String, files: Vec<FileSpec> },
}

impl VolumeSpec {
    pub fn name(&self) -> &str {
        match self {
            Self::EmptyDir { name } | Self::Files { name, .. } => name,
        }
    }
}

/// A group's hostname, resolver and extra `/etc/hosts` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// The kernel hostname; `None`: the group's name.
    pub hostname: Option<String>,
    /// `None`: the machine's resolver as it is.
    pub dns: Option<PodDns>,
    pub host_aliases: Vec<HostAlias>,
}

impl Names {
    /// A pod's names, for a face that starts from the pod itself.
    pub fn of(pod: &ResolvedPod) -> Self {
        Self {
            hostname: Some(pod.kernel_hostname().to_string()).filter(|h| !h.is_empty()),
            dns: pod.dns.clone(),
            host_aliases: pod.host_aliases.clone(),
        }
    }
}
