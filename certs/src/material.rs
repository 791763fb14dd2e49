//! Certificates and keys as PEM text, as files, and as what rustls serves.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::CertError;
use crate::config::SubjectAltNames;

/// A certificate chain with its private key, checked to belong together, ready to serve.
#[derive(Clone, Debug)]
pub(crate) struct ServingMaterial {
    pub certified: Arc<CertifiedKey>,
    pub facts: CertificateFacts,
}

impl ServingMaterial {
    /// `cert_what` and `key_what` name where the PEM came from (a path, an API field), for
    /// errors.
    pub fn from_pem(
        cert_pem: &[u8],
        cert_what: &str,
        key_pem: &[u8],
        key_what: &str,
    ) -> Result<Self, CertError> {
        let chain = parse_certificates(cert_pem, cert_what)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| CertError::pem(key_what, format!("no usable private key in PEM: {e}")))?;
        let facts = CertificateFacts::from_der(&chain[0], cert_what)?;
        let certified = CertifiedKey::from_der(chain, key, &crypto_provider()).map_err(|e| {
            CertError::invalid(
                format!("{cert_what} with key {key_what}"),
                format!("unusable certificate/key pair: {e}"),
            )
        })?;
        Ok(Self {
            certified: Arc::new(certified),
            facts,
        })
    }
}

/// The provider this crate builds every config with, named explicitly so nothing depends on
/// which provider another crate installed as the process default.
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every CERTIFICATE block; the first is the leaf.
pub(crate) fn parse_certificates(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::pem(what, format!("malformed PEM: {e}")))?;
    if chain.is_empty() {
        return Err(CertError::pem(what, "no CERTIFICATE block in PEM"));
    }
    Ok(chain)
}

/// The leaf certificate in PEM, as `kubectl` and `openssl` show it.
pub(crate) fn leaf_pem(certified: &CertifiedKey) -> String {
    certified
        .cert
        .first()
        .map(|der| {
            let block = pem::Pem::new("CERTIFICATE", der.to_vec());
            pem::encode_config(
                &block,
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        })
        .unwrap_or_default()
}

/// What the renewal decisions need to know about a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertificateFacts {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub common_name: Option<String>,
    pub sans: SubjectAltNames,
}

impl CertificateFacts {
    pub fn from_der(der: &CertificateDer<'_>, what: &str) -> Result<Self, CertError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| CertError::invalid(what, format!("not an X.509 certificate: {e}")))?;
        let validity = cert.validity();
        let time = |t: &x509_parser::time::ASN1Time| {
            Timestamp::from_second(t.timestamp())
                .map_err(|e| CertError::invalid(what, format!("validity out of range: {e}")))
        };
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let mut sans = SubjectAltNames::default();
        let extension = cert
            .subject_alternative_name()
            .map_err(|e| CertError::invalid(what, format!("bad subjectAltName: {e}")))?;
        for name in extension
            .iter()
            .flat_map(|ext| ext.value.general_names.iter())
        {
            match name {
                GeneralName::DNSName(dns) => {
                    sans.dns_names.insert(dns.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        sans.ips.insert(ip);
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            not_before: time(&validity.not_before)?,
            not_after: time(&validity.not_after)?,
            common_name,
            sans,
        })
    }
}

pub(crate) fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The key and certificate files of CSR mode, in the configured directory.
#[derive(Clone, Debug)]
pub(crate) struct CertificateFiles {
    pub dir: PathBuf,
}

impl CertificateFiles {
    pub const KEY: &'static str = "kubelet-serving.key";
    pub const CERT: &'static str = "kubelet-serving.crt";
    /// The key of a CSR still waiting for approval, kept so a restart resumes that CSR instead
    /// of asking the operator to approve a new one.
    pub const PENDING_KEY: &'static str = "kubelet-serving.key.pending";

    pub fn key(&self) -> PathBuf {
        self.dir.join(Self::KEY)
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join(Self::CERT)
    }
    pub fn pending_key(&self) -> PathBuf {
        self.dir.join(Self::PENDING_KEY)
    }

    /// The stored certificate and key; `Ok(None)` when neither file exists yet.
    pub fn load(&self) -> Result<Option<ServingMaterial>, CertError> {
        let (key, cert) = (self.key(), self.cert());
        if !key.exists() && !cert.exists() {
            return Ok(None);
        }
        load_pair(&cert, &key).map(Some)
    }

    pub fn load_pending_key(&self) -> Result<Option<String>, CertError> {
        let path = self.pending_key();
        match fs::read_to_string(&path) {
            Ok(pem) => Ok(Some(pem)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CertError::Read { path, source }),
        }
    }

    pub fn store_pending_key(&self, key_pem: &str) -> Result<(), CertError> {
        self.ensure_dir()?;
        write_atomically(&self.pending_key(), key_pem.as_bytes(), 0o600)
    }

    pub fn discard_pending_key(&self) -> Result<(), CertError> {
        let path = self.pending_key();
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CertError::Write { path, source }),
        }
    }

