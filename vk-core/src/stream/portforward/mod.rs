//! The server side of `kubectl port-forward`, in the forms a kubelet serves:
//!
//! - [`spdy`]: SPDY/3.1 with subprotocol `portforward.k8s.io` (what kube-apiserver 1.30–1.35
//!   sends, also when kubectl tunnelled it over WebSocket to the apiserver). Per forwarded
//!   connection the client opens an `error` and a `data` stream carrying the same `port` and
//!   `requestID` headers; many ports and connections share one session.
//! - [`websocket`]: WebSocket, either channels (`v4.channel.k8s.io`,
//!   `v4.base64.channel.k8s.io`, or no subprotocol: per port in the `port` query parameter a
//!   data and an error channel, each starting with the port as two little-endian bytes), or
//!   SPDY tunnelled in binary messages (`SPDY/3.1+portforward.k8s.io`, what a 1.36+ apiserver
//!   passes through to a node that declares `ExtendWebSocketsToKubelet`).
//!
//! Either way one [`PortForwarder`] call serves one forwarded connection; its error text goes
//! back on that connection's error stream or channel.

pub mod spdy;
mod splice;
mod upgrade;
pub mod websocket;

#[cfg(test)]
mod test_forwarder;

use std::time::Duration;

use async_trait::async_trait;

pub use splice::splice;
pub use upgrade::accept;

pub use crate::provider::PortForwardStream;
use crate::provider::{PodRef, ProviderError};
use crate::stream::spdy::SpdyConfig;

/// The SPDY subprotocol, the only version there is.
pub const PROTOCOL_V1: &str = "portforward.k8s.io";
/// Subprotocols offered to `X-Stream-Protocol-Version`.
pub const SUPPORTED_PROTOCOLS: &[&str] = &[PROTOCOL_V1];
/// Stream headers (SPDY) and the WebSocket query parameter naming the port.
pub const PORT_HEADER: &str = "port";
pub const REQUEST_ID_HEADER: &str = "requestid";
pub const STREAM_TYPE_HEADER: &str = "streamtype";

/// How long the kubelet waits for the second stream of a pair.
pub const DEFAULT_STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The kubelet's default `--streaming-connection-idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// Connects one forwarded connection to a port of the pod. Implemented by the kubelet API on
/// top of the provider; all protocol handling stays in this module.
#[async_trait]
pub trait PortForwarder: Send + Sync + 'static {
    /// Copies between `stream` and `port` until one side is done. The `Err`'s text is what
    /// the client gets on the error stream.
    async fn forward(&self, port: u16, stream: PortForwardStream) -> Result<(), ForwardError>;
}

/// Why one forwarded connection failed; its text goes to the client on the error stream.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The provider could not connect to the port (or copying through it failed), worded as
    /// the kubelet words it.
    #[error(
        "error forwarding port {port} to pod {pod}, uid {uid}: {message}",
        uid = .pod.uid,
        message = .source.message()
    )]
    Provider {
        port: u16,
        pod: PodRef,
        #[source]
        source: ProviderError,
    },
    /// Reading or writing the forwarded connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A port that is not a decimal number from 1 to 65535, as the kubelet words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("port {0:?} must be > 0")]
    Zero(String),
    #[error("unable to parse {0:?} as a port")]
    Unparsable(String),
}

/// Timeouts and bounds of a port-forward connection.
#[derive(Clone, Copy, Debug)]
pub struct SessionConfig {
    /// For the second stream of a pair (SPDY).
    pub stream_creation_timeout: Duration,
    /// Close the connection after this long without traffic; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// SPDY streams open at once (two per forwarded connection); more are refused.
    pub max_streams_per_connection: usize,
}

impl SessionConfig {
    /// The SPDY session settings for this config.
    pub fn spdy(&self) -> SpdyConfig {
        SpdyConfig {
            max_concurrent_streams: self.max_streams_per_connection.max(1),
            idle_timeout: self.idle_timeout,
            ..SpdyConfig::default()
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            stream_creation_timeout: DEFAULT_STREAM_CREATION_TIMEOUT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_streams_per_connection: SpdyConfig::default().max_concurrent_streams,
        }
    }
}

/// A port as the kubelet parses it from a header or query parameter: decimal, 1 to 65535.
pub fn parse_port(value: &str) -> Result<u16, PortError> {
    // Go's ParseUint takes no sign, which Rust's parse would.
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<u16>().ok().filter(|_| digits) {
        Some(0) => Err(PortError::Zero(value.to_owned())),
        Some(port) => Ok(port),
        None => Err(PortError::Unparsable(value.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::{ForwardError, PortError, parse_port};
    use crate::provider::{PodRef, ProviderError};

    #[test]
    fn ports_are_decimal_and_between_1_and_65535() {
        assert_eq!(parse_port("80"), Ok(80));
        assert_eq!(parse_port("65535"), Ok(65535));
        let zero = parse_port("0").expect_err("zero");
        assert_eq!(zero, PortError::Zero("0".into()));
        assert_eq!(zero.to_string(), r#"port "0" must be > 0"#);
        for bad in ["", "65536", "-1", "+80", "8o", " 80"] {
            assert_eq!(
                parse_port(bad),
                Err(PortError::Unparsable(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_port("8o").unwrap_err().to_string(),
            r#"unable to parse "8o" as a port"#
        );
    }

    #[test]
    fn a_provider_failure_reads_as_the_kubelets_and_keeps_its_cause() {
        let err = ForwardError::Provider {
            port: 8080,
            pod: PodRef {
                namespace: "ns".into(),
                name: "web".into(),
                uid: "u-1".into(),
            },
            source: ProviderError::NotFound("nothing listens on 8080".into()),
        };
        assert_eq!(
            err.to_string(),
            "error forwarding port 8080 to pod ns/web, uid u-1: nothing listens on 8080"
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.to_string().contains("nothing listens"), "{source}");
    }
}
