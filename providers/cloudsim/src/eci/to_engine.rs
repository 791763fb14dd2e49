//! ECI's decoded request in the engine's terms ([`crate::engine::spec`]): ECI's defaults
//! applied (probe timings, the hook's path and scheme, the termination-message path, a config
//! file's mode), config-file contents out of base64, the `DnsPolicy` folded into the
//! resolver. What only ECI echoes stays in the group's face record (`record`).

use base64::Engine as _;
use vk_core::provider::{DnsOption, HostAlias, PodDns};

use super::error::ApiError;
use crate::engine::spec::{
    ContainerSpec, EnvVar, FileSpec, Hook, Main, Mount, Names, Security, TerminationMessage,
    VolumeSpec,
};
use eci::wire::params::ParamError;
use eci::wire::request::{ContainerDef, HookDef, VolumeDef};
use eci::wire::request_names::{DNS_POLICY_NONE, GroupNames};

/// A config file's mode when neither it nor its volume gives one.
const DEFAULT_FILE_MODE: u32 = 0o644;

pub fn container(c: &ContainerDef) -> ContainerSpec {
    let security = c.security_context.clone().unwrap_or_default();
    ContainerSpec {
        name: c.name.clone(),
        // ECI runs what the request says; it has no native sidecars or startup probes.
        main: Main::Command,
        sidecar: false,
        startup_probe: None,
        image: c.image.clone(),
        command: c.commands.clone(),
        args: c.args.clone(),
        working_dir: c.working_dir.clone(),
        env: c
            .env
            .iter()
            .map(|e| EnvVar {
                name: e.key.clone(),
                value: e.value.clone(),
            })
            .collect(),
        mounts: c
            .volume_mounts
            .iter()
            .map(|m| Mount {
                volume: m.name.clone(),
                mount_path: m.mount_path.clone(),
                sub_path: Some(m.sub_path.clone()).filter(|s| !s.is_empty()),
                read_only: m.read_only,
            })
            .collect(),
        stdin: c.stdin,
        tty: c.tty,
        cpu: c.cpu,
        memory_gib: c.memory,
        liveness_probe: c.liveness_probe.as_ref().map(|p| p.to_probe()),
        readiness_probe: c.readiness_probe.as_ref().map(|p| p.to_probe()),
        post_start: c.lifecycle.post_start.as_ref().map(hook),
        pre_stop: c.lifecycle.pre_stop.as_ref().map(hook),
        security: Security {
            run_as_user: security.run_as_user,
            run_as_group: security.run_as_group,
            run_as_non_root: security.run_as_non_root == Some(true),
            privileged: security.privileged == Some(true),
            read_only_root: security.read_only_root_filesystem == Some(true),
            capabilities_add: security.capability_add,
        },
        termination_message: TerminationMessage {
            path: c.termination_message.effective_path().to_string(),
            fallback_to_logs: c.termination_message.falls_back_to_logs(),
        },
    }
}

fn hook(h: &HookDef) -> Hook {
    match h {
        HookDef::Exec(command) => Hook::Exec(command.clone()),
        HookDef::HttpGet {
            host,
            port,
            path,
            scheme,
            headers,
        } => Hook::HttpGet {
            host: host.clone(),
            port: *port,
            path: path.clone().unwrap_or_else(|| "/".into()),
            https: scheme.as_deref() == Some("HTTPS"),
            headers: headers.clone(),
        },
        HookDef::TcpSocket { host, port } => Hook::TcpSocket {
            host: host.clone(),
            port: *port,
        },
    }
}

/// The volumes of a create or an update; a config file whose content is not base64 is
/// refused, naming its parameter.
pub fn volumes(volumes: &[VolumeDef]) -> Result<Vec<VolumeSpec>, ApiError> {
    volumes
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            VolumeDef::EmptyDir { name, .. } => Ok(VolumeSpec::EmptyDir { name: name.clone() }),
            VolumeDef::ConfigFile {
                name,
                default_mode,
                files,
            } => {
                let files = files
                    .iter()
                    .enumerate()
                    .map(|(j, f)| {
                        let content = base64::engine::general_purpose::STANDARD
                            .decode(&f.content)
                            .map_err(|e| {
                                ParamError::invalid(
                                    format!(
                                        "Volume.{}.ConfigFileVolume.ConfigFileToPath.{}.Content",
                                        i + 1,
                                        j + 1
                                    ),
                                    format!("not base64: {e}"),
                                )
                            })?;
                        Ok(FileSpec {
                            path: f.path.clone(),
                            content,
                            mode: f.mode.or(*default_mode).unwrap_or(DEFAULT_FILE_MODE),
                        })
                    })
                    .collect::<Result<_, ParamError>>()?;
                Ok(VolumeSpec::Files {
                    name: name.clone(),
                    files,
                })
            }
        })
        .collect()
}

/// `HostName`; `DnsPolicy=None`: the `DnsConfig` is the whole resolver; otherwise it adds to
/// the machine's (nothing to add: the machine's as it is); `HostAliase`.
pub fn names(n: &GroupNames) -> Names {
    let c = &n.dns_config;
    let replaces = n.dns_policy.as_deref() == Some(DNS_POLICY_NONE);
    let dns = (replaces || !c.is_empty()).then(|| PodDns {
        on_cloud_resolver: !replaces,
        nameservers: c.name_servers.clone(),
        searches: c.searches.clone(),
        options: c
            .options
            .iter()
            .map(|o| DnsOption {
                name: o.name.clone(),
                value: o.value.clone(),
            })
            .collect(),
    });
    Names {
        hostname: n.host_name.clone(),
        dns,
        host_aliases: n
            .host_aliases
            .iter()
            .map(|a| HostAlias {
                ip: a.ip.clone(),
                hostnames: a.hostnames.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eci::wire::request::ConfigFile;
    use eci::wire::request_names::DnsConfigDef;

    #[test]
    fn config_files_leave_base64_with_their_modes() {
        let asked = |content: &str| {
            vec![VolumeDef::ConfigFile {
                name: "cfg".into(),
                default_mode: Some(0o600),
                files: vec![
                    ConfigFile {
                        path: "a".into(),
                        content: content.into(),
                        mode: None,
                    },
                    ConfigFile {
                        path: "b".into(),
                        content: String::new(),
                        mode: Some(0o755),
                    },
                ],
            }]
        };
        let VolumeSpec::Files { files, .. } = &volumes(&asked("b25l")).unwrap()[0] else {
            panic!("not a file volume");
        };
        assert_eq!(files[0].content, b"one");
        assert_eq!((files[0].mode, files[1].mode), (0o600, 0o755));
        let err = volumes(&asked("not base64!")).unwrap_err();
        assert!(
            err.message
                .contains("Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_dns_policy_decides_whose_resolver() {
        let config = DnsConfigDef {
            name_servers: vec!["10.96.0.10".into()],
            ..Default::default()
        };
        let with = |policy: Option<&str>, dns_config: DnsConfigDef| {
            names(&GroupNames {
                dns_policy: policy.map(str::to_string),
                dns_config,
                ..Default::default()
            })
            .dns
        };
        assert!(
            !with(Some("None"), config.clone())
                .unwrap()
                .on_cloud_resolver
        );
        assert!(with(Some("None"), DnsConfigDef::default()).is_some());
        assert!(
            with(Some("Default"), config.clone())
                .unwrap()
                .on_cloud_resolver
        );
        assert!(with(None, config).unwrap().on_cloud_resolver);
        assert_eq!(with(Some("Default"), DnsConfigDef::default()), None);
    }
}
