//! `kubectl port-forward` on the mock: the mock's pods have no network namespace, so a pod
//! port is mapped to a real TCP address on this machine and the client's stream is spliced to
//! a connection there.
//!
//! - Port `P` of a pod goes to `127.0.0.1:P`, unless the pod's annotation
//!   `mock.vk.io/port-forward.P` names another `host:port` (e2e tests point it at a server
//!   they started on a free port).
//! - The pod must be Running; an unknown pod is `NotFound`, one that is not running
//!   `InvalidSpec`, and a refused or failed connection is `Transient` with the address and the
//!   reason: the kubelet API writes that text on the client's error stream.
//! - Copying is [`vk_core::stream::portforward::splice`]: it ends when the local server closes
//!   its side or the client goes away; dropping the call closes the connection.

use tokio::net::TcpStream;
use vk_core::provider::{InstancePhase, PodRef, PortForwardStream, ProviderError};
use vk_core::stream::portforward::splice;

use super::annotations::PORT_FORWARD_PREFIX;
use super::{MockProvider, pod_key};
use crate::render::Record;

impl MockProvider {
    pub(super) async fn run_port_forward(
        &self,
        pod: &PodRef,
        port: u16,
        stream: PortForwardStream,
    ) -> Result<(), ProviderError> {
        let address = self.port_forward_address(pod, port)?;
        let upstream = TcpStream::connect(&address).await.map_err(|err| {
            ProviderError::Transient(format!(
                "failed to connect to {address} (the mock's address for port {port}): {err}"
            ))
        })?;
        let _ = upstream.set_nodelay(true);
        tracing::debug!(%pod, port, %address, "mock port-forward connected");
        splice(stream, upstream).await;
        Ok(())
    }

    /// Where port `port` of the pod is, read from its group.
    fn port_forward_address(&self, pod: &PodRef, port: u16) -> Result<String, ProviderError> {
        let state = self.engine.state();
        let group = state
            .get(&pod_key(pod))
            .ok_or_else(|| Self::not_found(pod))?;
        let status = Self::status_of(group).ok_or_else(|| Self::not_found(pod))?;
        if status.phase != InstancePhase::Running {
            return Err(ProviderError::invalid(
                "PodNotRunning",
                format!("pod {pod} is not running (phase {:?})", status.phase),
            ));
        }
        let record = group.face::<Record>().ok_or_else(|| Self::not_found(pod))?;
        Ok(target_address(&record.annotations(), port))
    }
}

/// The annotation's `host:port` for `port`, or `127.0.0.1:port`.
pub(super) fn target_address(
    annotations: &std::collections::BTreeMap<String, String>,
    port: u16,
) -> String {
    annotations
        .get(&format!("{PORT_FORWARD_PREFIX}{port}"))
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| format!("127.0.0.1:{port}"))
}
