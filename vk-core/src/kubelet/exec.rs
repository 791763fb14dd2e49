//! `/exec/{namespace}/{pod}[/{uid}]/{container}` and `/attach/...` (GET or POST): what
//! `kubectl exec` and `kubectl attach` reach through the API server. The request is upgraded
//! to SPDY/3.1 (the client then opens its remotecommand streams) or to WebSocket (channels
//! in one connection), and the provider runs the command with them; how it ended goes back
//! on the error stream.

use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;

use super::KubeletServer;
use super::logs::has_container;
use super::response::{KubeletBody, failure};
use crate::provider::{ExecOutcome, PodRef, Provider, ProviderError};
use crate::stream::CommandSession;
use crate::stream::remotecommand::{
    DEFAULT_STREAM_CREATION_TIMEOUT, RemoteCommandSession, SUPPORTED_PROTOCOLS, StreamOptions,
};
use crate::stream::spdy::SpdyConfig;
use crate::stream::spdy::upgrade::{self as spdy, UpgradeResponse};
use crate::stream::websocket::{self, WebSocketConfig};

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
        if req.method() != Method::GET && req.method() != Method::POST {
            return failure(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "the server does not allow method {} on the requested resource",
                    req.method()
                ),
            );
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
        if kind == StreamKind::Attach {
            return failure(
                StatusCode::BAD_REQUEST,
                format!(
                    "attach is not supported by the {} provider",
                    self.provider.name()
                ),
            );
        }
        if command.is_empty() {
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
        if websocket::is_websocket_request(req.headers()) {
            let (response, pending) =
                match websocket::upgrade(&mut req, opts, WebSocketConfig::default()) {
                    Ok(upgrade) => upgrade,
                    Err(rejection) => return boxed(rejection.into_response()),
                };
            let provider = self.provider.clone();
            tokio::spawn(async move {
                match pending.connect().await {
                    Ok(session) => {
                        run_exec(provider.as_ref(), session, &pod_ref, &container, command).await;
                    }
                    Err(err) => tracing::debug!(pod = %pod_ref, %err, "exec upgrade failed"),
                }
            });
            return boxed(response);
        }
        let (response, pending) =
            match spdy::upgrade(&mut req, SUPPORTED_PROTOCOLS, SpdyConfig::default()) {
                Ok(upgrade) => upgrade,
                Err(rejection) => return boxed(rejection.into_response()),
            };
        let provider = self.provider.clone();
        tokio::spawn(async move {
            let protocol = pending.protocol().to_owned();
            let conn = match pending.connect().await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::debug!(pod = %pod_ref, %err, "exec upgrade failed");
                    return;
                }
            };
            let session = match RemoteCommandSession::accept(
                conn,
                &protocol,
                opts,
                DEFAULT_STREAM_CREATION_TIMEOUT,
            )
            .await
            {
                Ok(session) => session,
                Err(err) => {
                    tracing::debug!(pod = %pod_ref, %err, "exec streams never came");
                    return;
                }
            };
            run_exec(provider.as_ref(), session, &pod_ref, &container, command).await;
        });
        boxed(response)
    }
}

/// Runs the command with the session's streams; a client that closes the connection cancels
/// the provider's exec.
async fn run_exec(
    provider: &dyn Provider,
    mut session: impl CommandSession,
    pod: &PodRef,
    container: &str,
    command: Vec<String>,
) {
    tracing::debug!(
        %pod,
        container,
        ?command,
        transport = session.transport(),
        protocol = session.protocol_name(),
        "exec"
    );
    let io = session.take_io();
    let outcome = tokio::select! {
        result = provider.exec(pod, container, command, io) => match result {
            Ok(outcome) => outcome,
            Err(err) => ExecOutcome::Error(provider_message(err)),
        },
        () = session.closed() => {
            tracing::debug!(%pod, container, "exec client went away");
            return;
        }
    };
    if let Err(err) = session.finish(outcome).await {
        tracing::debug!(%pod, container, %err, "reporting the exec status");
    }
}

fn provider_message(err: ProviderError) -> String {
    match err {
        ProviderError::InvalidSpec { message, .. }
        | ProviderError::NotFound(message)
        | ProviderError::Unsupported(message)
        | ProviderError::Transient(message) => message,
    }
}

fn boxed(response: UpgradeResponse) -> Response<KubeletBody> {
    response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
}
