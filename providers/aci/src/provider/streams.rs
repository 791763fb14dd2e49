//! Exec and attach sockets: the POST that hands one out, then the connection.

use std::time::Duration;

use hyper::Method;
use vk_core::provider::{ExecIo, PodRef, ProviderError};

use super::AciProvider;
use crate::client::Kind;
use crate::exec;
use crate::wire::{ContainerExecRequest, ContainerExecResponse, TerminalSize, paths};

impl AciProvider {
    /// POST a container's exec or attach; its socket, connected and authenticated.
    pub(super) async fn socket(
        &self,
        pod: &PodRef,
        container: &str,
        attach: bool,
        size: Option<TerminalSize>,
    ) -> Result<exec::Socket, ProviderError> {
        let (s, r, g) = (
            &self.client.subscription_id,
            &self.client.resource_group,
            Self::group_name(pod),
        );
        let path = if attach {
            paths::container_attach(s, r, &g, container)
        } else {
            paths::container_exec(s, r, &g, container)
        };
        let body = ContainerExecRequest {
            command: (!attach).then(|| "/bin/sh".to_string()),
            terminal_size: size.or(Some(TerminalSize { rows: 24, cols: 80 })),
        };
        let url = self.client.url(&path, &[]);
        let answer = match self
            .client
            .json::<ContainerExecResponse>(Method::POST, &url, Some(&body), Kind::Write)
            .await
        {
            Ok((a, _)) => a,
            Err(e) if e.is_not_found() => {
                return Err(ProviderError::NotFound(format!(
                    "container {container} of pod {pod}: {e}"
                )));
            }
            Err(e)
                if e.status() == Some(409)
                    || e.code().is_some_and(|c| c.contains("NotRunning")) =>
            {
                return Err(ProviderError::invalid(
                    "ContainerNotRunning",
                    format!("container {container} of pod {pod}: {e}"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if answer.web_socket_uri.is_empty() {
            return Err(ProviderError::Transient(
                "ACI answered the exec without a webSocketUri".into(),
            ));
        }
        let timeout = Duration::from_millis(self.config.request_timeout_ms.max(1));
        exec::connect(&answer.web_socket_uri, &answer.password, &self.tls, timeout)
            .await
            .map_err(ProviderError::Transient)
    }
}

/// The first terminal size the client sends, waiting a moment for it.
pub(super) async fn first_size(io: &mut ExecIo) -> Option<TerminalSize> {
    let rx = io.resize.as_mut()?;
    let size = tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .ok()??;
    Some(TerminalSize {
        rows: size.height.max(1),
        cols: size.width.max(1),
    })
}
