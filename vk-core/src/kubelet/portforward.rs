//! `/portForward/{namespace}/{pod}[/{uid}]` (GET or POST): what `kubectl port-forward` reaches
//! through the API server. Authorized like every path here (`nodes/proxy`, verb from the
//! method), then upgraded to whichever form the request asks for (SPDY/3.1, WebSocket
//! channels, SPDY tunnelled in WebSocket, see [`crate::stream::portforward`]); every forwarded
//! connection becomes one [`Provider::port_forward`] call. The streaming timeouts and bounds
//! are the exec ones ([`super::StreamingConfig`]); a port-forward connection takes one of the
//! node's session slots for as long as it is open.

use std::sync::Arc;

use async_trait::async_trait;
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;

use super::KubeletServer;
use super::exec::{SessionSlot, boxed};
use super::response::{KubeletBody, failure, method_not_allowed};
use crate::provider::{PodRef, PortForwardStream, Provider};
use crate::stream::portforward::{self, ForwardError, PortForwarder, SessionConfig, websocket};

/// The pod a port-forward request is for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PortForwardTarget {
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
}

/// `/portForward/{ns}/{pod}` or `/portForward/{ns}/{pod}/{uid}`.
pub(crate) fn target(path: &str) -> Option<PortForwardTarget> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (namespace, pod, uid) = match segments.as_slice() {
        ["portForward", namespace, pod] => (namespace, pod, None),
        ["portForward", namespace, pod, uid] => (namespace, pod, Some(uid)),
        _ => return None,
    };
    if namespace.is_empty() || pod.is_empty() || uid.is_some_and(|u| u.is_empty()) {
        return None;
    }
    Some(PortForwardTarget {
        namespace: (*namespace).to_owned(),
        pod: (*pod).to_owned(),
        uid: uid.map(|u| (*u).to_owned()),
    })
}

impl KubeletServer {
    pub(crate) async fn port_forward<B>(
        &self,
        mut req: Request<B>,
        target: PortForwardTarget,
    ) -> Response<KubeletBody> {
        if let Some(refused) = method_not_allowed(req.method(), &[Method::GET, Method::POST]) {
            return refused;
        }
        // As the kubelet: the WebSocket ports are checked before the pod is looked up.
        if websocket::is_websocket_request(req.headers())
            && let Err(rejection) = websocket::form(req.headers(), req.uri().query())
        {
            return boxed(rejection.into_response());
        }
        let PortForwardTarget {
            namespace,
            pod: name,
            uid,
        } = target;
        let Some(pod) = self
            .pods
            .get(&ObjectRef::<Pod>::new(&name).within(&namespace))
        else {
            return failure(StatusCode::NOT_FOUND, "pod does not exist");
        };
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        if uid.is_some_and(|u| u != pod_uid) {
            return failure(StatusCode::NOT_FOUND, "pod not found");
        }
        let pod = PodRef {
            namespace,
            name,
            uid: pod_uid,
        };
        let Some(slot) = self.streaming.try_session("portforward") else {
            let limit = self.streaming.config.max_sessions;
            tracing::warn!(%pod, limit, "refusing a port-forward: the node is at its bound");
            return failure(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many streaming sessions on node {} (limit {limit}); try again later",
                    self.node_name
                ),
            );
        };
        let streaming = &self.streaming.config;
        let config = SessionConfig {
            stream_creation_timeout: streaming.stream_creation_timeout,
            idle_timeout: Some(streaming.idle_timeout).filter(|t| !t.is_zero()),
            max_streams_per_connection: streaming.max_streams_per_connection,
        };
        let forwarder = ProviderForwarder {
            provider: self.provider.clone(),
            pod,
            _slot: slot,
        };
        boxed(portforward::accept(&mut req, Arc::new(forwarder), config))
    }
}

/// Forwards to one pod through the provider. Lives as long as the connection's session.
struct ProviderForwarder {
    provider: Arc<dyn Provider>,
    pod: PodRef,
    /// The node's session slot, given back when the session ends (or the upgrade fails).
    _slot: SessionSlot,
}

#[async_trait]
impl PortForwarder for ProviderForwarder {
    async fn forward(&self, port: u16, stream: PortForwardStream) -> Result<(), ForwardError> {
        tracing::debug!(pod = %self.pod, port, "port-forward");
        self.provider
            .port_forward(&self.pod, port, stream)
            .await
            .map_err(|source| ForwardError::Provider {
                port,
                pod: self.pod.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::{PortForwardTarget, target};

    #[test]
    fn targets_are_parsed_like_the_kubelets_routes() {
        assert_eq!(
            target("/portForward/ci/build"),
            Some(PortForwardTarget {
                namespace: "ci".into(),
                pod: "build".into(),
                uid: None,
            })
        );
        assert_eq!(
            target("/portForward/ci/build/uid-1").and_then(|t| t.uid),
            Some("uid-1".into())
        );
        for path in [
            "/portForward/ci",
            "/portForward/ci//",
            "/portForward/ci/build/",
            "/portForward/ci/build/uid/x",
            "/portforward/ci/build",
            "/exec/ci/build/app",
        ] {
            assert_eq!(target(path), None, "{path}");
        }
    }
}
