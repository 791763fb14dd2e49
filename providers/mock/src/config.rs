//! What the mock simulates: the node-wide [`MockConfig`] and the per-pod overrides read from
//! `mock.vk.io/*` annotations, resolved into a [`PodPlan`] when the pod is created. Keeping
//! the knobs in annotations lets one mock node run pods with different behaviours, which is
//! what e2e tests need (a crashing pod next to a healthy one).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vk_core::provider::{NodeCapacity, ProviderError, ResolvedPod, RestartPolicy};

/// Annotation names understood by the mock provider.
pub mod annotations {
    /// Milliseconds from create until the instance is provisioned (overrides
    /// `start_latency_ms`).
    pub const START_LATENCY_MS: &str = "mock.vk.io/start-latency-ms";
    /// How long app containers run before they exit: milliseconds, or `forever`.
    /// `mock.vk.io/run-ms.<container>` overrides it for one container (init containers too).
    pub const RUN_MS: &str = "mock.vk.io/run-ms";
    /// Exit code of app containers. `mock.vk.io/exit-code.<container>` overrides it for one
    /// container (init containers too).
    pub const EXIT_CODE: &str = "mock.vk.io/exit-code";
    /// `transient:N` (the first N creates of the pod UID fail with a transient error) or
    /// `invalid` (every create fails with `MockInvalidSpec`).
    pub const CREATE_ERROR: &str = "mock.vk.io/create-error";
    /// `mock.vk.io/port-forward.<port>: host:port`: where `kubectl port-forward` to that pod
    /// port connects (default `127.0.0.1:<port>`).
    pub const PORT_FORWARD_PREFIX: &str = "mock.vk.io/port-forward.";
    /// `mock.vk.io/process.<container>`: a shell command (`sh -c`) the mock runs as that
    /// container's main process, for real: its stdout and stderr are the container's log,
    /// its exit code the container's (then the restart policy applies), `kubectl attach`
    /// joins it. Its stdin is open when the container has `stdin: true`, and it runs on a
    /// pseudo-terminal when the container has `tty: true`. `run-ms` and `exit-code` do not
    /// apply to such a container.
    pub const PROCESS: &str = "mock.vk.io/process";
}

use annotations::{CREATE_ERROR, EXIT_CODE, PROCESS, RUN_MS, START_LATENCY_MS};

/// Node-wide behaviour of the mock; every field has a default, so `{}` is a valid config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct MockConfig {
    /// Time from create until the instance is provisioned and its containers start.
    pub start_latency_ms: u64,
    /// `None`: app containers run until deleted; `Some(n)`: they exit after n ms.
    pub run_ms: Option<u64>,
    /// Exit code of app containers when they exit.
    pub exit_code: i32,
    /// A running container writes one log line per interval; 0 disables the periodic lines.
    pub log_interval_ms: u64,
    /// Delay before a container that exited is restarted (fixed, no exponential growth).
    pub restart_backoff_ms: u64,
    pub capacity: CapacityConfig,
    /// Pod IPs are `<prefix>x.y`, one per instance; the prefix should end with a dot.
    pub pod_ip_prefix: String,
    /// When set and the file exists, `ping()` fails with a transient error.
    pub ping_fail_file: Option<PathBuf>,
    /// When set, the instances (their specs) and a count of creates per pod are kept in this
    /// JSON file, so the "cloud" outlives a vk restart: a new process resumes them.
    pub state_file: Option<PathBuf>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            start_latency_ms: 0,
            run_ms: None,
            exit_code: 0,
            log_interval_ms: 1000,
            restart_backoff_ms: 1000,
            capacity: CapacityConfig::default(),
            pod_ip_prefix: "10.250.".to_string(),
            ping_fail_file: None,
            state_file: None,
        }
    }
}

/// What the mock node offers to the scheduler.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct CapacityConfig {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
    pub ephemeral_storage_bytes: u64,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Default for CapacityConfig {
    fn default() -> Self {
        Self {
            cpu_millis: 100_000,
            memory_bytes: 400 * GIB,
            pods: 1000,
            ephemeral_storage_bytes: 1024 * GIB,
        }
    }
}

impl From<&CapacityConfig> for NodeCapacity {
    fn from(c: &CapacityConfig) -> Self {
        NodeCapacity {
            cpu_millis: c.cpu_millis,
            memory_bytes: c.memory_bytes,
            pods: c.pods,
            ephemeral_storage_bytes: c.ephemeral_storage_bytes,
        }
    }
}

/// How `create` misbehaves for a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CreateError {
    /// The first N create calls for the pod UID fail with a transient error.
    Transient(u32),
    /// Every create fails with an invalid-spec error.
    Invalid,
}

