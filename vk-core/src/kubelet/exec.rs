//! `/exec/{namespace}/{pod}[/{uid}]/{container}` and `/attach/...` (GET or POST): what
//! `kubectl exec` and `kubectl attach` reach through the API server. The request is upgraded
//! to SPDY/3.1 (the client then opens its remotecommand streams) or to WebSocket (channels in
//! one connection), and the provider runs the command (exec) or joins the container's main
//! process (attach) with them; how it ended goes back on the error stream.
//!
//! Bounds ([`StreamingConfig`]): a node serves at most `max_sessions` exec/attach sessions at
//! once (the next request gets 429 with a `metav1.Status` before any upgrade, never a hang);
//! a connection holds at most `max_streams_per_connection` streams; the client has
//! `stream_creation_timeout` to open its streams; a connection idle for `idle_timeout` is
//! closed. A malformed frame closes only its own connection (GOAWAY).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{OpenSession, StreamingMetrics};

use super::KubeletServer;
use super::logs::has_container;
use super::response::{KubeletBody, failure, method_not_allowed};
use crate::provider::{ExecOutcome, PodRef, Provider};
use crate::stream::CommandSession;
use crate::stream::remotecommand::{
    DEFAULT_STREAM_CREATION_TIMEOUT, Operation, RemoteCommandSession, SUPPORTED_PROTOCOLS,
    StreamOptions,
};
use crate::stream::spdy::SpdyConfig;
use crate::stream::spdy::upgrade::{self as spdy, UpgradeResponse};
use crate::stream::websocket::{self, WebSocketConfig};

/// The kubelet's default `streamingConnectionIdleTimeout`.
pub const DEFAULT_STREAMING_IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// Timeouts and bounds of the streaming endpoints (exec, attach).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamingConfig {
    /// A streaming connection with no frame in either direction for this long is closed
    /// (the kubelet's `streamingConnectionIdleTimeout`, 4 h). Clients' PINGs count.
    pub idle_timeout: Duration,
    /// How long the client has to open its streams after the upgrade (30 s, as the kubelet).
    pub stream_creation_timeout: Duration,
    /// Streams open at once on one connection; more are refused with RST_STREAM.
    pub max_streams_per_connection: usize,
    /// Exec, attach and port-forward sessions (connections) open at once on this node; more
    /// are refused with 429.
    pub max_sessions: usize,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            idle_timeout: DEFAULT_STREAMING_IDLE_TIMEOUT,
            stream_creation_timeout: DEFAULT_STREAM_CREATION_TIMEOUT,
            max_streams_per_connection: SpdyConfig::default().max_concurrent_streams,
            max_sessions: 256,
        }
    }
}

/// The streaming config and the node's session slots, shared by every connection.
#[derive(Debug)]
pub(crate) struct Streaming {
    pub config: StreamingConfig,
    sessions: Arc<Semaphore>,
    pub metrics: StreamingMetrics,
}

/// A session's slot on the node; dropping it frees the slot and ends the session's count.
#[derive(Debug)]
pub(crate) struct SessionSlot {
    _permit: OwnedSemaphorePermit,
    _open: OpenSession,
}

impl Streaming {
    pub fn new(config: StreamingConfig, metrics: StreamingMetrics) -> Streaming {
        let sessions = Arc::new(Semaphore::new(config.max_sessions));
        Streaming {
            config,
            sessions,
            metrics,
        }
    }

    fn spdy_config(&self) -> SpdyConfig {
        SpdyConfig {
            max_concurrent_streams: self.config.max_streams_per_connection.max(1),
            idle_timeout: Some(self.config.idle_timeout).filter(|t| !t.is_zero()),
            ..SpdyConfig::default()
        }
    }

    fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig {
            idle_timeout: Some(self.config.idle_timeout).filter(|t| !t.is_zero()),
            ..WebSocketConfig::default()
        }
    }

    /// A session slot for a session of `kind` (`exec`, `attach`, `portforward`), or `None`
    /// when the node is at its bound.
    pub(super) fn try_session(&self, kind: &'static str) -> Option<SessionSlot> {
        let permit = self.sessions.clone().try_acquire_owned().ok()?;
        Some(SessionSlot {
            _permit: permit,
            _open: self.metrics.session(kind),
        })
    }

    /// Sessions open now.
    #[cfg(test)]
    pub fn open_sessions(&self) -> usize {
        self.config.max_sessions - self.sessions.available_permits()
    }
}

/// Which streaming endpoint a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Exec,
    Attach,
}

/// The target of an exec or attach request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StreamTarget {
    pub kind: StreamKind,
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
    pub container: String,
}

/// `/exec/{ns}/{pod}/{container}` or `/exec/{ns}/{pod}/{uid}/{container}` (and `attach`).
pub(crate) fn stream_target(path: &str) -> Option<StreamTarget> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (kind, rest) = match segments.split_first()? {
        (&"exec", rest) => (StreamKind::Exec, rest),
        (&"attach", rest) => (StreamKind::Attach, rest),
        _ => return None,
    };
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let (namespace, pod, uid, container) = match rest {
        [namespace, pod, container] => (namespace, pod, None, container),
        [namespace, pod, uid, container] => (namespace, pod, Some(uid), container),
        _ => return None,
    };
    Some(StreamTarget {
        kind,
        namespace: (*namespace).to_string(),
        pod: (*pod).to_string(),
        uid: uid.map(|u| (*u).to_string()),
        container: (*container).to_string(),
    })
}

