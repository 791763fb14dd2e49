//! Shared fixtures: a fake [`ObjectSource`] backed by maps, and pods written as JSON.

mod dns;
mod env;
mod pod;
mod pull_secrets;
mod resources;
mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use serde_json::json;

use super::{
    ClusterDns, ObjectSource, ResolveError, ResolveWarning, resolve_pod, resolve_pod_with_warnings,
};
use crate::provider::{ContainerSpec, ResolvedPod, Volume, VolumeFile, VolumeSource};

pub(super) const NODE: &str = "vk-node";
pub(super) const NODE_IP: &str = "10.0.0.1";

#[derive(Default)]
pub(super) struct FakeSource {
    secrets: HashMap<(String, String), Secret>,
    config_maps: HashMap<(String, String), ConfigMap>,
    /// Every call made, e.g. `secret ns/name`, `token ns/sa pod uid aud=None exp=3600`.
    calls: Mutex<Vec<String>>,
    /// Every call fails with `ResolveError::Api`.
    broken: bool,
    /// What `kubernetes_service` answers.
    api_endpoint: Option<(String, u16)>,
    /// What `cluster_dns` answers; None: server 10.96.0.10, domain cluster.local.
    cluster_dns: Option<ClusterDns>,
    /// The Services of every namespace.
    services: Vec<Service>,
}

impl FakeSource {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn api_endpoint(mut self, host: &str, port: u16) -> Self {
        self.api_endpoint = Some((host.into(), port));
        self
    }

    pub(super) fn cluster_dns(mut self, servers: &[&str], domain: &str) -> Self {
        self.cluster_dns = Some(ClusterDns {
            servers: servers.iter().map(|s| s.to_string()).collect(),
            domain: domain.into(),
        });
        self
    }

    pub(super) fn service(mut self, service: serde_json::Value) -> Self {
        self.services.push(serde_json::from_value(service).unwrap());
        self
    }

    pub(super) fn broken() -> Self {
        Self {
            broken: true,
            ..Self::default()
        }
    }

    pub(super) fn secret(mut self, ns: &str, name: &str, data: &[(&str, &[u8])]) -> Self {
        let secret = Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        self.secrets.insert((ns.into(), name.into()), secret);
        self
    }

    pub(super) fn typed_secret(
        self,
        ns: &str,
        name: &str,
        type_: &str,
        key: &str,
        value: &str,
    ) -> Self {
        let mut this = self.secret(ns, name, &[(key, value.as_bytes())]);
        if let Some(secret) = this.secrets.get_mut(&(ns.to_string(), name.to_string())) {
            secret.type_ = Some(type_.to_string());
        }
        this
    }

    pub(super) fn config_map(self, ns: &str, name: &str, data: &[(&str, &str)]) -> Self {
        self.config_map_with_binary(ns, name, data, &[])
    }

    pub(super) fn config_map_with_binary(
        mut self,
        ns: &str,
        name: &str,
        data: &[(&str, &str)],
        binary: &[(&str, &[u8])],
    ) -> Self {
        let cm = ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            binary_data: (!binary.is_empty()).then(|| {
                binary
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect()
            }),
            ..ConfigMap::default()
        };
        self.config_maps.insert((ns.into(), name.into()), cm);
        self
    }

    pub(super) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) -> Result<(), ResolveError> {
        self.calls.lock().unwrap().push(call);
        if self.broken {
            return Err(ResolveError::Api("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectSource for FakeSource {
    fn kubernetes_service(&self) -> Option<(String, u16)> {
        self.api_endpoint.clone()
    }

    async fn cluster_dns(&self) -> Result<ClusterDns, ResolveError> {
        Ok(self.cluster_dns.clone().unwrap_or_else(|| ClusterDns {
            servers: vec!["10.96.0.10".into()],
            domain: "cluster.local".into(),
        }))
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, ResolveError> {
        Ok(self
            .services
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
            .cloned()
            .collect())
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ResolveError> {
        self.record(format!("secret {namespace}/{name}"))?;
        Ok(self.secrets.get(&(namespace.into(), name.into())).cloned())
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ResolveError> {
        self.record(format!("configmap {namespace}/{name}"))?;
        Ok(self
            .config_maps
            .get(&(namespace.into(), name.into()))
            .cloned())
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod_name: &str,
        pod_uid: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, ResolveError> {
        let call = format!(
            "token {namespace}/{service_account} {pod_name} {pod_uid} aud={audience:?} exp={expiration_seconds}"
        );
        self.record(call.clone())?;
        Ok(format!("jwt({call})"))
    }
}

/// A pod in namespace `ns1` named `web` (uid `uid-1`) with the given spec.
pub(super) fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns1", "uid": "uid-1"},
        "spec": spec,
    }))
    .unwrap()
}

/// A pod with a single container `app` (image `nginx`) with extra container fields.
pub(super) fn pod_with_container(container: serde_json::Value) -> Pod {
    let mut c = json!({"name": "app", "image": "nginx"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), container.as_object()) {
        c.extend(extra.clone());
    }
    pod(json!({"containers": [c]}))
}

pub(super) async fn resolve(pod: &Pod, source: &FakeSource) -> Result<ResolvedPod, ResolveError> {
    resolve_pod(pod, NODE, NODE_IP, source).await
}

pub(super) async fn resolve_warn(
    pod: &Pod,
    source: &FakeSource,
) -> Result<(ResolvedPod, Vec<ResolveWarning>), ResolveError> {
    resolve_pod_with_warnings(pod, NODE, NODE_IP, source).await
}

/// The first app container.
pub(super) fn app(p: &ResolvedPod) -> &ContainerSpec {
    &p.containers[0]
}

/// Env of the first app container as a map.
pub(super) fn env_map(p: &ResolvedPod) -> BTreeMap<String, String> {
    app(p)
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect()
}

pub(super) fn volume<'a>(p: &'a ResolvedPod, name: &str) -> &'a Volume {
    p.volumes.iter().find(|v| v.name == name).unwrap()
}

pub(super) fn files<'a>(p: &'a ResolvedPod, name: &str) -> &'a [VolumeFile] {
    match &volume(p, name).source {
        VolumeSource::Files(files) => files,
        other => panic!("volume {name} is {other:?}"),
    }
}

/// `path -> (content as text, mode)`.
pub(super) fn file_map(p: &ResolvedPod, name: &str) -> BTreeMap<String, (String, u32)> {
    files(p, name)
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                (String::from_utf8_lossy(&f.content).into_owned(), f.mode),
            )
        })
        .collect()
}

#[track_caller]
pub(super) fn assert_missing(result: Result<ResolvedPod, ResolveError>, message: &str) {
    match result {
        Err(ResolveError::MissingReference(m)) => assert_eq!(m, message),
        other => panic!("expected MissingReference({message:?}), got {other:?}"),
    }
}

#[track_caller]
pub(super) fn assert_invalid(result: Result<ResolvedPod, ResolveError>, contains: &str) {
    match result {
        Err(ResolveError::Invalid(m)) => {
            assert!(m.contains(contains), "{m:?} should contain {contains:?}")
        }
        other => panic!("expected Invalid(..{contains:?}..), got {other:?}"),
    }
}
