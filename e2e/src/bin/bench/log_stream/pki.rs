//! A throw-away CA for the loopback run: the kubelet's serving certificate (127.0.0.1,
//! localhost) and a client certificate shaped like the API server's kubelet-client one.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};

/// The identity the client presents, as kube-apiserver's `--kubelet-client-certificate`.
pub const CLIENT_USER: &str = "kube-apiserver-kubelet-client";
pub const CLIENT_GROUP: &str = "system:masters";

pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    pub serving: Arc<CertifiedKey>,
    client_cert: CertificateDer<'static>,
    client_key: KeyPair,
}

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn private_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

impl Pki {
    pub fn new() -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "log-stream bench CA");
        let ca_key = KeyPair::generate()?;
        let ca = params.self_signed(&ca_key)?;
        let (ca_pem, ca_der) = (ca.pem(), ca.der().clone());
        let issuer = Issuer::new(params, ca_key);

        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "system:node:bench");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        let serving = CertifiedKey::from_der(
            vec![cert.der().clone()],
            private_key(&key),
            crypto().as_ref(),
        )
        .context("the serving certificate for rustls")?;

        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, CLIENT_USER);
        params
            .distinguished_name
            .push(DnType::OrganizationName, CLIENT_GROUP);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate()?;
        let client_cert = params.signed_by(&client_key, &issuer)?.der().clone();
        Ok(Self {
            ca_pem,
            ca_der,
            serving: Arc::new(serving),
            client_cert,
            client_key,
        })
    }

    /// The client side: trusts only the bench CA, presents the kubelet-client certificate,
    /// offers exactly one ALPN protocol.
    pub fn client_config(&self, h2: bool) -> anyhow::Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let mut config = ClientConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![self.client_cert.clone()],
                private_key(&self.client_key),
            )?;
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        Ok(Arc::new(config))
    }
}
