//! The pod's resolver configuration, computed with the kubelet's rules (its `network/dns`
//! package):
//!
//! - `ClusterFirst` (the default): the cluster DNS servers only, search
//!   `<ns>.svc.<domain> svc.<domain> <domain>`, `options ndots:5`. A `hostNetwork` pod falls
//!   back to `Default`; so does every pod when no cluster DNS server is known (with a
//!   `MissingClusterDNS` warning);
//! - `ClusterFirstWithHostNet`: as `ClusterFirst`, for every pod;
//! - `Default`: the resolver of the place the pod runs (here: the cloud's), so `None` is
//!   returned unless a `dnsConfig` adds to it;
//! - `None`: nothing but the `dnsConfig`.
//!
//! A `dnsConfig` is merged onto the policy's result: nameservers and searches appended without
//! duplicates, options by name with the pod's values winning. Then the limits: at most 3
//! nameservers; search entries longer than 253 characters dropped; at most 32 entries and
//! 2048 characters of search line (the expanded limits, always on since Kubernetes 1.28),
//! cut from the end. Each cut is a `DNSConfigForming` warning.
//!
//! The cloud's own resolver settings are unknown here, so for `Default` with a `dnsConfig`
//! the host part the kubelet would start from is missing: the result says so
//! ([`PodDns::on_cloud_resolver`]) and the provider asks the cloud to add the entries. For
//! the same reason `ClusterFirst` has no host search entries after the cluster's three (the
//! kubelet appends its node's). Options keep a stable order: first mention, the pod's value
//! (the kubelet's order is a Go map's, i.e. none).

use k8s_openapi::api::core::v1::{Pod, PodDNSConfig};

use super::ResolveWarning;
use crate::provider::{DnsOption, PodDns};

/// Nameservers a resolver reads (glibc's `MAXNS`).
pub const MAX_NAMESERVERS: usize = 3;
/// Search entries, and characters of the search line, the kubelet keeps.
pub const MAX_SEARCHES: usize = 32;
pub const MAX_SEARCH_CHARS: usize = 2048;
/// Longer search entries crash some resolvers (glibc 2.28): the kubelet drops them.
const MAX_SEARCH_ENTRY: usize = 253;

/// The cluster's DNS as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDns {
    /// The cluster DNS servers (configured, else the ClusterIP of `kube-system/kube-dns`);
    /// empty: none known.
    pub servers: Vec<String>,
    /// The cluster domain, e.g. `cluster.local`.
    pub domain: String,
}

impl Default for ClusterDns {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            domain: "cluster.local".into(),
        }
    }
}

/// What the kubelet starts from before the `dnsConfig` is merged in.
enum Base {
    Cluster,
    /// The cloud's resolver.
    Host,
    Empty,
}

/// The pod's resolver configuration, and the warnings the kubelet would record.
pub fn pod_dns(pod: &Pod, cluster: &ClusterDns) -> (Option<PodDns>, Vec<ResolveWarning>) {
    let mut warnings = Vec::new();
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let base = match spec.and_then(|s| s.dns_policy.as_deref()) {
        Some("None") => Base::Empty,
        Some("Default") => Base::Host,
        Some("ClusterFirst") | None | Some("") if host_network => Base::Host,
        // ClusterFirstWithHostNet, ClusterFirst; the API server rejects anything else, and
        // the kubelet takes it as ClusterFirst.
        _ => Base::Cluster,
    };
    let mut dns = match base {
        Base::Cluster if cluster.servers.is_empty() => {
            warnings.push(missing_cluster_dns(pod));
            None
        }
        Base::Cluster => Some(PodDns {
            on_cloud_resolver: false,
            nameservers: cluster.servers.clone(),
            searches: cluster_searches(pod, &cluster.domain),
            options: vec![DnsOption {
                name: "ndots".into(),
                value: Some("5".into()),
            }],
        }),
        Base::Host => None,
        Base::Empty => Some(PodDns::default()),
    };
    if let Some(config) = spec.and_then(|s| s.dns_config.as_ref()) {
        let mut merged = dns.unwrap_or_else(|| PodDns {
            on_cloud_resolver: true,
            ..PodDns::default()
        });
        merge(&mut merged, config);
        dns = Some(merged);
    }
    if let Some(dns) = &mut dns {
        fit_limits(dns, &mut warnings);
    }
    (dns, warnings)
}

/// `<ns>.svc.<domain> svc.<domain> <domain>`; nothing without a cluster domain.
fn cluster_searches(pod: &Pod, domain: &str) -> Vec<String> {
    if domain.is_empty() {
        return Vec::new();
    }
    let namespace = pod
        .metadata
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    vec![
        format!("{namespace}.svc.{domain}"),
        format!("svc.{domain}"),
        domain.to_string(),
    ]
}

