//! Several virtual nodes from one `vk run`: the config's `nodes:` list, one entry per zone or
//! vSwitch. Each entry becomes its own Node (name, labels, kubelet API port, serving
//! certificate directory) with its own cloud placement (zone, vSwitch, security group); the
//! process shares its Kubernetes client, metrics and (eci) cloud client among them. Without
//! `nodes:` there is one node, as configured at the top level.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde::Deserialize;
use vk_core::metrics::ProviderMetrics;
use vk_core::node::NodeConfig;
use vk_core::provider::{Provider, ProviderError};

use aci::{AciConfig, AciProvider};
use eci::{EciClient, EciConfig, EciProvider};
use fargate::{FargateConfig, FargateProvider};
use mock::{MockConfig, MockProvider};

/// The label the scheduler's topology spreading and zone affinity read.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// One entry of `nodes:`; what it leaves out comes from the top level.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeEntry {
    /// Default: `<node_name>-<zone_id>`, else `<node_name>-<index>`.
    pub name: Option<String>,
    /// Merged over the top-level `labels`.
    pub labels: BTreeMap<String, String>,
    /// Default: the top-level kubelet port plus the entry's index.
    pub kubelet_port: Option<u16>,
    pub zone_id: Option<String>,
    pub vswitch_id: Option<String>,
    pub security_group_id: Option<String>,
}

/// Where a node's instances run in the cloud (eci's `zone_id`, `vswitch_id`,
/// `security_group_id`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloudPlacement {
    pub zone_id: Option<String>,
    pub vswitch_id: Option<String>,
    pub security_group_id: Option<String>,
}

