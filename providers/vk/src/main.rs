//! `vk`: the virtual kubelet. `vk run` registers a virtual node with a cluster and runs the
//! pods bound to it through a provider.

mod apiclient;
mod doctor;
mod doctor_cloud;
mod health;
mod node_set;
mod outcome;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::node_set::{CloudPlacement, NodeEntry, NodeProviders, PlannedNode};
use aci::AciConfig;
use anyhow::{Context, bail};
use certs::{ServingCert, ServingCertConfig, ServingCertMode};
use clap::{Args, Parser, Subcommand};
use eci::EciConfig;
use fargate::FargateConfig;
use mock::MockConfig;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use vk_core::cli;
use vk_core::kubelet::{KubeletAuth, KubeletServer, StreamingConfig};
use vk_core::leader::{LeaderConfig, LeaderElector, Lost};
use vk_core::node::{NodeConfig, NodeController, NodeTaint};
use vk_core::pods::{PodController, PodControllerConfig};
use vk_core::provider::Provider;

#[derive(Parser)]
#[command(
    name = "vk",
    version,
    about = "A virtual kubelet that runs pods as serverless container instances"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register the virtual node and run the pods bound to it.
    Run(RunArgs),
    /// Check, with the same flags and config as `vk run`, what the node needs (API access, every
    /// RBAC permission, each Node and its Lease, the serving certificates, the client CA, the
    /// cloud's credentials, and on eci each node's zone, vSwitch and security group and the
    /// account's vCPU quota); prints a fix for each failed check and exits non-zero.
    Doctor(RunArgs),
}

/// Flags override the environment, which overrides the config file.
#[derive(Args, Debug)]
struct RunArgs {
    /// YAML config file (see manifests/base/config.yaml).
    #[arg(long, env = "VK_CONFIG")]
    config: Option<PathBuf>,
    /// Kubeconfig to use; without it, the in-cluster config or ~/.kube/config.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Name of the Node to register.
    #[arg(long, env = "VK_NODE_NAME")]
    node_name: Option<String>,
    /// The node's InternalIP: where the API server reaches the kubelet API.
    #[arg(long, env = "VK_NODE_IP")]
    node_ip: Option<String>,
    /// Backend: `mock`, `eci`, `aci` or `fargate`.
    #[arg(long, env = "VK_PROVIDER")]
    provider: Option<String>,
    /// Port of the kubelet API, published in the Node's daemon endpoints.
    #[arg(long, env = "VK_KUBELET_PORT")]
    kubelet_port: Option<u16>,
    /// Plain-HTTP port for /healthz and /readyz (0 disables it).
    #[arg(long, env = "VK_HEALTH_PORT")]
    health_port: Option<u16>,
    /// Pods reconciled at once.
    #[arg(long, env = "VK_POD_WORKERS")]
    pod_workers: Option<u16>,
    /// Where pods reach the API server, `host:port` (their `KUBERNETES_SERVICE_HOST`/`_PORT`);
    /// default: the address vk itself uses; `none`: not set.
    #[arg(long, env = "VK_POD_API_ENDPOINT")]
    pod_api_endpoint: Option<String>,
    /// DNS server(s) of `ClusterFirst` pods, comma-separated IPs (the kubelet's
    /// `--cluster-dns`); default: the ClusterIP of the kube-system/kube-dns Service.
    #[arg(long, env = "VK_CLUSTER_DNS", value_delimiter = ',')]
    cluster_dns: Vec<String>,
    /// The cluster's DNS domain, for pods' search paths and FQDNs (default cluster.local).
    #[arg(long, env = "VK_CLUSTER_DOMAIN")]
    cluster_domain: Option<String>,
    /// Taint key (default virtual-kubelet.io/provider).
    #[arg(long, env = "VK_TAINT_KEY")]
    taint_key: Option<String>,
    /// Taint value (default: the provider name).
    #[arg(long, env = "VK_TAINT_VALUE")]
    taint_value: Option<String>,
    /// Taint effect: NoSchedule, PreferNoSchedule or NoExecute.
    #[arg(long, env = "VK_TAINT_EFFECT")]
    taint_effect: Option<String>,
    /// Register the node without a taint: any pod may then land on it.
    #[arg(long, env = "VK_DISABLE_TAINT")]
    disable_taint: bool,
    /// Where the serving certificate comes from: csr (default), files, self-signed (dev only).
    #[arg(long, env = "VK_SERVING_CERT")]
    serving_cert: Option<String>,
    /// Approve our own kubelet-serving CSR (dev clusters only; needs extra RBAC).
    #[arg(long, env = "VK_SERVING_CERT_AUTO_APPROVE")]
    serving_cert_auto_approve: bool,
    /// Serving certificate and key (PEM) for `--serving-cert files`.
    #[arg(long, env = "VK_TLS_CERT_FILE")]
    tls_cert_file: Option<PathBuf>,
    #[arg(long, env = "VK_TLS_KEY_FILE")]
    tls_key_file: Option<PathBuf>,
    /// Directory keeping the CSR-issued key and certificate across restarts.
    #[arg(long, env = "VK_CERT_DIR")]
    cert_dir: Option<PathBuf>,
    /// CA that signs the API server's kubelet-client certificate (default: the cluster's
    /// `client-ca-file` from kube-system/extension-apiserver-authentication).
    #[arg(long, env = "VK_CLIENT_CA_FILE")]
    client_ca_file: Option<PathBuf>,
    /// DEV ONLY: serve the kubelet API without authentication or authorization.
    #[arg(long, env = "VK_DISABLE_KUBELET_AUTH")]
    disable_kubelet_auth: bool,
    /// Run as one of several replicas: only the holder of the leader Lease runs the nodes
    /// (`leader_election` in the config file for its namespace, name and timings).
    #[arg(long, env = "VK_LEADER_ELECT")]
    leader_elect: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default, deny_unknown_fields)]
