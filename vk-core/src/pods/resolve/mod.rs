//! Turns a `Pod` into the provider-neutral [`ResolvedPod`] the way the kubelet would, so every
//! provider gets environment variables, `$(VAR)` expansion, downward API, configMap/secret/token
//! volumes and resource arithmetic right once:
//!
//! - environment (`env.rs`): `envFrom` first, then `env` in order (later entries override);
//!   `value`s expand `$(VAR)` against what is defined so far; `command`/`args` expand against
//!   the final environment ([`expand`]);
//! - `fieldRef`/`resourceFieldRef` like the kubelet's downward API (`fieldpath.rs`,
//!   `resources.rs`);
//! - volumes (`volumes.rs`): `emptyDir`, `configMap`, `secret`, `downwardAPI` and `projected`
//!   (service-account tokens included) become files; anything needing node storage is
//!   [`ResolveError::Unsupported`];
//! - quantities parsed exactly and rounded up like `Quantity.Value()`/`MilliValue()`
//!   ([`quantity`]);
//! - the pod's effective request per KEP-753 (sidecars), pod-level resources, plus overhead;
//! - `imagePullSecrets` as registry credentials (`pull_secrets.rs`); a missing one is a
//!   [`ResolveWarning`], not an error.
//!
//! Secrets, configMaps and tokens are fetched through an [`ObjectSource`], each at most once
//! per call.
//!
//! - the API server's address as the kubelet gives it to every container
//!   (`KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`, `KUBERNETES_PORT_<port>_TCP…`), from
//!   [`ObjectSource::kubernetes_service`], before the container's own variables.
//!
//! - with `enableServiceLinks` (the default), the service-link variables of the namespace's
//!   Services (`service_env.rs`), also before the container's own;
//! - the resolver configuration (`dns.rs`: `dnsPolicy`, `dnsConfig`, the cluster DNS from
//!   [`ObjectSource::cluster_dns`]), the hostname, FQDN and `hostAliases` (`hosts.rs`).
//!
//! Not done here: token rotation (a resolution snapshots the token; resolve again to refresh
//! it).

pub mod dns;
mod env;
pub mod expand;
mod fieldpath;
mod hosts;
pub mod image_ref;
pub mod node_features;
mod probes;
pub mod pull_secrets;
pub mod quantity;
mod resources;
pub mod service_env;
mod volumes;

pub use dns::ClusterDns;
pub use volumes::token_requests;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};

use crate::provider::{
    ContainerPort, ContainerSpec, PodRef, ResolvedPod, RestartPolicy, VolumeMount,
};

/// Something the kubelet would have recorded as a Warning event while still running the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveWarning {
    /// The event reason (`InvalidEnvironmentVariableNames`, `FailedToRetrieveImagePullSecret`).
    pub reason: String,
    pub message: String,
}

/// Where the resolver reads what a pod references. Always the pod's own namespace.
#[async_trait::async_trait]
pub trait ObjectSource: Send + Sync {
    /// Ok(None) when the object does not exist.
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ResolveError>;
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ResolveError>;
    /// Where pods reach the Kubernetes API (host, port): the `KUBERNETES_SERVICE_*` variables
    /// every container gets, as the kubelet sets them from the `kubernetes` Service. None: no
    /// such variables.
    fn kubernetes_service(&self) -> Option<(String, u16)> {
        None
    }
    /// The cluster's DNS servers and domain, for `ClusterFirst` pods.
    async fn cluster_dns(&self) -> Result<ClusterDns, ResolveError> {
        Ok(ClusterDns::default())
    }
    /// The Services of `namespace`, for the service-link variables.
    async fn services(&self, _namespace: &str) -> Result<Vec<Service>, ResolveError> {
        Ok(Vec::new())
    }
    /// A bound service-account token for the pod (TokenRequest with boundObjectRef = the pod).
    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod_name: &str,
        pod_uid: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, ResolveError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A mandatory secret/configMap/key is missing: the pod stays Pending with
    /// CreateContainerConfigError. The message names the object and key.
    #[error("{0}")]
    MissingReference(String),
    /// Something this virtual node can never run (hostPath, PVC, ...): reason like
    /// "UnsupportedVolume", message actionable.
    #[error("{reason}: {message}")]
    Unsupported { reason: String, message: String },
    /// Bad values in the spec (unparseable quantity, bad fieldRef path).
    #[error("{0}")]
    Invalid(String),
    /// The API failed (retry later).
    #[error("Kubernetes API: {0}")]
    Api(String),
}

