//! The PKCS#10 request and the CertificateSigningRequest object for a serving certificate.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData, SanType};

use crate::CertError;
use crate::config::{NODES_GROUP, ServingCertConfig};

/// The signer whose certificates the apiserver trusts for `--kubelet-certificate-authority`.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// What the kubelet-serving signer accepts for an EC key (`key encipherment` is for RSA only).
pub const SERVING_USAGES: [&str; 2] = ["digital signature", "server auth"];
const NAME_PREFIX: &str = "vk-serving-";
const HASH_CHARS: usize = 10;
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "vk-serverless");

/// A fresh ECDSA P-256 key, the algorithm a kubelet uses for its serving key.
pub(crate) fn generate_key() -> Result<KeyPair, CertError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| CertError::Generate {
        action: "generating an ECDSA P-256 key",
        source,
    })
}

/// The subject and names of a serving certificate for the configured node.
pub(crate) fn serving_params(config: &ServingCertConfig) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, NODES_GROUP);
    subject.push(DnType::CommonName, config.common_name());
    params.distinguished_name = subject;
    let sans = config.subject_alt_names();
    params.subject_alt_names = sans.ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    for dns in sans.dns_names {
        let name = dns
            .clone()
            .try_into()
            .map_err(|source| CertError::Generate {
                action: "encoding a DNS subject alternative name",
                source,
            })?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    Ok(params)
}

/// A certificate request for one serving key, with the API object that carries it.
#[derive(Clone, Debug)]
pub(crate) struct ServingCsr {
    /// Derived from the key and the names, so a restart with the same pending key finds the
    /// CSR it created before instead of making the operator approve another one.
    pub name: String,
    pub key_pem: String,
    pub csr_pem: String,
}

impl ServingCsr {
    /// A request signed by `key_pem`, or by a fresh key when there is none to resume.
    pub fn new(config: &ServingCertConfig, key_pem: Option<&str>) -> Result<Self, CertError> {
        let key = match key_pem {
            Some(pem) => KeyPair::from_pem(pem).map_err(|source| CertError::Generate {
                action: "reading the pending serving key",
                source,
            })?,
            None => generate_key()?,
        };
        let params = serving_params(config)?;
        let csr = params
            .serialize_request(&key)
            .and_then(|csr| csr.pem())
            .map_err(|source| CertError::Generate {
                action: "building the certificate signing request",
                source,
            })?;
        Ok(Self {
            name: csr_name(config, &key.subject_public_key_info()),
            key_pem: key.serialize_pem(),
            csr_pem: csr,
        })
    }

    pub fn object(&self, config: &ServingCertConfig) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_owned(),
                    MANAGED_BY.1.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(self.csr_pem.clone().into_bytes()),
                signer_name: KUBELET_SERVING_SIGNER.to_owned(),
                usages: Some(SERVING_USAGES.iter().map(|u| (*u).to_owned()).collect()),
                expiration_seconds: config
                    .requested_duration
                    .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
                ..CertificateSigningRequestSpec::default()
            },
            status: None,
        }
    }
}

/// `vk-serving-<node>-<hash of key and names>`, within the 253 characters of an object name.
fn csr_name(config: &ServingCertConfig, public_key_der: &[u8]) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(public_key_der);
    digest.update(config.common_name().as_bytes());
    digest.update(config.subject_alt_names().to_string().as_bytes());
    let hash: String = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(HASH_CHARS)
        .collect();
    let room = 253 - NAME_PREFIX.len() - 1 - HASH_CHARS;
    let node: String = config.node_name.chars().take(room).collect();
    // A cut name may end in a separator, which may not be followed by another one.
    let node = node.trim_end_matches(['.', '-']);
    format!("{NAME_PREFIX}{node}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServingCertMode;
    use std::net::IpAddr;
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::FromDer;

    fn config() -> ServingCertConfig {
        ServingCertConfig {
            node_name: "vk-eci-1".into(),
            ips: vec!["10.0.0.7".parse().unwrap(), "fd00::7".parse().unwrap()],
            hostnames: vec!["vk-eci-1.example.com".into()],
            dir: "/nonexistent".into(),
            mode: ServingCertMode::default(),
            requested_duration: None,
        }
    }

    #[test]
    fn csr_carries_node_identity_and_names() {
        let csr = ServingCsr::new(&config(), None).unwrap();
        let der = ::pem::parse(&csr.csr_pem).unwrap();
        assert_eq!(der.tag(), "CERTIFICATE REQUEST");
        let (_, req) = X509CertificationRequest::from_der(der.contents()).unwrap();
        req.verify_signature().unwrap();
        let subject = &req.certification_request_info.subject;
        let cn: Vec<_> = subject
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        let o: Vec<_> = subject
            .iter_organization()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(cn, ["system:node:vk-eci-1"]);
        assert_eq!(o, ["system:nodes"]);

        let mut ips: Vec<IpAddr> = Vec::new();
        let mut dns = Vec::new();
        for ext in req.requested_extensions().unwrap() {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    match name {
                        GeneralName::IPAddress(b) => {
                            ips.push(crate::material::ip_from_bytes(b).unwrap())
                        }
                        GeneralName::DNSName(d) => dns.push(d.to_string()),
                        other => panic!("unexpected SAN {other:?}"),
                    }
                }
            }
        }
        ips.sort();
        assert_eq!(ips, config().ips);
        assert_eq!(dns, ["vk-eci-1.example.com"]);
        // EC P-256: the key the kubelet-serving signer accepts without `key encipherment`.
        assert!(csr.key_pem.contains("BEGIN PRIVATE KEY"));
        let key = KeyPair::from_pem(&csr.key_pem).unwrap();
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
    }

    #[test]
    fn csr_object_asks_the_kubelet_serving_signer() {
        let mut config = config();
        config.requested_duration = Some(std::time::Duration::from_secs(3600));
        let csr = ServingCsr::new(&config, None).unwrap();
        let object = csr.object(&config);
        assert_eq!(object.spec.signer_name, "kubernetes.io/kubelet-serving");
        assert_eq!(
            object.spec.usages.as_deref().unwrap(),
            ["digital signature", "server auth"]
        );
        assert_eq!(object.spec.expiration_seconds, Some(3600));
        assert_eq!(object.spec.request.0, csr.csr_pem.as_bytes());
        assert!(csr.name.starts_with("vk-serving-vk-eci-1-"), "{}", csr.name);
    }

    #[test]
    fn csr_name_is_stable_for_a_key_and_changes_with_names() {
        let config = config();
        let first = ServingCsr::new(&config, None).unwrap();
        let resumed = ServingCsr::new(&config, Some(&first.key_pem)).unwrap();
        assert_eq!(first.name, resumed.name);
        let fresh = ServingCsr::new(&config, None).unwrap();
        assert_ne!(first.name, fresh.name);
        let mut moved = config.clone();
        moved.ips.push("10.0.0.8".parse().unwrap());
        let renamed = ServingCsr::new(&moved, Some(&first.key_pem)).unwrap();
        assert_ne!(first.name, renamed.name);
    }

    #[test]
    fn csr_name_fits_an_object_name() {
        let mut config = config();
        config.node_name = format!("{}.{}", "a".repeat(230), "b".repeat(22));
        let name = ServingCsr::new(&config, None).unwrap().name;
        assert!(name.len() <= 253, "{}", name.len());
        assert!(!name.contains(".-"), "{name}");
    }
}
