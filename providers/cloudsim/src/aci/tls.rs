//! The face's HTTPS: ARM and Azure AD are HTTPS only (azure-core's bearer policy and MSAL
//! refuse plain http), and exec sockets are `wss://`. Either a certificate and key from files,
//! or a throwaway CA made at start that signs a server certificate for `127.0.0.1`, `::1` and
//! `localhost`; the CA's PEM is what a client trusts (written to a file when asked).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::launch::StartError;

/// How the face serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP (Rust tests; no Azure SDK accepts it).
    #[default]
    Plain,
    /// A CA made now signs the server's certificate; its PEM goes to `ca_out` when given.
    SelfSigned { ca_out: Option<PathBuf> },
    /// A certificate chain and key (PEM files).
    Files { cert: PathBuf, key: PathBuf },
}

/// A server config, and the PEM of the CA that signed its certificate (self-signed mode).
pub type Served = (Arc<rustls::ServerConfig>, Option<String>);

/// The server's TLS config, and the PEM of the CA that signed it (self-signed mode).
pub fn server_config(mode: &TlsMode) -> Result<Option<Served>, StartError> {
    let (chain, key, ca_pem) = match mode {
        TlsMode::Plain => return Ok(None),
        TlsMode::SelfSigned { ca_out } => {
            let (chain, key, ca_pem) = self_signed()?;
            if let Some(path) = ca_out {
                write(path, &ca_pem)?;
            }
            (chain, key, Some(ca_pem))
        }
        TlsMode::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StartError::Tls(format!("reading the certificate {}: {e}", cert.display()))
                })?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| StartError::Tls(format!("reading the key {}: {e}", key.display())))?;
            (chain, key, None)
        }
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StartError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| {
        StartError::Tls(format!(
            "the certificate and key do not make a server config: {e}"
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some((Arc::new(config), ca_pem)))
}

fn write(path: &Path, pem: &str) -> Result<(), StartError> {
    std::fs::write(path, pem)
        .map_err(|e| StartError::Tls(format!("writing the CA to {}: {e}", path.display())))
}

type Material = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String);

fn self_signed() -> Result<Material, StartError> {
    let err = |what: &str, e: rcgen::Error| StartError::Tls(format!("{what}: {e}"));
    let ca_key = KeyPair::generate().map_err(|e| err("making the CA key", e))?;
    let mut ca =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| err("the CA's parameters", e))?;
    ca.distinguished_name
        .push(DnType::CommonName, "vk-cloud ACI face CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    ca.not_before = now - time::Duration::minutes(5);
    ca.not_after = now + time::Duration::days(30);
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| err("signing the CA", e))?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(|e| err("making the server key", e))?;
    let mut leaf = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(|e| err("the server certificate's parameters", e))?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = now - time::Duration::minutes(5);
    leaf.not_after = now + time::Duration::days(30);
    let cert = leaf
        .signed_by(&key, &issuer)
        .map_err(|e| err("signing the server certificate", e))?;
    let chain = vec![cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok((chain, key, ca_cert.pem()))
}
