//! `vk-cloud`: a simulated cloud that really runs containers, behind the API of Alibaba Cloud
//! ECI (the default face), Azure Container Instances or AWS ECS.
//!
//!     vk-cloud serve --listen 127.0.0.1:0 --executor process \
//!         --access-key-id test --access-key-secret secret
//!
//! prints the bound address (`127.0.0.1:PORT`) as the first line on stdout, then serves the
//! ECI OpenAPI (2018-08-08) at `http://ADDR/` and fault injection at `/admin/faults` until
//! SIGTERM or SIGINT.
//!
//!     vk-cloud serve --face aci --client-id app --client-secret s --ca-out /tmp/ca.pem
//!
//! serves ARM's `Microsoft.ContainerInstance` API, Azure AD's token endpoint and IMDS at
//! `https://ADDR/` (a certificate signed by a CA made at start, written to `--ca-out`).
//!
//! `--face ecs` serves AWS ECS (Fargate tasks), CloudWatch Logs and STS at `http://ADDR/`
//! instead (SigV4 with the given key; `--region-id` is the AWS region).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use cloudsim::aci::{AciCloud, AciConfig, TlsMode};
use cloudsim::ecs::{EcsCloud, EcsConfig};
use cloudsim::engine::faults::FaultConfig;
use cloudsim::engine::latency::{LatencyModel, RealisticLatency};
use cloudsim::{ExecutorKind, MockCloud, MockCloudConfig};
use vk_core::cli;

#[derive(Parser)]
#[command(
    name = "vk-cloud",
    version,
    about = "A simulated cloud that really runs containers: Alibaba Cloud ECI (OpenAPI 2018-08-08), Azure Container Instances (ARM) or AWS ECS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API until SIGTERM or SIGINT.
    Serve(ServeArgs),
}

/// Which cloud's API is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum Face {
    /// Alibaba Cloud ECI (OpenAPI 2018-08-08, signed requests, STS, ECS metadata).
    #[default]
    Eci,
    /// Azure Container Instances (ARM, Azure AD tokens, IMDS), over HTTPS.
    Aci,
    /// AWS ECS (Fargate tasks), CloudWatch Logs and STS, SigV4-signed.
    Ecs,
}

/// Flags override the config file.
#[derive(Args, Debug)]
struct ServeArgs {
    /// The API served.
    #[arg(long, env = "VK_CLOUD_FACE", value_enum, default_value = "eci")]
    face: Face,
    #[command(flatten)]
    aci: AciArgs,
    /// Address to listen on; port 0 picks a free one. The bound address is printed first.
    #[arg(long, env = "VK_CLOUD_LISTEN", default_value = "127.0.0.1:0")]
    listen: String,
    /// `simulate`: timers and synthetic logs; `process`: real processes in bubblewrap
    /// sandboxes (needs `bwrap`: apt-get install -y bubblewrap).
    #[arg(long, env = "VK_CLOUD_EXECUTOR", value_enum)]
    executor: Option<ExecutorKind>,
    /// The AccessKeyId requests must be signed with (more keys: `access_keys` in the config).
    #[arg(long, env = "VK_CLOUD_ACCESS_KEY_ID")]
    access_key_id: Option<String>,
    /// Its AccessKeySecret.
    #[arg(long, env = "VK_CLOUD_ACCESS_KEY_SECRET", hide_env_values = true)]
    access_key_secret: Option<String>,
    /// The region served (requests naming another are refused).
    #[arg(long, env = "VK_CLOUD_REGION_ID")]
    region_id: Option<String>,
    /// YAML or JSON config file: every field of MockCloudConfig (latencies, quotas, page
    /// size, log limits, image catalog, simulate/process settings, faults).
    #[arg(long, env = "VK_CLOUD_CONFIG")]
    config: Option<PathBuf>,
    /// Where the process executor keeps sandboxes (default: a temp directory).
    #[arg(long, env = "VK_CLOUD_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// Pull any image, not only those in the catalog (busybox, alpine, golang, ...).
    #[arg(long)]
    allow_unknown_images: bool,
    /// Initial faults as JSON, e.g. '{"error_rate":0.3,"latency_ms":50}'.
    #[arg(long)]
    faults: Option<String>,
    /// Temporary keys (STS, metadata) live this long, whatever the caller asks.
    #[arg(long)]
    sts_lifetime_secs: Option<u64>,
    /// The RAM role the ECS metadata face hands out keys for.
    #[arg(long)]
    metadata_role: Option<String>,
    /// ECI face: keep the groups, ClientTokens and create counts in this file and read them
    /// back at start, so a restarted vk-cloud answers the same groups (their timers go on).
    #[arg(long, env = "VK_CLOUD_STATE_FILE")]
    state_file: Option<PathBuf>,
    #[command(flatten)]
    latency: LatencyArgs,
}

