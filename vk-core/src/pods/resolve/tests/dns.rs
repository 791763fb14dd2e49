//! Names and service links through a whole resolution: the resolver configuration, hostname,
//! FQDN and host aliases land in the `ResolvedPod`; the cluster DNS comes from the source; a
//! missing one is a warning; service links come before the container's own variables.

use super::*;
use crate::provider::{DnsOption, HostAlias, PodDns};

#[tokio::test]
async fn names_and_resolver_land_in_the_resolved_pod() {
    let p = pod(json!({
        "hostname": "agent",
        "subdomain": "builds",
        "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["registry.local"]}],
        "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
        "containers": [{"name": "app"}],
    }));
    let src = FakeSource::new().cluster_dns(&["10.96.0.10", "10.96.0.11"], "corp.local");
    let (r, warnings) = resolve_warn(&p, &src).await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        r.dns,
        Some(PodDns {
            on_cloud_resolver: false,
            nameservers: vec!["10.96.0.10".into(), "10.96.0.11".into()],
            searches: vec![
                "ns1.svc.corp.local".into(),
                "svc.corp.local".into(),
                "corp.local".into()
            ],
            options: vec![DnsOption {
                name: "ndots".into(),
                value: Some("2".into())
            }],
        })
    );
    assert_eq!(r.hostname, "agent");
    assert_eq!(r.fqdn.as_deref(), Some("agent.builds.ns1.svc.corp.local"));
    assert_eq!(r.kernel_hostname(), "agent");
    assert_eq!(
        r.host_aliases,
        vec![HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: vec!["registry.local".into()]
        }]
    );
}

#[tokio::test]
async fn no_cluster_dns_falls_back_to_the_clouds_resolver_with_a_warning() {
    let p = pod(json!({"containers": [{"name": "app"}]}));
    let src = FakeSource::new().cluster_dns(&[], "cluster.local");
    let (r, warnings) = resolve_warn(&p, &src).await.unwrap();
    assert_eq!(r.dns, None);
    assert_eq!(r.hostname, "web");
    let reasons: Vec<&str> = warnings.iter().map(|w| w.reason.as_str()).collect();
    assert_eq!(reasons, ["MissingClusterDNS"]);
}

#[tokio::test]
async fn service_links_come_before_the_containers_own_variables() {
    let src = FakeSource::new()
        .service(json!({
            "metadata": {"name": "jenkins", "namespace": "ns1"},
            "spec": {"clusterIP": "10.96.5.5", "ports": [{"name": "http", "port": 8080}]},
        }))
        .service(json!({
            "metadata": {"name": "elsewhere", "namespace": "other"},
            "spec": {"clusterIP": "10.96.5.6", "ports": [{"port": 80}]},
        }));
    let p = pod_with_container(json!({"env": [
        {"name": "JENKINS_SERVICE_PORT", "value": "9999"},
        {"name": "URL", "value": "http://$(JENKINS_SERVICE_HOST):$(JENKINS_SERVICE_PORT_HTTP)"},
    ]}));
    let r = resolve(&p, &src).await.unwrap();
    let env = env_map(&r);
    assert_eq!(env["JENKINS_SERVICE_HOST"], "10.96.5.5");
    assert_eq!(env["JENKINS_SERVICE_PORT"], "9999");
    assert_eq!(env["JENKINS_PORT_8080_TCP_ADDR"], "10.96.5.5");
    assert_eq!(env["URL"], "http://10.96.5.5:8080");
    assert!(!env.contains_key("ELSEWHERE_SERVICE_HOST"));

    let mut p = p;
    if let Some(spec) = p.spec.as_mut() {
        spec.enable_service_links = Some(false);
    }
    let r = resolve(&p, &src).await.unwrap();
    let env = env_map(&r);
    assert!(!env.contains_key("JENKINS_SERVICE_HOST"));
    assert!(!env.contains_key("JENKINS_PORT"));
    assert_eq!(
        env["URL"],
        "http://$(JENKINS_SERVICE_HOST):$(JENKINS_SERVICE_PORT_HTTP)"
    );
}

#[tokio::test]
async fn an_fqdn_too_long_for_the_kernel_fails_the_resolution() {
    let p = pod(json!({
        "hostname": "h".repeat(50),
        "subdomain": "sub",
        "setHostnameAsFQDN": true,
        "containers": [{"name": "app"}],
    }));
    assert_invalid(resolve(&p, &FakeSource::new()).await, "is too long");
}
