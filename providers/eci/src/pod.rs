//! A resolved pod as an ECI `CreateContainerGroup` request: containers and init containers
//! with command, args, working dir, env and mounts; emptyDir and file volumes; sizes; the
//! restart policy; registry credentials from the pod's image pull secrets; tags naming the
//! pod and the node; the pod's hostname, resolver and host aliases (`request_names.rs`); the
//! pod UID as the ClientToken, so a retried create never makes a second group.

use base64::Engine as _;
use vk_core::provider::{
    ContainerSpec, Probe, ProbeHandler, ProviderError, ResolvedPod, RestartPolicy, VolumeSource,
};

use crate::annotations::{self, ImageCacheConfig};
use crate::pod_runtime::{self, RuntimeWarning};
use crate::sizing;
use crate::wire::api::{EnvironmentVar, Port, Tag, VolumeMount};
use crate::wire::request::{
    ConfigFile, ContainerDef, CreateContainerGroup, GroupNames, ImageRegistryCredential, ProbeDef,
    VolumeDef,
};
use crate::wire::request_security::MAX_EPHEMERAL_STORAGE_GIB;

/// Tags every group of this provider carries.
pub use crate::wire::tags;

/// Where the group runs, besides the region (which the client adds), and the node's image
/// cache defaults (`eci: image_cache:`) the pod's annotations override.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub zone_id: Option<String>,
    pub security_group_id: Option<String>,
    pub vswitch_id: Option<String>,
    pub image_cache: ImageCacheConfig,
}

/// ECI's group name: `namespace-name`, lower-case letters, digits and hyphens only, at most
/// 128 characters, no leading or trailing hyphen.
pub fn group_name(namespace: &str, name: &str, uid: &str) -> String {
    let raw = format!("{namespace}-{name}").to_ascii_lowercase();
    let mut out: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(128)
        .collect();
    out = out.trim_matches('-').to_string();
    if out.len() < 2 {
        let id: String = uid
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        out = format!("vk-{}", id.to_ascii_lowercase());
    }
    out
}

/// The idempotency token: the pod UID (at most 64 ASCII characters, as the service takes).
pub fn client_token(pod: &ResolvedPod) -> String {
    let token = if pod.pod.uid.is_empty() {
        format!("{}/{}", pod.pod.namespace, pod.pod.name)
    } else {
        pod.pod.uid.clone()
    };
    token.chars().filter(char::is_ascii).take(64).collect()
}

fn gib(v: f64) -> Option<f64> {
    // Two decimals are plenty and keep the request readable.
    (v > 0.0).then(|| (v * 100.0).ceil() / 100.0)
}

/// A probe as ECI takes it. ECI has no startup probe and no gRPC check, and an HTTP probe
/// has no host or headers there: what cannot be sent is logged, not silently lost.
fn probe(c: &ContainerSpec, kind: &str, p: Option<&Probe>) -> Option<ProbeDef> {
    let p = p?;
    let def = ProbeDef::from_probe(p);
    if def.is_none() {
        tracing::warn!(container = %c.name, kind, "ECI has no gRPC probe; this probe is not sent");
    }
    if let ProbeHandler::HttpGet { host, headers, .. } = &p.handler
        && (host.is_some() || !headers.is_empty())
    {
        tracing::warn!(container = %c.name, kind, "ECI's HTTP probes take no host or headers; sent without them");
    }
    def
}

/// One container as ECI takes it; `app` for the pod's containers (not its init containers),
/// whose stdin an attach may write to.
fn container(
    pod: &ResolvedPod,
    c: &ContainerSpec,
    app: bool,
    warnings: &mut Vec<RuntimeWarning>,
) -> Result<ContainerDef, ProviderError> {
    if c.startup_probe.is_some() {
        tracing::warn!(container = %c.name, "ECI has no startup probe; it is not sent");
    }
    let (cpu, memory) = sizing::container_ask(c);
    let (commands, args) = vk_core::provider::stdin_pipe::command_and_args(c, app);
    Ok(ContainerDef {
        name: c.name.clone(),
        image: c.image.clone(),
        cpu: (cpu > 0.0).then_some(cpu),
        memory: gib(memory),
        working_dir: c.working_dir.clone().filter(|d| !d.is_empty()),
        image_pull_policy: c.image_pull_policy.clone(),
        commands,
        args,
        env: c
            .env
            .iter()
            .map(|e| EnvironmentVar {
                key: e.name.clone(),
                value: e.value.clone(),
            })
            .collect(),
        volume_mounts: c
            .volume_mounts
            .iter()
            .map(|m| VolumeMount {
                name: m.volume.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only,
                sub_path: m.sub_path.clone().unwrap_or_default(),
            })
            .collect(),
        ports: c
            .ports
            .iter()
            .map(|p| Port {
                port: p.port,
                protocol: p.protocol.clone(),
            })
            .collect(),
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        liveness_probe: probe(c, "liveness", c.liveness_probe.as_ref()),
        readiness_probe: probe(c, "readiness", c.readiness_probe.as_ref()),
        security_context: pod_runtime::security_context(pod, c, warnings)?,
        lifecycle: pod_runtime::lifecycle(c, warnings),
        termination_message: pod_runtime::termination_message(c),
    })
}

