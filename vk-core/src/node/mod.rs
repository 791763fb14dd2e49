//! The node controller: registers the virtual Node, keeps its status and Lease fresh, reports
//! `Ready=False` when the provider does not answer, and recreates the Node if someone deletes it.
//! It is the only writer of the Node's status and of the Lease.

mod lease;
mod object;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeStatus};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

pub use lease::{LEASE_DURATION_SECONDS, LEASE_NAMESPACE, LeaseRenewer, RENEW_INTERVAL};
pub use object::{
    NodeConfig, NodeTaint, Readiness, VERSION, add_provider_conditions, node_object, node_status,
    status_changed,
};

use crate::provider::Provider;

pub const FIELD_MANAGER: &str = "vk-serverless";
const PING_INTERVAL: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(8);
/// A status write at least this often even when nothing changed (the heartbeat).
const STATUS_INTERVAL: Duration = Duration::from_secs(60);
/// Node-declared features (sorted, as the apiserver requires): WebSocket exec/attach
/// straight to us (`crate::stream::websocket`).
const DECLARED_FEATURES: &[&str] = &["ExtendWebSocketsToKubelet"];

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the API server returned node {0} without a UID")]
    NoUid(String),
}

pub struct NodeController {
    api: Api<Node>,
    client: kube::Client,
    config: NodeConfig,
    provider: Arc<dyn Provider>,
    last_status: Option<NodeStatus>,
    readiness: Readiness,
    metrics: Arc<crate::metrics::Metrics>,
}

impl NodeController {
    pub fn new(client: kube::Client, config: NodeConfig, provider: Arc<dyn Provider>) -> Self {
        Self {
            api: Api::all(client.clone()),
            client,
            config,
            provider,
            last_status: None,
            readiness: Readiness::Ready,
            metrics: Arc::new(crate::metrics::Metrics::new()),
        }
    }

