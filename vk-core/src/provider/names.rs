//! How a pod names itself and resolves names, in the neutral model: the resolver
//! configuration (`/etc/resolv.conf`), the hostname and FQDN, and the `hostAliases` entries
//! of `/etc/hosts`, already computed with the kubelet's rules by vk-core.

use serde::{Deserialize, Serialize};

/// A resolver configuration. What the kubelet hands the runtime for the pod's
/// `/etc/resolv.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDns {
    /// True: these entries are added to the cloud's own resolver settings (`dnsPolicy:
    /// Default` with a `dnsConfig`, as the kubelet adds them to the node's); false: they are
    /// the whole configuration.
    pub on_cloud_resolver: bool,
    /// At most 3, in order.
    pub nameservers: Vec<String>,
    /// The search list, in order.
    pub searches: Vec<String>,
    pub options: Vec<DnsOption>,
}

/// A resolver option: `ndots:5` is `{name: "ndots", value: Some("5")}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsOption {
    pub name: String,
    pub value: Option<String>,
}

impl std::fmt::Display for DnsOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl PodDns {
    /// The file a resolver reads, as a container runtime writes it.
    pub fn resolv_conf(&self) -> String {
        let mut out = String::new();
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for server in &self.nameservers {
            out.push_str(&format!("nameserver {server}\n"));
        }
        if !self.options.is_empty() {
            let options: Vec<String> = self.options.iter().map(DnsOption::to_string).collect();
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        out
    }
}

/// One `hostAliases` entry: lines of `/etc/hosts` for `ip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAlias {
    pub ip: String,
    pub hostnames: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_is_written_like_a_container_runtime_does() {
        let dns = PodDns {
            on_cloud_resolver: false,
            nameservers: vec!["10.96.0.10".into()],
            searches: vec!["ci.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec![
                DnsOption {
                    name: "ndots".into(),
                    value: Some("5".into()),
                },
                DnsOption {
                    name: "edns0".into(),
                    value: None,
                },
            ],
        };
        assert_eq!(
            dns.resolv_conf(),
            "search ci.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5 edns0\n"
        );
        assert_eq!(PodDns::default().resolv_conf(), "");
    }
}