/// The file volumes and emptyDirs of the pod.
pub fn volumes(pod: &ResolvedPod) -> Vec<VolumeDef> {
    pod.volumes
        .iter()
        .map(|v| match &v.source {
            VolumeSource::EmptyDir {
                memory,
                size_limit_bytes,
            } => VolumeDef::EmptyDir {
                name: v.name.clone(),
                medium: memory.then(|| "Memory".to_string()),
                size_limit: size_limit_bytes.map(|b| format!("{}Mi", b.div_ceil(1024 * 1024))),
            },
            VolumeSource::Files(files) => VolumeDef::ConfigFile {
                name: v.name.clone(),
                default_mode: None,
                files: files
                    .iter()
                    .map(|f| ConfigFile {
                        path: f.path.trim_start_matches('/').to_string(),
                        content: base64::engine::general_purpose::STANDARD.encode(&f.content),
                        mode: Some(f.mode & 0o777),
                    })
                    .collect(),
            },
        })
        .collect()
}

/// Build the request; an error when ECI cannot run the pod as specified.
pub fn create_request(
    pod: &ResolvedPod,
    node_name: &str,
    placement: &Placement,
) -> Result<CreateContainerGroup, ProviderError> {
    create_request_warning(pod, node_name, placement, &mut Vec::new())
}

/// [`create_request`], adding to `warnings` what the pod asks for that ECI does not do.
pub fn create_request_warning(
    pod: &ResolvedPod,
    node_name: &str,
    placement: &Placement,
    warnings: &mut Vec<RuntimeWarning>,
) -> Result<CreateContainerGroup, ProviderError> {
    if let Some(sidecar) = pod
        .init_containers
        .iter()
        .find(|c| c.restart_policy == Some(RestartPolicy::Always))
    {
        return Err(ProviderError::invalid(
            "UnsupportedSpec",
            format!(
                "init container {:?} is a native sidecar (restartPolicy: Always), which ECI does not support",
                sidecar.name
            ),
        ));
    }
    let asked = annotations::read(&pod.annotations, &placement.image_cache, warnings)?;
    // `eci-use-specs`' size wins over the containers' limits and requests, as on ACK.
    let (cpu, memory) = asked.size.unwrap_or_else(|| sizing::pod_ask(pod));
    let Some(spec) = sizing::round_up(cpu, memory) else {
        return Err(ProviderError::invalid(
            "TooLarge",
            format!(
                "the pod asks for {cpu} vCPU and {memory:.2} GiB; the largest ECI instance has 64 vCPU and 512 GiB"
            ),
        ));
    };
    let sized = cpu > 0.0 || memory > 0.0;
    let ephemeral_storage = match (
        pod_runtime::ephemeral_storage_gib(pod).unwrap_or(0),
        asked.extra_ephemeral_storage_gib,
    ) {
        (0, 0) => None,
        (need, extra) => Some(need.saturating_add(extra)),
    };
    if let Some(gib) = ephemeral_storage
        && gib > MAX_EPHEMERAL_STORAGE_GIB
    {
        return Err(ProviderError::invalid(
            "TooLarge",
            format!(
                "the pod asks for {gib} GiB of ephemeral storage beyond the free 30 GiB; ECI adds at most {MAX_EPHEMERAL_STORAGE_GIB}"
            ),
        ));
    }
    let containers = pod
        .containers
        .iter()
        .map(|c| container(pod, c, true, warnings))
        .collect::<Result<_, _>>()?;
    let init_containers = pod
        .init_containers
        .iter()
        .map(|c| container(pod, c, false, warnings))
        .collect::<Result<_, _>>()?;
    let sysctls = pod_runtime::sysctls(&pod.security, warnings)?;
    let restart_policy = match pod.restart_policy {
        RestartPolicy::Always => "Always",
        RestartPolicy::OnFailure => "OnFailure",
        RestartPolicy::Never => "Never",
    };
    Ok(CreateContainerGroup {
        region_id: String::new(),
        container_group_name: group_name(&pod.pod.namespace, &pod.pod.name, &pod.pod.uid),
        restart_policy: Some(restart_policy.to_string()),
        cpu: sized.then_some(spec.cpu),
        memory: sized.then_some(spec.memory_gib),
        client_token: Some(client_token(pod)),
        zone_id: placement.zone_id.clone(),
        security_group_id: placement.security_group_id.clone(),
        vswitch_id: placement.vswitch_id.clone(),
        active_deadline_seconds: pod.active_deadline_seconds,
        termination_grace_period_seconds: pod
            .termination_grace_period
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        tags: vec![
            tag(tags::POD_UID, &pod.pod.uid),
            tag(tags::NAMESPACE, &pod.pod.namespace),
            tag(tags::POD_NAME, &pod.pod.name),
            tag(tags::NODE, node_name),
        ],
        containers,
        init_containers,
        volumes: volumes(pod),
        image_registry_credentials: pod
            .image_pull_credentials
            .iter()
            .map(|c| ImageRegistryCredential {
                server: c.server.clone(),
                user_name: c.username.clone(),
                password: c.password.clone(),
            })
            .collect(),
        names: GroupNames::of(pod),
        share_process_namespace: pod.share_process_namespace,
        ephemeral_storage,
        sysctls,
        options: asked.options,
    })
}

