//! A container's probes as the kubelet runs them: the handler with named ports looked up in the
//! container's ports, `$(VAR)` in exec commands expanded against the container's literal
//! `env` values only (the kubelet's `ExpandContainerCommandOnlyStatic`), and the API's
//! defaults for unset numbers.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Probe as K8sProbe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ResolveError, expand};
use crate::provider::{Probe, ProbeHandler};

/// The startup, liveness and readiness probes of `c`.
pub(super) type Probes = (Option<Probe>, Option<Probe>, Option<Probe>);

pub(super) fn resolve_probes(c: &Container) -> Result<Probes, ResolveError> {
    Ok((
        resolve(c, "startupProbe", c.startup_probe.as_ref())?,
        resolve(c, "livenessProbe", c.liveness_probe.as_ref())?,
        resolve(c, "readinessProbe", c.readiness_probe.as_ref())?,
    ))
}

fn resolve(
    c: &Container,
    field: &str,
    p: Option<&K8sProbe>,
) -> Result<Option<Probe>, ResolveError> {
    let Some(p) = p else {
        return Ok(None);
    };
    let invalid =
        |what: String| ResolveError::Invalid(format!("container {:?}: {field}: {what}", c.name));
    let handler = if let Some(exec) = &p.exec {
        let statics: HashMap<&str, &str> = c
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.value.as_deref().map(|v| (e.name.as_str(), v)))
            .collect();
        let command = exec
            .command
            .iter()
            .flatten()
            .map(|s| expand::expand(s, |name| statics.get(name).map(|v| v.to_string())))
            .collect::<Vec<_>>();
        if command.is_empty() {
            return Err(invalid("exec needs a command".into()));
        }
        ProbeHandler::Exec { command }
    } else if let Some(http) = &p.http_get {
        let path = http.path.clone().unwrap_or_default();
        ProbeHandler::HttpGet {
            host: http.host.clone().filter(|h| !h.is_empty()),
            port: port(c, &http.port).map_err(|e| invalid(e.to_string()))?,
            path: if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            },
            https: http
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")),
            headers: http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        }
    } else if let Some(tcp) = &p.tcp_socket {
        ProbeHandler::TcpSocket {
            host: tcp.host.clone().filter(|h| !h.is_empty()),
            port: port(c, &tcp.port).map_err(|e| invalid(e.to_string()))?,
        }
    } else if let Some(grpc) = &p.grpc {
        ProbeHandler::Grpc {
            port: u16::try_from(grpc.port)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    invalid(format!(
                        "grpc port {} is not between 1 and 65535",
                        grpc.port
                    ))
                })?,
            service: grpc.service.clone().filter(|s| !s.is_empty()),
        }
    } else {
        return Err(invalid(
            "no handler (exec, httpGet, tcpSocket or grpc)".into(),
        ));
    };
    // The API server defaults these; a zero means unset.
    let or = |v: Option<i32>, default: u32| {
        v.and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    Ok(Some(Probe {
        handler,
        initial_delay_seconds: p
            .initial_delay_seconds
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        period_seconds: or(p.period_seconds, 10),
        timeout_seconds: or(p.timeout_seconds, 1),
        success_threshold: or(p.success_threshold, 1),
        failure_threshold: or(p.failure_threshold, 3),
        termination_grace_period_seconds: p.termination_grace_period_seconds,
    }))
}

/// Why a probe's port names no port.
#[derive(Debug, thiserror::Error)]
enum PortError {
    #[error("port {0:?} is not a named port of the container")]
    UnknownName(String),
    #[error("port {0} is not between 1 and 65535")]
    OutOfRange(i32),
}

/// A port number, or a port name of the container (the kubelet then tries the name as a
/// number, too).
fn port(c: &Container, port: &IntOrString) -> Result<u16, PortError> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .or_else(|| name.parse().ok())
            .ok_or_else(|| PortError::UnknownName(name.clone()))?,
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(PortError::OutOfRange(number))
}
