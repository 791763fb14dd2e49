//! Reads what a pod references straight from the API: secrets and configMaps by name in the
//! pod's own namespace, its Services as one list of that namespace (never a cluster-wide list), and bound service-account tokens through
//! the TokenRequest API. The controller reads through [`super::WatchedNamespaces`], which
//! comes here only for what its per-namespace cache cannot answer.

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};

use super::resolve::{ObjectSource, ResolveError};

pub struct ApiObjectSource {
    client: kube::Client,
}

impl ApiObjectSource {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

fn api_error(e: kube::Error) -> ResolveError {
    ResolveError::Api(e.to_string())
}

#[async_trait]
impl ObjectSource for ApiObjectSource {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ResolveError> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(api_error)
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ResolveError> {
        Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(api_error)
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, ResolveError> {
        Api::<Service>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map(|list| list.items)
            .map_err(api_error)
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
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod_name.into()),
                    uid: Some(pod_uid.into()),
                }),
            },
            ..Default::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create_token_request(service_account, &PostParams::default(), &request)
            .await
            .map_err(|e| match e {
                kube::Error::Api(ae) if ae.code == 404 => ResolveError::MissingReference(format!(
                    "service account \"{namespace}/{service_account}\" not found"
                )),
                e => api_error(e),
            })?;
        answer
            .status
            .map(|s| s.token)
            .ok_or_else(|| ResolveError::Api("TokenRequest answered without a token".into()))
    }
}
