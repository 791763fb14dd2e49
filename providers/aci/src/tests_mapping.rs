//! A resolved pod as the container group ACI gets, field by field, and what is refused.

use vk_core::provider::{
    ContainerPort, ContainerSpec, DnsOption, EnvVar, PodDns, PodRef, Probe, ProbeHandler,
    RegistryCredential, ResolvedPod, RestartPolicy, Volume, VolumeFile, VolumeMount, VolumeSource,
};

use crate::mapping::Warning;
use crate::pod::{Placement, container_group, tags};

fn placement() -> Placement {
    Placement {
        location: "westeurope".into(),
        ..Default::default()
    }
}

fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        volume: volume.into(),
        mount_path: path.into(),
        read_only: false,
        sub_path: None,
    }
}

fn full_pod() -> ResolvedPod {
    let app = ContainerSpec {
        name: "app".into(),
        image: "registry.example/app:1".into(),
        command: vec!["/app".into()],
        args: vec!["--port".into(), "8080".into()],
        env: vec![EnvVar {
            name: "TOKEN".into(),
            value: "s3cr3t".into(),
        }],
        ports: vec![ContainerPort {
            port: 8080,
            protocol: "tcp".into(),
        }],
        volume_mounts: vec![
            mount("sa", "/var/run/secrets/kubernetes.io/serviceaccount"),
            mount("scratch", "/tmp/s"),
        ],
        liveness_probe: Some(Probe::new(ProbeHandler::HttpGet {
            host: None,
            port: 8080,
            path: "/healthz".into(),
            https: false,
            headers: vec![("X-Probe".into(), "1".into())],
        })),
        readiness_probe: Some(Probe::new(ProbeHandler::TcpSocket {
            host: None,
            port: 8080,
        })),
        ..Default::default()
    };
    let init = ContainerSpec {
        name: "init".into(),
        image: "busybox:1.36".into(),
        command: vec!["sh".into(), "-c".into(), "true".into()],
        ..Default::default()
    };
    ResolvedPod {
        pod: PodRef {
            namespace: "ci".into(),
            name: "web-0".into(),
            uid: "uid-1".into(),
        },
        restart_policy: RestartPolicy::OnFailure,
        containers: vec![app],
        init_containers: vec![init],
        volumes: vec![
            Volume {
                name: "sa".into(),
                source: VolumeSource::Files(vec![
                    VolumeFile {
                        path: "token".into(),
                        content: b"eyJ.token".to_vec(),
                        mode: 0o644,
                    },
                    VolumeFile {
                        path: "namespace".into(),
                        content: b"ci".to_vec(),
                        mode: 0o644,
                    },
                ]),
            },
            Volume {
                name: "scratch".into(),
                source: VolumeSource::EmptyDir {
                    memory: true,
                    size_limit_bytes: None,
                },
            },
        ],
        image_pull_credentials: vec![RegistryCredential {
            server: "registry.example".into(),
            username: "u".into(),
            password: "p".into(),
        }],
        dns: Some(PodDns {
            on_cloud_resolver: false,
            nameservers: vec!["10.96.0.10".into()],
            searches: vec!["ci.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec![DnsOption {
                name: "ndots".into(),
                value: Some("5".into()),
            }],
        }),
        ..Default::default()
    }
}

#[test]
fn a_pod_becomes_a_container_group() {
    let mut warnings = Vec::new();
    let g = container_group(&full_pod(), "vk-node", &placement(), &mut warnings).unwrap();
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["location"], "westeurope");
    assert_eq!(g.tags[tags::POD_UID], "uid-1");
    assert_eq!(g.tags[tags::NAMESPACE], "ci");
    assert_eq!(g.tags[tags::POD_NAME], "web-0");
    assert_eq!(g.tags[tags::NODE], "vk-node");
    let p = &json["properties"];
    assert_eq!(p["restartPolicy"], "OnFailure");
    assert_eq!(p["osType"], "Linux");
    let c = &p["containers"][0]["properties"];
    assert_eq!(c["command"], serde_json::json!(["/app", "--port", "8080"]));
    assert_eq!(
        c["environmentVariables"][0],
        serde_json::json!({"name": "TOKEN", "secureValue": "s3cr3t"})
    );
    assert_eq!(
        c["resources"]["requests"],
        serde_json::json!({"cpu": 1.0, "memoryInGB": 1.5})
    );
    assert_eq!(
        c["ports"][0],
        serde_json::json!({"port": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["httpHeaders"][0]["name"],
        "X-Probe"
    );
    assert!(c.get("readinessProbe").is_none(), "ACI has no TCP probe");
    assert_eq!(
        p["initContainers"][0]["properties"]["command"],
        serde_json::json!(["sh", "-c", "true"])
    );
    assert_eq!(p["volumes"][0]["secret"]["token"], "ZXlKLnRva2Vu");
    assert_eq!(p["volumes"][1]["emptyDir"], serde_json::json!({}));
    assert_eq!(
        p["imageRegistryCredentials"][0]["server"],
        "registry.example"
    );
    assert_eq!(p["dnsConfig"]["nameServers"][0], "10.96.0.10");
    assert_eq!(
        p["dnsConfig"]["searchDomains"],
        "ci.svc.cluster.local svc.cluster.local"
    );
    assert_eq!(p["dnsConfig"]["options"], "ndots:5");
    assert!(
        p.get("ipAddress").is_none(),
        "no subnet, no public IP asked"
    );
    let reasons: Vec<&str> = warnings
        .iter()
        .map(|w: &Warning| w.message.as_str())
        .collect();
    assert!(
        reasons.iter().any(|m| m.contains("readiness probe")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|m| m.contains("emptyDir medium")),
        "{reasons:?}"
    );
}

#[test]
fn working_dirs_and_open_stdin_wrap_the_command() {
    let mut pod = full_pod();
    pod.containers[0].working_dir = Some("/w".into());
    pod.containers[0].tty = true;
    let mut warnings = Vec::new();
    let g = container_group(&pod, "n", &placement(), &mut warnings).unwrap();
    let cmd = &g.properties.containers[0].properties.command;
    assert_eq!(cmd[..2], ["/bin/sh".to_string(), "-c".to_string()]);
    assert!(
        cmd[2].starts_with("cd \"$0\" && ") && cmd[2].contains("mkfifo"),
        "{cmd:?}"
    );
    assert_eq!(cmd[3..], ["/w", "/app", "--port", "8080"].map(String::from));
}

#[test]
fn what_aci_cannot_run_is_refused_with_a_reason() {
    let refuse = |edit: &dyn Fn(&mut ResolvedPod)| {
        let mut pod = full_pod();
        edit(&mut pod);
        container_group(&pod, "n", &placement(), &mut Vec::new()).unwrap_err()
    };
    let e = refuse(&|p| p.containers[0].security.privileged = Some(true));
    assert_eq!(e.reason(), Some("UnsupportedSpec"));
    assert!(e.message().contains("privileged"), "{e}");
    let e = refuse(&|p| p.containers[0].volume_mounts[0].sub_path = Some("token".into()));
    assert!(e.message().contains("subPath"), "{e}");
    let e = refuse(&|p| p.init_containers[0].restart_policy = Some(RestartPolicy::Always));
    assert!(e.message().contains("sidecar"), "{e}");
    let e = refuse(&|p| p.containers.clear());
    assert!(e.message().contains("no containers"), "{e}");
}