/// One node to run.
#[derive(Clone, Debug)]
pub struct PlannedNode {
    pub node: NodeConfig,
    pub placement: CloudPlacement,
    /// Where its serving certificate is kept.
    pub cert_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeSetError {
    #[error("nodes[{index}]: {message}")]
    Entry { index: usize, message: String },
    #[error("two entries of nodes: are named {0}; give each its own name")]
    DuplicateName(String),
    #[error("two entries of nodes: use kubelet port {0}; give each its own kubelet_port")]
    DuplicatePort(u16),
    #[error("unknown provider {0:?}; available: mock, eci, aci, fargate")]
    UnknownProvider(String),
    #[error("configuring the eci provider (the `eci:` section of the config file): {0}")]
    Provider(ProviderError),
    #[error("configuring the aci provider (the `aci:` section of the config file): {0}")]
    Aci(ProviderError),
    #[error("configuring the fargate provider (the `fargate:` section of the config file): {0}")]
    Fargate(ProviderError),
}

/// The nodes to run: `entries` over the top-level `base` node and `placement`. A zone becomes
/// the node's `topology.kubernetes.io/zone` label (and `region`, when given, its region
/// label), so the scheduler can spread pods across zones. With several nodes each keeps its
/// certificate in `<cert_dir>/<node>`; a single node keeps `cert_dir` itself.
pub fn plan(
    base: &NodeConfig,
    placement: &CloudPlacement,
    region: Option<&str>,
    cert_dir: &Path,
    entries: &[NodeEntry],
) -> Result<Vec<PlannedNode>, NodeSetError> {
    // Labels the operator set at this level win; an entry's zone wins over the top level's.
    let labelled =
        |mut node: NodeConfig, placement: &CloudPlacement, own: &BTreeMap<String, String>| {
            if let Some(zone) = &placement.zone_id {
                if !own.contains_key(ZONE_LABEL) {
                    node.extra_labels.insert(ZONE_LABEL.into(), zone.clone());
                }
                if let Some(region) = region.filter(|_| !own.contains_key(REGION_LABEL)) {
                    node.extra_labels
                        .insert(REGION_LABEL.into(), region.to_string());
                }
            }
            node
        };
    if entries.is_empty() {
        return Ok(vec![PlannedNode {
            node: labelled(base.clone(), placement, &base.extra_labels),
            placement: placement.clone(),
            cert_dir: cert_dir.to_path_buf(),
        }]);
    }
    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    let mut planned = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let entry_error = |message: String| NodeSetError::Entry { index, message };
        let placement = CloudPlacement {
            zone_id: entry.zone_id.clone().or(placement.zone_id.clone()),
            vswitch_id: entry.vswitch_id.clone().or(placement.vswitch_id.clone()),
            security_group_id: entry
                .security_group_id
                .clone()
                .or(placement.security_group_id.clone()),
        };
        let name = match (&entry.name, &entry.zone_id) {
            (Some(name), _) => name.clone(),
            (None, Some(zone)) => format!("{}-{zone}", base.name),
            (None, None) => format!("{}-{index}", base.name),
        };
        if !is_dns_subdomain(&name) {
            return Err(entry_error(format!(
                "node name {name:?} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')"
            )));
        }
        let offset = u16::try_from(index).map_err(|_| entry_error("too many nodes".into()))?;
        let port = match entry.kubelet_port {
            Some(port) => port,
            None => base.kubelet_port.checked_add(offset).ok_or_else(|| {
                entry_error("no kubelet port left above the top-level one; set kubelet_port".into())
            })?,
        };
        if !names.insert(name.clone()) {
            return Err(NodeSetError::DuplicateName(name));
        }
        if !ports.insert(port) {
            return Err(NodeSetError::DuplicatePort(port));
        }
        let mut node = base.clone();
        node.name = name.clone();
        node.kubelet_port = port;
        node.extra_labels
            .extend(entry.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        planned.push(PlannedNode {
            node: labelled(node, &placement, &entry.labels),
            placement,
            cert_dir: cert_dir.join(&name),
        });
    }
    Ok(planned)
}

/// The configured provider (`mock`, `eci`, `aci` or `fargate`), one per node. The eci providers share one
/// client (its credentials and rate limits: ECI's quotas are per account) and count their cloud
/// calls into `metrics`; so do the aci providers (ARM's and ACI's limits are per subscription)
/// and the fargate providers (Fargate's rates are per account and region).
pub fn providers(
    provider: &str,
    mock: &MockConfig,
    eci: &EciConfig,
    aci: &AciConfig,
    fargate: &FargateConfig,
    nodes: &[PlannedNode],
    metrics: ProviderMetrics,
) -> Result<NodeProviders, NodeSetError> {
    let mut shared: Option<Arc<EciClient>> = None;
    let mut first_aci: Option<Arc<AciProvider>> = None;
    let mut first_fargate: Option<Arc<FargateProvider>> = None;
    let mut out: Vec<Arc<dyn Provider>> = Vec::with_capacity(nodes.len());
    for planned in nodes {
        let built: Arc<dyn Provider> = match provider {
            "mock" => {
                let mut config = mock.clone();
                // Each node's instances persist apart.
                if nodes.len() > 1 {
                    config.state_file = config
                        .state_file
                        .map(|f| f.with_extension(format!("{}.json", planned.node.name)));
                }
                Arc::new(MockProvider::new(config))
            }
            "eci" => {
                let mut config = eci.clone();
                // Every container group is tagged with the node; listing filters on it.
                config.node_name = planned.node.name.clone();
                config.zone_id = planned.placement.zone_id.clone();
                config.vswitch_id = planned.placement.vswitch_id.clone();
                config.security_group_id = planned.placement.security_group_id.clone();
                let provider = match &shared {
                    Some(client) => EciProvider::sharing(client.clone(), config),
                    None => EciProvider::recording(config, metrics.clone()),
                }
                .map_err(NodeSetError::Provider)?;
                if shared.is_none() {
                    // Which source of the credential chain signs the calls (never the secret).
                    let credentials = provider.client().credentials();
                    tracing::info!(
                        source = credentials.source_name(),
                        from = %credentials.describe(),
                        "eci credentials"
                    );
                    shared = Some(provider.client().clone());
                }
                Arc::new(provider)
            }
            "aci" => {
                let mut config = aci.clone();
                // Every container group is tagged with the node; listing filters on it.
                config.node_name = planned.node.name.clone();
                match &first_aci {
                    Some(first) => Arc::new(first.sharing(config).map_err(NodeSetError::Aci)?),
                    None => {
                        let provider =
                            Arc::new(AciProvider::new(config).map_err(NodeSetError::Aci)?);
                        // Which source gets the tokens (never a secret).
                        let tokens = provider.client().tokens();
                        tracing::info!(source = tokens.source_name(), from = %tokens.describe(), "aci credentials");
                        first_aci = Some(provider.clone());
                        provider
                    }
                }
            }
            "fargate" => {
                let mut config = fargate.clone();
                // Every task is tagged with the node; listing filters on it.
                config.node_name = planned.node.name.clone();
                match &first_fargate {
                    Some(first) => Arc::new(first.sharing(config).map_err(NodeSetError::Fargate)?),
                    None => {
                        let provider =
                            Arc::new(FargateProvider::new(config).map_err(NodeSetError::Fargate)?);
                        // Which source gets the keys (never a secret).
                        let keys = provider.client().credentials();
                        tracing::info!(source = keys.source_name(), from = %keys.describe(), "fargate credentials");
                        first_fargate = Some(provider.clone());
                        provider
                    }
                }
            }
            other => return Err(NodeSetError::UnknownProvider(other.to_string())),
        };
        out.push(built);
    }
    Ok(NodeProviders {
        each: out,
        eci_client: shared,
    })
}

/// A provider per node, and the eci client they share.
pub struct NodeProviders {
    pub each: Vec<Arc<dyn Provider>>,
    pub eci_client: Option<Arc<EciClient>>,
}

/// RFC 1123 subdomain, as Node names must be.
fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NodeConfig {
        let mut node = NodeConfig::new("vk", "10.0.0.9", "eci");
        node.extra_labels.insert("team".into(), "ci".into());
        node.extra_labels
            .insert(ZONE_LABEL.into(), "set-at-the-top".into());
        node
    }

