//! The virtual node's kubelet serving certificate and the TLS configs of the kubelet API.
//!
//! The apiserver dials the node's InternalIP:10250 with its kubelet-client certificate and
//! verifies the node's certificate against the cluster CA (`--kubelet-certificate-authority`),
//! so the serving certificate has to come from the cluster's `kubernetes.io/kubelet-serving`
//! signer ([`ServingCertMode::Csr`], the default), or be provisioned by someone who holds that
//! CA ([`ServingCertMode::Files`]). [`ServingCertMode::SelfSigned`] is for development only.
//!
//! ```no_run
//! # async fn run(client: kube::Client, config: certs::ServingCertConfig) -> Result<(), certs::CertError> {
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let serving = certs::ServingCert::start(client.clone(), config, cancel.clone()).await?;
//! let client_ca = certs::cluster_client_ca(client).await?;
//! let tls = certs::kubelet_server_config(serving.resolver(), Some(&client_ca))?;
//! # let _ = tls; Ok(()) }
//! ```

mod config;
mod csr;
mod error;
mod material;
mod renewal;
mod request;
mod resolver;
mod self_signed;
mod serving;
mod tls;

pub use config::{NODE_USER_PREFIX, NODES_GROUP, ServingCertConfig, ServingCertMode};
pub use error::CertError;
pub use request::{KUBELET_SERVING_SIGNER, SERVING_USAGES};
pub use resolver::ServingCertResolver;
pub use serving::ServingCert;
pub use tls::{client_identity, cluster_client_ca, kubelet_server_config};

#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_support;