fn missing_cluster_dns(pod: &Pod) -> ResolveWarning {
    let meta = &pod.metadata;
    ResolveWarning {
        reason: "MissingClusterDNS".into(),
        message: format!(
            "pod: \"{}_{}({})\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.",
            meta.name.as_deref().unwrap_or_default(),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default(),
        ),
    }
}

fn push_unique(list: &mut Vec<String>, items: &[String]) {
    for item in items {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

/// The `dnsConfig` onto `dns`: lists appended without duplicates; an option already there
/// takes the pod's value in its place, a new one goes at the end.
fn merge(dns: &mut PodDns, config: &PodDNSConfig) {
    push_unique(
        &mut dns.nameservers,
        config.nameservers.as_deref().unwrap_or_default(),
    );
    push_unique(
        &mut dns.searches,
        config.searches.as_deref().unwrap_or_default(),
    );
    for option in config.options.iter().flatten() {
        let name = option.name.clone().unwrap_or_default();
        // The kubelet writes an empty value as no value.
        let value = option.value.clone().filter(|v| !v.is_empty());
        match dns.options.iter_mut().find(|o| o.name == name) {
            Some(existing) => existing.value = value,
            None => dns.options.push(DnsOption { name, value }),
        }
    }
}

fn fit_limits(dns: &mut PodDns, warnings: &mut Vec<ResolveWarning>) {
    if dns.nameservers.len() > MAX_NAMESERVERS {
        dns.nameservers.truncate(MAX_NAMESERVERS);
        warnings.push(ResolveWarning {
            reason: "DNSConfigForming".into(),
            message: format!(
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
                dns.nameservers.join(" ")
            ),
        });
    }
    let mut exceeded = false;
    if dns.searches.len() > MAX_SEARCHES {
        dns.searches.truncate(MAX_SEARCHES);
        exceeded = true;
    }
    let before = dns.searches.len();
    dns.searches.retain(|s| s.len() <= MAX_SEARCH_ENTRY);
    exceeded |= dns.searches.len() != before;
    while dns.searches.join(" ").len() > MAX_SEARCH_CHARS {
        dns.searches.pop();
        exceeded = true;
    }
    if exceeded {
        warnings.push(ResolveWarning {
            reason: "DNSConfigForming".into(),
            message: format!(
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
                dns.searches.join(" ")
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "app"}]);
        serde_json::from_value(json!({
            "metadata": {"name": "build", "namespace": "ci", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn cluster() -> ClusterDns {
        ClusterDns {
            servers: vec!["10.96.0.10".into()],
            domain: "cluster.local".into(),
        }
    }

    fn option(name: &str, value: Option<&str>) -> DnsOption {
        DnsOption {
            name: name.into(),
            value: value.map(str::to_string),
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cluster_first_is_the_default() {
        let expected = PodDns {
            on_cloud_resolver: false,
            nameservers: strings(&["10.96.0.10"]),
            searches: strings(&["ci.svc.cluster.local", "svc.cluster.local", "cluster.local"]),
            options: vec![option("ndots", Some("5"))],
        };
        for spec in [
            json!({}),
            json!({"dnsPolicy": "ClusterFirst"}),
            json!({"dnsPolicy": "ClusterFirstWithHostNet"}),
            json!({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": true}),
        ] {
            let (dns, warnings) = pod_dns(&pod(spec.clone()), &cluster());
            assert_eq!(dns.as_ref(), Some(&expected), "{spec}");
            assert!(warnings.is_empty());
        }
        let (dns, _) = pod_dns(
            &pod(json!({})),
            &ClusterDns {
                domain: "corp.example".into(),
                ..cluster()
            },
        );
        assert_eq!(
            dns.unwrap().searches,
            strings(&["ci.svc.corp.example", "svc.corp.example", "corp.example"])
        );
    }

    #[test]
    fn default_and_host_network_keep_the_clouds_resolver() {
        for spec in [
            json!({"dnsPolicy": "Default"}),
            json!({"hostNetwork": true}),
            json!({"dnsPolicy": "ClusterFirst", "hostNetwork": true}),
        ] {
            let (dns, warnings) = pod_dns(&pod(spec.clone()), &cluster());
            assert_eq!(dns, None, "{spec}");
            assert!(warnings.is_empty());
        }
    }

    #[test]
    fn without_cluster_dns_cluster_first_falls_back_to_default_with_a_warning() {
        let (dns, warnings) = pod_dns(&pod(json!({})), &ClusterDns::default());
        assert_eq!(dns, None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].reason, "MissingClusterDNS");
        assert_eq!(
            warnings[0].message,
            "pod: \"build_ci(u-1)\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."
        );
        // None needs no cluster DNS.
        let (dns, warnings) = pod_dns(
            &pod(json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"]}})),
            &ClusterDns::default(),
        );
        assert_eq!(dns.unwrap().nameservers, strings(&["1.1.1.1"]));
        assert!(warnings.is_empty());
    }

    #[test]
    fn none_is_the_dns_config_alone() {
        let (dns, _) = pod_dns(
            &pod(json!({"dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.2.3.4", "1.2.3.4"],
                "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            }})),
            &cluster(),
        );
        assert_eq!(
            dns,
            Some(PodDns {
                on_cloud_resolver: false,
                nameservers: strings(&["1.2.3.4"]),
                searches: strings(&["ns1.svc.cluster-domain.example", "my.dns.search.suffix"]),
                options: vec![option("ndots", Some("2")), option("edns0", None)],
            })
        );
        // None without a dnsConfig: an empty configuration (the API server refuses it).
        let (dns, _) = pod_dns(&pod(json!({"dnsPolicy": "None"})), &cluster());
        assert_eq!(dns, Some(PodDns::default()));
    }

    #[test]
    fn dns_config_merges_onto_cluster_first() {
        let (dns, warnings) = pod_dns(
            &pod(json!({"dnsConfig": {
                "nameservers": ["10.96.0.10", "8.8.8.8"],
                "searches": ["svc.cluster.local", "corp.example"],
                "options": [
                    {"name": "ndots", "value": "2"},
                    {"name": "single-request-reopen"},
                    {"name": "timeout", "value": ""},
                ],
            }})),
            &cluster(),
        );
        assert!(warnings.is_empty());
        assert_eq!(
            dns,
            Some(PodDns {
                on_cloud_resolver: false,
                nameservers: strings(&["10.96.0.10", "8.8.8.8"]),
                searches: strings(&[
                    "ci.svc.cluster.local",
                    "svc.cluster.local",
                    "cluster.local",
                    "corp.example"
                ]),
                options: vec![
                    option("ndots", Some("2")),
                    option("single-request-reopen", None),
                    option("timeout", None),
                ],
            })
        );
    }

    #[test]
    fn dns_config_with_default_adds_to_the_clouds_resolver() {
        let (dns, _) = pod_dns(
            &pod(json!({"dnsPolicy": "Default", "dnsConfig": {"searches": ["corp.example"]}})),
            &cluster(),
        );
        let dns = dns.unwrap();
        assert!(dns.on_cloud_resolver);
        assert_eq!(dns.searches, strings(&["corp.example"]));
        assert!(dns.nameservers.is_empty());
    }

    #[test]
    fn nameservers_are_cut_to_three() {
        let (dns, warnings) = pod_dns(
            &pod(json!({"dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"]}})),
            &cluster(),
        );
        assert_eq!(
            dns.unwrap().nameservers,
            strings(&["10.96.0.10", "1.1.1.1", "8.8.8.8"])
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].reason, "DNSConfigForming");
        assert_eq!(
            warnings[0].message,
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 1.1.1.1 8.8.8.8"
        );
    }

    #[test]
    fn search_list_limits_cut_from_the_end() {
        // 3 cluster entries + 40 more: 32 kept.
        let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let (dns, warnings) = pod_dns(&pod(json!({"dnsConfig": {"searches": many}})), &cluster());
        let searches = dns.unwrap().searches;
        assert_eq!(searches.len(), MAX_SEARCHES);
        assert_eq!(searches[0], "ci.svc.cluster.local");
        assert_eq!(searches[31], "d28.example");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .message
                .starts_with("Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ci.svc.cluster.local svc.cluster.local"),
            "{}",
            warnings[0].message
        );

        // An entry over 253 characters is dropped wherever it is.
        let long = format!("{}.example", "a".repeat(250));
        let (dns, warnings) = pod_dns(
            &pod(
                json!({"dnsPolicy": "None", "dnsConfig": {"searches": ["a.example", long, "b.example"]}}),
            ),
            &cluster(),
        );
        assert_eq!(dns.unwrap().searches, strings(&["a.example", "b.example"]));
        assert_eq!(warnings.len(), 1);

        // 2048 characters of search line at most: 10 entries of 249 (+ spaces) fit 8.
        let entries: Vec<String> = (0..10).map(|i| format!("{i}{}", "b".repeat(248))).collect();
        let (dns, warnings) = pod_dns(
            &pod(json!({"dnsPolicy": "None", "dnsConfig": {"searches": entries}})),
            &cluster(),
        );
        let searches = dns.unwrap().searches;
        assert_eq!(searches.len(), 8);
        assert!(searches.join(" ").len() <= MAX_SEARCH_CHARS);
        assert_eq!(warnings.len(), 1);
    }
}
