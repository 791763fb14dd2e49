//! What the pod controller is told at start-up.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct PodControllerConfig {
    pub node_name: String,
    pub node_ip: String,
    /// How many pods are reconciled at once.
    pub workers: u16,
    /// How often instances without a pod are looked for (also done at start-up).
    pub orphan_sweep_interval: Duration,
    /// Re-issue service-account tokens this often instead of at 80% of their lifetime
    /// (for tests and demos: the API's minimum token lifetime is 10 minutes).
    pub token_refresh_interval: Option<Duration>,
    /// Where pods reach the API server (host, port): their `KUBERNETES_SERVICE_HOST`/`_PORT`
    /// and `KUBERNETES_PORT_*` variables. None: not set.
    pub kubernetes_service: Option<(String, u16)>,
    /// The DNS servers of `ClusterFirst` pods (the kubelet's `clusterDNS`); empty: the
    /// ClusterIP of `kube-system/kube-dns`.
    pub cluster_dns: Vec<std::net::IpAddr>,
    /// The cluster domain (`clusterDomain`), for search paths and pod FQDNs.
    pub cluster_domain: String,
    /// Prices for the cost vk records when a pod ends.
    pub prices: super::cost::PriceTable,
}

impl PodControllerConfig {
    pub fn new(node_name: &str, node_ip: &str) -> Self {
        Self {
            node_name: node_name.into(),
            node_ip: node_ip.into(),
            workers: 10,
            orphan_sweep_interval: Duration::from_secs(60),
            token_refresh_interval: None,
            kubernetes_service: None,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            prices: Default::default(),
        }
    }
}
