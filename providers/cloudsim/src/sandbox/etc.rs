//! The files that name a pod (a group) inside its sandboxes, as a cloud's runtime writes them
//! from the group's [`Names`] (the mock provider gets the same from the pod, [`Names::of`]):
//!
//! - `/etc/hosts`: the managed hosts file a kubelet writes (localhost lines, the group's IP
//!   with its hostname, then the host aliases block);
//! - `/etc/resolv.conf`: a resolver that is the whole configuration, exactly it; one added to
//!   the cloud's, the machine's resolver with its entries added; none, the machine's own file
//!   is left in place;
//! - the hostname: the names' hostname, else the group's name.
//!
//! The files are written under the group's directory and bound read-only over the host's
//! (the sandbox binds `/etc` from the host first).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Bind;
use super::error::SandboxError;
use crate::engine::spec::Names;
use vk_core::provider::{DnsOption, PodDns};

/// A Linux hostname holds at most 64 bytes.
const MAX_HOSTNAME: usize = 64;

/// Who a sandbox is: its names, the name to fall back on without a hostname (the group's
/// or pod's), its IP address.
pub struct Identity<'a> {
    pub names: &'a Names,
    pub name: &'a str,
    pub ip: &'a str,
}

/// The sandbox's hostname (`uname -n`, `$HOSTNAME`).
pub fn host_name(names: &Names, name: &str) -> String {
    let name = names
        .hostname
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or(name);
    name.chars().take(MAX_HOSTNAME).collect()
}

/// The managed `/etc/hosts`: a hostname with dots is an FQDN, listed with its first label.
fn hosts_file(who: &Identity<'_>) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let name = host_name(who.names, who.name);
    match name.split_once('.') {
        Some((short, _)) => out.push_str(&format!("{}\t{name}\t{short}\n", who.ip)),
        None => out.push_str(&format!("{}\t{name}\n", who.ip)),
    }
    if !who.names.host_aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in &who.names.host_aliases {
            out.push_str(&format!("{}\t{}\n", alias.ip, alias.hostnames.join("\t")));
        }
    }
    out
}

/// The sandbox's `/etc/resolv.conf`, given the machine's; None: keep the machine's.
fn resolv_conf(names: &Names, machine: &str) -> Option<String> {
    let config = names.dns.as_ref()?;
    if !config.on_cloud_resolver {
        return Some(render(config));
    }
    if config.nameservers.is_empty() && config.searches.is_empty() && config.options.is_empty() {
        return None;
    }
    let mut merged = parse(machine);
    for s in &config.nameservers {
        if !merged.nameservers.contains(s) {
            merged.nameservers.push(s.clone());
        }
    }
    for s in &config.searches {
        if !merged.searches.contains(s) {
            merged.searches.push(s.clone());
        }
    }
    for o in &config.options {
        match merged.options.iter_mut().find(|m| m.name == o.name) {
            Some(m) => m.value = o.value.clone(),
            None => merged.options.push(o.clone()),
        }
    }
    Some(render(&merged))
}

fn render(config: &PodDns) -> String {
    let mut out = String::new();
    if !config.searches.is_empty() {
        out.push_str(&format!("search {}\n", config.searches.join(" ")));
    }
    for s in &config.nameservers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !config.options.is_empty() {
        let options: Vec<String> = config
            .options
            .iter()
            .map(|o| match &o.value {
                Some(v) => format!("{}:{v}", o.name),
                None => o.name.clone(),
            })
            .collect();
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// A resolv.conf's nameservers, search list (the last `search` line wins) and options.
fn parse(text: &str) -> PodDns {
    let mut config = PodDns::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => config.nameservers.extend(fields.next().map(str::to_string)),
            Some("search") => config.searches = fields.map(str::to_string).collect(),
            Some("options") => {
                config.options = fields
                    .map(|f| {
                        let (name, value) = match f.split_once(':') {
                            Some((n, v)) => (n, Some(v.to_string())),
                            None => (f, None),
                        };
                        DnsOption {
                            name: name.to_string(),
                            value,
                        }
                    })
                    .collect()
            }
            _ => {}
        }
    }
    config
}