/// Resolves `pod` for the node `node_name` whose address is `node_ip`. Warnings (envFrom keys
/// skipped, missing pull secrets) are logged; use [`resolve_pod_with_warnings`] to get them.
pub async fn resolve_pod(
    pod: &Pod,
    node_name: &str,
    node_ip: &str,
    source: &dyn ObjectSource,
) -> Result<ResolvedPod, ResolveError> {
    let (resolved, warnings) = resolve_pod_with_warnings(pod, node_name, node_ip, source).await?;
    for warning in warnings {
        tracing::warn!(pod = %resolved.pod, reason = %warning.reason, "{}", warning.message);
    }
    Ok(resolved)
}

/// [`resolve_pod`], also returning the warnings the kubelet would have recorded as events.
pub async fn resolve_pod_with_warnings(
    pod: &Pod,
    node_name: &str,
    node_ip: &str,
    source: &dyn ObjectSource,
) -> Result<(ResolvedPod, Vec<ResolveWarning>), ResolveError> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| ResolveError::Invalid("the pod has no spec".to_string()))?;
    node_features::check(spec)?;
    let meta = &pod.metadata;
    let pod_ref = PodRef {
        namespace: meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string()),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
    };
    let cluster_dns = source.cluster_dns().await?;
    let (hostname, fqdn, hostname_as_fqdn) = hosts::pod_names(pod, &cluster_dns.domain)?;
    let service_links = if spec.enable_service_links.unwrap_or(true) {
        service_env::service_link_env(
            &pod_ref.namespace,
            &source.services(&pod_ref.namespace).await?,
        )
    } else {
        Vec::new()
    };
    let mut ctx = Ctx {
        pod,
        service_links,
        namespace: pod_ref.namespace.clone(),
        node_name,
        node_ip,
        source,
        secrets: HashMap::new(),
        config_maps: HashMap::new(),
        tokens: HashMap::new(),
        warnings: Vec::new(),
    };

    // The kubelet mounts volumes before it builds any container.
    let volumes =
        volumes::resolve_volumes(&mut ctx, spec.volumes.as_deref().unwrap_or_default()).await?;
    let volume_names: BTreeSet<&str> = volumes.iter().map(|v| v.name.as_str()).collect();

    let mut init_containers = Vec::new();
    for c in spec.init_containers.as_deref().unwrap_or_default() {
        init_containers.push(resolve_container(&mut ctx, c, &volume_names).await?);
    }
    let mut containers = Vec::new();
    for c in &spec.containers {
        containers.push(resolve_container(&mut ctx, c, &volume_names).await?);
    }
    let (effective_cpu_millis, effective_memory_bytes) =
        resources::effective(spec, &init_containers, &containers)?;
    let image_pull_credentials = pull_secrets::resolve_pull_secrets(
        &mut ctx,
        spec.image_pull_secrets.as_deref().unwrap_or_default(),
    )
    .await?;

    let (dns, dns_warnings) = dns::pod_dns(pod, &cluster_dns);
    ctx.warnings.extend(dns_warnings);

    let resolved = ResolvedPod {
        pod: pod_ref,
        node_name: node_name.to_string(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        restart_policy: RestartPolicy::parse(spec.restart_policy.as_deref()),
        init_containers,
        containers,
        volumes,
        termination_grace_period: spec
            .termination_grace_period_seconds
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0))),
        active_deadline_seconds: spec.active_deadline_seconds,
        image_pull_credentials,
        effective_cpu_millis,
        effective_memory_bytes,
        dns,
        hostname,
        fqdn,
        hostname_as_fqdn,
        host_aliases: hosts::host_aliases(pod),
        ..crate::pod_runtime::pod(pod)
    };
    Ok((resolved, ctx.warnings))
}

