//! The files that name a pod (an ECI group) inside its sandboxes, as ECI's runtime writes them
//! from the group's `HostName`, `DnsPolicy`, `DnsConfig` and `HostAliase` parameters (the mock
//! provider gets the same from the pod, [`GroupNames::of`]):
//!
//! - `/etc/hosts`: the managed hosts file a kubelet writes (localhost lines, the group's IP
//!   with its hostname, then the host aliases block);
//! - `/etc/resolv.conf`: with `DnsPolicy=None`, exactly the `DnsConfig`; with `Default` (or
//!   no policy) and a `DnsConfig`, the machine's resolver with the `DnsConfig` added; with
//!   neither, the machine's own file is left in place;
//! - the hostname: `HostName`, else the group's name.
//!
//! The files are written under the group's directory and bound read-only over the host's
//! (the sandbox binds `/etc` from the host first).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Bind;
use super::error::SandboxError;
use eci::wire::request_names::{DNS_POLICY_NONE, DnsConfigDef, GroupNames};

/// A Linux hostname holds at most 64 bytes.
const MAX_HOSTNAME: usize = 64;

/// Who a sandbox is: its names, the name to fall back on without a `HostName` (the group's
/// or pod's), its IP address.
pub struct Identity<'a> {
    pub names: &'a GroupNames,
    pub name: &'a str,
    pub ip: &'a str,
}

/// The sandbox's hostname (`uname -n`, `$HOSTNAME`).
pub fn host_name(names: &GroupNames, name: &str) -> String {
    let name = names
        .host_name
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
fn resolv_conf(names: &GroupNames, machine: &str) -> Option<String> {
    let config = &names.dns_config;
    if names.dns_policy.as_deref() == Some(DNS_POLICY_NONE) {
        return Some(render(config));
    }
    if config.is_empty() {
        return None;
    }
    let mut merged = parse(machine);
    for s in &config.name_servers {
        if !merged.name_servers.contains(s) {
            merged.name_servers.push(s.clone());
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

fn render(config: &DnsConfigDef) -> String {
    let mut out = String::new();
    if !config.searches.is_empty() {
        out.push_str(&format!("search {}\n", config.searches.join(" ")));
    }
    for s in &config.name_servers {
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
fn parse(text: &str) -> DnsConfigDef {
    let mut config = DnsConfigDef::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => config
                .name_servers
                .extend(fields.next().map(str::to_string)),
            Some("search") => config.searches = fields.map(str::to_string).collect(),
            Some("options") => {
                config.options = fields
                    .map(|f| {
                        let (name, value) = match f.split_once(':') {
                            Some((n, v)) => (n, Some(v.to_string())),
                            None => (f, None),
                        };
                        eci::wire::request_names::DnsOptionDef {
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
    use eci::wire::request_names::{DnsOptionDef, HostAliaseDef};

    fn hosts(names: &GroupNames) -> String {
        hosts_file(&Identity {
            names,
            name: "ci-build-1",
            ip: "192.168.0.7",
        })
    }

    #[test]
    fn hosts_file_as_a_kubelet_writes_it() {
        let g = GroupNames {
            host_name: Some("agent".into()),
            host_aliases: vec![
                HostAliaseDef {
                    ip: "10.1.2.3".into(),
                    hostnames: vec!["registry.local".into(), "cache.local".into()],
                },
                HostAliaseDef {
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
        let fqdn = GroupNames {
            host_name: Some("web-0.web.ci.svc.cluster.local".into()),
            ..Default::default()
        };
        assert!(hosts(&fqdn).ends_with("192.168.0.7\tweb-0.web.ci.svc.cluster.local\tweb-0\n"));
        // No HostName: the group's name.
        assert_eq!(
            host_name(&GroupNames::default(), "ci-build-1"),
            "ci-build-1"
        );
    }

    #[test]
    fn resolv_conf_by_policy() {
        let config = DnsConfigDef {
            name_servers: vec!["10.96.0.10".into()],
            searches: vec!["ci.svc.cluster.local".into()],
            options: vec![DnsOptionDef {
                name: "ndots".into(),
                value: Some("5".into()),
            }],
        };
        let machine =
            "# generated\nnameserver 10.255.255.53\nsearch corp.example\noptions ndots:1 edns0\n";
        let none = GroupNames {
            dns_policy: Some("None".into()),
            dns_config: config.clone(),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&none, machine).unwrap(),
            "search ci.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        let default = GroupNames {
            dns_policy: Some("Default".into()),
            dns_config: config,
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&default, machine).unwrap(),
            "search corp.example ci.svc.cluster.local\nnameserver 10.255.255.53\nnameserver 10.96.0.10\noptions ndots:5 edns0\n"
        );
        assert_eq!(resolv_conf(&GroupNames::default(), machine), None);
    }
}
