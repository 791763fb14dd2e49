//! A throw-away CA for tests: issues serving and client certificates with chosen validity.
//! Shared by the unit tests (included through `#[path]`) and the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    pub fn cert_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()
    }

    /// A serving certificate valid from `starts_in` seconds from now for `lifetime` seconds;
    /// returns (certificate PEM, key PEM).
    pub fn leaf(&self, cn: &str, sans: &[&str], starts_in: i64, lifetime: i64) -> (String, String) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        params.distinguished_name.push(DnType::CommonName, cn);
        let start = time::OffsetDateTime::now_utc() + time::Duration::seconds(starts_in);
        params.not_before = start;
        params.not_after = start + time::Duration::seconds(lifetime);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate as the apiserver presents it: CN user, O groups (at most two:
    /// rcgen keeps one value per attribute type, so the second O goes in as a custom type
    /// with the same OID).
    pub fn client(&self, cn: &str, groups: &[&str]) -> (String, String) {
        assert!(groups.len() <= 2, "at most two groups");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let types = [
            DnType::OrganizationName,
            DnType::CustomDnType(vec![2, 5, 4, 10]),
        ];
        for (group, ty) in groups.iter().zip(types) {
            params.distinguished_name.push(ty, *group);
        }
        if !cn.is_empty() {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// A serving certificate for `system:node:<node>` on 127.0.0.1 and localhost, ready for rustls.
    pub fn certified_leaf(&self, node: &str) -> Arc<CertifiedKey> {
        let (cert, key) = self.leaf(
            &format!("system:node:{node}"),
            &["127.0.0.1", "localhost"],
            -60,
            3600,
        );
        certified(&cert, &key)
    }

    fn sign(&self, params: CertificateParams) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

pub fn certified(cert_pem: &str, key_pem: &str) -> Arc<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(CertifiedKey::from_der(chain, key, &provider).unwrap())
}

/// A fresh directory under the system temp dir; the test removes it when done.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vk-certs-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