/// The `command` parameters, in order.
pub(crate) fn commands(query: Option<&str>) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.into_owned())
        .collect()
}

impl KubeletServer {
    pub(crate) async fn stream<B>(
        &self,
        mut req: Request<B>,
        target: StreamTarget,
    ) -> Response<KubeletBody> {
        if let Some(refused) = method_not_allowed(req.method(), &[Method::GET, Method::POST]) {
            return refused;
        }
        let query = req.uri().query().map(str::to_owned);
        let opts = match StreamOptions::from_query(query.as_deref().unwrap_or_default()) {
            Ok(opts) => opts,
            Err(err) => return failure(StatusCode::BAD_REQUEST, err.to_string()),
        };
        let command = commands(query.as_deref());
        let StreamTarget {
            kind,
            namespace,
            pod: pod_name,
            uid,
            container,
        } = target;
        if kind == StreamKind::Exec && command.is_empty() {
            return failure(
                StatusCode::BAD_REQUEST,
                "you must specify at least one command for the container",
            );
        }
        let Some(pod) = self
            .pods
            .get(&ObjectRef::<Pod>::new(&pod_name).within(&namespace))
        else {
            return failure(
                StatusCode::NOT_FOUND,
                format!("pod {pod_name:?} does not exist"),
            );
        };
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        if uid.as_ref().is_some_and(|u| *u != pod_uid) {
            return failure(
                StatusCode::NOT_FOUND,
                format!(
                    "pod {pod_name:?} with uid {} does not exist",
                    uid.unwrap_or_default()
                ),
            );
        }
        if !has_container(&pod, &container) {
            return failure(
                StatusCode::NOT_FOUND,
                format!("container {container:?} not found in pod {pod_name:?}"),
            );
        }
        let pod_ref = PodRef {
            namespace,
            name: pod_name,
            uid: pod_uid,
        };
        let kind_name = match kind {
            StreamKind::Exec => "exec",
            StreamKind::Attach => "attach",
        };
        let Some(permit) = self.streaming.try_session(kind_name) else {
            tracing::warn!(
                pod = %pod_ref,
                limit = self.streaming.config.max_sessions,
                "refusing a streaming session: the node is at its bound"
            );
            return failure(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many exec/attach sessions on node {} (limit {}); try again later",
                    self.node_name, self.streaming.config.max_sessions
                ),
            );
        };
        let call = match kind {
            StreamKind::Exec => Call::Exec(command),
            StreamKind::Attach => Call::Attach,
        };
        if websocket::is_websocket_request(req.headers()) {
            let (response, pending) =
                match websocket::upgrade(&mut req, opts, self.streaming.websocket_config()) {
                    Ok(upgrade) => upgrade,
                    Err(rejection) => return boxed(rejection.into_response()),
                };
            let provider = self.provider.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match pending.connect().await {
                    Ok(session) => {
                        run_session(provider.as_ref(), session, &pod_ref, &container, call).await;
                    }
                    Err(err) => tracing::debug!(pod = %pod_ref, %err, "upgrade failed"),
                }
            });
            return boxed(response);
        }
        let (response, pending) =
            match spdy::upgrade(&mut req, SUPPORTED_PROTOCOLS, self.streaming.spdy_config()) {
                Ok(upgrade) => upgrade,
                Err(rejection) => return boxed(rejection.into_response()),
            };
        let provider = self.provider.clone();
        let creation_timeout = self.streaming.config.stream_creation_timeout;
        tokio::spawn(async move {
            // The slot is held until the session is over.
            let _permit = permit;
            let protocol = pending.protocol().to_owned();
            let conn = match pending.connect().await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::debug!(pod = %pod_ref, %err, "exec upgrade failed");
                    return;
                }
            };
            let session =
                match RemoteCommandSession::accept(conn, &protocol, opts, creation_timeout).await {
                    Ok(session) => session,
                    Err(err) => {
                        tracing::debug!(pod = %pod_ref, %err, "exec streams never came");
                        return;
                    }
                };
            run_session(provider.as_ref(), session, &pod_ref, &container, call).await;
        });
        boxed(response)
    }
}

/// What the client asked the provider for.
#[derive(Debug)]
enum Call {
    Exec(Vec<String>),
    Attach,
}

/// Runs the command (or attaches) with the session's streams; a client that closes the
/// connection cancels the provider's call.
async fn run_session(
    provider: &dyn Provider,
    session: impl CommandSession,
    pod: &PodRef,
    container: &str,
    call: Call,
) {
    tracing::debug!(
        %pod,
        container,
        ?call,
        transport = session.transport(),
        protocol = session.protocol_name(),
        "streaming session"
    );
    let operation = match call {
        Call::Exec(_) => Operation::Exec,
        Call::Attach => Operation::Attach,
    };
    let mut session = session.with_operation(operation);
    let io = session.take_io();
    let run = async {
        match call {
            Call::Exec(command) => provider.exec(pod, container, command, io).await,
            Call::Attach => provider.attach(pod, container, io).await,
        }
    };
    let outcome = tokio::select! {
        result = run => match result {
            Ok(outcome) => outcome,
            Err(err) => ExecOutcome::Error(err.message().to_owned()),
        },
        () = session.closed() => {
            tracing::debug!(%pod, container, "streaming client went away");
            return;
        }
    };
    if let Err(err) = session.finish(outcome).await {
        tracing::debug!(%pod, container, %err, "reporting the session's status");
    }
}

pub(super) fn boxed(response: UpgradeResponse) -> Response<KubeletBody> {
    response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
}
