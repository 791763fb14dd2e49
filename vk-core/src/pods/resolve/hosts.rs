//! The pod's names as the kubelet gives them: the hostname (`hostname`, else the pod name,
//! cut to 63 characters without a trailing `-` or `.`), the FQDN
//! `<hostname>.<subdomain>.<ns>.svc.<domain>` when `subdomain` is set, `setHostnameAsFQDN`
//! (the FQDN must then fit the kernel's 64 characters), and `hostAliases`.

use k8s_openapi::api::core::v1::Pod;

use super::ResolveError;
use crate::provider::HostAlias;

/// A Linux hostname holds 64 bytes with the terminating NUL; the kubelet keeps 63.
const HOSTNAME_MAX: usize = 63;
/// The kernel's nodename field without the NUL.
const FQDN_MAX: usize = 64;

/// The pod's names: (hostname, FQDN, setHostnameAsFQDN).
pub(super) fn pod_names(
    pod: &Pod,
    cluster_domain: &str,
) -> Result<(String, Option<String>, bool), ResolveError> {
    let spec = pod.spec.as_ref();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut hostname = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
        .unwrap_or(name)
        .to_string();
    if hostname.len() > HOSTNAME_MAX {
        // Names are ASCII (DNS labels and subdomains), so a byte cut is a character cut.
        hostname.truncate(HOSTNAME_MAX);
        let kept = hostname.trim_end_matches(['-', '.']).len();
        hostname.truncate(kept);
    }
    let namespace = pod
        .metadata
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    let fqdn = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
        .map(|sub| format!("{hostname}.{sub}.{namespace}.svc.{cluster_domain}"));
    let as_fqdn = spec.and_then(|s| s.set_hostname_as_fqdn).unwrap_or(false);
    if as_fqdn
        && let Some(fqdn) = &fqdn
        && fqdn.len() > FQDN_MAX
    {
        return Err(ResolveError::Invalid(format!(
            "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({FQDN_MAX} characters is the max, {} characters requested)",
            fqdn.len()
        )));
    }
    Ok((hostname, fqdn, as_fqdn))
}

/// `hostAliases`, in order; entries without hostnames add no line and are left out.
pub(super) fn host_aliases(pod: &Pod) -> Vec<HostAlias> {
    pod.spec
        .iter()
        .flat_map(|s| s.host_aliases.iter().flatten())
        .filter(|a| a.hostnames.as_ref().is_some_and(|h| !h.is_empty()))
        .map(|a| HostAlias {
            ip: a.ip.clone(),
            hostnames: a.hostnames.clone().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "app"}]);
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ci"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn hostname_is_the_pod_name_or_the_specs() {
        let names = pod_names(&pod("build-7", json!({})), "cluster.local").unwrap();
        assert_eq!(names, ("build-7".into(), None, false));
        let names = pod_names(
            &pod("build-7", json!({"hostname": "agent"})),
            "cluster.local",
        );
        assert_eq!(names.unwrap().0, "agent");
    }

    #[test]
    fn long_names_are_cut_like_the_kubelet_cuts_them() {
        // 62 characters, then '-', then more: cut at 63, the trailing '-' dropped.
        let name = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let (hostname, _, _) = pod_names(&pod(&name, json!({})), "cluster.local").unwrap();
        assert_eq!(hostname, "a".repeat(62));
        let name = "c".repeat(80);
        let (hostname, _, _) = pod_names(&pod(&name, json!({})), "cluster.local").unwrap();
        assert_eq!(hostname, "c".repeat(63));
    }

    #[test]
    fn subdomain_gives_the_fqdn() {
        let (hostname, fqdn, as_fqdn) = pod_names(
            &pod("web-0", json!({"hostname": "web-0", "subdomain": "web"})),
            "cluster.local",
        )
        .unwrap();
        assert_eq!(hostname, "web-0");
        assert_eq!(fqdn.as_deref(), Some("web-0.web.ci.svc.cluster.local"));
        assert!(!as_fqdn);
        let (_, fqdn, as_fqdn) = pod_names(
            &pod(
                "web-0",
                json!({"subdomain": "web", "setHostnameAsFQDN": true}),
            ),
            "cluster.local",
        )
        .unwrap();
        assert_eq!(fqdn.as_deref(), Some("web-0.web.ci.svc.cluster.local"));
        assert!(as_fqdn);
        // Without a subdomain there is no FQDN to use.
        let (_, fqdn, _) = pod_names(
            &pod("web-0", json!({"setHostnameAsFQDN": true})),
            "cluster.local",
        )
        .unwrap();
        assert_eq!(fqdn, None);
    }

    #[test]
    fn an_fqdn_too_long_for_the_kernel_is_refused() {
        let host = "h".repeat(42);
        let result = pod_names(
            &pod(
                "p",
                json!({"hostname": host, "subdomain": "sub", "setHostnameAsFQDN": true}),
            ),
            "cluster.local",
        );
        match result {
            Err(ResolveError::Invalid(m)) => assert!(
                m.contains("is too long (64 characters is the max, 67 characters requested)"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        // The same FQDN is fine when only /etc/hosts carries it.
        let host = "h".repeat(40);
        assert!(
            pod_names(
                &pod("p", json!({"hostname": host, "subdomain": "sub"})),
                "cluster.local"
            )
            .is_ok()
        );
    }

    #[test]
    fn host_aliases_keep_their_order() {
        let p = pod(
            "p",
            json!({"hostAliases": [
                {"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]},
                {"ip": "10.1.2.4"},
                {"ip": "10.1.2.5", "hostnames": ["baz.local"]},
            ]}),
        );
        assert_eq!(
            host_aliases(&p),
            vec![
                HostAlias {
                    ip: "10.1.2.3".into(),
                    hostnames: vec!["foo.local".into(), "bar.local".into()],
                },
                HostAlias {
                    ip: "10.1.2.5".into(),
                    hostnames: vec!["baz.local".into()],
                },
            ]
        );
    }
}
