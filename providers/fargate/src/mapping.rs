//! A pod as a task definition (its shape) and a RunTask (what is the pod's own).
//!
//! The shape — images, commands, working directories, ports, users, resources, volumes and
//! mounts, the log configuration, the file paths the pod's volumes hold — goes into a task
//! definition whose family is `vk-<node>-<hash of the shape>`: pods of one shape share one
//! definition, registered once. What differs per pod goes into RunTask's overrides: every
//! container's environment, and the contents of its files (base64, one variable per file).
//!
//! Containers: the pod's containers are essential, its init containers non-essential and
//! chained (each waits for the one before with condition SUCCESS; the containers wait for
//! the last). Files of configMaps, secrets, the downward API and service-account tokens are
//! written by a first step, the non-essential container `vk-files` (image `files_image`),
//! into task volumes that the containers mount read-only; everything else waits for it with
//! condition SUCCESS. emptyDirs are task volumes (Fargate bind mounts without a host path,
//! shared by the containers that mount them, in the task's ephemeral storage); their
//! `sizeLimit`s and the containers' ephemeral-storage figures size that storage (20 GiB
//! free, up to 200 GiB).
//!
//! What Fargate cannot do, refused with a reason rather than run wrongly:
//! - `privileged` containers (`Unsupported`), `subPath` mounts (`SubPathNotSupported`: a
//!   Fargate mount point names a whole volume);
//! - more than 8 KiB of overrides (`OverridesTooLarge`: ECS's limit on RunTask's overrides,
//!   which carry the environment and the files);
//! - `emptyDir.medium: Memory` is a plain directory in the task's storage (not tmpfs).
//!
//! Not honoured, and said so in the module docs of the crate: restart policies (a task never
//! restarts its containers), probes, lifecycle hooks, and refreshing files of a running task.

use std::collections::BTreeMap;

use base64::Engine as _;
use vk_core::provider::{
    ContainerSpec, PodRef, ProviderError, ResolvedPod, VolumeFile, VolumeSource,
};

use crate::config::FargateConfig;
use crate::sizing::{self, TaskSize};
use crate::wire::ecs_task::{
    AwsVpcConfiguration, ContainerOverride, NetworkConfiguration, RunTaskRequest, TaskOverride,
};
use crate::wire::ecs_taskdef::{
    AWSLOGS, AWSLOGS_CREATE_GROUP, AWSLOGS_GROUP, AWSLOGS_REGION, AWSLOGS_STREAM_PREFIX,
    ContainerDefinition, ContainerDependency, DEFAULT_EPHEMERAL_GIB, EphemeralStorage,
    LogConfiguration, MAX_EPHEMERAL_GIB, MountPoint, PortMapping, RegisterTaskDefinitionRequest,
    Volume, dependency_condition,
};
use crate::wire::{KeyValuePair, Tag};

/// The tags of tasks and task definitions.
pub mod tags {
    pub const POD_UID: &str = "vk-pod-uid";
    pub const NAMESPACE: &str = "vk-namespace";
    pub const POD_NAME: &str = "vk-pod";
    pub const NODE: &str = "vk-node";
    pub const SHAPE: &str = "vk-shape";
}

/// The container that writes the pod's files.
pub const FILES_CONTAINER: &str = "vk-files";
/// Where `vk-files` mounts the file volumes.
const FILES_ROOT: &str = "/vk-files";
/// The environment variable carrying file `n`'s contents.
const FILE_VAR: &str = "VK_FILE_";
/// ECS's limit on the size of RunTask's overrides.
pub const MAX_OVERRIDES_BYTES: usize = 8192;

const GI: u64 = 1024 * 1024 * 1024;

/// A name made of letters, digits, `-` and `_` (what ECS accepts in a family).
fn slug(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect()
}

/// FNV-1a over `bytes`, twice with different seeds: 128 bits as hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    let fnv = |seed: u64| {
        bytes.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

/// The family prefix of a node's task definitions.
pub fn family_prefix(node: &str) -> String {
    format!("vk-{}-", slug(node, 60))
}

