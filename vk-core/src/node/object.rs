//! The Node object this virtual kubelet registers: labels, taint, capacity, conditions,
//! addresses. Pure functions, so the shape is unit-tested without a cluster.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::provider::{NodeCapacity, ProviderCondition};

/// The project's version as reported in `nodeInfo.kubeletVersion`.
pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"), "-vk-serverless");

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTaint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

impl NodeTaint {
    /// The conventional taint: `virtual-kubelet.io/provider=<provider>:NoSchedule`.
    pub fn for_provider(provider: &str) -> Self {
        Self {
            key: "virtual-kubelet.io/provider".into(),
            value: provider.into(),
            effect: "NoSchedule".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub internal_ip: String,
    pub kubelet_port: u16,
    /// Provider name, used in labels and the default taint.
    pub provider: String,
    /// `None` disables the taint.
    pub taint: Option<NodeTaint>,
    pub extra_labels: BTreeMap<String, String>,
    pub os: String,
    pub arch: String,
}

impl NodeConfig {
    pub fn new(name: &str, internal_ip: &str, provider: &str) -> Self {
        Self {
            name: name.into(),
            internal_ip: internal_ip.into(),
            kubelet_port: 10250,
            provider: provider.into(),
            taint: Some(NodeTaint::for_provider(provider)),
            extra_labels: BTreeMap::new(),
            os: "linux".into(),
            arch: "amd64".into(),
        }
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            ("type".to_string(), "virtual-kubelet".to_string()),
            ("kubernetes.io/role".to_string(), "agent".to_string()),
            ("kubernetes.io/hostname".to_string(), self.name.clone()),
            ("kubernetes.io/os".to_string(), self.os.clone()),
            ("kubernetes.io/arch".to_string(), self.arch.clone()),
            (
                "node.kubernetes.io/instance-type".to_string(),
                self.provider.clone(),
            ),
            (
                "node.kubernetes.io/exclude-from-external-load-balancers".to_string(),
                "true".to_string(),
            ),
        ]);
        labels.extend(self.extra_labels.clone());
        labels
    }

    pub fn taints(&self) -> Vec<Taint> {
        self.taint
            .iter()
            .map(|t| Taint {
                key: t.key.clone(),
                value: Some(t.value.clone()),
                effect: t.effect.clone(),
                time_added: None,
            })
            .collect()
    }
}

/// Why the node is or is not Ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    ProviderUnreachable(String),
}

/// The Node as first created: metadata and spec (status is written separately).
pub fn node_object(config: &NodeConfig) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(config.labels()),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(config.taints()).filter(|t| !t.is_empty()),
            ..Default::default()
        }),
        status: None,
    }
}

fn quantities(capacity: &NodeCapacity) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        (
            "cpu".to_string(),
            Quantity(format!("{}m", capacity.cpu_millis)),
        ),
        (
            "memory".to_string(),
            Quantity(format!("{}", capacity.memory_bytes)),
        ),
        ("pods".to_string(), Quantity(capacity.pods.to_string())),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}", capacity.ephemeral_storage_bytes)),
        ),
    ])
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
    previous: Option<&NodeCondition>,
) -> NodeCondition {
    let status = if status { "True" } else { "False" }.to_string();
    // The transition time moves only when the status does.
    let transition = previous
        .filter(|p| p.status == status)
        .and_then(|p| p.last_transition_time.clone())
        .unwrap_or(Time(now));
    NodeCondition {
        type_: type_.into(),
        status,
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(transition),
    }
}

/// The full status this node reports. `previous` keeps transition times stable.
pub fn node_status(
    config: &NodeConfig,
    capacity: &NodeCapacity,
    readiness: &Readiness,
    previous: Option<&NodeStatus>,
    now: Timestamp,
) -> NodeStatus {
    let prev = |t: &str| {
        previous
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
    };
    let ready = match readiness {
        Readiness::Ready => condition(
            "Ready",
            true,
            "KubeletReady",
            "virtual kubelet is ready; the provider answers",
            now,
            prev("Ready"),
        ),
        Readiness::ProviderUnreachable(err) => condition(
            "Ready",
            false,
            "ProviderUnreachable",
            &format!("the {} provider does not answer: {err}", config.provider),
            now,
            prev("Ready"),
        ),
    };
    let pressure = |t: &str, reason: &str, what: &str| {
        condition(
            t,
            false,
            reason,
            &format!("the {} provider has no {what}", config.provider),
            now,
            prev(t),
        )
    };
    let resources = quantities(capacity);
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            ready,
            pressure(
                "MemoryPressure",
                "KubeletHasSufficientMemory",
                "memory pressure",
            ),
            pressure("DiskPressure", "KubeletHasNoDiskPressure", "disk pressure"),
            pressure("PIDPressure", "KubeletHasSufficientPID", "PID pressure"),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: config.internal_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: config.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: config.arch.clone(),
            operating_system: config.os.clone(),
            kubelet_version: VERSION.into(),
            kube_proxy_version: String::new(),
            container_runtime_version: format!("{}://{}", config.provider, VERSION),
            os_image: format!("{} serverless containers", config.provider),
            kernel_version: String::new(),
            boot_id: String::new(),
            machine_id: String::new(),
            system_uuid: String::new(),
            ..Default::default()
        }),
        phase: None,
        ..Default::default()
    }
}

