//! Where `ClusterFirst` pods send their DNS queries: the configured servers, else the
//! ClusterIP of the `kube-system/kube-dns` Service (the name every cluster DNS add-on,
//! CoreDNS included, serves under).
//!
//! The Service is read when a pod needs it and the answer (found or not) kept for
//! [`REREAD_AFTER`]: its ClusterIP never changes while it exists, but the DNS add-on is often
//! installed after the node registers, or reinstalled; one GET a minute at most costs nothing,
//! while a watch would hold a connection open for a value that almost never changes. Pods
//! resolved at once while it is read wait for that one GET rather than each making their own.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::Api;

use super::resolve::{ClusterDns, ResolveError};

/// How long an answer about `kube-system/kube-dns` is trusted.
pub const REREAD_AFTER: Duration = Duration::from_secs(60);

pub struct ClusterDnsLookup {
    client: kube::Client,
    configured: Vec<IpAddr>,
    domain: String,
    /// The last answer about kube-dns and when it was read; held across the read, so one
    /// GET serves everyone who asked meanwhile.
    cached: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
}

impl ClusterDnsLookup {
    pub fn new(client: kube::Client, configured: Vec<IpAddr>, domain: String) -> Self {
        Self {
            client,
            configured,
            domain,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<ClusterDns, ResolveError> {
        let servers = if self.configured.is_empty() {
            self.kube_dns().await?
        } else {
            self.configured.iter().map(IpAddr::to_string).collect()
        };
        Ok(ClusterDns {
            servers,
            domain: self.domain.clone(),
        })
    }

    /// The ClusterIPs of `kube-system/kube-dns`; empty when it does not exist or is headless.
    async fn kube_dns(&self) -> Result<Vec<String>, ResolveError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, servers)) = cached.as_ref()
            && at.elapsed() < REREAD_AFTER
        {
            return Ok(servers.clone());
        }
        let service = match Api::<Service>::namespaced(self.client.clone(), "kube-system")
            .get_opt("kube-dns")
            .await
        {
            Ok(service) => service,
            // RBAC older than this feature: the pods still run, on the cloud's resolver, and
            // each says why (MissingClusterDNS).
            Err(kube::Error::Api(e)) if e.code == 403 => {
                tracing::warn!(error = %e, "may not read kube-system/kube-dns: grant get on services (manifests/base/rbac.yaml) or set --cluster-dns");
                None
            }
            Err(e) => {
                return Err(ResolveError::Api(format!(
                    "reading kube-system/kube-dns: {e}"
                )));
            }
        };
        let servers = service.as_ref().map(cluster_ips).unwrap_or_default();
        if servers.is_empty() {
            tracing::warn!(
                "no cluster DNS: --cluster-dns is not set and kube-system/kube-dns has no ClusterIP; ClusterFirst pods use the cloud's resolver"
            );
        }
        *cached = Some((Instant::now(), servers.clone()));
        Ok(servers)
    }
}

/// `clusterIPs` (dual-stack), else `clusterIP`; `None` (headless) is no address.
fn cluster_ips(service: &Service) -> Vec<String> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    let ips: Vec<String> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.clone(),
        _ => spec.cluster_ip.iter().cloned().collect(),
    };
    ips.into_iter()
        .filter(|ip| ip.parse::<IpAddr>().is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_ips_of_the_dns_service() {
        let service = |spec: serde_json::Value| -> Service {
            serde_json::from_value(json!({"metadata": {"name": "kube-dns"}, "spec": spec})).unwrap()
        };
        assert_eq!(
            cluster_ips(&service(json!({"clusterIP": "10.96.0.10"}))),
            ["10.96.0.10"]
        );
        assert_eq!(
            cluster_ips(&service(
                json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::a"]})
            )),
            ["10.96.0.10", "fd00::a"]
        );
        assert!(cluster_ips(&service(json!({"clusterIP": "None"}))).is_empty());
        assert!(cluster_ips(&service(json!({}))).is_empty());
    }
}

#[cfg(test)]
mod lookup_tests {
    use serde_json::json;

    use super::*;
    use crate::pods::test_api::FakeApi;

    #[tokio::test]
    async fn the_kube_dns_service_gives_the_servers() {
        let api = FakeApi::start().await;
        api.put(
            "services",
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system"},
                "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]},
            }),
        );
        let lookup = ClusterDnsLookup::new(api.client(), vec![], "cluster.local".into());
        let dns = lookup.get().await.unwrap();
        assert_eq!(dns.servers, ["10.96.0.10"]);
        assert_eq!(dns.domain, "cluster.local");
    }
}
