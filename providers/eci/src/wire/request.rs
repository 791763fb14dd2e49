//! The request side of the actions this crate uses: typed requests and their encoding into
//! RPC parameters (`Container.N.Name`, `Volume.N.ConfigFileVolume.ConfigFileToPath.N.Path`,
//! ...). The client encodes with these; the mock cloud decodes with them and validates what
//! the service validates.

use std::collections::BTreeSet;

use crate::wire::api::{EnvironmentVar, Port, Tag, VolumeMount};
use crate::wire::params::{ParamError, Params};
pub use crate::wire::query::{DescribeContainerGroups, DescribeContainerLog, ExecContainerCommand};
pub use crate::wire::request_image_cache::GroupOptions;
pub use crate::wire::request_lifecycle::{HookDef, LifecycleDef, TerminationMessageDef};
pub use crate::wire::request_names::GroupNames;
pub use crate::wire::request_security::{SecurityContextDef, Sysctl};
use crate::wire::request_security::{
    decode_ephemeral_storage, decode_share_process_namespace, decode_sysctls, encode_sysctls,
};

/// At most this many containers (app plus init) per group, as ECI allows.
pub const MAX_CONTAINERS: usize = 20;
/// At most this many tags per group.
pub const MAX_TAGS: usize = 20;

pub const VOLUME_EMPTY_DIR: &str = "EmptyDirVolume";
pub const VOLUME_CONFIG_FILE: &str = "ConfigFileVolume";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerDef {
    pub name: String,
    pub image: String,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub working_dir: Option<String>,
    pub image_pull_policy: Option<String>,
    pub commands: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<EnvironmentVar>,
    pub volume_mounts: Vec<VolumeMount>,
    pub ports: Vec<Port>,
    pub stdin: bool,
    /// Kept for a later attach; ECI offers none, so stdin stays open.
    pub stdin_once: bool,
    pub tty: bool,
    /// Probes (`request_probes`).
    pub liveness_probe: Option<ProbeDef>,
    pub readiness_probe: Option<ProbeDef>,
    /// `request_security`, `request_lifecycle`.
    pub security_context: Option<SecurityContextDef>,
    pub lifecycle: LifecycleDef,
    pub termination_message: TerminationMessageDef,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: String,
    /// Base64 of the file's bytes, as the service takes it.
    pub content: String,
    /// Permission bits (decimal on the wire, like Kubernetes' JSON).
    pub mode: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeDef {
    EmptyDir {
        name: String,
        medium: Option<String>,
        size_limit: Option<String>,
    },
    ConfigFile {
        name: String,
        default_mode: Option<u32>,
        files: Vec<ConfigFile>,
    },
}

impl VolumeDef {
    pub fn name(&self) -> &str {
        match self {
            Self::EmptyDir { name, .. } | Self::ConfigFile { name, .. } => name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyDir { .. } => VOLUME_EMPTY_DIR,
            Self::ConfigFile { .. } => VOLUME_CONFIG_FILE,
        }
    }
}

/// `ImageRegistryCredential.N`: a private registry's login for image pulls.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ImageRegistryCredential {
    /// The registry's address, e.g. `registry-vpc.cn-hangzhou.aliyuncs.com`.
    pub server: String,
    pub user_name: String,
    pub password: String,
}