/// What one container does once started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContainerPlan {
    pub name: String,
    /// `None`: runs until stopped.
    pub run: Option<Duration>,
    pub exit_code: i32,
    /// A native sidecar: an init container with `restartPolicy: Always`.
    pub sidecar: bool,
    /// A real main process instead of the timer (annotation `mock.vk.io/process.<name>`).
    pub process: Option<MainCommand>,
}

/// A container's real main process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MainCommand {
    pub command: Vec<String>,
    /// The container's `stdin`: attached clients write to it.
    pub stdin: bool,
    /// The container's `tty`: it runs on a pseudo-terminal.
    pub tty: bool,
}

/// Everything the mock decided about a pod when it was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PodPlan {
    pub start_latency: Duration,
    pub create_error: Option<CreateError>,
    pub restart_policy: RestartPolicy,
    pub init: Vec<ContainerPlan>,
    pub apps: Vec<ContainerPlan>,
}

/// Per-container overrides, by container name.
#[derive(Default)]
struct PerContainer {
    run: BTreeMap<String, Option<Duration>>,
    exit_code: BTreeMap<String, i32>,
    process: BTreeMap<String, String>,
}

impl PodPlan {
    /// Resolve the config and the pod's annotations. A malformed annotation value is an
    /// invalid spec naming the annotation.
    pub fn new(pod: &ResolvedPod, config: &MockConfig) -> Result<Self, ProviderError> {
        let ann = &pod.annotations;
        let start_latency = match ann.get(START_LATENCY_MS) {
            Some(v) => Duration::from_millis(parse_u64(START_LATENCY_MS, v)?),
            None => Duration::from_millis(config.start_latency_ms),
        };
        let pod_run = match ann.get(RUN_MS) {
            Some(v) => parse_run(RUN_MS, v)?,
            None => config.run_ms.map(Duration::from_millis),
        };
        let pod_exit = match ann.get(EXIT_CODE) {
            Some(v) => parse_i32(EXIT_CODE, v)?,
            None => config.exit_code,
        };
        let create_error = ann
            .get(CREATE_ERROR)
            .map(|v| parse_create_error(v))
            .transpose()?;

        let mut per = PerContainer::default();
        for (key, value) in ann {
            if let Some(name) = key.strip_prefix(RUN_MS).and_then(|s| s.strip_prefix('.')) {
                per.run.insert(name.to_string(), parse_run(key, value)?);
            } else if let Some(name) = key
                .strip_prefix(EXIT_CODE)
                .and_then(|s| s.strip_prefix('.'))
            {
                per.exit_code
                    .insert(name.to_string(), parse_i32(key, value)?);
            } else if let Some(name) = key.strip_prefix(PROCESS).and_then(|s| s.strip_prefix('.')) {
                if value.trim().is_empty() {
                    return Err(bad_annotation(key, value, "a shell command"));
                }
                per.process.insert(name.to_string(), value.clone());
            }
        }

        let process = |c: &vk_core::provider::ContainerSpec| {
            per.process.get(&c.name).map(|script| MainCommand {
                command: vec!["sh".into(), "-c".into(), script.clone()],
                stdin: c.stdin,
                tty: c.tty,
            })
        };
        // Init containers ignore the pod-wide run time and exit code: they finish at once with
        // 0 unless a per-container annotation says otherwise. Sidecars run until stopped.
        let init = pod
            .init_containers
            .iter()
            .map(|c| {
                let sidecar = c.restart_policy == Some(RestartPolicy::Always);
                let default_run = if sidecar { None } else { Some(Duration::ZERO) };
                ContainerPlan {
                    name: c.name.clone(),
                    run: per.run.get(&c.name).copied().unwrap_or(default_run),
                    exit_code: per.exit_code.get(&c.name).copied().unwrap_or(0),
                    sidecar,
                    process: process(c),
                }
            })
            .collect();
        let apps = pod
            .containers
            .iter()
            .map(|c| ContainerPlan {
                name: c.name.clone(),
                run: per.run.get(&c.name).copied().unwrap_or(pod_run),
                exit_code: per.exit_code.get(&c.name).copied().unwrap_or(pod_exit),
                sidecar: false,
                process: process(c),
            })
            .collect();

        Ok(Self {
            start_latency,
            create_error,
            restart_policy: pod.restart_policy,
            init,
            apps,
        })
    }
}

fn bad_annotation(key: &str, value: &str, expected: &str) -> ProviderError {
    ProviderError::invalid(
        "MockInvalidAnnotation",
        format!("annotation {key}={value:?} is invalid: expected {expected}"),
    )
}

fn parse_u64(key: &str, value: &str) -> Result<u64, ProviderError> {
    value
        .trim()
        .parse()
        .map_err(|_| bad_annotation(key, value, "a non-negative integer"))
}

fn parse_i32(key: &str, value: &str) -> Result<i32, ProviderError> {
    value
        .trim()
        .parse()
        .map_err(|_| bad_annotation(key, value, "an integer exit code"))
}