struct TaintFile {
    key: Option<String>,
    value: Option<String>,
    effect: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default, deny_unknown_fields)]
struct KubeletFile {
    serving_cert: Option<String>,
    auto_approve: bool,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    cert_dir: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    disable_auth: bool,
    /// Close an exec/attach connection idle this long (the kubelet's
    /// `streamingConnectionIdleTimeout`; default 4 h; 0: never).
    streaming_idle_timeout_seconds: Option<u64>,
    /// Time the client has to open its exec/attach streams after the upgrade (default 30).
    stream_creation_timeout_seconds: Option<u64>,
    /// Streams open at once on one exec/attach connection (default 100).
    max_streams_per_connection: Option<usize>,
    /// Exec/attach sessions open at once on the node; more get 429 (default 256).
    max_streaming_sessions: Option<usize>,
}

/// `leader_election:` in the config file ([`vk_core::leader`]).
#[derive(Deserialize, Debug, Default)]
#[serde(default, deny_unknown_fields)]
struct LeaderElectionFile {
    enabled: bool,
    /// Namespace of the leader Lease (default `$POD_NAMESPACE`, else vk-system).
    namespace: Option<String>,
    /// Its name (default `vk-<node_name>`).
    name: Option<String>,
    /// This replica (default `$POD_NAME`, else host name and process id).
    identity: Option<String>,
    lease_duration_seconds: Option<u64>,
    renew_deadline_seconds: Option<u64>,
    retry_period_seconds: Option<u64>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    node_name: Option<String>,
    node_ip: Option<String>,
    provider: Option<String>,
    kubelet_port: Option<u16>,
    health_port: Option<u16>,
    pod_workers: Option<u16>,
    pod_api_endpoint: Option<String>,
    cluster_dns: Vec<String>,
    cluster_domain: Option<String>,
    taint: Option<TaintFile>,
    disable_taint: bool,
    labels: BTreeMap<String, String>,
    /// Re-issue pods' service-account tokens this often (default: at 80% of their lifetime).
    token_refresh_seconds: Option<u64>,
    kubelet: KubeletFile,
    /// Several virtual nodes from this process, one per zone or vSwitch
    /// ([`crate::node_set`]); empty: the one node above.
    nodes: Vec<NodeEntry>,
    /// Several replicas, one active at a time (off unless enabled).
    leader_election: LeaderElectionFile,
    mock: MockConfig,
    eci: EciConfig,
    /// The `aci:` section (Azure Container Instances).
    aci: AciConfig,
    /// The `fargate:` section (AWS Fargate through ECS).
    fargate: FargateConfig,
    /// Prices for the cost recorded on each pod when it ends (default: ECI's published
    /// pay-as-you-go prices, in CNY).
    cost: vk_core::pods::cost::PriceTable,
}

fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    serde_yaml::from_str(&text)
        .with_context(|| format!("the config file {} is not valid", path.display()))
}

/// The settings after flags, environment and file are merged.
struct Settings {
    node: NodeConfig,
    health_port: u16,
    pod_workers: u16,
    pod_api_endpoint: Option<String>,
    cluster_dns: Vec<std::net::IpAddr>,
    cluster_domain: String,
    token_refresh: Option<std::time::Duration>,
    prices: vk_core::pods::cost::PriceTable,
    kubelet: KubeletSettings,
    nodes: Vec<NodeEntry>,
    /// Some: wait for the leader Lease before running the nodes.
    leader: Option<LeaderConfig>,
    mock: MockConfig,
    eci: EciConfig,
    aci: AciConfig,
    fargate: FargateConfig,
}