    /// Makes the issued certificate current: the certificate first, then the pending key takes
    /// the place of the old one. A crash in between leaves a mismatched pair, which the next
    /// start detects and replaces.
    pub fn promote(&self, cert_pem: &[u8]) -> Result<(), CertError> {
        write_atomically(&self.cert(), cert_pem, 0o644)?;
        let (from, to) = (self.pending_key(), self.key());
        fs::rename(&from, &to).map_err(|source| CertError::Write { path: to, source })
    }

    fn ensure_dir(&self) -> Result<(), CertError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| CertError::Write {
                path: self.dir.clone(),
                source,
            })
    }
}

/// Reads a certificate file and its key file; errors name the file and the reason.
pub(crate) fn load_pair(cert: &Path, key: &Path) -> Result<ServingMaterial, CertError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| CertError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    ServingMaterial::from_pem(
        &cert_pem,
        &cert.display().to_string(),
        &key_pem,
        &key.display().to_string(),
    )
}

/// Write-then-rename, so a reader (or a crash) never sees half a file; a key is never
/// readable by others, not even for a moment.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let err = |source| CertError::Write {
        path: path.to_owned(),
        source,
    };
    // A leftover temp file may have looser permissions than we want; start afresh.
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    // The umask may have narrowed the mode of a certificate; set exactly what was asked.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestCa, temp_dir};

    #[test]
    fn files_round_trip_with_private_key_mode() {
        let dir = temp_dir("material-round-trip");
        let files = CertificateFiles {
            dir: dir.join("nested"),
        };
        assert!(files.load().unwrap().is_none());
        let ca = TestCa::new("round-trip-ca");
        let (cert_pem, key_pem) = ca.leaf("system:node:vk", &["10.1.2.3"], 0, 3600);
        files.store_pending_key(&key_pem).unwrap();
        assert_eq!(
            files.load_pending_key().unwrap().as_deref(),
            Some(&*key_pem)
        );
        files.promote(cert_pem.as_bytes()).unwrap();
        assert!(files.load_pending_key().unwrap().is_none());
        let mode = fs::metadata(files.key()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = files.load().unwrap().unwrap();
        assert_eq!(loaded.facts.common_name.as_deref(), Some("system:node:vk"));
        assert_eq!(
            loaded.facts.sans.ips.iter().collect::<Vec<_>>(),
            [&"10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(leaf_pem(&loaded.certified).trim(), cert_pem.trim());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_the_reason() {
        let dir = temp_dir("material-errors");
        let ca = TestCa::new("errors-ca");
        let (cert_pem, key_pem) = ca.leaf("system:node:vk", &["10.1.2.3"], 0, 3600);
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));

        let missing = load_pair(&cert, &key).unwrap_err().to_string();
        assert!(
            missing.contains("tls.crt") && missing.contains("No such file"),
            "{missing}"
        );

        fs::write(&cert, "not pem").unwrap();
        fs::write(&key, &key_pem).unwrap();
        let garbage = load_pair(&cert, &key).unwrap_err().to_string();
        assert!(
            garbage.contains("tls.crt") && garbage.contains("no CERTIFICATE"),
            "{garbage}"
        );

        fs::write(&cert, &cert_pem).unwrap();
        fs::write(&key, &cert_pem).unwrap();
        let no_key = load_pair(&cert, &key).unwrap_err().to_string();
        assert!(
            no_key.contains("tls.key") && no_key.contains("private key"),
            "{no_key}"
        );

        let (_, other_key) = ca.leaf("system:node:other", &["10.1.2.3"], 0, 3600);
        fs::write(&key, other_key).unwrap();
        let mismatch = load_pair(&cert, &key).unwrap_err().to_string();
        assert!(
            mismatch.contains("tls.crt") && mismatch.contains("tls.key"),
            "{mismatch}"
        );

        fs::write(&key, key_pem).unwrap();
        assert!(load_pair(&cert, &key).is_ok());
        fs::remove_dir_all(dir).unwrap();
    }
}
