//! The provider-neutral model: what a provider is given (`ResolvedPod`) and what it reports
//! back (`InstanceStatus`). Nothing here names Kubernetes API types, so a provider never
//! needs the API client or k8s-openapi to do its job.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Identity of a pod as the provider sees it. The UID is the key: two pods with the same
/// namespace/name but different UIDs (a StatefulSet pod recreated) are different instances.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("Never") => Self::Never,
            Some("OnFailure") => Self::OnFailure,
            _ => Self::Always,
        }
    }
}

/// Requests and limits in provider-friendly units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_request_millis: Option<u64>,
    pub cpu_limit_millis: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub volume: String,
    pub mount_path: String,
    pub read_only: bool,
    pub sub_path: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPort {
    pub port: u16,
    pub protocol: String,
}

/// How a probe checks a container, named ports already resolved to numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeHandler {
    /// Run a command in the container; exit code 0 is a success.
    Exec { command: Vec<String> },
    /// An HTTP GET; a status from 200 to 399 is a success. `host` None: the pod's address.
    HttpGet {
        host: Option<String>,
        port: u16,
        path: String,
        https: bool,
        headers: Vec<(String, String)>,
    },
    /// A TCP connection that opens is a success.
    TcpSocket { host: Option<String>, port: u16 },
    /// `grpc.health.v1.Health/Check` answering SERVING is a success.
    Grpc { port: u16, service: Option<String> },
}

/// A startup, liveness or readiness probe, with the kubelet's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub handler: ProbeHandler,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// Overrides the pod's grace period when this probe's failure kills the container.
    pub termination_grace_period_seconds: Option<i64>,
}

impl Probe {
    /// A probe with the kubelet's defaults: no delay, every 10 s, 1 s timeout, thresholds 1/3.
    pub fn new(handler: ProbeHandler) -> Self {
        Self {
            handler,
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            success_threshold: 1,
            failure_threshold: 3,
            termination_grace_period_seconds: None,
        }
    }

    pub fn initial_delay(&self) -> Duration {
        Duration::from_secs(self.initial_delay_seconds.into())
    }

    pub fn period(&self) -> Duration {
        Duration::from_secs(self.period_seconds.max(1).into())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1).into())
    }
}

/// One container with everything resolved: env values are plain strings, `$(VAR)` already
/// expanded in command and args.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env: Vec<EnvVar>,
    pub ports: Vec<ContainerPort>,
    pub volume_mounts: Vec<VolumeMount>,
    pub resources: Resources,
    pub stdin: bool,
    /// Close stdin after the first attach session ends (`stdinOnce`).
    #[serde(default)]
    pub stdin_once: bool,
    pub tty: bool,
    /// `Some(Always)` marks a native sidecar among the init containers.
    pub restart_policy: Option<RestartPolicy>,
    pub termination_message_path: Option<String>,
    #[serde(default)]
    pub startup_probe: Option<Probe>,
    #[serde(default)]
    pub liveness_probe: Option<Probe>,
    #[serde(default)]
    pub readiness_probe: Option<Probe>,
    /// `securityContext` (`runtime`).
    #[serde(default)]
    pub security: super::ContainerSecurity,
    /// `lifecycle.postStart` / `preStop`.
    #[serde(default)]
    pub lifecycle: super::Lifecycle,
    #[serde(default)]
    pub termination_message_policy: super::TerminationMessagePolicy,
    /// `resources.requests["ephemeral-storage"]`, `limits[...]`, in bytes.
    #[serde(default)]
    pub ephemeral_storage_request_bytes: Option<u64>,
    #[serde(default)]
    pub ephemeral_storage_limit_bytes: Option<u64>,
}

/// A file inside a volume (configMap, secret, downward API, projected token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeFile {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeSource {
    EmptyDir {
        memory: bool,
        size_limit_bytes: Option<u64>,
    },
    /// Files materialised by vk-core from configMaps, secrets, the downward API or tokens.
    Files(Vec<VolumeFile>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

/// Credentials for one image registry, from the pod's image pull secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCredential {
    /// The registry: `host[:port]`, or `host[:port]/path` for a key scoped to a repository
    /// path; no scheme, no trailing `/`, no `/v1`/`/v2` API suffix.
    pub server: String,
    pub username: String,
    pub password: String,
}

/// The password stays out of logs.
impl std::fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything a provider needs to run a pod; built by vk-core from the API objects.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResolvedPod {
    pub pod: PodRef,
    pub node_name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub restart_policy: RestartPolicy,
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    pub volumes: Vec<Volume>,
    pub termination_grace_period: Option<Duration>,
    pub active_deadline_seconds: Option<i64>,
    /// From `imagePullSecrets` (dockerconfigjson and legacy dockercfg), one per registry, in
    /// the order the pod lists its secrets.
    #[serde(default)]
    pub image_pull_credentials: Vec<RegistryCredential>,
    /// The pod's effective request as the scheduler counts it.
    pub effective_cpu_millis: u64,
    pub effective_memory_bytes: u64,
    /// The resolver configuration; None: the cloud's own resolver, untouched (`dnsPolicy:
    /// Default` without `dnsConfig`).
    #[serde(default)]
    pub dns: Option<super::PodDns>,
    /// The pod's short hostname (`hostname`, else the pod name cut to 63 characters).
    #[serde(default)]
    pub hostname: String,
    /// `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>` when `subdomain` is set.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// `setHostnameAsFQDN`: the kernel hostname is the FQDN (when there is one).
    #[serde(default)]
    pub hostname_as_fqdn: bool,
    /// `hostAliases`, in order.
    #[serde(default)]
    pub host_aliases: Vec<super::HostAlias>,
    /// The pod's `securityContext` (`runtime`).
    #[serde(default)]
    pub security: super::PodSecurity,
    /// `shareProcessNamespace`: the containers see each other's processes.
    #[serde(default)]
    pub share_process_namespace: bool,
}

