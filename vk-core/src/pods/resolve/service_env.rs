//! Service link variables, named as the kubelet names them (its `envvars` package): for every
//! Service of the pod's namespace that has a ClusterIP (not headless, not ExternalName), with
//! `enableServiceLinks` (the default):
//!
//! ```text
//! <NAME>_SERVICE_HOST=<clusterIP>
//! <NAME>_SERVICE_PORT=<first port>
//! <NAME>_SERVICE_PORT_<PORTNAME>=<port>            every named port
//! <NAME>_PORT=<proto>://<clusterIP>:<first port>   Docker links
//! <NAME>_PORT_<port>_<PROTO>=<proto>://<clusterIP>:<port>
//! <NAME>_PORT_<port>_<PROTO>_PROTO=<proto>
//! <NAME>_PORT_<port>_<PROTO>_PORT=<port>
//! <NAME>_PORT_<port>_<PROTO>_ADDR=<clusterIP>
//! ```
//!
//! `<NAME>` is the Service name upper-cased with `-` as `_`. The `kubernetes` Service of the
//! `default` namespace is left out: every container gets `KUBERNETES_*` from the address pods
//! reach the API server at (`env::kubernetes_service_env`), whatever `enableServiceLinks` says.

use k8s_openapi::api::core::v1::Service;

/// The variables of `services` (all of the pod's namespace), Services in name order.
pub fn service_link_env(namespace: &str, services: &[Service]) -> Vec<(String, String)> {
    let mut sorted: Vec<&Service> = services
        .iter()
        .filter(|s| !(namespace == "default" && s.metadata.name.as_deref() == Some("kubernetes")))
        .collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut out = Vec::new();
    for service in sorted {
        let Some(spec) = &service.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let ports = spec.ports.as_deref().unwrap_or_default();
        // A Service with a ClusterIP has at least one port (API validation).
        let Some(first) = ports.first() else { continue };
        let prefix = variable_name(service.metadata.name.as_deref().unwrap_or_default());
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for port in ports {
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", variable_name(name)),
                    port.port.to_string(),
                ));
            }
        }
        let address = |port: i32| {
            if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            }
        };
        for (i, port) in ports.iter().enumerate() {
            let protocol = port
                .protocol
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or("TCP");
            let lower = protocol.to_ascii_lowercase();
            let url = format!("{lower}://{}", address(port.port));
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let pp = format!(
                "{prefix}_PORT_{}_{}",
                port.port,
                protocol.to_ascii_uppercase()
            );
            out.push((pp.clone(), url));
            out.push((format!("{pp}_PROTO"), lower));
            out.push((format!("{pp}_PORT"), port.port.to_string()));
            out.push((format!("{pp}_ADDR"), ip.to_string()));
        }
    }
    out
}

/// `jenkins-agent` → `JENKINS_AGENT`.
fn variable_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(name: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ci"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn variables_are_named_as_the_kubelet_names_them() {
        let services = [service(
            "jenkins-agent",
            json!({"clusterIP": "10.96.12.7", "ports": [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "agent-listener", "port": 50000},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ]}),
        )];
        let env = service_link_env("ci", &services);
        let expected: Vec<(String, String)> = [
            ("JENKINS_AGENT_SERVICE_HOST", "10.96.12.7"),
            ("JENKINS_AGENT_SERVICE_PORT", "8080"),
            ("JENKINS_AGENT_SERVICE_PORT_HTTP", "8080"),
            ("JENKINS_AGENT_SERVICE_PORT_AGENT_LISTENER", "50000"),
            ("JENKINS_AGENT_SERVICE_PORT_DNS", "53"),
            ("JENKINS_AGENT_PORT", "tcp://10.96.12.7:8080"),
            ("JENKINS_AGENT_PORT_8080_TCP", "tcp://10.96.12.7:8080"),
            ("JENKINS_AGENT_PORT_8080_TCP_PROTO", "tcp"),
            ("JENKINS_AGENT_PORT_8080_TCP_PORT", "8080"),
            ("JENKINS_AGENT_PORT_8080_TCP_ADDR", "10.96.12.7"),
            ("JENKINS_AGENT_PORT_50000_TCP", "tcp://10.96.12.7:50000"),
            ("JENKINS_AGENT_PORT_50000_TCP_PROTO", "tcp"),
            ("JENKINS_AGENT_PORT_50000_TCP_PORT", "50000"),
            ("JENKINS_AGENT_PORT_50000_TCP_ADDR", "10.96.12.7"),
            ("JENKINS_AGENT_PORT_53_UDP", "udp://10.96.12.7:53"),
            ("JENKINS_AGENT_PORT_53_UDP_PROTO", "udp"),
            ("JENKINS_AGENT_PORT_53_UDP_PORT", "53"),
            ("JENKINS_AGENT_PORT_53_UDP_ADDR", "10.96.12.7"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, expected);
    }

    #[test]
    fn an_unnamed_single_port_and_ipv6() {
        let env = service_link_env(
            "ci",
            &[service(
                "cache",
                json!({"clusterIP": "fd00::a", "ports": [{"port": 6379}]}),
            )],
        );
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "CACHE_SERVICE_HOST",
                "CACHE_SERVICE_PORT",
                "CACHE_PORT",
                "CACHE_PORT_6379_TCP",
                "CACHE_PORT_6379_TCP_PROTO",
                "CACHE_PORT_6379_TCP_PORT",
                "CACHE_PORT_6379_TCP_ADDR",
            ]
        );
        assert_eq!(env[2].1, "tcp://[fd00::a]:6379");
        assert_eq!(env[6].1, "fd00::a");
    }

    #[test]
    fn headless_external_and_the_api_service_give_nothing() {
        let services = [
            service(
                "headless",
                json!({"clusterIP": "None", "ports": [{"port": 80}]}),
            ),
            service(
                "external",
                json!({"type": "ExternalName", "externalName": "example.com"}),
            ),
            service(
                "kubernetes",
                json!({"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}),
            ),
        ];
        assert!(service_link_env("default", &services).is_empty());
        // Another namespace's own `kubernetes` Service is an ordinary one.
        let env = service_link_env("ci", &services);
        assert_eq!(
            env[0],
            (
                "KUBERNETES_SERVICE_HOST".to_string(),
                "10.96.0.1".to_string()
            )
        );
    }

    #[test]
    fn services_come_in_name_order() {
        let services = [
            service(
                "zeta",
                json!({"clusterIP": "10.0.0.2", "ports": [{"port": 1}]}),
            ),
            service(
                "alpha",
                json!({"clusterIP": "10.0.0.1", "ports": [{"port": 1}]}),
            ),
        ];
        let env = service_link_env("ci", &services);
        assert_eq!(env[0].0, "ALPHA_SERVICE_HOST");
        assert_eq!(env[7].0, "ZETA_SERVICE_HOST");
    }
}
