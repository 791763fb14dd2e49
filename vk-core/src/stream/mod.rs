//! Streaming for the kubelet API: exec, attach and port-forward reach a kubelet as HTTP
//! requests upgraded to SPDY/3.1 (what kube-apiserver 1.30–1.35 speaks to it) or to
//! WebSocket (legacy clients passed through, and 1.36+ apiservers to a node that declares
//! `ExtendWebSocketsToKubelet`).
//!
//! - [`spdy`]: the SPDY/3.1 server: frames, header compression, codec, sessions and streams,
//!   and the hyper upgrade handshake;
//! - [`remotecommand`]: the exec/attach stream protocol (`channel.k8s.io` v1–v5) on top;
//! - [`websocket`]: the same protocol over WebSocket channels (`channel.k8s.io`,
//!   `base64.channel.k8s.io`, their v4 forms and `v5.channel.k8s.io`);
//! - [`portforward`]: `kubectl port-forward` over SPDY and WebSocket.

pub mod portforward;
pub mod remotecommand;
mod session;
pub mod spdy;
#[cfg(test)]
mod tests_fuzz;
pub mod websocket;

pub use session::CommandSession;
