use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::CertError;

/// The group every kubelet serving certificate must name; the kubelet-serving signer refuses
/// anything else.
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of a node's user name, and so of its certificate's CN.
pub const NODE_USER_PREFIX: &str = "system:node:";

/// Where the kubelet serving certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServingCertMode {
    /// Request one from the cluster's `kubernetes.io/kubelet-serving` signer through a
    /// CertificateSigningRequest, as a real kubelet with `serverTLSBootstrap: true` does.
    /// With `auto_approve` (development only) the CSR is approved by this process, which then
    /// needs the `approve` verb on that signer.
    Csr { auto_approve: bool },
    /// PEM files provisioned by someone else (cert-manager, a Secret volume); re-read when they
    /// change.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate, development only: the apiserver cannot verify it.
    SelfSigned,
}

impl Default for ServingCertMode {
    fn default() -> Self {
        Self::Csr {
            auto_approve: false,
        }
    }
}

/// What the serving certificate is for: one virtual node and the addresses the apiserver
/// dials (its `InternalIP`s and hostnames).
#[derive(Clone, Debug)]
pub struct ServingCertConfig {
    pub node_name: String,
    pub ips: Vec<IpAddr>,
    pub hostnames: Vec<String>,
    /// Holds `kubelet-serving.key` and `kubelet-serving.crt` in CSR mode.
    pub dir: PathBuf,
    pub mode: ServingCertMode,
    /// Asked of the signer as `spec.expirationSeconds` in CSR mode (the signer may shorten it,
    /// and refuses less than 10 minutes); `None` leaves it to the signer (a year by default).
    pub requested_duration: Option<Duration>,
}

impl ServingCertConfig {
    /// The certificate's subject CN: the node's user name.
    pub fn common_name(&self) -> String {
        format!("{NODE_USER_PREFIX}{}", self.node_name)
    }

    /// The subject alternative names the certificate must carry, deduplicated and sorted.
    pub(crate) fn subject_alt_names(&self) -> SubjectAltNames {
        SubjectAltNames {
            ips: self.ips.iter().copied().collect(),
            dns_names: self
                .hostnames
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Rejects what the signer would reject later, when the fix is still obvious.
    pub(crate) fn validate(&self) -> Result<(), CertError> {
        if self.node_name.is_empty() {
            return Err(CertError::Config("the node name is empty".into()));
        }
        if self.ips.is_empty() && self.hostnames.is_empty() {
            return Err(CertError::Config(format!(
                "node {} has neither IPs nor hostnames: the certificate needs at least one \
                 subject alternative name the apiserver can verify",
                self.node_name
            )));
        }
        if let Some(bad) = self.hostnames.iter().find(|h| !is_dns_name(h)) {
            return Err(CertError::Config(format!(
                "hostname {bad:?} is not a DNS name"
            )));
        }
        if let Some(d) = self.requested_duration
            && d < Duration::from_secs(600)
        {
            return Err(CertError::Config(format!(
                "requested duration {d:?} is below the 10 minutes a CSR may ask for"
            )));
        }
        Ok(())
    }
}

/// The set of names a serving certificate is valid for; compared as sets, so order and
/// duplicates do not force a renewal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SubjectAltNames {
    pub ips: BTreeSet<IpAddr>,
    pub dns_names: BTreeSet<String>,
}

impl std::fmt::Display for SubjectAltNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ips = self.ips.iter().map(|ip| format!("IP:{ip}"));
        let dns = self.dns_names.iter().map(|d| format!("DNS:{d}"));
        let all: Vec<String> = ips.chain(dns).collect();
        write!(f, "[{}]", all.join(", "))
    }
}

fn is_dns_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServingCertConfig {
        ServingCertConfig {
            node_name: "vk-1".into(),
            ips: vec!["10.0.0.7".parse().unwrap(), "10.0.0.7".parse().unwrap()],
            hostnames: vec!["VK-1.example.".into(), "vk-1".into()],
            dir: PathBuf::from("/nonexistent"),
            mode: ServingCertMode::default(),
            requested_duration: None,
        }
    }

    #[test]
    fn names_are_normalized_as_sets() {
        let sans = config().subject_alt_names();
        assert_eq!(sans.ips.len(), 1);
        assert_eq!(
            sans.dns_names.iter().collect::<Vec<_>>(),
            ["vk-1", "vk-1.example"]
        );
        assert_eq!(
            sans.to_string(),
            "[IP:10.0.0.7, DNS:vk-1, DNS:vk-1.example]"
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = config();
        assert!(c.validate().is_ok());
        c.hostnames = vec!["bad name".into()];
        assert!(c.validate().unwrap_err().to_string().contains("bad name"));
        c.hostnames.clear();
        c.ips.clear();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("neither IPs")
        );
        let mut c = config();
        c.requested_duration = Some(Duration::from_secs(60));
        assert!(c.validate().is_err());
    }
}