impl ResolvedPod {
    /// The hostname the pod's sandbox gets (`uname -n`): the FQDN with `setHostnameAsFQDN`,
    /// else the short hostname.
    pub fn kernel_hostname(&self) -> &str {
        match &self.fqdn {
            Some(fqdn) if self.hostname_as_fqdn => fqdn,
            _ => &self.hostname,
        }
    }
}

impl Default for PodRef {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            name: String::new(),
            uid: String::new(),
        }
    }
}

/// Lifecycle phase of a cloud instance, already in pod terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstancePhase {
    /// Accepted by the cloud, not all containers started yet.
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ContainerState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        message: Option<String>,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
}

impl ContainerState {
    pub fn waiting(reason: &str) -> Self {
        Self::Waiting {
            reason: reason.to_string(),
            message: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerStatus {
    pub name: String,
    pub state: ContainerState,
    pub last_state: Option<ContainerState>,
    pub restart_count: i32,
    /// Passed its readiness probe (without one: running, and started).
    pub ready: bool,
    /// Passed its startup probe; `None`: the provider does not say (running counts as started).
    pub started: Option<bool>,
    /// Provider-specific container id, reported as `<provider>://<id>`.
    pub container_id: Option<String>,
    pub image: String,
    pub image_id: Option<String>,
}

/// What the provider knows about one pod's instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceStatus {
    pub pod: PodRef,
    pub phase: InstancePhase,
    /// A short CamelCase reason (e.g. `ScheduleFailed`) when the instance is not healthy.
    pub reason: Option<String>,
    pub message: Option<String>,
    pub pod_ip: Option<String>,
    /// When the cloud accepted the instance.
    pub created_at: Option<Timestamp>,
    pub init_containers: Vec<ContainerStatus>,
    pub containers: Vec<ContainerStatus>,
    /// What happened to containers that the kubelet records as Events on the pod (probe
    /// failures, containers killed for them), oldest first.
    pub events: Vec<InstanceEvent>,
    /// What the cloud bills for the instance, when the provider knows it (for the pod's cost).
    pub billing: Option<Box<Billing>>,
}

/// What a cloud bills an instance for: the size it sells that covers what the pod asked for,
/// and the time it bills.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Billing {
    /// vCPUs billed, in thousandths.
    pub vcpu_milli: u64,
    /// Memory billed, in MiB.
    pub memory_mib: u64,
    /// The cloud's name for the billed size (`2.0-4.0Gi`, `ecs.c6.large`).
    pub instance_type: String,
    /// A spot (preemptible) instance.
    pub spot: bool,
    /// The region, for its prices.
    pub region: String,
    /// When billing began (ECI: when the instance began to pull its images).
    pub started_at: Option<Timestamp>,
    /// When it ended (the instance stopped); `None` while it runs.
    pub ended_at: Option<Timestamp>,
}

/// An event about a container of the instance. The same event again bumps `count` (an entry
/// is known by its reason, message and `first_seen`), so a reader tells a new occurrence from
/// one already seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceEvent {
    /// `None` when the cloud does not say which container.
    pub container: Option<String>,
    pub warning: bool,
    /// The kubelet's reason: `Unhealthy`, `Killing`.
    pub reason: String,
    pub message: String,
    pub count: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A change the provider reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusEvent {
    Changed(InstanceStatus),
    /// The instance no longer exists in the cloud.
    Gone(PodRef),
}

/// Node resources the provider offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCapacity {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
    pub ephemeral_storage_bytes: u64,
}

/// A condition the provider reports on its Node besides `Ready` (e.g. whether its cloud
/// credentials can be refreshed). The node controller writes it; `healthy` is its `True`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderCondition {
    pub type_: String,
    pub healthy: bool,
    pub reason: String,
    /// Read by operators: the cause, never a secret.
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub timestamps: bool,
    pub follow: bool,
    pub previous: bool,
    pub since: Option<Timestamp>,
}

impl LogOptions {
    /// Cut a whole (non-follow) answer to `limit_bytes`, at a character boundary.
    pub fn cut_to_limit(&self, text: &mut String) {
        if let Some(limit) = self.limit_bytes {
            let mut cut = usize::try_from(limit).unwrap_or(usize::MAX).min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
    }
}

/// Usage figures for the stats endpoints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodStats {
    pub pod: Option<PodRef>,
    pub containers: Vec<ContainerStats>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerStats {
    pub name: String,
    pub cpu_usage_nano_cores: u64,
    pub cpu_usage_core_nano_seconds: u64,
    pub memory_working_set_bytes: u64,
}