/// `startedBy` of a node's tasks (ECS allows 36 characters).
pub fn started_by(node: &str) -> String {
    let plain = format!("vk/{}", slug(node, 64));
    if plain.len() <= 36 {
        plain
    } else {
        format!("vk/{}", &hash_hex(node.as_bytes())[..32])
    }
}

/// RunTask's idempotency token for a pod: a repeat (a retry, a restarted vk) answers the
/// task of the first call instead of starting another.
pub fn client_token(pod: &PodRef) -> String {
    let token = format!("vk-{}", pod.uid);
    if token.len() <= 64 {
        token
    } else {
        format!("vk-{}", hash_hex(pod.uid.as_bytes()))
    }
}

/// A pod's task: the definition to register (or reuse) and the RunTask to send once its ARN
/// is known.
#[derive(Clone, Debug)]
pub struct PodTask {
    pub family: String,
    pub definition: RegisterTaskDefinitionRequest,
    pub run: RunTaskRequest,
    pub size: TaskSize,
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn files_script(files: &[(String, &VolumeFile)]) -> String {
    let mut script = String::from("set -e\n");
    for (n, (dir, f)) in files.iter().enumerate() {
        let path = format!("{dir}/{}", f.path.trim_start_matches('/'));
        let parent = path.rsplit_once('/').map_or(dir.as_str(), |(p, _)| p);
        script.push_str(&format!(
            "mkdir -p {p}\nprintf %s \"${FILE_VAR}{n}\" | base64 -d > {f}\nchmod {mode:o} {f}\n",
            p = sh_quote(parent),
            f = sh_quote(&path),
            mode = f.mode & 0o7777,
        ));
    }
    script
}

fn refuse(reason: &str, message: String) -> ProviderError {
    ProviderError::invalid(reason, message)
}

fn mib(bytes: u64) -> i32 {
    i32::try_from(bytes.div_ceil(1024 * 1024)).unwrap_or(i32::MAX)
}

fn cpu_units(millis: u64) -> i32 {
    i32::try_from(millis.saturating_mul(1024).div_ceil(1000)).unwrap_or(i32::MAX)
}

/// One pod container as a container definition (its environment goes to the overrides).
fn definition_of(
    c: &ContainerSpec,
    essential: bool,
    file_volumes: &[String],
    config: &FargateConfig,
) -> Result<ContainerDefinition, ProviderError> {
    if c.security.privileged == Some(true) {
        return Err(refuse(
            "Unsupported",
            format!("container {}: Fargate runs no privileged container", c.name),
        ));
    }
    let mut mounts = Vec::new();
    for m in &c.volume_mounts {
        if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(refuse(
                "SubPathNotSupported",
                format!(
                    "container {}: the mount of volume {} at {} has a subPath; a Fargate mount point mounts a whole volume",
                    c.name, m.volume, m.mount_path
                ),
            ));
        }
        mounts.push(MountPoint {
            source_volume: Some(m.volume.clone()),
            container_path: Some(m.mount_path.clone()),
            read_only: Some(m.read_only || file_volumes.contains(&m.volume)),
        });
    }
    let user = match (c.security.run_as_user, c.security.run_as_group) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        _ => None,
    };
    let r = &c.resources;
    // An app container's stdin goes on a pipe an attach can write to (ECS has no attach).
    let (entry_point, command) = vk_core::provider::stdin_pipe::command_and_args(c, essential);
    Ok(ContainerDefinition {
        name: Some(c.name.clone()),
        image: Some(c.image.clone()),
        cpu: r.cpu_limit_millis.or(r.cpu_request_millis).map(cpu_units),
        memory: r.memory_limit_bytes.map(mib),
        memory_reservation: r.memory_request_bytes.map(mib),
        essential: Some(essential),
        entry_point,
        command,
        working_directory: c.working_dir.clone(),
        environment: Vec::new(),
        port_mappings: c
            .ports
            .iter()
            .map(|p| PortMapping {
                container_port: Some(i32::from(p.port)),
                host_port: None,
                protocol: Some(p.protocol.to_ascii_lowercase()),
                name: None,
            })
            .collect(),
        mount_points: mounts,
        log_configuration: Some(log_configuration(config)),
        stop_timeout: None,
        user,
        readonly_root_filesystem: c.security.read_only_root_filesystem,
        interactive: c.stdin.then_some(true),
        pseudo_terminal: c.tty.then_some(true),
        depends_on: Vec::new(),
    })
}