    #[test]
    fn without_entries_the_top_level_node_runs_alone() {
        let placement = CloudPlacement {
            zone_id: Some("cn-hangzhou-k".into()),
            ..Default::default()
        };
        let nodes = plan(
            &base(),
            &placement,
            Some("cn-hangzhou"),
            Path::new("/var/lib/vk"),
            &[],
        )
        .unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].node.name, "vk");
        assert_eq!(nodes[0].node.kubelet_port, 10250);
        assert_eq!(nodes[0].cert_dir, Path::new("/var/lib/vk"));
        // The operator's own label wins over the zone's.
        assert_eq!(nodes[0].node.extra_labels[ZONE_LABEL], "set-at-the-top");
        assert_eq!(nodes[0].node.extra_labels[REGION_LABEL], "cn-hangzhou");
    }

    #[test]
    fn entries_override_name_port_labels_and_placement() {
        let placement = CloudPlacement {
            zone_id: None,
            vswitch_id: Some("vsw-default".into()),
            security_group_id: Some("sg-shared".into()),
        };
        let entries: Vec<NodeEntry> = serde_yaml::from_str(
            "- zone_id: cn-hangzhou-j\n  vswitch_id: vsw-j\n- name: vk-k\n  zone_id: cn-hangzhou-k\n  kubelet_port: 10300\n  labels: {team: builds}\n",
        )
        .unwrap();
        let nodes = plan(
            &base(),
            &placement,
            Some("cn-hangzhou"),
            Path::new("/certs"),
            &entries,
        )
        .unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.node.name.as_str()).collect();
        assert_eq!(names, ["vk-cn-hangzhou-j", "vk-k"]);
        assert_eq!(nodes[0].node.kubelet_port, 10250);
        assert_eq!(nodes[1].node.kubelet_port, 10300);
        assert_eq!(nodes[0].placement.vswitch_id.as_deref(), Some("vsw-j"));
        assert_eq!(
            nodes[1].placement.vswitch_id.as_deref(),
            Some("vsw-default")
        );
        assert_eq!(
            nodes[1].placement.security_group_id.as_deref(),
            Some("sg-shared")
        );
        assert_eq!(nodes[0].node.extra_labels[ZONE_LABEL], "cn-hangzhou-j");
        assert_eq!(nodes[1].node.extra_labels[ZONE_LABEL], "cn-hangzhou-k");
        assert_eq!(nodes[0].node.extra_labels["team"], "ci");
        assert_eq!(nodes[1].node.extra_labels["team"], "builds");
        assert_eq!(nodes[1].cert_dir, Path::new("/certs/vk-k"));
    }

    #[test]
    fn clashing_or_invalid_entries_are_refused() {
        let p = CloudPlacement::default();
        let dir = Path::new("/c");
        let twice = [
            NodeEntry {
                name: Some("a".into()),
                ..Default::default()
            },
            NodeEntry {
                name: Some("a".into()),
                ..Default::default()
            },
        ];
        assert!(matches!(
            plan(&base(), &p, None, dir, &twice),
            Err(NodeSetError::DuplicateName(name)) if name == "a"
        ));
        let same_port = [
            NodeEntry {
                kubelet_port: Some(10251),
                ..Default::default()
            },
            NodeEntry::default(),
        ];
        assert!(matches!(
            plan(&base(), &p, None, dir, &same_port),
            Err(NodeSetError::DuplicatePort(10251))
        ));
        let bad = [NodeEntry {
            name: Some("Zone_A".into()),
            ..Default::default()
        }];
        assert!(matches!(
            plan(&base(), &p, None, dir, &bad),
            Err(NodeSetError::Entry { index: 0, .. })
        ));
    }

    #[test]
    fn aci_nodes_share_one_client_and_a_bad_aci_section_is_named() {
        let nodes = plan(
            &base(),
            &CloudPlacement::default(),
            None,
            Path::new("/c"),
            &[
                NodeEntry {
                    name: Some("vk-a".into()),
                    ..Default::default()
                },
                NodeEntry {
                    name: Some("vk-b".into()),
                    ..Default::default()
                },
            ],
        )
        .unwrap();
        let aci: AciConfig = serde_yaml::from_str(
            "subscription_id: sub\nresource_group: rg\nlocation: westeurope\ncredentials: {source: managed_identity}\n",
        )
        .unwrap();
        let built = providers(
            "aci",
            &MockConfig::default(),
            &EciConfig::default(),
            &aci,
            &FargateConfig::default(),
            &nodes,
            Default::default(),
        )
        .expect("aci providers");
        assert_eq!(built.each.len(), 2);
        assert!(built.each.iter().all(|p| p.name() == "aci"));
        let err = providers(
            "aci",
            &MockConfig::default(),
            &EciConfig::default(),
            &AciConfig::default(),
            &FargateConfig::default(),
            &nodes,
            Default::default(),
        )
        .err()
        .expect("an empty aci section");
        assert!(
            err.to_string().contains("aci.subscription_id is not set"),
            "{err}"
        );
        assert!(err.to_string().contains("`aci:` section"), "{err}");
    }

    #[test]
    fn fargate_nodes_share_one_client_and_a_bad_fargate_section_is_named() {
        let nodes = plan(
            &base(),
            &CloudPlacement::default(),
            None,
            Path::new("/c"),
            &[
                NodeEntry {
                    name: Some("vk-a".into()),
                    ..Default::default()
                },
                NodeEntry {
                    name: Some("vk-b".into()),
                    ..Default::default()
                },
            ],
        )
        .unwrap();
        let fargate: FargateConfig = serde_yaml::from_str(
            "region: eu-west-1\nsubnets: [subnet-1]\ncredentials: {source: imds}\n",
        )
        .unwrap();
        let built = providers(
            "fargate",
            &MockConfig::default(),
            &EciConfig::default(),
            &AciConfig::default(),
            &fargate,
            &nodes,
            Default::default(),
        )
        .expect("fargate providers");
        assert_eq!(built.each.len(), 2);
        assert!(built.each.iter().all(|p| p.name() == "fargate"));
        let err = providers(
            "fargate",
            &MockConfig::default(),
            &EciConfig::default(),
            &AciConfig::default(),
            &FargateConfig::default(),
            &nodes,
            Default::default(),
        )
        .err()
        .expect("an empty fargate section");
        assert!(
            err.to_string().contains("fargate.region is not set"),
            "{err}"
        );
        assert!(err.to_string().contains("`fargate:` section"), "{err}");
    }
}