/// The latency model (every face): over the config file's `latency_model` and `realistic`.
#[derive(Args, Debug, Default)]
struct LatencyArgs {
    /// `instant`: the configured scheduling/provisioning latencies; `realistic`: placement,
    /// network attach and image pulls by layer size (ECI's published figures).
    #[arg(long, env = "VK_CLOUD_LATENCY_MODEL", value_parser = ["instant", "realistic"])]
    latency_model: Option<String>,
    /// Realistic model: image layers arrive at this many MB/s.
    #[arg(long)]
    pull_bandwidth_mb_s: Option<f64>,
    /// Realistic model: create -> Pending.
    #[arg(long)]
    placement_ms: Option<u64>,
    /// Realistic model: the network interface's attach, before the pulls.
    #[arg(long)]
    eni_attach_ms: Option<u64>,
    /// Realistic model: an image cache's disk attach.
    #[arg(long)]
    cache_attach_ms: Option<u64>,
    /// Realistic model: the fixed cost of each image pulled.
    #[arg(long)]
    per_image_ms: Option<u64>,
}

impl LatencyArgs {
    /// The flags over a face's `latency_model` and `realistic`.
    fn apply(&self, model: &mut LatencyModel, r: &mut RealisticLatency) -> anyhow::Result<()> {
        if let Some(m) = &self.latency_model {
            *model = m.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(b) = self.pull_bandwidth_mb_s {
            anyhow::ensure!(
                b.is_finite() && b > 0.0,
                "--pull-bandwidth-mb-s must be positive"
            );
            r.pull_bandwidth_mb_s = b;
        }
        let set = |slot: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut r.placement_ms, self.placement_ms);
        set(&mut r.eni_attach_ms, self.eni_attach_ms);
        set(&mut r.cache_attach_ms, self.cache_attach_ms);
        set(&mut r.per_image_ms, self.per_image_ms);
        Ok(())
    }
}

/// The ACI face's flags (with `--face aci`; the config file is then an AciConfig).
#[derive(Args, Debug, Default)]
struct AciArgs {
    /// An Azure AD app that may take tokens with a client secret (more: `clients`).
    #[arg(long, env = "VK_CLOUD_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(long, env = "VK_CLOUD_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// The tenant whose token endpoint is served.
    #[arg(long, env = "VK_CLOUD_TENANT_ID")]
    tenant_id: Option<String>,
    /// The subscription that exists (more: `subscriptions`).
    #[arg(long, env = "VK_CLOUD_SUBSCRIPTION_ID")]
    subscription_id: Option<String>,
    /// The region served, e.g. westeurope.
    #[arg(long, env = "VK_CLOUD_LOCATION")]
    location: Option<String>,
    /// A workload identity: federated tokens from this issuer about this subject are
    /// exchanged for tokens of `--federated-client-id` (claims checked, not signatures).
    #[arg(long, requires_all = ["federated_subject", "federated_client_id"])]
    federated_issuer: Option<String>,
    #[arg(long)]
    federated_subject: Option<String>,
    #[arg(long)]
    federated_client_id: Option<String>,
    /// `self-signed` (default): a CA made at start signs the server's certificate; `none`:
    /// plain HTTP (no Azure SDK accepts it); or give --tls-cert and --tls-key.
    #[arg(long, default_value = "self-signed", value_parser = ["self-signed", "none"])]
    tls: String,
    /// Where the self-signed CA's PEM goes (what clients trust).
    #[arg(long, env = "VK_CLOUD_CA_OUT")]
    ca_out: Option<PathBuf>,
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// A face's config file (YAML or JSON), or its defaults without one.
fn read_config<T: serde::de::DeserializeOwned + Default>(
    path: Option<&std::path::Path>,
) -> anyhow::Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    serde_yaml::from_str(&text)
        .with_context(|| format!("the config file {} is not valid", path.display()))
}