    /// Count lease renewals (the node's heartbeat) into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Create the Node, or bring an existing one's labels and taint in line. Returns its UID.
    pub async fn register(&mut self) -> Result<String, NodeError> {
        let desired = node_object(&self.config);
        let node = match self.api.get_opt(&self.config.name).await? {
            None => {
                tracing::info!(node = %self.config.name, "registering node");
                match self.api.create(&PostParams::default(), &desired).await {
                    Ok(node) => node,
                    // Someone (a previous run of ours) created it in between.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        self.api.get(&self.config.name).await?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(existing) => {
                tracing::info!(node = %self.config.name, "node exists; updating labels and taints");
                let _ = existing;
                // Strategic merge: taints merge by key and labels by name, so what others
                // added (the lifecycle controller's taints, user labels) is kept.
                self.api
                    .patch(
                        &self.config.name,
                        &PatchParams::default(),
                        &Patch::Strategic(&desired),
                    )
                    .await?
            }
        };
        self.last_status = node.status.clone();
        node.metadata
            .uid
            .ok_or_else(|| NodeError::NoUid(self.config.name.clone()))
    }

    /// Write the node status; unless `force`d (the heartbeat), only when something changed
    /// (readiness, the provider's capacity or its own conditions).
    async fn sync_status(&mut self, force: bool) -> Result<(), NodeError> {
        let now = Timestamp::now();
        let mut status = node_status(
            &self.config,
            &self.provider.capacity(),
            &self.readiness,
            self.last_status.as_ref(),
            now,
        );
        add_provider_conditions(
            &mut status,
            &self.provider.node_conditions(),
            self.last_status.as_ref(),
            now,
        );
        if !force
            && self
                .last_status
                .as_ref()
                .is_some_and(|last| !status_changed(last, &status))
        {
            return Ok(());
        }
        let patch = Node {
            status: Some(status.clone()),
            ..Default::default()
        };
        self.api
            .patch_status(
                &self.config.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await?;
        self.last_status = Some(status);
        Ok(())
    }

    /// On 1.36+ (where the field exists), declare `ExtendWebSocketsToKubelet` in
    /// `status.declaredFeatures`: the apiserver then proxies exec/attach WebSockets (v5) to
    /// us as they come instead of translating them to SPDY. Raw JSON, since the typed
    /// `NodeStatus` (k8s-openapi v1_33) has no such field; a merge patch keeps other writes'
    /// strategic patches from touching it.
    async fn declare_features(&self) -> Result<(), NodeError> {
        let info = self.client.apiserver_version().await?;
        let number = |s: &str| -> u32 {
            s.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .unwrap_or(0)
        };
        if (number(&info.major), number(&info.minor)) < (1, 36) {
            return Ok(());
        }
        let patch = serde_json::json!({
            "status": { "declaredFeatures": DECLARED_FEATURES }
        });
        self.api
            .patch_status(
                &self.config.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        tracing::debug!(features = ?DECLARED_FEATURES, "node features declared");
        Ok(())
    }

    /// [`Self::declare_features`], on start-up and whenever the Node object is new.
    async fn declare_features_or_warn(&self) {
        if let Err(e) = self.declare_features().await {
            tracing::warn!(error = %e, "declaring node features failed");
        }
    }

    async fn ping(&self) -> Readiness {
        match tokio::time::timeout(PING_TIMEOUT, self.provider.ping()).await {
            Ok(Ok(())) => Readiness::Ready,
            Ok(Err(e)) => Readiness::ProviderUnreachable(e.to_string()),
            Err(_) => Readiness::ProviderUnreachable(format!(
                "no answer within {}s",
                PING_TIMEOUT.as_secs()
            )),
        }
    }

    /// Register, then keep the node alive until cancelled.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), NodeError> {
        let mut uid = self.register().await?;
        // The Lease first, as the kubelet does: a node that turns Ready while its Lease is
        // missing or stale could be marked NotReady again by the lifecycle controller.
        let mut lease =
            LeaseRenewer::new(self.client.clone(), &self.config.name).with_metrics(&self.metrics);
        if let Err(e) = lease.renew(&uid).await {
            tracing::warn!(error = %e, "first lease renewal failed");
        }
        self.readiness = self.ping().await;
        self.sync_status(true).await?;
        self.declare_features_or_warn().await;
        tracing::info!(node = %self.config.name, ready = ?self.readiness, "node registered");

        let watch_api = self.api.clone();
        let mut node_events = watcher::watch_object(watch_api, &self.config.name).boxed();
        let mut ping_tick = tokio::time::interval(PING_INTERVAL);
        let mut lease_tick = tokio::time::interval(RENEW_INTERVAL);
        let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
        for tick in [&mut ping_tick, &mut lease_tick, &mut status_tick] {
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.reset();
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = ping_tick.tick() => {
                    let readiness = self.ping().await;
                    if readiness != self.readiness {
                        match &readiness {
                            Readiness::Ready => tracing::info!("provider answers again; node Ready"),
                            Readiness::ProviderUnreachable(e) => tracing::warn!(error = %e, "provider ping failed; node NotReady"),
                        }
                        self.readiness = readiness;
                    }
                    if let Err(e) = self.sync_status(false).await {
                        tracing::warn!(error = %e, "writing node status failed");
                    }
                }
                _ = lease_tick.tick() => {
                    if let Err(e) = lease.renew(&uid).await {
                        tracing::warn!(error = %e, "lease renewal failed");
                    }
                }
                _ = status_tick.tick() => {
                    if let Err(e) = self.sync_status(true).await {
                        tracing::warn!(error = %e, "writing node status failed");
                    }
                }
                event = node_events.next() => match event {
                    Some(Ok(None)) => {
                        tracing::warn!(node = %self.config.name, "node was deleted; registering it again");
                        match self.register().await {
                            Ok(new_uid) => {
                                uid = new_uid;
                                self.last_status = None;
                                if let Err(e) = lease.renew(&uid).await {
                                    tracing::warn!(error = %e, "lease renewal failed");
                                }
                                if let Err(e) = self.sync_status(true).await {
                                    tracing::warn!(error = %e, "writing node status failed");
                                }
                                self.declare_features_or_warn().await;
                            }
                            Err(e) => tracing::warn!(error = %e, "re-registering the node failed; retrying on the next event"),
                        }
                    }
                    Some(Ok(Some(node))) => {
                        if let Some(new_uid) = node.metadata.uid.filter(|u| *u != uid) {
                            // Recreated by someone else: adopt it and fix its status.
                            uid = new_uid;
                            self.last_status = None;
                            if let Err(e) = self.register().await.and(Ok(())) {
                                tracing::warn!(error = %e, "updating the recreated node failed");
                            }
                            // The Lease's owner reference names the new UID.
                            if let Err(e) = lease.renew(&uid).await {
                                tracing::warn!(error = %e, "lease renewal failed");
                            }
                            if let Err(e) = self.sync_status(true).await {
                                tracing::warn!(error = %e, "writing node status failed");
                            }
                            self.declare_features_or_warn().await;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "node watch error; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    None => {
                        node_events = watcher::watch_object(self.api.clone(), &self.config.name).boxed();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::pods::test_api::FakeApi;
    use crate::provider::test_support::ScriptedProvider;

    #[tokio::test]
    async fn the_lease_is_renewed_before_the_node_turns_ready() {
        let api = FakeApi::start().await;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let controller = NodeController::new(
            api.client(),
            NodeConfig::new("vk-1", "10.0.0.9", "idle"),
            Arc::new(ScriptedProvider::default()),
        )
        .with_metrics(metrics.clone());
        let cancel = CancellationToken::new();
        let run = tokio::spawn(controller.run(cancel.clone()));
        let status_write = |r: &String| r.starts_with("PATCH /api/v1/nodes/vk-1/status");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !api.requests().iter().any(status_write) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no status written: {:?}",
                api.requests()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
        run.await.unwrap().unwrap();
        let requests = api.requests();
        let lease_create = requests
            .iter()
            .position(|r| {
                r.starts_with("POST /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
            })
            .unwrap_or_else(|| panic!("no lease created: {requests:?}"));
        let ready = requests.iter().position(status_write).unwrap();
        assert!(
            requests[..lease_create]
                .iter()
                .any(|r| r.starts_with("POST /api/v1/nodes")),
            "the node is registered first (the lease's owner): {requests:?}"
        );
        assert!(lease_create < ready, "{requests:?}");
        // The heartbeat is counted.
        let renewed = "vk_node_lease_renewals_total{result=\"ok\"} ";
        assert!(metrics.encode().contains(renewed), "{}", metrics.encode());
    }
}
