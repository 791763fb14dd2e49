//! Streaming for the kubelet API: exec, attach and port-forward reach a kubelet as HTTP
//! requests upgraded to SPDY/3.1 (kube-apiserver 1.30–1.35 speaks nothing else to it).
//!
//! - [`spdy`]: the SPDY/3.1 server: frames, header compression, codec, sessions and streams,
//!   and the hyper upgrade handshake;
//! - [`remotecommand`]: the exec/attach stream protocol (`channel.k8s.io` v1–v5) on top;
//! - [`portforward`]: `kubectl port-forward` over SPDY and WebSocket.

pub mod portforward;
pub mod remotecommand;
pub mod spdy;