/// The password stays out of logs.
impl std::fmt::Debug for ImageRegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageRegistryCredential")
            .field("server", &self.server)
            .field("user_name", &self.user_name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `CreateContainerGroup`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateContainerGroup {
    pub region_id: String,
    pub container_group_name: String,
    pub restart_policy: Option<String>,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub client_token: Option<String>,
    pub zone_id: Option<String>,
    pub security_group_id: Option<String>,
    pub vswitch_id: Option<String>,
    pub active_deadline_seconds: Option<i64>,
    pub termination_grace_period_seconds: Option<i64>,
    pub tags: Vec<Tag>,
    pub containers: Vec<ContainerDef>,
    pub init_containers: Vec<ContainerDef>,
    pub volumes: Vec<VolumeDef>,
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    /// `HostName`, `DnsPolicy`, `DnsConfig.*`, `HostAliase.N.*`.
    pub names: GroupNames,
    /// `ShareProcessNamespace`, `EphemeralStorage`, `SecurityContext.Sysctl.N.*`
    /// (`request_security`).
    pub share_process_namespace: bool,
    pub ephemeral_storage: Option<u32>,
    pub sysctls: Vec<Sysctl>,
    /// `InstanceType`, the spot fields and the image cache's (`request_image_cache`).
    pub options: GroupOptions,
}

impl CreateContainerGroup {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push("ContainerGroupName", &self.container_group_name);
        p.push_opt("RestartPolicy", self.restart_policy.as_ref());
        p.push_opt("Cpu", self.cpu);
        p.push_opt("Memory", self.memory);
        p.push_opt("ClientToken", self.client_token.as_ref());
        p.push_opt("ZoneId", self.zone_id.as_ref());
        p.push_opt("SecurityGroupId", self.security_group_id.as_ref());
        p.push_opt("VSwitchId", self.vswitch_id.as_ref());
        p.push_opt("ActiveDeadlineSeconds", self.active_deadline_seconds);
        p.push_opt(
            "TerminationGracePeriodSeconds",
            self.termination_grace_period_seconds,
        );
        encode_tags(p, "Tag", &self.tags);
        for (i, c) in self.containers.iter().enumerate() {
            encode_container(p, &format!("Container.{}", i + 1), c);
        }
        for (i, c) in self.init_containers.iter().enumerate() {
            encode_container(p, &format!("InitContainer.{}", i + 1), c);
        }
        encode_volumes(p, &self.volumes);
        encode_registry_credentials(p, &self.image_registry_credentials);
        self.names.encode(p);
        if self.share_process_namespace {
            p.push("ShareProcessNamespace", "true");
        }
        p.push_opt("EphemeralStorage", self.ephemeral_storage);
        encode_sysctls(p, &self.sysctls);
        self.options.encode(p);
    }

    /// Decode and validate as the service does.
    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let name = p.required("ContainerGroupName")?.to_string();
        validate_group_name(&name)?;
        let restart_policy = p.string("RestartPolicy");
        if let Some(policy) = &restart_policy
            && !["Always", "OnFailure", "Never"].contains(&policy.as_str())
        {
            return Err(ParamError::invalid(
                "RestartPolicy",
                "expected Always, OnFailure or Never",
            ));
        }
        let containers = decode_containers(p, "Container")?;
        let init_containers = decode_containers(p, "InitContainer")?;
        if containers.is_empty() {
            return Err(ParamError::Missing("Container.1.Name".into()));
        }
        if containers.len() + init_containers.len() > MAX_CONTAINERS {
            return Err(ParamError::invalid(
                "Container",
                format!("a container group holds at most {MAX_CONTAINERS} containers"),
            ));
        }
        // Errors name the exact parameter (`InitContainer.2.VolumeMount.1.Name`); the SDKs
        // number list members from 1 without gaps.
        let numbered: Vec<(String, &ContainerDef)> = containers
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("Container.{}", i + 1), c))
            .chain(
                init_containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("InitContainer.{}", i + 1), c)),
            )
            .collect();
        let mut names = BTreeSet::new();
        for (pre, c) in &numbered {
            if !names.insert(c.name.as_str()) {
                return Err(ParamError::invalid(
                    format!("{pre}.Name"),
                    format!("the container name {:?} is used twice", c.name),
                ));
            }
        }
        let tags = decode_tags(p, "Tag")?;
        if tags.len() > MAX_TAGS {
            return Err(ParamError::invalid(
                "Tag",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        let volumes = decode_volumes(p)?;
        let volume_names: BTreeSet<&str> = volumes.iter().map(VolumeDef::name).collect();
        if volume_names.len() != volumes.len() {
            return Err(ParamError::invalid(
                "Volume.N.Name",
                "volume names must be unique",
            ));
        }
        for (pre, c) in &numbered {
            for (j, m) in c.volume_mounts.iter().enumerate() {
                let mount = format!("{pre}.VolumeMount.{}", j + 1);
                if !volume_names.contains(m.name.as_str()) {
                    return Err(ParamError::invalid(
                        format!("{mount}.Name"),
                        format!(
                            "container {:?} mounts the unknown volume {:?}",
                            c.name, m.name
                        ),
                    ));
                }
                if !m.mount_path.starts_with('/') {
                    return Err(ParamError::invalid(
                        format!("{mount}.MountPath"),
                        format!("{:?} is not an absolute path", m.mount_path),
                    ));
                }
            }
        }
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            container_group_name: name,
            restart_policy,
            cpu: positive(p, "Cpu")?,
            memory: positive(p, "Memory")?,
            client_token: p.string("ClientToken"),
            zone_id: p.string("ZoneId"),
            security_group_id: p.string("SecurityGroupId"),
            vswitch_id: p.string("VSwitchId"),
            active_deadline_seconds: p.parse("ActiveDeadlineSeconds")?,
            termination_grace_period_seconds: p.parse("TerminationGracePeriodSeconds")?,
            tags,
            containers,
            init_containers,
            volumes,
            image_registry_credentials: decode_registry_credentials(p)?,
            names: GroupNames::decode(p)?,
            share_process_namespace: decode_share_process_namespace(p)?,
            ephemeral_storage: decode_ephemeral_storage(p)?,
            sysctls: decode_sysctls(p)?,
            options: GroupOptions::decode(p)?,
        })
    }
}