/// Is the machine's file a symlink (systemd-resolved's stub, for one)? A bind cannot land on
/// a link whose target the sandbox lacks: [`crate::sandbox::bwrap_args`] then leaves it out
/// of the sandbox's `/etc`, and its content must come in here.
fn symlinked(path: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Writes the sandbox's `/etc/hosts` (and `/etc/resolv.conf` when it has its own) under
/// `dir` (the group's or pod's directory); the binds that put them in the sandbox.
pub async fn binds(dir: &Path, who: &Identity<'_>) -> Result<Vec<Bind>, SandboxError> {
    let dir = dir.join("etc");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(SandboxError::io("creating", &dir))?;
    let bind = |source: PathBuf, target: &str| Bind {
        source,
        target: target.into(),
        read_only: true,
    };
    let mut binds = vec![bind(
        write(&dir.join("hosts"), &hosts_file(who)).await?,
        "/etc/hosts",
    )];
    let machine = tokio::fs::read_to_string("/etc/resolv.conf")
        .await
        .unwrap_or_default();
    let own = resolv_conf(who.names, &machine)
        .or_else(|| symlinked("/etc/resolv.conf").then_some(machine));
    if let Some(content) = own {
        binds.push(bind(
            write(&dir.join("resolv.conf"), &content).await?,
            "/etc/resolv.conf",
        ));
    }
    Ok(binds)
}

/// Write then rename, so a sandbox starting at the same moment never binds half a file.
async fn write(path: &Path, content: &str) -> Result<PathBuf, SandboxError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!("tmp{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    tokio::fs::write(&tmp, content)
        .await
        .map_err(SandboxError::io("writing", &tmp))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(SandboxError::io("writing", path))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vk_core::provider::HostAlias;

    fn hosts(names: &Names) -> String {
        hosts_file(&Identity {
            names,
            name: "ci-build-1",
            ip: "192.168.0.7",
        })
    }

    #[test]
    fn hosts_file_as_a_kubelet_writes_it() {
        let g = Names {
            hostname: Some("agent".into()),
            host_aliases: vec![
                HostAlias {
                    ip: "10.1.2.3".into(),
                    hostnames: vec!["registry.local".into(), "cache.local".into()],
                },
                HostAlias {
                    ip: "10.1.2.4".into(),
                    hostnames: vec!["git.local".into()],
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            hosts(&g),
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n192.168.0.7\tagent\n\n# Entries added by HostAliases.\n10.1.2.3\tregistry.local\tcache.local\n10.1.2.4\tgit.local\n"
        );
        let fqdn = Names {
            hostname: Some("web-0.web.ci.svc.cluster.local".into()),
            ..Default::default()
        };
        assert!(hosts(&fqdn).ends_with("192.168.0.7\tweb-0.web.ci.svc.cluster.local\tweb-0\n"));
        // No HostName: the group's name.
        assert_eq!(host_name(&Names::default(), "ci-build-1"), "ci-build-1");
    }

    #[test]
    fn resolv_conf_by_policy() {
        let config = PodDns {
            on_cloud_resolver: false,
            nameservers: vec!["10.96.0.10".into()],
            searches: vec!["ci.svc.cluster.local".into()],
            options: vec![DnsOption {
                name: "ndots".into(),
                value: Some("5".into()),
            }],
        };
        let machine =
            "# generated\nnameserver 10.255.255.53\nsearch corp.example\noptions ndots:1 edns0\n";
        let none = Names {
            dns: Some(config.clone()),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&none, machine).unwrap(),
            "search ci.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        let default = Names {
            dns: Some(PodDns {
                on_cloud_resolver: true,
                ..config
            }),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&default, machine).unwrap(),
            "search corp.example ci.svc.cluster.local\nnameserver 10.255.255.53\nnameserver 10.96.0.10\noptions ndots:5 edns0\n"
        );
        assert_eq!(resolv_conf(&Names::default(), machine), None);
        let nothing_added = Names {
            dns: Some(PodDns {
                on_cloud_resolver: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(resolv_conf(&nothing_added, machine), None);
    }
}