/// The engine's flags, which every face takes: over the config file's values.
fn engine_flags(
    args: &ServeArgs,
    executor: &mut ExecutorKind,
    work_dir: &mut Option<PathBuf>,
    allow_unknown_images: &mut bool,
    faults: &mut FaultConfig,
) -> anyhow::Result<()> {
    if let Some(e) = args.executor {
        *executor = e;
    }
    if let Some(dir) = &args.work_dir {
        *work_dir = Some(dir.clone());
    }
    if args.allow_unknown_images {
        *allow_unknown_images = true;
    }
    if let Some(json) = &args.faults {
        *faults = serde_json::from_str::<FaultConfig>(json)
            .context("--faults is not a valid fault config (see GET /admin/faults)")?;
    }
    Ok(())
}

/// The signing key of `--access-key-id`/`--access-key-secret` (ECI and ECS) added to `keys`;
/// an error when the two do not come together or no key is left to sign with.
fn access_key(args: &ServeArgs, keys: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    match (&args.access_key_id, &args.access_key_secret) {
        (Some(id), Some(secret)) => {
            keys.insert(id.clone(), secret.clone());
        }
        (None, None) => {}
        _ => anyhow::bail!("--access-key-id and --access-key-secret go together"),
    }
    if keys.is_empty() {
        anyhow::bail!(
            "no access key: pass --access-key-id and --access-key-secret (or access_keys in the config file); every request must be signed with one"
        );
    }
    Ok(())
}

/// Print the bound address first on stdout (what scripts and tests read).
fn announce(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{addr}").context("writing the address to stdout")?;
    stdout.flush().context("writing the address to stdout")
}

fn aci_config(args: ServeArgs) -> anyhow::Result<(AciConfig, String, TlsMode)> {
    let mut config: AciConfig = read_config(args.config.as_deref())?;
    if args.access_key_id.is_some() || args.access_key_secret.is_some() || args.region_id.is_some()
    {
        anyhow::bail!(
            "--access-key-id, --access-key-secret and --region-id are ECI's; the ACI face takes --client-id, --client-secret, --subscription-id and --location"
        );
    }
    engine_flags(
        &args,
        &mut config.executor,
        &mut config.process.work_dir,
        &mut config.catalog.allow_unknown,
        &mut config.faults,
    )?;
    args.latency
        .apply(&mut config.latency_model, &mut config.realistic)?;
    let a = args.aci;
    match (a.client_id, a.client_secret) {
        (Some(id), Some(secret)) => {
            config.clients.insert(id, secret);
        }
        (None, None) => {}
        _ => anyhow::bail!("--client-id and --client-secret go together"),
    }
    if let Some(tenant) = a.tenant_id {
        config.tenant_id = tenant;
    }
    if let Some(sub) = a.subscription_id {
        config.subscriptions = vec![sub];
    }
    if let Some(location) = a.location {
        config.location = location;
    }
    if let (Some(issuer), Some(subject), Some(client_id)) = (
        a.federated_issuer,
        a.federated_subject,
        a.federated_client_id,
    ) {
        config
            .federated
            .push(cloudsim::aci::config::FederatedTrust {
                client_id,
                issuer,
                subject,
                ..Default::default()
            });
    }
    if config.clients.is_empty() && config.federated.is_empty() {
        anyhow::bail!(
            "no Azure AD client: pass --client-id and --client-secret, or --federated-issuer/--federated-subject/--federated-client-id (or clients/federated in the config file)"
        );
    }
    let tls = match (a.tls_cert, a.tls_key, a.tls.as_str()) {
        (Some(cert), Some(key), _) => TlsMode::Files { cert, key },
        (_, _, "none") => TlsMode::Plain,
        _ => TlsMode::SelfSigned { ca_out: a.ca_out },
    };
    Ok((config, args.listen, tls))
}