/// `ImageRegistryCredential.N.*` (CreateContainerGroup, Create/UpdateImageCache).
pub(super) fn encode_registry_credentials(p: &mut Params, credentials: &[ImageRegistryCredential]) {
    for (i, c) in credentials.iter().enumerate() {
        let pre = format!("ImageRegistryCredential.{}", i + 1);
        p.push(format!("{pre}.Server"), &c.server);
        p.push(format!("{pre}.UserName"), &c.user_name);
        p.push(format!("{pre}.Password"), &c.password);
    }
}

/// Every member needs its server and user name; the password may be empty (a token-only
/// registry user), as the service accepts.
pub(super) fn decode_registry_credentials(
    p: &Params,
) -> Result<Vec<ImageRegistryCredential>, ParamError> {
    p.members("ImageRegistryCredential")?
        .into_iter()
        .map(|(i, m)| {
            let required = |name: &str| {
                m.required(name)
                    .map(str::to_string)
                    .map_err(|_| ParamError::Missing(format!("ImageRegistryCredential.{i}.{name}")))
            };
            Ok(ImageRegistryCredential {
                server: required("Server")?,
                user_name: required("UserName")?,
                password: m.get("Password").unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// 2 to 128 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
fn validate_group_name(name: &str) -> Result<(), ParamError> {
    let ok = (2..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ParamError::invalid(
            "ContainerGroupName",
            "2 to 128 characters of lower-case letters, digits and hyphens, not starting or ending with a hyphen",
        ))
    }
}

fn positive(p: &Params, name: &str) -> Result<Option<f64>, ParamError> {
    match p.parse::<f64>(name)? {
        Some(v) if !(v.is_finite() && v > 0.0) => {
            Err(ParamError::invalid(name, "must be a positive number"))
        }
        v => Ok(v),
    }
}

pub fn encode_tags(p: &mut Params, prefix: &str, tags: &[Tag]) {
    for (i, t) in tags.iter().enumerate() {
        p.push(format!("{prefix}.{}.Key", i + 1), &t.key);
        p.push(format!("{prefix}.{}.Value", i + 1), &t.value);
    }
}

pub fn decode_tags(p: &Params, prefix: &str) -> Result<Vec<Tag>, ParamError> {
    p.members(prefix)?
        .into_iter()
        .map(|(i, m)| {
            Ok(Tag {
                key: m
                    .required("Key")
                    .map_err(|_| ParamError::Missing(format!("{prefix}.{i}.Key")))?
                    .to_string(),
                value: m.get("Value").unwrap_or_default().to_string(),
            })
        })
        .collect()
}

fn encode_container(p: &mut Params, pre: &str, c: &ContainerDef) {
    p.push(format!("{pre}.Name"), &c.name);
    p.push(format!("{pre}.Image"), &c.image);
    p.push_opt(&format!("{pre}.Cpu"), c.cpu);
    p.push_opt(&format!("{pre}.Memory"), c.memory);
    p.push_opt(&format!("{pre}.WorkingDir"), c.working_dir.as_ref());
    p.push_opt(
        &format!("{pre}.ImagePullPolicy"),
        c.image_pull_policy.as_ref(),
    );
    for (i, a) in c.commands.iter().enumerate() {
        p.push(format!("{pre}.Command.{}", i + 1), a);
    }
    for (i, a) in c.args.iter().enumerate() {
        p.push(format!("{pre}.Arg.{}", i + 1), a);
    }
    for (i, e) in c.env.iter().enumerate() {
        p.push(format!("{pre}.EnvironmentVar.{}.Key", i + 1), &e.key);
        p.push(format!("{pre}.EnvironmentVar.{}.Value", i + 1), &e.value);
    }
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = format!("{pre}.VolumeMount.{}", i + 1);
        p.push(format!("{mp}.Name"), &m.name);
        p.push(format!("{mp}.MountPath"), &m.mount_path);
        p.push(format!("{mp}.ReadOnly"), m.read_only.to_string());
        if !m.sub_path.is_empty() {
            p.push(format!("{mp}.SubPath"), &m.sub_path);
        }
    }
    for (i, port) in c.ports.iter().enumerate() {
        p.push(format!("{pre}.Port.{}.Port", i + 1), port.port.to_string());
        p.push(format!("{pre}.Port.{}.Protocol", i + 1), &port.protocol);
    }
    if c.stdin {
        p.push(format!("{pre}.Stdin"), "true");
    }
    if c.stdin_once {
        p.push(format!("{pre}.StdinOnce"), "true");
    }
    if c.tty {
        p.push(format!("{pre}.Tty"), "true");
    }
    encode_probes(p, pre, c);
    if let Some(s) = &c.security_context {
        s.encode(p, pre);
    }
    c.lifecycle.encode(p, pre);
    c.termination_message.encode(p, pre);
}

fn decode_containers(p: &Params, prefix: &str) -> Result<Vec<ContainerDef>, ParamError> {
    p.members(prefix)?
        .into_iter()
        .map(|(i, m)| decode_container(&m, &format!("{prefix}.{i}")))
        .collect()
}

fn decode_container(m: &Params, pre: &str) -> Result<ContainerDef, ParamError> {
    let named = |e: ParamError| match e {
        ParamError::Missing(n) => ParamError::Missing(format!("{pre}.{n}")),
        ParamError::Invalid { name, reason } => ParamError::Invalid {
            name: format!("{pre}.{name}"),
            reason,
        },
    };
    let name = m.required("Name").map_err(named)?.to_string();
    let image = m.required("Image").map_err(named)?.to_string();
    let env = m
        .members("EnvironmentVar")
        .map_err(named)?
        .into_iter()
        .map(|(_, e)| EnvironmentVar {
            key: e.get("Key").unwrap_or_default().to_string(),
            value: e.get("Value").unwrap_or_default().to_string(),
        })
        .collect();
    let volume_mounts = m
        .members("VolumeMount")
        .map_err(named)?
        .into_iter()
        .map(|(j, v)| {
            // The error names the mount's own parameter: `VolumeMount.2.ReadOnly`.
            let at = |e: ParamError| match e {
                ParamError::Missing(n) => ParamError::Missing(format!("VolumeMount.{j}.{n}")),
                ParamError::Invalid { name, reason } => ParamError::Invalid {
                    name: format!("VolumeMount.{j}.{name}"),
                    reason,
                },
            };
            Ok(VolumeMount {
                name: v.required("Name").map_err(at)?.to_string(),
                mount_path: v.required("MountPath").map_err(at)?.to_string(),
                read_only: v.flag("ReadOnly", false).map_err(at)?,
                sub_path: v.get("SubPath").unwrap_or_default().to_string(),
            })
        })
        .collect::<Result<_, ParamError>>()
        .map_err(named)?;
    let ports = m
        .members("Port")
        .map_err(named)?
        .into_iter()
        .map(|(j, v)| {
            Ok(Port {
                port: v
                    .parse("Port")
                    .map_err(|_| ParamError::invalid(format!("Port.{j}.Port"), "1 to 65535"))?
                    .unwrap_or_default(),
                protocol: v.get("Protocol").unwrap_or("TCP").to_string(),
            })
        })
        .collect::<Result<_, ParamError>>()
        .map_err(named)?;
    Ok(ContainerDef {
        name,
        image,
        cpu: positive(m, "Cpu").map_err(named)?,
        memory: positive(m, "Memory").map_err(named)?,
        working_dir: m.string("WorkingDir"),
        image_pull_policy: m.string("ImagePullPolicy"),
        commands: m.values("Command").map_err(named)?,
        args: m.values("Arg").map_err(named)?,
        env,
        volume_mounts,
        ports,
        stdin: m.flag("Stdin", false).map_err(named)?,
        stdin_once: m.flag("StdinOnce", false).map_err(named)?,
        tty: m.flag("Tty", false).map_err(named)?,
        liveness_probe: ProbeDef::decode(m, "LivenessProbe").map_err(named)?,
        readiness_probe: ProbeDef::decode(m, "ReadinessProbe").map_err(named)?,
        security_context: SecurityContextDef::decode(m).map_err(named)?,
        lifecycle: LifecycleDef::decode(m).map_err(named)?,
        termination_message: TerminationMessageDef::decode(m).map_err(named)?,
    })
}

fn encode_volumes(p: &mut Params, volumes: &[VolumeDef]) {
    for (i, v) in volumes.iter().enumerate() {
        let pre = format!("Volume.{}", i + 1);
        p.push(format!("{pre}.Name"), v.name());
        p.push(format!("{pre}.Type"), v.kind());
        match v {
            VolumeDef::EmptyDir {
                medium, size_limit, ..
            } => {
                p.push_opt(&format!("{pre}.EmptyDirVolume.Medium"), medium.as_ref());
                p.push_opt(
                    &format!("{pre}.EmptyDirVolume.SizeLimit"),
                    size_limit.as_ref(),
                );
            }
            VolumeDef::ConfigFile {
                default_mode,
                files,
                ..
            } => {
                let cfv = format!("{pre}.ConfigFileVolume");
                p.push_opt(&format!("{cfv}.DefaultMode"), *default_mode);
                for (j, f) in files.iter().enumerate() {
                    let fp = format!("{cfv}.ConfigFileToPath.{}", j + 1);
                    p.push(format!("{fp}.Path"), &f.path);
                    p.push(format!("{fp}.Content"), &f.content);
                    p.push_opt(&format!("{fp}.Mode"), f.mode);
                }
            }
        }
    }
}

/// `UpdateContainerGroup`, for what a running pod may change: the contents of its file
/// volumes (re-issued service-account tokens, edited configMaps).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateContainerGroup {
    pub region_id: String,
    pub container_group_id: String,
    pub volumes: Vec<VolumeDef>,
    pub client_token: Option<String>,
}

impl UpdateContainerGroup {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push("ContainerGroupId", &self.container_group_id);
        p.push_opt("ClientToken", self.client_token.as_ref());
        encode_volumes(p, &self.volumes);
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            container_group_id: p.required("ContainerGroupId")?.to_string(),
            volumes: decode_volumes(p)?,
            client_token: p.string("ClientToken"),
        })
    }
}

