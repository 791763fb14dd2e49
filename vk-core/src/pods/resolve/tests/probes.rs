//! Probes: handlers, named ports, the API's defaults, `$(VAR)` in exec commands.

use super::*;
use crate::provider::{Probe, ProbeHandler};

#[tokio::test]
async fn probes_get_defaults_and_named_ports() {
    let p = pod_with_container(json!({
        "name": "app", "image": "nginx",
        "ports": [{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9000}],
        "env": [
            {"name": "MARKER", "value": "/tmp/ready"},
            {"name": "FROM_SECRET", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "readinessProbe": {"exec": {"command": ["test", "-f", "$(MARKER)", "$(FROM_SECRET)"]}},
        "livenessProbe": {
            "httpGet": {"path": "healthz", "port": "http", "scheme": "HTTPS",
                        "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
            "initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3,
            "failureThreshold": 4, "terminationGracePeriodSeconds": 7,
        },
        "startupProbe": {"tcpSocket": {"port": "admin"}},
    }));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let c = app(&r);
    // Only literal values expand, like the kubelet's static expansion.
    assert_eq!(
        c.readiness_probe,
        Some(Probe::new(ProbeHandler::Exec {
            command: vec![
                "test".into(),
                "-f".into(),
                "/tmp/ready".into(),
                "$(FROM_SECRET)".into()
            ],
        }))
    );
    let live = c.liveness_probe.as_ref().unwrap();
    assert_eq!(
        live.handler,
        ProbeHandler::HttpGet {
            host: None,
            port: 8080,
            path: "/healthz".into(),
            https: true,
            headers: vec![("X-Probe".into(), "1".into())],
        }
    );
    assert_eq!(
        (
            live.initial_delay_seconds,
            live.period_seconds,
            live.timeout_seconds,
            live.success_threshold,
            live.failure_threshold,
            live.termination_grace_period_seconds
        ),
        (5, 2, 3, 1, 4, Some(7))
    );
    assert_eq!(
        c.startup_probe.as_ref().unwrap().handler,
        ProbeHandler::TcpSocket {
            host: None,
            port: 9000
        }
    );
}

#[tokio::test]
async fn grpc_probe_and_numeric_port_names() {
    let p = pod_with_container(json!({
        "name": "app", "image": "nginx",
        "livenessProbe": {"grpc": {"port": 50051, "service": "build"}},
        "readinessProbe": {"tcpSocket": {"port": "8080", "host": "10.1.2.3"}},
    }));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let c = app(&r);
    assert_eq!(
        c.liveness_probe.as_ref().unwrap().handler,
        ProbeHandler::Grpc {
            port: 50051,
            service: Some("build".into())
        }
    );
    assert_eq!(
        c.readiness_probe.as_ref().unwrap().handler,
        ProbeHandler::TcpSocket {
            host: Some("10.1.2.3".into()),
            port: 8080
        }
    );
}

#[tokio::test]
async fn an_unknown_port_name_is_invalid() {
    let p = pod_with_container(json!({
        "name": "app", "image": "nginx",
        "readinessProbe": {"httpGet": {"port": "web"}},
    }));
    assert_invalid(
        resolve(&p, &FakeSource::new()).await,
        "readinessProbe: port \"web\" is not a named port of the container",
    );
}