impl Settings {
    /// Every node this process runs, with its placement and certificate directory.
    fn planned_nodes(&self) -> anyhow::Result<Vec<PlannedNode>> {
        let eci = self.node.provider == "eci";
        let placement = CloudPlacement {
            zone_id: self.eci.zone_id.clone(),
            vswitch_id: self.eci.vswitch_id.clone(),
            security_group_id: self.eci.security_group_id.clone(),
        };
        Ok(node_set::plan(
            &self.node,
            &placement,
            eci.then_some(self.eci.region_id.as_str()),
            &self.kubelet.cert_dir,
            &self.nodes,
        )?)
    }
}

/// How the kubelet API on :10250 is served.
struct KubeletSettings {
    cert: ServingCertMode,
    cert_dir: PathBuf,
    client_ca_file: Option<PathBuf>,
    disable_auth: bool,
    streaming: StreamingConfig,
}

fn streaming_config(file: &KubeletFile) -> StreamingConfig {
    let default = StreamingConfig::default();
    StreamingConfig {
        idle_timeout: file
            .streaming_idle_timeout_seconds
            .map_or(default.idle_timeout, Duration::from_secs),
        stream_creation_timeout: file
            .stream_creation_timeout_seconds
            .map_or(default.stream_creation_timeout, Duration::from_secs),
        max_streams_per_connection: file
            .max_streams_per_connection
            .unwrap_or(default.max_streams_per_connection)
            .max(1),
        max_sessions: file
            .max_streaming_sessions
            .unwrap_or(default.max_sessions)
            .max(1),
    }
}

fn kubelet_settings(args: &RunArgs, file: &KubeletFile) -> anyhow::Result<KubeletSettings> {
    let mode = args
        .serving_cert
        .clone()
        .or(file.serving_cert.clone())
        .unwrap_or_else(|| "csr".into());
    let cert = match mode.as_str() {
        "csr" => ServingCertMode::Csr {
            auto_approve: args.serving_cert_auto_approve || file.auto_approve,
        },
        "files" => {
            let (Some(cert), Some(key)) = (
                args.tls_cert_file.clone().or(file.cert_file.clone()),
                args.tls_key_file.clone().or(file.key_file.clone()),
            ) else {
                bail!("--serving-cert files needs --tls-cert-file and --tls-key-file");
            };
            ServingCertMode::Files { cert, key }
        }
        "self-signed" => ServingCertMode::SelfSigned,
        other => bail!("--serving-cert {other:?} is not one of csr, files, self-signed"),
    };
    Ok(KubeletSettings {
        cert,
        cert_dir: args
            .cert_dir
            .clone()
            .or(file.cert_dir.clone())
            .unwrap_or_else(|| PathBuf::from("/var/lib/vk")),
        client_ca_file: args.client_ca_file.clone().or(file.client_ca_file.clone()),
        disable_auth: args.disable_kubelet_auth || file.disable_auth,
        streaming: streaming_config(file),
    })
}

