//! The node heartbeat Lease in `kube-node-lease`: what the node lifecycle controller reads to
//! decide whether this node is alive.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use super::NodeError;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// A quarter of the duration, as the kubelet does.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub struct LeaseRenewer {
    api: Api<Lease>,
    node_name: String,
    /// The last lease we wrote; its resourceVersion makes the next renew a cheap update.
    latest: Option<Lease>,
    /// The node's heartbeat, counted by result.
    renewals: Family<crate::metrics::Outcome, Counter>,
}

impl LeaseRenewer {
    pub fn new(client: kube::Client, node_name: &str) -> Self {
        Self {
            api: Api::namespaced(client, LEASE_NAMESPACE),
            node_name: node_name.to_string(),
            latest: None,
            renewals: Family::default(),
        }
    }

    /// Count renewals into `metrics` (the registry vk serves).
    pub fn with_metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        self.renewals = metrics.node_lease_renewals.clone();
        self
    }

    fn desired(&self, node_uid: &str, base: Option<&Lease>) -> Lease {
        let mut lease = base.cloned().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.node_name.clone()),
                namespace: Some(LEASE_NAMESPACE.into()),
                ..Default::default()
            },
            spec: None,
        });
        // The owner reference lets the garbage collector remove the lease with the node; it
        // is rewritten when the node was recreated under a new UID.
        lease.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.node_name.clone(),
            uid: node_uid.into(),
            ..Default::default()
        }]);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.node_name.clone());
        spec.lease_duration_seconds = Some(LEASE_DURATION_SECONDS);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease
    }

    /// Renew (or create) the lease. One update call in the common case.
    pub async fn renew(&mut self, node_uid: &str) -> Result<(), NodeError> {
        let result = self.write(node_uid).await;
        let outcome = crate::metrics::Outcome {
            result: if result.is_ok() { "ok" } else { "error" },
        };
        self.renewals.get_or_create(&outcome).inc();
        result
    }

    async fn write(&mut self, node_uid: &str) -> Result<(), NodeError> {
        if let Some(latest) = self.latest.take() {
            let lease = self.desired(node_uid, Some(&latest));
            match self
                .api
                .replace(&self.node_name, &PostParams::default(), &lease)
                .await
            {
                Ok(written) => {
                    self.latest = Some(written);
                    return Ok(());
                }
                Err(e) => tracing::debug!(error = %e, "lease update failed; re-reading it"),
            }
        }
        let current = self.api.get_opt(&self.node_name).await?;
        let lease = self.desired(node_uid, current.as_ref());
        let written = match current {
            Some(_) => {
                self.api
                    .replace(&self.node_name, &PostParams::default(), &lease)
                    .await?
            }
            None => self.api.create(&PostParams::default(), &lease).await?,
        };
        self.latest = Some(written);
        Ok(())
    }
}