/// State of one resolution: the pod, and the objects already fetched (the kubelet reads each
/// secret/configMap once per container start; here once per pod).
pub(super) struct Ctx<'a> {
    pub(super) pod: &'a Pod,
    /// The service-link variables every container gets (empty without `enableServiceLinks`).
    pub(super) service_links: Vec<(String, String)>,
    pub(super) namespace: String,
    pub(super) node_name: &'a str,
    pub(super) node_ip: &'a str,
    source: &'a dyn ObjectSource,
    secrets: HashMap<String, Option<Arc<Secret>>>,
    config_maps: HashMap<String, Option<Arc<ConfigMap>>>,
    tokens: HashMap<(Option<String>, i64), String>,
    pub(super) warnings: Vec<ResolveWarning>,
}

impl Ctx<'_> {
    pub(super) fn kubernetes_service(&self) -> Option<(String, u16)> {
        self.source.kubernetes_service()
    }

    pub(super) async fn secret(&mut self, name: &str) -> Result<Option<Arc<Secret>>, ResolveError> {
        check_name("secret", name)?;
        if let Some(found) = self.secrets.get(name) {
            return Ok(found.clone());
        }
        let found = self
            .source
            .secret(&self.namespace, name)
            .await?
            .map(Arc::new);
        self.secrets.insert(name.to_string(), found.clone());
        Ok(found)
    }

    pub(super) async fn config_map(
        &mut self,
        name: &str,
    ) -> Result<Option<Arc<ConfigMap>>, ResolveError> {
        check_name("configMap", name)?;
        if let Some(found) = self.config_maps.get(name) {
            return Ok(found.clone());
        }
        let found = self
            .source
            .config_map(&self.namespace, name)
            .await?
            .map(Arc::new);
        self.config_maps.insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// A token for the pod's service account ([`service_account_name`]).
    pub(super) async fn token(
        &mut self,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, ResolveError> {
        let key = (audience.map(str::to_string), expiration_seconds);
        if let Some(token) = self.tokens.get(&key) {
            return Ok(token.clone());
        }
        let account = service_account_name(self.pod);
        let meta = &self.pod.metadata;
        let token = self
            .source
            .service_account_token(
                &self.namespace,
                account,
                meta.name.as_deref().unwrap_or_default(),
                meta.uid.as_deref().unwrap_or_default(),
                audience,
                expiration_seconds,
            )
            .await?;
        self.tokens.insert(key, token.clone());
        Ok(token)
    }

    /// `<kind> "ns/name" not found`.
    pub(super) fn not_found(&self, kind: &str, name: &str) -> ResolveError {
        ResolveError::MissingReference(format!("{kind} \"{}/{name}\" not found", self.namespace))
    }

    /// `key "k" not found in <kind> "ns/name"`.
    pub(super) fn key_not_found(&self, kind: &str, name: &str, key: &str) -> ResolveError {
        ResolveError::MissingReference(format!(
            "key \"{key}\" not found in {kind} \"{}/{name}\"",
            self.namespace
        ))
    }
}

/// An empty name would turn the GET into a LIST of the whole namespace.
fn check_name(kind: &str, name: &str) -> Result<(), ResolveError> {
    if name.is_empty() {
        return Err(ResolveError::Invalid(format!(
            "a {kind} reference has an empty name"
        )));
    }
    Ok(())
}

async fn resolve_container(
    ctx: &mut Ctx<'_>,
    c: &Container,
    volume_names: &BTreeSet<&str>,
) -> Result<ContainerSpec, ResolveError> {
    if let Some(image) = c.image.as_deref()
        && let Err(why) = image_ref::check(image)
    {
        return Err(ResolveError::Unsupported {
            reason: image_ref::INVALID_IMAGE_NAME.into(),
            message: format!(
                "container {}: image {image:?} is not a valid reference ({why}); it can never be pulled",
                c.name
            ),
        });
    }
    let env = env::resolve_env(ctx, c).await?;
    let env_map: HashMap<&str, &str> = env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    let lookup = |name: &str| env_map.get(name).map(|v| v.to_string());
    let command = c
        .command
        .iter()
        .flatten()
        .map(|s| expand::expand(s, lookup))
        .collect();
    let args = c
        .args
        .iter()
        .flatten()
        .map(|s| expand::expand(s, lookup))
        .collect();

    let mut ports = Vec::new();
    for p in c.ports.iter().flatten() {
        let port = u16::try_from(p.container_port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                ResolveError::Invalid(format!(
                    "container {:?}: containerPort {} is not between 1 and 65535",
                    c.name, p.container_port
                ))
            })?;
        let protocol = p
            .protocol
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "TCP".to_string());
        if let Some(host_port) = p.host_port.filter(|h| *h != 0) {
            ctx.warnings.push(ResolveWarning {
                reason: "HostPortNotSupported".into(),
                message: format!(
                    "container {:?}: hostPort {host_port} is not opened on the node (a virtual \
                     node has no host); the port is reachable on the pod's own IP as \
                     containerPort {port}",
                    c.name
                ),
            });
        }
        ports.push(ContainerPort { port, protocol });
    }

    let mut volume_mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        if !volume_names.contains(m.name.as_str()) {
            return Err(ResolveError::Invalid(format!(
                "container {:?} mounts volume {:?}, which the pod does not define",
                c.name, m.name
            )));
        }
        volume_mounts.push(VolumeMount {
            volume: m.name.clone(),
            mount_path: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false),
            sub_path: sub_path(&c.name, m, &env_map)?,
        });
    }

    let restart_policy = match c.restart_policy.as_deref() {
        None | Some("") => None,
        Some("Always") => Some(RestartPolicy::Always),
        Some("OnFailure") => Some(RestartPolicy::OnFailure),
        Some("Never") => Some(RestartPolicy::Never),
        Some(other) => {
            return Err(ResolveError::Invalid(format!(
                "container {:?}: unknown restartPolicy {other:?}",
                c.name
            )));
        }
    };

    let (startup_probe, liveness_probe, readiness_probe) = probes::resolve_probes(c)?;
    Ok(ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_pull_policy: c.image_pull_policy.clone(),
        command,
        args,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        env,
        ports,
        volume_mounts,
        resources: resources::container_resources(c)?,
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        restart_policy,
        termination_message_path: c.termination_message_path.clone(),
        startup_probe,
        liveness_probe,
        readiness_probe,
        ..crate::pod_runtime::container(c)
    })
}