/// The leader election settings when enabled by `--leader-elect` or the config file.
fn leader_settings(
    enabled_by_flag: bool,
    file: &LeaderElectionFile,
    node_name: &str,
) -> anyhow::Result<Option<LeaderConfig>> {
    if !(enabled_by_flag || file.enabled) {
        return Ok(None);
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let namespace = file
        .namespace
        .clone()
        .or_else(|| env("POD_NAMESPACE"))
        .unwrap_or_else(|| "vk-system".into());
    let name = file
        .name
        .clone()
        .unwrap_or_else(|| format!("vk-{node_name}"));
    let identity = file
        .identity
        .clone()
        .unwrap_or_else(vk_core::leader::default_identity);
    let mut config = LeaderConfig::new(&namespace, &name, &identity);
    if let Some(s) = file.lease_duration_seconds {
        config.lease_duration = Duration::from_secs(s);
    }
    if let Some(s) = file.renew_deadline_seconds {
        config.renew_deadline = Duration::from_secs(s);
    }
    if let Some(s) = file.retry_period_seconds {
        config.retry_period = Duration::from_secs(s);
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("leader_election: {e}"))?;
    Ok(Some(config))
}

fn settings(args: RunArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(p) => read_config(p)?,
        None => FileConfig::default(),
    };
    let kubelet = kubelet_settings(&args, &file.kubelet)?;
    let provider = args
        .provider
        .or(file.provider)
        .unwrap_or_else(|| "mock".into());
    let node_name = args
        .node_name
        .or(file.node_name)
        .unwrap_or_else(|| "vk-serverless".into());
    let Some(node_ip) = args.node_ip.or(file.node_ip) else {
        bail!(
            "the node's IP is not set: pass --node-ip (or VK_NODE_IP, or node_ip in the config file); the API server connects there for logs and exec"
        );
    };
    if node_ip.parse::<std::net::IpAddr>().is_err() {
        bail!("--node-ip {node_ip:?} is not an IP address");
    }
    let leader = leader_settings(args.leader_elect, &file.leader_election, &node_name)?;
    let mut node = NodeConfig::new(&node_name, &node_ip, &provider);
    node.kubelet_port = args.kubelet_port.or(file.kubelet_port).unwrap_or(10250);
    node.extra_labels = file.labels;
    let file_taint = file.taint.unwrap_or_default();
    node.taint = if args.disable_taint || file.disable_taint {
        None
    } else {
        let default = NodeTaint::for_provider(&provider);
        let effect = args
            .taint_effect
            .or(file_taint.effect)
            .unwrap_or(default.effect);
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect.as_str()) {
            bail!("taint effect {effect:?} is not one of NoSchedule, PreferNoSchedule, NoExecute");
        }
        Some(NodeTaint {
            key: args.taint_key.or(file_taint.key).unwrap_or(default.key),
            value: args
                .taint_value
                .or(file_taint.value)
                .unwrap_or(default.value),
            effect,
        })
    };
    let cluster_dns = if args.cluster_dns.is_empty() {
        file.cluster_dns
    } else {
        args.cluster_dns
    };
    let cluster_dns = parse_cluster_dns(&cluster_dns)?;
    file.cost.validate().map_err(anyhow::Error::msg)?;
    let cluster_domain = args
        .cluster_domain
        .or(file.cluster_domain)
        .unwrap_or_else(|| "cluster.local".into())
        .trim_end_matches('.')
        .to_string();
    Ok(Settings {
        node,
        cluster_dns,
        cluster_domain,
        health_port: args.health_port.or(file.health_port).unwrap_or(10256),
        pod_workers: args.pod_workers.or(file.pod_workers).unwrap_or(10).max(1),
        pod_api_endpoint: args.pod_api_endpoint.or(file.pod_api_endpoint),
        token_refresh: file
            .token_refresh_seconds
            .map(std::time::Duration::from_secs),
        prices: file.cost,
        kubelet,
        nodes: file.nodes,
        leader,
        mock: file.mock,
        eci: file.eci,
        aci: file.aci,
        fargate: file.fargate,
    })
}

/// Every entry must be an IP address: resolvers take no names for their servers.
fn parse_cluster_dns(values: &[String]) -> anyhow::Result<Vec<std::net::IpAddr>> {
    values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .with_context(|| format!("--cluster-dns {v:?} is not an IP address"))
        })
        .collect()
}

/// `host:port` (`[v6]:port`) → (host, port); `none` → None.
fn parse_endpoint(value: &str) -> anyhow::Result<Option<(String, u16)>> {
    if value == "none" {
        return Ok(None);
    }
    let (host, port) = value
        .rsplit_once(':')
        .with_context(|| format!("pod API endpoint {value:?}: expected host:port or none"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("pod API endpoint {value:?}: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("pod API endpoint {value:?}: no host");
    }
    Ok(Some((host.to_string(), port)))
}

/// Where pods reach the API server: the configured endpoint, else the one vk uses.
fn pod_api_endpoint(
    configured: Option<&str>,
    cluster_url: &hyper::Uri,
) -> anyhow::Result<Option<(String, u16)>> {
    if let Some(value) = configured {
        return parse_endpoint(value);
    }
    let Some(host) = cluster_url.host() else {
        return Ok(None);
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = cluster_url
        .port_u16()
        .unwrap_or(if cluster_url.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    Ok(Some((host.to_string(), port)))
}

async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<(kube::Client, hyper::Uri)> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run in a cluster")?,
    };
    let cluster_url = config.cluster_url.clone();
    Ok((crate::apiclient::client(config)?, cluster_url))
}

/// Bind :10250, obtain the serving certificate (possibly waiting for CSR approval), then
/// serve the kubelet API until cancelled.
async fn serve_kubelet_api(
    client: kube::Client,
    planned: PlannedNode,
    settings: Arc<KubeletSettings>,
    provider: Arc<dyn Provider>,
    pods: kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Pod>,
    metrics: Arc<vk_core::metrics::Metrics>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let node = planned.node;
    let addr = SocketAddr::from(([0, 0, 0, 0], node.kubelet_port));
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "the kubelet port {} is in use; choose another with --kubelet-port",
            node.kubelet_port
        )
    })?;
    let ip: std::net::IpAddr = node
        .internal_ip
        .parse()
        .with_context(|| format!("node IP {:?}", node.internal_ip))?;
    let cert = ServingCert::start(
        client.clone(),
        ServingCertConfig {
            node_name: node.name.clone(),
            ips: vec![ip],
            hostnames: vec![node.name.clone()],
            dir: planned.cert_dir,
            mode: settings.cert.clone(),
            requested_duration: None,
        },
        cancel.clone(),
    )
    .await
    .context("obtaining the kubelet serving certificate")?;
    let client_ca = match &settings.client_ca_file {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("reading the client CA {}", path.display()))?,
        None => certs::cluster_client_ca(client.clone())
            .await
            .context("reading the API server's client CA (or pass --client-ca-file)")?,
    };
    let tls = certs::kubelet_server_config(cert.resolver(), Some(&client_ca))?;
    let auth = if settings.disable_auth {
        KubeletAuth::DisabledForDev
    } else {
        KubeletAuth::Webhook { client }
    };
    tracing::info!(%addr, "serving the kubelet API");
    KubeletServer::new(&node.name, provider, pods, auth)
        .with_metrics(&metrics)
        .with_streaming(settings.streaming.clone())
        .serve(listener, Arc::new(tls), cancel)
        .await?;
    Ok(())
}