fn decode_volumes(p: &Params) -> Result<Vec<VolumeDef>, ParamError> {
    p.members("Volume")?
        .into_iter()
        .map(|(i, v)| {
            let pre = format!("Volume.{i}");
            let name = v
                .required("Name")
                .map_err(|_| ParamError::Missing(format!("{pre}.Name")))?
                .to_string();
            match v.get("Type").unwrap_or_default() {
                VOLUME_EMPTY_DIR => Ok(VolumeDef::EmptyDir {
                    name,
                    medium: v.string("EmptyDirVolume.Medium"),
                    size_limit: v.string("EmptyDirVolume.SizeLimit"),
                }),
                VOLUME_CONFIG_FILE => {
                    let files = v
                        .members("ConfigFileVolume.ConfigFileToPath")?
                        .into_iter()
                        .map(|(j, f)| {
                            let path = f.required("Path").map_err(|_| {
                                ParamError::Missing(format!(
                                    "{pre}.ConfigFileVolume.ConfigFileToPath.{j}.Path"
                                ))
                            })?;
                            if path.starts_with('/') || path.split('/').any(|s| s == "..") {
                                return Err(ParamError::invalid(
                                    format!("{pre}.ConfigFileVolume.ConfigFileToPath.{j}.Path"),
                                    "must be a relative path without \"..\"",
                                ));
                            }
                            Ok(ConfigFile {
                                path: path.to_string(),
                                content: f.get("Content").unwrap_or_default().to_string(),
                                mode: parse_mode(&f, "Mode")?,
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    Ok(VolumeDef::ConfigFile {
                        name,
                        default_mode: parse_mode(&v, "ConfigFileVolume.DefaultMode")?,
                        files,
                    })
                }
                "" => Err(ParamError::Missing(format!("{pre}.Type"))),
                other => Err(ParamError::invalid(
                    format!("{pre}.Type"),
                    format!(
                        "volume type {other:?} is not supported (EmptyDirVolume, ConfigFileVolume)"
                    ),
                )),
            }
        })
        .collect()
}

/// Decimal permission bits; a leading `0` means octal (`0644`), as people write them.
fn parse_mode(p: &Params, name: &str) -> Result<Option<u32>, ParamError> {
    let Some(v) = p.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parsed = if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    };
    match parsed {
        Some(mode) if mode <= 0o777 => Ok(Some(mode)),
        _ => Err(ParamError::invalid(name, "permission bits from 0 to 0777")),
    }
}

// Probes: `Container.N.LivenessProbe.*`, `Container.N.ReadinessProbe.*`.
pub use crate::wire::request_probes::{ProbeCheck, ProbeDef};

fn encode_probes(p: &mut Params, pre: &str, c: &ContainerDef) {
    if let Some(probe) = &c.liveness_probe {
        probe.encode(p, &format!("{pre}.LivenessProbe"));
    }
    if let Some(probe) = &c.readiness_probe {
        probe.encode(p, &format!("{pre}.ReadinessProbe"));
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
