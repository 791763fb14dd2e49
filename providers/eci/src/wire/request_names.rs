//! The naming parameters of `CreateContainerGroup`: the instance's hostname, its resolver and
//! its extra `/etc/hosts` lines, as a pod's names map onto them.
//!
//! Parameter names and values as ECI's CreateContainerGroup API reference spells them (and the
//! official SDKs' generated request models, `eci-20180808`): `HostName`; `DnsPolicy` (`None`:
//! only `DnsConfig`; `Default`: the runtime environment's resolver); `DnsConfig.NameServer.N`,
//! `DnsConfig.Search.N`, `DnsConfig.Option.N.Name` / `.Value`; `HostAliase.N.Ip`,
//! `HostAliase.N.Hostname.N`.

use vk_core::provider::{PodDns, ResolvedPod};

use crate::wire::params::{ParamError, Params};

/// `DnsPolicy` values.
pub const DNS_POLICY_NONE: &str = "None";
pub const DNS_POLICY_DEFAULT: &str = "Default";

/// `DnsConfig.Option.N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsOptionDef {
    pub name: String,
    pub value: Option<String>,
}

/// `DnsConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfigDef {
    pub name_servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<DnsOptionDef>,
}

impl DnsConfigDef {
    pub fn is_empty(&self) -> bool {
        self.name_servers.is_empty() && self.searches.is_empty() && self.options.is_empty()
    }
}

/// `HostAliase.N`: one `/etc/hosts` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAliaseDef {
    pub ip: String,
    pub hostnames: Vec<String>,
}

/// A group's hostname, resolver and host aliases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupNames {
    pub host_name: Option<String>,
    pub dns_policy: Option<String>,
    pub dns_config: DnsConfigDef,
    pub host_aliases: Vec<HostAliaseDef>,
}

impl GroupNames {
    /// A pod's names: its kernel hostname; a resolver the kubelet computed replaces the
    /// cloud's (`DnsPolicy=None`) unless it only adds to it (`Default` with a `dnsConfig`);
    /// none at all leaves the cloud's resolver alone.
    pub fn of(pod: &ResolvedPod) -> Self {
        let (dns_policy, dns_config) = match &pod.dns {
            None => (None, DnsConfigDef::default()),
            Some(dns) => {
                let policy = if dns.on_cloud_resolver {
                    DNS_POLICY_DEFAULT
                } else {
                    DNS_POLICY_NONE
                };
                (Some(policy.to_string()), dns_config(dns))
            }
        };
        Self {
            host_name: Some(pod.kernel_hostname().to_string()).filter(|h| !h.is_empty()),
            dns_policy,
            dns_config,
            host_aliases: pod
                .host_aliases
                .iter()
                .map(|a| HostAliaseDef {
                    ip: a.ip.clone(),
                    hostnames: a.hostnames.clone(),
                })
                .collect(),
        }
    }

    pub fn encode(&self, p: &mut Params) {
        p.push_opt("HostName", self.host_name.as_ref());
        p.push_opt("DnsPolicy", self.dns_policy.as_ref());
        let c = &self.dns_config;
        for (i, s) in c.name_servers.iter().enumerate() {
            p.push(format!("DnsConfig.NameServer.{}", i + 1), s);
        }
        for (i, s) in c.searches.iter().enumerate() {
            p.push(format!("DnsConfig.Search.{}", i + 1), s);
        }
        for (i, o) in c.options.iter().enumerate() {
            p.push(format!("DnsConfig.Option.{}.Name", i + 1), &o.name);
            p.push_opt(
                &format!("DnsConfig.Option.{}.Value", i + 1),
                o.value.as_ref(),
            );
        }
        for (i, a) in self.host_aliases.iter().enumerate() {
            p.push(format!("HostAliase.{}.Ip", i + 1), &a.ip);
            for (j, h) in a.hostnames.iter().enumerate() {
                p.push(format!("HostAliase.{}.Hostname.{}", i + 1, j + 1), h);
            }
        }
    }

