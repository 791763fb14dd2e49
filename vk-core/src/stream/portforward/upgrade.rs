//! The entry point: one HTTP request upgraded to whichever port-forward form it asks for.

use std::sync::Arc;

use hyper::Request;

use super::websocket::{self, WebSocketForm};
use super::{PortForwarder, SUPPORTED_PROTOCOLS, SessionConfig, spdy};
use crate::stream::spdy::upgrade::{self as spdy_upgrade, UpgradeResponse};

/// Answers a port-forward request as the kubelet does: a WebSocket upgrade (tunnelled SPDY or
/// channels, see [`websocket::form`]) or else the SPDY/3.1 handshake. Returns the response for
/// the handler to send: the 101, after which the session runs in a spawned task until the
/// client ends it, or the 400/403 that says why not.
pub fn accept<B>(
    req: &mut Request<B>,
    forwarder: Arc<dyn PortForwarder>,
    config: SessionConfig,
) -> UpgradeResponse {
    if websocket::is_websocket_request(req.headers()) {
        let form = match websocket::form(req.headers(), req.uri().query()) {
            Ok(form) => form,
            Err(rejection) => return rejection.into_response(),
        };
        let (response, pending) = match websocket::upgrade(req, form.protocol()) {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        tokio::spawn(async move {
            let ws = match pending.connect().await {
                Ok(ws) => ws,
                Err(err) => {
                    tracing::debug!(%err, "port-forward WebSocket upgrade failed");
                    return;
                }
            };
            match form {
                WebSocketForm::Tunnel { .. } => {
                    websocket::serve_tunnel(ws, forwarder, config).await;
                }
                WebSocketForm::Channels { base64, ports, .. } => {
                    websocket::serve_channels(ws, ports, base64, forwarder, config.idle_timeout)
                        .await;
                }
            }
        });
        return response;
    }
    let (response, pending) = match spdy_upgrade::upgrade(req, SUPPORTED_PROTOCOLS, config.spdy()) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    tokio::spawn(async move {
        match pending.connect().await {
            Ok(conn) => spdy::serve(conn, forwarder, config.stream_creation_timeout).await,
            Err(err) => tracing::debug!(%err, "port-forward SPDY upgrade failed"),
        }
    });
    response
}
