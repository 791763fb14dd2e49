//! What a container runtime applies to a pod beyond its processes and volumes: the security
//! contexts (pod and container, as the pod gives them: merging is the provider's, so it can
//! say which field it could not honour), lifecycle hooks, the termination message, ephemeral
//! storage and a shared process namespace. Named ports are already numbers.

use serde::{Deserialize, Serialize};

/// A container's `securityContext`, unmerged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSecurity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub privileged: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    /// Capability names as the pod spells them (`NET_ADMIN`, `CAP_SYS_TIME`).
    pub capabilities_add: Vec<String>,
    pub capabilities_drop: Vec<String>,
    /// Fields that are set and have no place above, by their API path
    /// (`securityContext.seccompProfile`), for the provider to honour or report.
    pub other: Vec<String>,
}

/// The pod's `securityContext`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSecurity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub fs_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
    /// `sysctls`, in order.
    pub sysctls: Vec<(String, String)>,
    /// Fields that are set and have no place above, by their API path.
    pub other: Vec<String>,
}

/// A `postStart`/`preStop` handler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleHandler {
    Exec {
        command: Vec<String>,
    },
    /// `host` None: the pod's address.
    HttpGet {
        host: Option<String>,
        port: u16,
        path: String,
        https: bool,
        headers: Vec<(String, String)>,
    },
    /// Deprecated in Kubernetes (the kubelet only logs it), kept for the providers that run it.
    TcpSocket {
        host: Option<String>,
        port: u16,
    },
    Sleep {
        seconds: i64,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub post_start: Option<LifecycleHandler>,
    pub pre_stop: Option<LifecycleHandler>,
    /// A hook that cannot be run as written (a named port the container lacks), by its API
    /// path and why.
    pub invalid: Vec<(String, String)>,
}

impl Lifecycle {
    pub fn is_empty(&self) -> bool {
        self.post_start.is_none() && self.pre_stop.is_none() && self.invalid.is_empty()
    }
}

/// `terminationMessagePolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TerminationMessagePolicy {
    #[default]
    File,
    FallbackToLogsOnError,
}

impl TerminationMessagePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "File",
            Self::FallbackToLogsOnError => "FallbackToLogsOnError",
        }
    }
}