    /// Decode and validate as the service does.
    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let dns_policy = p.string("DnsPolicy");
        if let Some(policy) = &dns_policy
            && ![DNS_POLICY_NONE, DNS_POLICY_DEFAULT].contains(&policy.as_str())
        {
            return Err(ParamError::invalid("DnsPolicy", "expected None or Default"));
        }
        let options = p
            .members("DnsConfig.Option")?
            .into_iter()
            .map(|(i, m)| {
                let name = m
                    .get("Name")
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| ParamError::Missing(format!("DnsConfig.Option.{i}.Name")))?;
                Ok(DnsOptionDef {
                    name: name.to_string(),
                    value: m.string("Value"),
                })
            })
            .collect::<Result<_, ParamError>>()?;
        let host_aliases = p
            .members("HostAliase")?
            .into_iter()
            .map(|(i, m)| {
                let ip = m
                    .get("Ip")
                    .ok_or_else(|| ParamError::Missing(format!("HostAliase.{i}.Ip")))?;
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(ParamError::invalid(
                        format!("HostAliase.{i}.Ip"),
                        format!("{ip:?} is not an IP address"),
                    ));
                }
                let hostnames = m.values("Hostname")?;
                if hostnames.is_empty() {
                    return Err(ParamError::Missing(format!("HostAliase.{i}.Hostname.1")));
                }
                Ok(HostAliaseDef {
                    ip: ip.to_string(),
                    hostnames,
                })
            })
            .collect::<Result<_, ParamError>>()?;
        Ok(Self {
            host_name: p.string("HostName"),
            dns_policy,
            dns_config: DnsConfigDef {
                name_servers: p.values("DnsConfig.NameServer")?,
                searches: p.values("DnsConfig.Search")?,
                options,
            },
            host_aliases,
        })
    }
}

fn dns_config(dns: &PodDns) -> DnsConfigDef {
    DnsConfigDef {
        name_servers: dns.nameservers.clone(),
        searches: dns.searches.clone(),
        options: dns
            .options
            .iter()
            .map(|o| DnsOptionDef {
                name: o.name.clone(),
                value: o.value.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use vk_core::provider::{DnsOption, HostAlias};

    use super::*;

    fn pod() -> ResolvedPod {
        ResolvedPod {
            hostname: "agent".into(),
            fqdn: Some("agent.builds.ci.svc.cluster.local".into()),
            dns: Some(PodDns {
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
            }),
            host_aliases: vec![HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: vec!["registry.local".into(), "cache.local".into()],
            }],
            ..Default::default()
        }
    }

    fn encoded(names: &GroupNames) -> Vec<(String, String)> {
        let mut p = Params::new();
        names.encode(&mut p);
        p.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn a_pods_names_on_the_wire() {
        let names = GroupNames::of(&pod());
        let expected: Vec<(String, String)> = [
            ("HostName", "agent"),
            ("DnsPolicy", "None"),
            ("DnsConfig.NameServer.1", "10.96.0.10"),
            ("DnsConfig.Search.1", "ci.svc.cluster.local"),
            ("DnsConfig.Search.2", "svc.cluster.local"),
            ("DnsConfig.Option.1.Name", "ndots"),
            ("DnsConfig.Option.1.Value", "5"),
            ("DnsConfig.Option.2.Name", "edns0"),
            ("HostAliase.1.Ip", "10.1.2.3"),
            ("HostAliase.1.Hostname.1", "registry.local"),
            ("HostAliase.1.Hostname.2", "cache.local"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(encoded(&names), expected);

        let mut p = Params::new();
        names.encode(&mut p);
        assert_eq!(GroupNames::decode(&p).unwrap(), names);
    }

    #[test]
    fn fqdn_hostname_and_the_clouds_resolver() {
        let mut p = pod();
        p.hostname_as_fqdn = true;
        p.dns = None;
        let names = GroupNames::of(&p);
        assert_eq!(
            names.host_name.as_deref(),
            Some("agent.builds.ci.svc.cluster.local")
        );
        assert_eq!(names.dns_policy, None);
        assert!(names.dns_config.is_empty());

        p.dns = Some(PodDns {
            on_cloud_resolver: true,
            searches: vec!["corp.example".into()],
            ..Default::default()
        });
        let names = GroupNames::of(&p);
        assert_eq!(names.dns_policy.as_deref(), Some("Default"));
        assert_eq!(names.dns_config.searches, ["corp.example"]);
    }

    #[test]
    fn the_service_refuses_bad_values() {
        let decode = |pairs: &[(&str, &str)]| {
            let mut p = Params::new();
            for (k, v) in pairs {
                p.push(*k, *v);
            }
            GroupNames::decode(&p)
        };
        assert!(decode(&[("DnsPolicy", "ClusterFirst")]).is_err());
        assert!(decode(&[("DnsConfig.Option.1.Value", "5")]).is_err());
        assert!(
            decode(&[
                ("HostAliase.1.Ip", "not-an-ip"),
                ("HostAliase.1.Hostname.1", "a")
            ])
            .is_err()
        );
        assert!(decode(&[("HostAliase.1.Ip", "10.0.0.1")]).is_err());
        assert_eq!(decode(&[]).unwrap(), GroupNames::default());
    }
}