/// The configured provider, one per node ([`node_set::providers`]).
fn providers(
    settings: &Settings,
    nodes: &[PlannedNode],
    metrics: vk_core::metrics::ProviderMetrics,
) -> anyhow::Result<NodeProviders> {
    let mut eci = settings.eci.clone();
    if let Ok(secret) = std::env::var("VK_ECI_ACCESS_KEY_SECRET") {
        eci.access_key_secret = secret;
    }
    Ok(node_set::providers(
        &settings.node.provider,
        &settings.mock,
        &eci,
        &settings.aci,
        &settings.fargate,
        nodes,
        metrics,
    )?)
}

async fn doctor(args: RunArgs) -> anyhow::Result<()> {
    let kubeconfig = args.kubeconfig.clone();
    let settings = settings(args)?;
    let planned = settings.planned_nodes()?;
    let NodeProviders {
        each: providers,
        eci_client,
    } = providers(&settings, &planned, Default::default())?;
    let (client, _) = kube_client(kubeconfig.as_deref()).await?;
    // The network and quota checks ask the eci provider's account (with its credentials).
    let cloud = eci_client
        .map(|c| crate::doctor_cloud::EciAccount::new(c, &settings.eci))
        .transpose()?;
    let nodes = planned
        .into_iter()
        .zip(providers)
        .map(|(planned, provider)| crate::doctor::DoctorNode {
            name: planned.node.name,
            provider,
            placement: planned.placement,
        })
        .collect();
    let report = crate::doctor::Doctor {
        client,
        nodes,
        serving_cert_from_csr: matches!(settings.kubelet.cert, ServingCertMode::Csr { .. }),
        cloud,
        leader_namespace: settings.leader.as_ref().map(|l| l.namespace.clone()),
    }
    .run()
    .await;
    println!("{report}");
    if report.failed() {
        bail!("vk doctor found problems (above)");
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let kubeconfig = args.kubeconfig.clone();
    let settings = settings(args)?;
    let planned = settings.planned_nodes()?;
    // One registry: the pod controllers, the providers and the kubelet APIs record into it.
    let metrics = Arc::new(vk_core::metrics::Metrics::new());
    let NodeProviders {
        each: providers,
        eci_client,
    } = providers(&settings, &planned, metrics.provider())?;
    let (client, cluster_url) = kube_client(kubeconfig.as_deref()).await?;
    let kubernetes_service = pod_api_endpoint(settings.pod_api_endpoint.as_deref(), &cluster_url)?;
    // `cancel`: the whole process (kubelet APIs, health port); `active`: what only the active
    // replica runs (node and pod controllers); `stop`: SIGTERM or SIGINT.
    let cancel = CancellationToken::new();
    let active = cancel.child_token();
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            cli::shutdown_signal().await;
            stop.cancel();
        });
    }
    tracing::info!(
        nodes = ?planned.iter().map(|p| p.node.name.as_str()).collect::<Vec<_>>(),
        provider = %settings.node.provider,
        version = vk_core::node::VERSION,
        leader_election = settings.leader.is_some(),
        "starting"
    );

    if settings.health_port != 0 {
        let health = crate::health::serve(settings.health_port, metrics.clone(), cancel.clone());
        tokio::spawn(async move {
            if let Err(e) = health.await {
                tracing::error!(error = %format!("{e:#}"), "health endpoint stopped");
            }
        });
    }

    // Each node: its controller, its pods, its kubelet API; all share the client and metrics.
    // The kubelet APIs start at once (a standby serves its own too); the controllers only on
    // the active replica.
    let kubelet = Arc::new(settings.kubelet);
    let mut kubelet_tasks = tokio::task::JoinSet::new();
    let mut controllers = Vec::new();
    for (planned, provider) in planned.into_iter().zip(providers) {
        let name = planned.node.name.clone();
        let node = NodeController::new(client.clone(), planned.node.clone(), provider.clone())
            .with_metrics(metrics.clone());
        let mut pod_config = PodControllerConfig::new(&name, &planned.node.internal_ip);
        pod_config.workers = settings.pod_workers;
        pod_config.token_refresh_interval = settings.token_refresh;
        pod_config.kubernetes_service = kubernetes_service.clone();
        pod_config.cluster_dns = settings.cluster_dns.clone();
        pod_config.cluster_domain = settings.cluster_domain.clone();
        pod_config.prices = settings.prices.clone();
        let pods = PodController::new(client.clone(), pod_config, provider.clone())
            .with_metrics(metrics.clone());
        let serve = serve_kubelet_api(
            client.clone(),
            planned,
            kubelet.clone(),
            provider,
            pods.store(),
            metrics.clone(),
            cancel.clone(),
        );
        let node_name = name.clone();
        kubelet_tasks.spawn(async move { (node_name, serve.await) });
        controllers.push((name, node, pods));
    }

    let mut elector = settings
        .leader
        .map(|config| LeaderElector::new(client.clone(), config));
    if let Some(elector) = elector.as_mut() {
        tracing::info!(
            lease = %format!("{}/{}", elector.config().namespace, elector.config().name),
            identity = %elector.config().identity,
            "waiting for the leader Lease before running the nodes"
        );
        let acquired = tokio::select! {
            acquired = elector.acquire(&stop) => acquired,
            Some(result) = kubelet_tasks.join_next() => {
                cancel.cancel();
                return kubelet_outcome(result);
            }
        };
        if !acquired {
            tracing::info!("stopping as a standby");
            cancel.cancel();
            return Ok(());
        }
    }

    metrics.leader.set(1);
    // ImageCache objects: one controller for the process (all its eci nodes share the account),
    // and only while this replica is the active one.
    if let Some(cloud) = eci_client.filter(|_| settings.eci.image_cache.controller) {
        let placement = eci::image_cache::sync::CachePlacement {
            security_group_id: settings.eci.security_group_id.clone(),
            vswitch_id: settings.eci.vswitch_id.clone(),
        };
        let instance = std::env::var("POD_NAME").unwrap_or_else(|_| settings.node.name.clone());
        // The most used image sets as ImageCache objects (keep_top_images): beside the
        // controller, so also one per process and on the leader only.
        if let Some(keep) = settings.eci.image_cache.keep_top_images.clone() {
            tokio::spawn(eci::image_cache::keep_top::run(
                client.clone(),
                keep,
                settings.eci.image_cache.label_selector.clone(),
                active.clone().cancelled_owned(),
            ));
        }
        let stop = active.clone().cancelled_owned();
        tokio::spawn(eci::image_cache::controller::run(
            client.clone(),
            cloud,
            placement,
            settings.eci.image_cache.label_selector.clone(),
            instance,
            stop,
        ));
    }
    let mut node_tasks = tokio::task::JoinSet::new();
    let mut pod_tasks = Vec::new();
    for (name, node, pods) in controllers {
        let run = node.run(active.clone());
        node_tasks.spawn(async move { (name, run.await) });
        pod_tasks.push(tokio::spawn(pods.run(active.clone())));
    }

    let holding = async {
        match elector.as_mut() {
            Some(elector) => elector.hold(&stop).await,
            None => std::future::pending().await,
        }
    };
    let mut lost = false;
    let outcome = tokio::select! {
        _ = stop.cancelled() => {
            tracing::info!("stopping; cloud instances stay running for the next start");
            Ok(())
        }
        why = holding => match why {
            Lost::Cancelled => Ok(()),
            why => {
                lost = true;
                Err(anyhow::anyhow!(
                    "{why}; stopping the nodes so that two replicas never run them at once"
                ))
            }
        },
        Some(result) = node_tasks.join_next() => match result {
            Ok((_, Ok(()))) => Ok(()),
            Ok((name, Err(e))) => Err(anyhow::anyhow!("the node controller of {name} stopped: {e}")),
            Err(e) => Err(anyhow::anyhow!("a node controller crashed: {e}")),
        },
        Some(result) = kubelet_tasks.join_next() => kubelet_outcome(result),
    };
    active.cancel();
    metrics.leader.set(0);
    if lost {
        // Another replica may run the nodes soon: exiting now stops every write of ours at
        // once, without waiting for the pod workers.
        cancel.cancel();
        return outcome;
    }
    let stopped = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        futures::future::join_all(pod_tasks),
    )
    .await
    .is_ok();
    node_tasks.shutdown().await;
    // The nodes are no longer run from here: hand the Lease over (unless it is not ours any
    // more, or a pod worker may still be writing: then it expires as after a crash).
    if let Some(elector) = elector.as_mut() {
        if stopped {
            if let Err(e) = elector.release().await {
                tracing::warn!(error = %e, "releasing the leader Lease failed; it expires instead");
            }
        } else {
            tracing::warn!("pod workers still busy; the leader Lease is left to expire");
        }
    }
    cancel.cancel();
    outcome
}