/// Milliseconds, or `forever` for a container that never exits by itself.
fn parse_run(key: &str, value: &str) -> Result<Option<Duration>, ProviderError> {
    if value.trim() == "forever" {
        return Ok(None);
    }
    value
        .trim()
        .parse()
        .map(|ms| Some(Duration::from_millis(ms)))
        .map_err(|_| bad_annotation(key, value, "milliseconds or \"forever\""))
}

fn parse_create_error(value: &str) -> Result<CreateError, ProviderError> {
    let v = value.trim();
    if v == "invalid" {
        return Ok(CreateError::Invalid);
    }
    v.strip_prefix("transient:")
        .and_then(|n| n.trim().parse().ok())
        .map(CreateError::Transient)
        .ok_or_else(|| bad_annotation(CREATE_ERROR, value, "\"transient:N\" or \"invalid\""))
}

#[cfg(test)]
mod tests {
    use vk_core::provider::ContainerSpec;

    use super::*;

    fn pod(annotations: &[(&str, &str)]) -> ResolvedPod {
        ResolvedPod {
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            init_containers: vec![ContainerSpec {
                name: "setup".into(),
                ..Default::default()
            }],
            containers: vec![
                ContainerSpec {
                    name: "a".into(),
                    ..Default::default()
                },
                ContainerSpec {
                    name: "b".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_from_config() {
        let config = MockConfig {
            run_ms: Some(5),
            exit_code: 3,
            ..Default::default()
        };
        let plan = PodPlan::new(&pod(&[]), &config).unwrap();
        assert_eq!(plan.start_latency, Duration::ZERO);
        assert_eq!(plan.init[0].run, Some(Duration::ZERO));
        assert_eq!(plan.init[0].exit_code, 0);
        assert_eq!(plan.apps[0].run, Some(Duration::from_millis(5)));
        assert_eq!(plan.apps[1].exit_code, 3);
    }

    #[test]
    fn annotations_override() {
        let p = pod(&[
            (RUN_MS, "100"),
            ("mock.vk.io/run-ms.b", "forever"),
            (EXIT_CODE, "2"),
            ("mock.vk.io/exit-code.a", "0"),
            ("mock.vk.io/exit-code.setup", "7"),
            (START_LATENCY_MS, "40"),
            (CREATE_ERROR, "transient:3"),
        ]);
        let plan = PodPlan::new(&p, &MockConfig::default()).unwrap();
        assert_eq!(plan.start_latency, Duration::from_millis(40));
        assert_eq!(plan.create_error, Some(CreateError::Transient(3)));
        assert_eq!(plan.init[0].exit_code, 7);
        assert_eq!(plan.apps[0].run, Some(Duration::from_millis(100)));
        assert_eq!(plan.apps[0].exit_code, 0);
        assert_eq!(plan.apps[1].run, None);
        assert_eq!(plan.apps[1].exit_code, 2);
    }

    #[test]
    fn a_process_annotation_gives_the_container_a_main_process() {
        let mut p = pod(&[("mock.vk.io/process.b", "echo hi; cat")]);
        p.containers[1].stdin = true;
        let plan = PodPlan::new(&p, &MockConfig::default()).unwrap();
        assert_eq!(plan.apps[0].process, None);
        assert_eq!(
            plan.apps[1].process,
            Some(MainCommand {
                command: vec!["sh".into(), "-c".into(), "echo hi; cat".into()],
                stdin: true,
                tty: false,
            })
        );
    }

    #[test]
    fn bad_values_name_the_annotation() {
        for (key, value) in [
            (RUN_MS, "soon"),
            ("mock.vk.io/run-ms.a", "-1"),
            (EXIT_CODE, "x"),
            ("mock.vk.io/exit-code.nope", "99999999999"),
            (START_LATENCY_MS, "1.5"),
            (CREATE_ERROR, "transient:"),
            (CREATE_ERROR, "sometimes"),
            ("mock.vk.io/process.a", " "),
        ] {
            match PodPlan::new(&pod(&[(key, value)]), &MockConfig::default()) {
                Err(ProviderError::InvalidSpec { reason, message }) => {
                    assert_eq!(reason, "MockInvalidAnnotation");
                    assert!(message.contains(key), "{message}");
                }
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn config_deserializes_with_defaults() {
        let config: MockConfig =
            serde_json::from_str(r#"{"run_ms": 10, "capacity": {"pods": 5}}"#).unwrap();
        assert_eq!(config.run_ms, Some(10));
        assert_eq!(config.log_interval_ms, 1000);
        assert_eq!(config.capacity.pods, 5);
        assert_eq!(config.capacity.cpu_millis, 100_000);
        assert_eq!(config.pod_ip_prefix, "10.250.");
    }
}