fn config(args: ServeArgs) -> anyhow::Result<(MockCloudConfig, String)> {
    let mut config: MockCloudConfig = read_config(args.config.as_deref())?;
    engine_flags(
        &args,
        &mut config.executor,
        &mut config.process.work_dir,
        &mut config.catalog.allow_unknown,
        &mut config.faults,
    )?;
    args.latency
        .apply(&mut config.latency_model, &mut config.realistic)?;
    if let Some(region) = &args.region_id {
        config.region_id = region.clone();
    }
    if args.sts_lifetime_secs.is_some() {
        config.sts.lifetime_secs = args.sts_lifetime_secs;
    }
    if args.metadata_role.is_some() {
        config.sts.metadata_role = args.metadata_role.clone();
    }
    if args.state_file.is_some() {
        config.state_file = args.state_file.clone();
    }
    access_key(&args, &mut config.access_keys)?;
    Ok((config, args.listen))
}

/// The ECS face's config: the file (an EcsConfig), then the flags.
fn ecs_config(args: ServeArgs) -> anyhow::Result<(EcsConfig, String)> {
    let mut config: EcsConfig = read_config(args.config.as_deref())?;
    if args.metadata_role.is_some() {
        anyhow::bail!("--metadata-role is an ECI face flag");
    }
    engine_flags(
        &args,
        &mut config.executor,
        &mut config.process.work_dir,
        &mut config.catalog.allow_unknown,
        &mut config.faults,
    )?;
    args.latency
        .apply(&mut config.latency_model, &mut config.realistic)?;
    if let Some(region) = &args.region_id {
        config.region = region.clone();
    }
    if args.sts_lifetime_secs.is_some() {
        config.sts.lifetime_secs = args.sts_lifetime_secs;
    }
    access_key(&args, &mut config.access_keys)?;
    Ok((config, args.listen))
}

async fn serve_ecs(args: ServeArgs) -> anyhow::Result<()> {
    let (config, listen) = ecs_config(args)?;
    let (executor, region) = (config.executor, config.region.clone());
    let cloud = EcsCloud::start(config, &listen).await?;
    announce(cloud.addr())?;
    tracing::info!(addr = %cloud.addr(), ?executor, %region, "vk-cloud serving ECS, CloudWatch Logs and STS");
    cloud.run_until(cli::shutdown_signal()).await;
    tracing::info!("vk-cloud stopped");
    Ok(())
}

async fn serve_aci(args: ServeArgs) -> anyhow::Result<()> {
    let (config, listen, tls) = aci_config(args)?;
    let executor = config.executor;
    let cloud = AciCloud::start(config, &listen, tls).await?;
    announce(cloud.addr())?;
    tracing::info!(endpoint = %cloud.endpoint(), ?executor, "vk-cloud serving the ACI API");
    cloud.run_until(cli::shutdown_signal()).await;
    tracing::info!("vk-cloud stopped");
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.face != Face::Eci && args.state_file.is_some() {
        anyhow::bail!("--state-file is an ECI face flag");
    }
    if args.face == Face::Aci {
        return serve_aci(args).await;
    }
    if args.face == Face::Ecs {
        return serve_ecs(args).await;
    }
    let (config, listen) = config(args)?;
    let executor = config.executor;
    let cloud = MockCloud::start(config, &listen).await?;
    announce(cloud.addr())?;
    tracing::info!(addr = %cloud.addr(), ?executor, "vk-cloud serving the ECI API");
    cloud.run_until(cli::shutdown_signal()).await;
    tracing::info!("vk-cloud stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::init_tracing();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
    };
    cli::exit_status("vk-cloud", result)
}