/// `subPath`, or `subPathExpr` expanded against the container's environment; either must stay
/// inside the volume (relative, no `..`). A variable missing or empty in `subPathExpr` is an
/// error, like the kubelet's `ExpandContainerVolumeMounts`.
fn sub_path(
    container: &str,
    m: &k8s_openapi::api::core::v1::VolumeMount,
    env: &HashMap<&str, &str>,
) -> Result<Option<String>, ResolveError> {
    let path = match m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
        Some(expr) => {
            let mut missing = BTreeSet::new();
            let expanded = expand::expand(expr, |name| match env.get(name) {
                Some(v) if !v.is_empty() => Some(v.to_string()),
                _ => {
                    missing.insert(name.to_string());
                    Some(String::new())
                }
            });
            if !missing.is_empty() {
                return Err(ResolveError::Invalid(format!(
                    "container {container:?}: volume mount {:?}: subPathExpr {expr:?}: missing value for {}",
                    m.name,
                    missing.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
            expanded
        }
        None => m.sub_path.clone().unwrap_or_default(),
    };
    if path.is_empty() {
        return Ok(None);
    }
    if path.starts_with('/') || path.split('/').any(|p| p == "..") {
        return Err(ResolveError::Invalid(format!(
            "container {container:?}: volume mount {:?}: subPath {path:?} must be a relative path without '..'",
            m.name
        )));
    }
    Ok(Some(path))
}

/// The pod's service account: `serviceAccountName`, else the deprecated `serviceAccount`, else
/// `default`.
pub fn service_account_name(pod: &Pod) -> &str {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.service_account_name.as_deref().filter(|n| !n.is_empty()))
        .or_else(|| spec.and_then(|s| s.service_account.as_deref().filter(|n| !n.is_empty())))
        .unwrap_or("default")
}