/// Append the provider's own conditions (after Ready and the pressure conditions), with
/// transition times kept from `previous` as for the others.
pub fn add_provider_conditions(
    status: &mut NodeStatus,
    conditions: &[ProviderCondition],
    previous: Option<&NodeStatus>,
    now: Timestamp,
) {
    let prev = |t: &str| {
        previous
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
    };
    let list = status.conditions.get_or_insert_with(Vec::new);
    for c in conditions {
        if list.iter().any(|have| have.type_ == c.type_) {
            continue;
        }
        list.push(condition(
            &c.type_,
            c.healthy,
            &c.reason,
            &c.message,
            now,
            prev(&c.type_),
        ));
    }
}

/// True when `a` and `b` differ in anything but heartbeat times.
pub fn status_changed(a: &NodeStatus, b: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        s
    };
    strip(a) != strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity() -> NodeCapacity {
        NodeCapacity {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            pods: 10,
            ephemeral_storage_bytes: 1 << 30,
        }
    }

    #[test]
    fn node_has_the_virtual_kubelet_labels_and_taint() {
        let node = node_object(&NodeConfig::new("vk-1", "10.0.0.9", "mock"));
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["type"], "virtual-kubelet");
        assert_eq!(labels["kubernetes.io/role"], "agent");
        assert_eq!(labels["kubernetes.io/hostname"], "vk-1");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "mock");
        let taints = node.spec.unwrap().taints.unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "virtual-kubelet.io/provider");
        assert_eq!(taints[0].value.as_deref(), Some("mock"));
        assert_eq!(taints[0].effect, "NoSchedule");
    }

    #[test]
    fn taint_can_be_disabled() {
        let mut config = NodeConfig::new("vk-1", "10.0.0.9", "mock");
        config.taint = None;
        assert!(node_object(&config).spec.unwrap().taints.is_none());
    }

    #[test]
    fn status_reports_capacity_address_and_readiness() {
        let config = NodeConfig::new("vk-1", "10.0.0.9", "mock");
        let now = Timestamp::now();
        let status = node_status(&config, &capacity(), &Readiness::Ready, None, now);
        assert_eq!(status.capacity.as_ref().unwrap()["cpu"].0, "2000m");
        assert_eq!(status.allocatable.as_ref().unwrap()["pods"].0, "10");
        let addresses = status.addresses.as_ref().unwrap();
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[0].address, "10.0.0.9");
        let ready = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "True")
        );

        let down = node_status(
            &config,
            &capacity(),
            &Readiness::ProviderUnreachable("timeout".into()),
            Some(&status),
            now,
        );
        let ready = &down.conditions.as_ref().unwrap()[0];
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ProviderUnreachable"));
        assert!(status_changed(&status, &down));
    }

    #[test]
    fn heartbeat_alone_is_not_a_change_and_keeps_transition_time() {
        let config = NodeConfig::new("vk-1", "10.0.0.9", "mock");
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_060).unwrap();
        let a = node_status(&config, &capacity(), &Readiness::Ready, None, t0);
        let b = node_status(&config, &capacity(), &Readiness::Ready, Some(&a), t1);
        assert!(!status_changed(&a, &b));
        let ready = &b.conditions.as_ref().unwrap()[0];
        assert_eq!(ready.last_transition_time, Some(Time(t0)));
        assert_eq!(ready.last_heartbeat_time, Some(Time(t1)));
    }

    #[test]
    fn provider_conditions_follow_the_others_and_keep_their_transition_time() {
        let config = NodeConfig::new("vk-1", "10.0.0.9", "mock");
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_060).unwrap();
        let failing = ProviderCondition {
            type_: "CloudCredentials".into(),
            healthy: false,
            reason: "CredentialRefreshFailed".into(),
            message: "STS answered 503".into(),
        };
        let mut a = node_status(&config, &capacity(), &Readiness::Ready, None, t0);
        add_provider_conditions(&mut a, std::slice::from_ref(&failing), None, t0);
        let conditions = a.conditions.as_ref().unwrap();
        assert_eq!(conditions[0].type_, "Ready");
        let added = conditions.last().unwrap();
        assert_eq!(
            (added.type_.as_str(), added.status.as_str()),
            ("CloudCredentials", "False")
        );
        assert_eq!(added.reason.as_deref(), Some("CredentialRefreshFailed"));

        let mut same = node_status(&config, &capacity(), &Readiness::Ready, Some(&a), t1);
        add_provider_conditions(&mut same, std::slice::from_ref(&failing), Some(&a), t1);
        assert!(!status_changed(&a, &same));

        let healthy = ProviderCondition {
            healthy: true,
            reason: "CredentialsRefreshed".into(),
            ..failing
        };
        let mut b = node_status(&config, &capacity(), &Readiness::Ready, Some(&a), t1);
        add_provider_conditions(&mut b, &[healthy], Some(&a), t1);
        assert!(status_changed(&a, &b));
        let cleared = b.conditions.as_ref().unwrap().last().unwrap();
        assert_eq!(cleared.status, "True");
        assert_eq!(cleared.last_transition_time, Some(Time(t1)));
    }
}