/// The awslogs driver: the configured group, streams `<prefix>/<container>/<task id>`.
fn log_configuration(config: &FargateConfig) -> LogConfiguration {
    let mut options = BTreeMap::from([
        (AWSLOGS_GROUP.to_string(), config.log_group.clone()),
        (AWSLOGS_REGION.to_string(), config.region.clone()),
        (
            AWSLOGS_STREAM_PREFIX.to_string(),
            config.log_stream_prefix.clone(),
        ),
    ]);
    if config.create_log_group {
        options.insert(AWSLOGS_CREATE_GROUP.into(), "true".into());
    }
    LogConfiguration {
        log_driver: AWSLOGS.into(),
        options,
    }
}

fn after(name: &str) -> ContainerDependency {
    ContainerDependency {
        container_name: name.to_string(),
        condition: dependency_condition::SUCCESS.into(),
    }
}

/// The pod's task.
pub fn pod_task(pod: &ResolvedPod, config: &FargateConfig) -> Result<PodTask, ProviderError> {
    let size = sizing::task_size(pod)?;
    let mut volumes = Vec::new();
    let mut storage_bytes = 0u64;
    let mut file_volumes = Vec::new();
    let mut files: Vec<(String, &VolumeFile)> = Vec::new();
    for v in &pod.volumes {
        volumes.push(Volume {
            name: Some(v.name.clone()),
        });
        match &v.source {
            VolumeSource::EmptyDir {
                size_limit_bytes, ..
            } => storage_bytes = storage_bytes.saturating_add(size_limit_bytes.unwrap_or(0)),
            VolumeSource::Files(list) => {
                file_volumes.push(v.name.clone());
                let dir = format!("{FILES_ROOT}/{}", v.name);
                files.extend(list.iter().map(|f| (dir.clone(), f)));
            }
        }
    }
    for c in pod.containers.iter().chain(&pod.init_containers) {
        storage_bytes = storage_bytes.saturating_add(
            c.ephemeral_storage_limit_bytes
                .or(c.ephemeral_storage_request_bytes)
                .unwrap_or(0),
        );
    }
    let storage_gib = storage_bytes.div_ceil(GI);
    if storage_gib > MAX_EPHEMERAL_GIB as u64 {
        return Err(refuse(
            "TooLarge",
            format!(
                "the pod's emptyDirs and containers ask for {storage_gib} GiB of ephemeral storage; a Fargate task has at most {MAX_EPHEMERAL_GIB} GiB"
            ),
        ));
    }
    let grace = pod
        .termination_grace_period
        .map(|g| g.as_secs().min(120) as i32);

    let mut defs = Vec::new();
    let mut overrides = Vec::new();
    let mut previous: Option<String> = None;
    if !files.is_empty() {
        let d = ContainerDefinition {
            name: Some(FILES_CONTAINER.into()),
            image: Some(config.files_image.clone()),
            essential: Some(false),
            entry_point: vec!["/bin/sh".into(), "-c".into()],
            command: vec![files_script(&files)],
            mount_points: file_volumes
                .iter()
                .map(|v| MountPoint {
                    source_volume: Some(v.clone()),
                    container_path: Some(format!("{FILES_ROOT}/{v}")),
                    read_only: Some(false),
                })
                .collect(),
            log_configuration: Some(log_configuration(config)),
            ..Default::default()
        };
        defs.push(d);
        let b64 = base64::engine::general_purpose::STANDARD;
        overrides.push(ContainerOverride {
            name: Some(FILES_CONTAINER.into()),
            environment: files
                .iter()
                .enumerate()
                .map(|(n, (_, f))| {
                    KeyValuePair::new(format!("{FILE_VAR}{n}"), b64.encode(&f.content))
                })
                .collect(),
            ..Default::default()
        });
        previous = Some(FILES_CONTAINER.into());
    }
    for c in &pod.init_containers {
        let mut d = definition_of(c, false, &file_volumes, config)?;
        d.depends_on.extend(previous.as_deref().map(after));
        previous = Some(c.name.clone());
        defs.push(d);
    }
    for c in &pod.containers {
        let mut d = definition_of(c, true, &file_volumes, config)?;
        d.depends_on.extend(previous.as_deref().map(after));
        d.stop_timeout = grace;
        defs.push(d);
    }
    for c in pod.init_containers.iter().chain(&pod.containers) {
        if !c.env.is_empty() {
            overrides.push(ContainerOverride {
                name: Some(c.name.clone()),
                environment: c
                    .env
                    .iter()
                    .map(|e| KeyValuePair::new(&e.name, &e.value))
                    .collect(),
                ..Default::default()
            });
        }
    }
    let mut definition = RegisterTaskDefinitionRequest {
        family: String::new(),
        container_definitions: defs,
        cpu: Some(size.cpu.to_string()),
        memory: Some(size.memory_mib.to_string()),
        network_mode: Some("awsvpc".into()),
        requires_compatibilities: vec!["FARGATE".into()],
        execution_role_arn: config.execution_role_arn.clone(),
        task_role_arn: config.task_role_arn.clone(),
        volumes,
        ephemeral_storage: (storage_gib > DEFAULT_EPHEMERAL_GIB as u64).then(|| EphemeralStorage {
            size_in_gib: (storage_gib as i32).max(21),
        }),
        tags: Vec::new(),
    };
    let shape = serde_json::to_vec(&definition).unwrap_or_default();
    let hash = hash_hex(&shape);
    let family = format!("{}{}", family_prefix(&config.node_name), &hash[..24]);
    definition.family = family.clone();
    definition.tags = vec![
        Tag {
            key: tags::NODE.into(),
            value: Some(config.node_name.clone()),
        },
        Tag {
            key: tags::SHAPE.into(),
            value: Some(hash),
        },
    ];
    let tag = |k: &str, v: &str| Tag {
        key: k.into(),
        value: Some(v.into()),
    };
    let run = RunTaskRequest {
        cluster: Some(config.cluster.clone()),
        task_definition: String::new(),
        count: Some(1),
        launch_type: Some("FARGATE".into()),
        platform_version: config.platform_version.clone(),
        network_configuration: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: config.subnets.clone(),
                security_groups: config.security_groups.clone(),
                assign_public_ip: Some(
                    if config.assign_public_ip {
                        "ENABLED"
                    } else {
                        "DISABLED"
                    }
                    .into(),
                ),
            }),
        }),
        overrides: (!overrides.is_empty()).then(|| TaskOverride {
            container_overrides: overrides,
            ..Default::default()
        }),
        tags: vec![
            tag(tags::POD_UID, &pod.pod.uid),
            tag(tags::NAMESPACE, &pod.pod.namespace),
            tag(tags::POD_NAME, &pod.pod.name),
            tag(tags::NODE, &config.node_name),
        ],
        client_token: Some(client_token(&pod.pod)),
        started_by: Some(started_by(&config.node_name)),
        group: None,
        enable_execute_command: Some(true),
        propagate_tags: None,
    };
    let overrides_len = serde_json::to_vec(&run.overrides).map_or(0, |v| v.len());
    if overrides_len > MAX_OVERRIDES_BYTES {
        return Err(refuse(
            "OverridesTooLarge",
            format!(
                "the pod's environment and files take {overrides_len} bytes in RunTask's overrides; ECS takes at most {MAX_OVERRIDES_BYTES}"
            ),
        ));
    }
    Ok(PodTask {
        family,
        definition,
        run,
        size,
    })
}