fn kubelet_outcome(
    result: Result<(String, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match result {
        Ok((_, Ok(()))) => Ok(()),
        Ok((name, Err(e))) => Err(anyhow::anyhow!("the kubelet API of {name} stopped: {e:#}")),
        Err(e) => Err(anyhow::anyhow!("a kubelet API crashed: {e}")),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Doctor(args) => doctor(args).await,
    };
    cli::exit_status("vk", result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_reach_the_api_server_where_vk_does_unless_configured() {
        let url: hyper::Uri = "https://10.96.0.1".parse().unwrap();
        assert_eq!(
            pod_api_endpoint(None, &url).unwrap(),
            Some(("10.96.0.1".into(), 443))
        );
        let url: hyper::Uri = "https://[fd00::1]:6443".parse().unwrap();
        assert_eq!(
            pod_api_endpoint(None, &url).unwrap(),
            Some(("fd00::1".into(), 6443))
        );
        assert_eq!(
            pod_api_endpoint(Some("api.internal:8443"), &url).unwrap(),
            Some(("api.internal".into(), 8443))
        );
        assert_eq!(
            pod_api_endpoint(Some("[fd00::2]:443"), &url).unwrap(),
            Some(("fd00::2".into(), 443))
        );
        assert_eq!(pod_api_endpoint(Some("none"), &url).unwrap(), None);
        for bad in ["api.internal", "api:x", ":443"] {
            assert!(pod_api_endpoint(Some(bad), &url).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_dns_and_domain_come_from_flags_else_the_file() {
        let file = std::env::temp_dir().join(format!("vk-dns-config-{}.yaml", std::process::id()));
        std::fs::write(
            &file,
            "cluster_dns: [10.96.0.10]\ncluster_domain: corp.local.\n",
        )
        .unwrap();
        let parse = |extra: &[&str]| {
            let mut argv = vec!["vk", "run", "--node-ip", "10.0.0.1", "--config"];
            argv.push(file.to_str().unwrap());
            argv.extend(extra);
            let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
                unreachable!("parsed `vk run`")
            };
            settings(args)
        };
        let s = parse(&[]).unwrap();
        assert_eq!(
            s.cluster_dns,
            ["10.96.0.10".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(s.cluster_domain, "corp.local");
        let s = parse(&[
            "--cluster-dns",
            "10.0.0.10,fd00::a",
            "--cluster-domain",
            "k8s.test",
        ])
        .unwrap();
        assert_eq!(s.cluster_dns.len(), 2);
        assert_eq!(s.cluster_domain, "k8s.test");
        let err = parse(&["--cluster-dns", "kube-dns"]).err().unwrap();
        assert!(
            format!("{err:#}").contains("is not an IP address"),
            "{err:#}"
        );
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn the_price_table_comes_from_the_file_and_bad_prices_are_refused() {
        let file = std::env::temp_dir().join(format!("vk-cost-config-{}.yaml", std::process::id()));
        let parse = |yaml: &str| {
            std::fs::write(&file, yaml).unwrap();
            let argv = [
                "vk",
                "run",
                "--node-ip",
                "10.0.0.1",
                "--config",
                file.to_str().unwrap(),
            ];
            let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
                unreachable!("parsed `vk run`")
            };
            settings(args)
        };
        let s = parse("provider: eci\n").unwrap();
        assert_eq!(s.prices, vk_core::pods::cost::PriceTable::default());
        let s = parse(
            "cost:\n  currency: USD\n  prices:\n  - region: cn-hangzhou\n    vcpu_second: 0.00002\n    gib_second: 0.000002\n    spot_factor: 0.3\n",
        )
        .unwrap();
        assert_eq!(s.prices.currency, "USD");
        assert_eq!(s.prices.prices[0].spot_factor, 0.3);
        let err = parse("cost:\n  prices:\n  - vcpu_second: -1\n")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("not negative"), "{err:#}");
        let err = parse("cost:\n  prices:\n  - cpu_second: 1\n")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("cpu_second"), "{err:#}");
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_nodes_list_gives_one_node_per_zone_with_its_own_port_and_cert_dir() {
        let file =
            std::env::temp_dir().join(format!("vk-nodes-config-{}.yaml", std::process::id()));
        std::fs::write(
            &file,
            "provider: eci\nnode_name: vk\neci:\n  region_id: cn-hangzhou\n  security_group_id: sg-1\nnodes:\n- zone_id: cn-hangzhou-j\n  vswitch_id: vsw-j\n- zone_id: cn-hangzhou-k\n  vswitch_id: vsw-k\n",
        )
        .unwrap();
        let argv = [
            "vk",
            "run",
            "--node-ip",
            "10.0.0.1",
            "--cert-dir",
            "/c",
            "--config",
        ];
        let mut argv: Vec<&str> = argv.to_vec();
        argv.push(file.to_str().unwrap());
        let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!("parsed `vk run`")
        };
        let nodes = settings(args).unwrap().planned_nodes().unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.node.name.as_str()).collect();
        assert_eq!(names, ["vk-cn-hangzhou-j", "vk-cn-hangzhou-k"]);
        assert_eq!(nodes[1].node.kubelet_port, 10251);
        assert_eq!(nodes[1].cert_dir, Path::new("/c/vk-cn-hangzhou-k"));
        assert_eq!(nodes[1].placement.vswitch_id.as_deref(), Some("vsw-k"));
        assert_eq!(
            nodes[1].placement.security_group_id.as_deref(),
            Some("sg-1")
        );
        assert_eq!(
            nodes[1].node.extra_labels["topology.kubernetes.io/zone"],
            "cn-hangzhou-k"
        );
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn leader_election_is_off_unless_enabled_and_refuses_overlapping_timings() {
        let off = LeaderElectionFile::default();
        assert!(leader_settings(false, &off, "vk").unwrap().is_none());
        let by_flag = leader_settings(true, &off, "vk").unwrap().unwrap();
        assert_eq!(by_flag.name, "vk-vk");
        assert_eq!(by_flag.lease_duration, Duration::from_secs(15));
        assert!(!by_flag.identity.is_empty());
        let file: FileConfig = serde_yaml::from_str(
            "leader_election:\n  enabled: true\n  namespace: ops\n  name: vk-a\n  identity: r1\n  lease_duration_seconds: 9\n  renew_deadline_seconds: 6\n  retry_period_seconds: 1\n",
        )
        .unwrap();
        let config = leader_settings(false, &file.leader_election, "vk")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                config.namespace.as_str(),
                config.name.as_str(),
                config.identity.as_str()
            ),
            ("ops", "vk-a", "r1")
        );
        assert_eq!(config.retry_period, Duration::from_secs(1));
        let file: FileConfig = serde_yaml::from_str(
            "leader_election:\n  enabled: true\n  lease_duration_seconds: 5\n  renew_deadline_seconds: 10\n",
        )
        .unwrap();
        let err = leader_settings(false, &file.leader_election, "vk").unwrap_err();
        assert!(format!("{err:#}").contains("renew deadline"), "{err:#}");
        assert!(serde_yaml::from_str::<FileConfig>("leader_election:\n  enable: true\n").is_err());
    }

    #[test]
    fn streaming_limits_come_from_the_config_file_with_kubelet_defaults() {
        let file: FileConfig = serde_yaml::from_str(
            "kubelet:\n  streaming_idle_timeout_seconds: 60\n  max_streaming_sessions: 8\n",
        )
        .unwrap();
        let streaming = streaming_config(&file.kubelet);
        assert_eq!(streaming.idle_timeout, Duration::from_secs(60));
        assert_eq!(streaming.max_sessions, 8);
        assert_eq!(streaming.stream_creation_timeout, Duration::from_secs(30));
        assert_eq!(streaming.max_streams_per_connection, 100);
        let default = streaming_config(&KubeletFile::default());
        assert_eq!(default.idle_timeout, Duration::from_secs(4 * 3600));
    }
}
