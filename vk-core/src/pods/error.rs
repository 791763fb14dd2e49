//! What a reconcile can fail with (retried with backoff by the controller).

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("provider: {0}")]
    Provider(#[from] crate::provider::ProviderError),
    #[error("resolving the pod: {0}")]
    Resolve(#[from] super::resolve::ResolveError),
}