pub fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_string(),
        value: value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vk_core::provider::{
        EnvVar, PodRef, RegistryCredential, Resources, Volume, VolumeFile, VolumeMount as PodMount,
    };

    use super::*;

    const GI: u64 = 1024 * 1024 * 1024;

    fn build_pod() -> ResolvedPod {
        let workspace = PodMount {
            volume: "workspace".into(),
            mount_path: "/home/jenkins/agent".into(),
            read_only: false,
            sub_path: None,
        };
        ResolvedPod {
            pod: PodRef {
                namespace: "ci".into(),
                name: "build.42".into(),
                uid: "0b7e-uid".into(),
            },
            restart_policy: RestartPolicy::Never,
            containers: vec![
                ContainerSpec {
                    name: "jnlp".into(),
                    image: "jenkins/inbound-agent".into(),
                    working_dir: Some("/home/jenkins/agent".into()),
                    env: vec![EnvVar {
                        name: "JENKINS_URL".into(),
                        value: "http://jenkins".into(),
                    }],
                    volume_mounts: vec![workspace.clone()],
                    resources: Resources {
                        cpu_request_millis: Some(500),
                        memory_request_bytes: Some(GI),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ContainerSpec {
                    name: "golang".into(),
                    image: "golang:1.22".into(),
                    command: vec!["sleep".into()],
                    args: vec!["99d".into()],
                    volume_mounts: vec![workspace],
                    resources: Resources {
                        cpu_limit_millis: Some(1500),
                        memory_limit_bytes: Some(3 * GI),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            ],
            volumes: vec![
                Volume {
                    name: "workspace".into(),
                    source: VolumeSource::EmptyDir {
                        memory: false,
                        size_limit_bytes: None,
                    },
                },
                Volume {
                    name: "token".into(),
                    source: VolumeSource::Files(vec![VolumeFile {
                        path: "token".into(),
                        content: b"secret".to_vec(),
                        mode: 0o100644,
                    }]),
                },
            ],
            termination_grace_period: Some(Duration::from_secs(30)),
            ..Default::default()
        }
    }

    #[test]
    fn build_pod_becomes_a_container_group() {
        let req = create_request(&build_pod(), "vk-node", &Placement::default()).unwrap();
        assert_eq!(req.container_group_name, "ci-build-42");
        assert_eq!(req.client_token.as_deref(), Some("0b7e-uid"));
        assert_eq!(req.restart_policy.as_deref(), Some("Never"));
        // 0.5 + 1.5 vCPU, 1 + 3 GiB: exactly 2 vCPU / 4 GiB.
        assert_eq!((req.cpu, req.memory), (Some(2.0), Some(4.0)));
        assert_eq!(req.termination_grace_period_seconds, Some(30));
        let tag_value = |k: &str| {
            req.tags
                .iter()
                .find(|t| t.key == k)
                .map(|t| t.value.clone())
        };
        assert_eq!(tag_value(tags::POD_UID).as_deref(), Some("0b7e-uid"));
        assert_eq!(tag_value(tags::NODE).as_deref(), Some("vk-node"));
        assert_eq!(tag_value(tags::POD_NAME).as_deref(), Some("build.42"));

        let jnlp = &req.containers[0];
        assert_eq!(jnlp.working_dir.as_deref(), Some("/home/jenkins/agent"));
        assert_eq!((jnlp.cpu, jnlp.memory), (Some(0.5), Some(1.0)));
        assert_eq!(jnlp.env[0].key, "JENKINS_URL");
        let golang = &req.containers[1];
        assert_eq!(golang.commands, vec!["sleep"]);
        assert_eq!(golang.args, vec!["99d"]);
        assert_eq!(golang.volume_mounts[0].name, "workspace");

        assert!(matches!(&req.volumes[0], VolumeDef::EmptyDir { name, .. } if name == "workspace"));
        match &req.volumes[1] {
            VolumeDef::ConfigFile { files, .. } => {
                assert_eq!(files[0].path, "token");
                assert_eq!(files[0].content, "c2VjcmV0");
                assert_eq!(files[0].mode, Some(0o644));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pull_secret_credentials_become_image_registry_credentials() {
        let mut pod = build_pod();
        pod.image_pull_credentials = vec![
            RegistryCredential {
                server: "registry.example.com".into(),
                username: "demo".into(),
                password: "s3cr3t".into(),
            },
            RegistryCredential {
                server: "quay.io".into(),
                username: "robot".into(),
                password: "pw".into(),
            },
        ];
        let req = create_request(&pod, "n", &Placement::default()).unwrap();
        let mut p = crate::wire::params::Params::new();
        req.encode(&mut p);
        for (name, value) in [
            ("ImageRegistryCredential.1.Server", "registry.example.com"),
            ("ImageRegistryCredential.1.UserName", "demo"),
            ("ImageRegistryCredential.1.Password", "s3cr3t"),
            ("ImageRegistryCredential.2.Server", "quay.io"),
            ("ImageRegistryCredential.2.UserName", "robot"),
            ("ImageRegistryCredential.2.Password", "pw"),
        ] {
            assert_eq!(p.get(name), Some(value), "{name}");
        }
        assert!(
            create_request(&build_pod(), "n", &Placement::default())
                .unwrap()
                .image_registry_credentials
                .is_empty()
        );
    }

    #[test]
    fn args_without_command_are_kept_and_unsized_pods_get_the_default() {
        let mut pod = build_pod();
        for c in &mut pod.containers {
            c.resources = Resources::default();
            c.command.clear();
            c.args = vec!["-c".into(), "echo hi".into()];
        }
        let req = create_request(&pod, "n", &Placement::default()).unwrap();
        assert_eq!((req.cpu, req.memory), (None, None));
        assert!(req.containers[1].commands.is_empty());
        assert_eq!(req.containers[1].args, vec!["-c", "echo hi"]);
    }

    #[test]
    fn pods_eci_cannot_run_are_invalid() {
        let mut pod = build_pod();
        pod.containers[0].resources.cpu_request_millis = Some(100_000);
        let err = create_request(&pod, "n", &Placement::default()).unwrap_err();
        assert!(
            matches!(err, ProviderError::InvalidSpec { ref reason, .. } if reason == "TooLarge")
        );

        let mut pod = build_pod();
        pod.init_containers.push(ContainerSpec {
            name: "sidecar".into(),
            restart_policy: Some(RestartPolicy::Always),
            ..Default::default()
        });
        let err = create_request(&pod, "n", &Placement::default()).unwrap_err();
        assert!(
            matches!(err, ProviderError::InvalidSpec { ref reason, .. } if reason == "UnsupportedSpec")
        );
    }

    #[test]
    fn group_names_follow_the_service_rules() {
        assert_eq!(group_name("default", "web-0", "u"), "default-web-0");
        assert_eq!(group_name("NS", "A_b.c", "u"), "ns-a-b-c");
        assert_eq!(group_name("", "-", "ABC-123"), "vk-abc123");
        assert_eq!(group_name("a", &"x".repeat(300), "u").len(), 128);
    }

    #[test]
    fn probes_become_eci_probe_parameters() {
        use vk_core::provider::{Probe, ProbeHandler};
        let mut pod = build_pod();
        pod.containers[0].readiness_probe = Some(Probe::new(ProbeHandler::Exec {
            command: vec!["test".into(), "-f".into(), "/tmp/ready".into()],
        }));
        pod.containers[0].liveness_probe = Some(Probe::new(ProbeHandler::Grpc {
            port: 50051,
            service: None,
        }));
        pod.containers[1].liveness_probe = Some(Probe::new(ProbeHandler::TcpSocket {
            host: None,
            port: 8080,
        }));
        let req = create_request(&pod, "vk-node", &Placement::default()).unwrap();
        // gRPC has no ECI form: not sent.
        assert_eq!(req.containers[0].liveness_probe, None);
        let mut p = crate::wire::params::Params::new();
        req.encode(&mut p);
        p.set("RegionId", "cn-hangzhou");
        assert_eq!(
            p.get("Container.1.ReadinessProbe.Exec.Command.3"),
            Some("/tmp/ready")
        );
        assert_eq!(
            p.get("Container.1.ReadinessProbe.FailureThreshold"),
            Some("3")
        );
        assert_eq!(
            p.get("Container.2.LivenessProbe.TcpSocket.Port"),
            Some("8080")
        );
        assert_eq!(p.get("Container.1.LivenessProbe.PeriodSeconds"), None);
        // And the mock cloud reads back what was sent.
        let decoded = CreateContainerGroup::decode(&p).unwrap();
        assert_eq!(
            decoded.containers[0].readiness_probe,
            req.containers[0].readiness_probe
        );
        assert_eq!(
            decoded.containers[1].liveness_probe,
            req.containers[1].liveness_probe
        );
    }

    #[test]
    fn annotations_become_create_parameters() {
        use crate::annotations as a;
        let mut pod = build_pod();
        pod.containers[0].ephemeral_storage_request_bytes = Some(40 * GI);
        pod.annotations = [
            (a::USE_SPECS, "8-16Gi,ecs.c6.2xlarge"),
            (a::SPOT_STRATEGY, "SpotWithPriceLimit"),
            (a::SPOT_PRICE_LIMIT, "0.5"),
            (a::EXTRA_EPHEMERAL_STORAGE, "50Gi"),
            (a::AUTO_IMC, "true"),
            ("k8s.aliyun.com/eci-vswitch", "vsw-x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut warnings = Vec::new();
        let req = create_request_warning(&pod, "n", &Placement::default(), &mut warnings).unwrap();
        // The annotation's size wins over the containers' 2 vCPU / 4 GiB.
        assert_eq!((req.cpu, req.memory), (Some(8.0), Some(16.0)));
        // 40 GiB asked is 10 beyond the free 30, plus 50 extra.
        assert_eq!(req.ephemeral_storage, Some(60));
        let mut p = crate::wire::params::Params::new();
        req.encode(&mut p);
        assert_eq!(p.get("InstanceType"), Some("ecs.c6.2xlarge"));
        assert_eq!(p.get("SpotStrategy"), Some("SpotWithPriceLimit"));
        assert_eq!(p.get("SpotPriceLimit"), Some("0.5"));
        assert_eq!(p.get("AutoMatchImageCache"), Some("true"));
        assert_eq!(p.get("AutoCreateImageCache"), Some("true"));
        assert_eq!(p.get("EphemeralStorage"), Some("60"));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].reason, a::NOT_SUPPORTED);
        assert!(warnings[0].message.contains("k8s.aliyun.com/eci-vswitch"));

        // Matching off on the node, a named cache on the pod.
        let mut placement = Placement::default();
        placement.image_cache.auto_match = false;
        let mut pod = build_pod();
        let req = create_request(&pod, "n", &placement).unwrap();
        assert_eq!(req.options.auto_match_image_cache, Some(false));
        pod.annotations
            .insert(a::IMAGE_SNAPSHOT_ID.into(), "imc-abc123".into());
        let req = create_request(&pod, "n", &placement).unwrap();
        assert_eq!(req.options.image_snapshot_id.as_deref(), Some("imc-abc123"));

        // A bad value refuses the pod, naming the annotation.
        pod.annotations
            .insert(a::IMAGE_CACHE.into(), "maybe".into());
        let err = create_request(&pod, "n", &placement).unwrap_err();
        assert!(
            matches!(&err, ProviderError::InvalidSpec { reason, message } if reason == a::INVALID && message.contains(a::IMAGE_CACHE)),
            "{err:?}"
        );
        // Extra storage beyond what ECI adds is refused too.
        let mut pod = build_pod();
        pod.annotations
            .insert(a::EXTRA_EPHEMERAL_STORAGE.into(), "6000Gi".into());
        assert!(create_request(&pod, "n", &Placement::default()).is_err());
    }
}
