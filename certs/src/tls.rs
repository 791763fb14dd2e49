//! The rustls side of the kubelet API on :10250: server config, client CA, client identity.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::server::{ResolvesServerCert, ServerConfig, WebPkiClientVerifier};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::CertError;
use crate::material::{crypto_provider, parse_certificates};

const CLIENT_CA_NAMESPACE: &str = "kube-system";
const CLIENT_CA_CONFIG_MAP: &str = "extension-apiserver-authentication";
const CLIENT_CA_KEY: &str = "client-ca-file";

/// The TLS config of the kubelet API: TLS 1.2 and 1.3 only, ALPN `h2` and `http/1.1`.
///
/// With `client_ca_pem`, client certificates are requested and, when presented, must chain to
/// that CA (the apiserver's kubelet-client CA); a client without one still completes the
/// handshake, because it may authenticate with a bearer token at the HTTP layer. Without it no
/// client certificate is asked for.
pub fn kubelet_server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    client_ca_pem: Option<&[u8]>,
) -> Result<ServerConfig, CertError> {
    let provider = crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca_pem {
        Some(pem) => {
            let what = "the client CA bundle";
            let mut roots = RootCertStore::empty();
            for cert in parse_certificates(pem, what)? {
                roots.add(cert).map_err(|e| CertError::invalid(what, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The apiserver's client CA as a kubelet finds it: the `client-ca-file` key of ConfigMap
/// kube-system/extension-apiserver-authentication (readable with the Role
/// `extension-apiserver-authentication-reader`).
pub async fn cluster_client_ca(client: kube::Client) -> Result<Vec<u8>, CertError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client, CLIENT_CA_NAMESPACE);
    let config_map = config_maps.get(CLIENT_CA_CONFIG_MAP).await.map_err(|e| {
        CertError::kube(
            format!("reading ConfigMap {CLIENT_CA_NAMESPACE}/{CLIENT_CA_CONFIG_MAP}"),
            e,
        )
    })?;
    let pem = config_map
        .data
        .and_then(|mut data| data.remove(CLIENT_CA_KEY))
        .ok_or_else(|| {
            CertError::ClientCa(format!(
                "ConfigMap {CLIENT_CA_NAMESPACE}/{CLIENT_CA_CONFIG_MAP} has no key {CLIENT_CA_KEY} \
                 (is the apiserver started with --client-ca-file?)"
            ))
        })?;
    // Checked here so a bad bundle is reported against its source, not at the first handshake.
    parse_certificates(
        pem.as_bytes(),
        &format!("{CLIENT_CA_NAMESPACE}/{CLIENT_CA_CONFIG_MAP} key {CLIENT_CA_KEY}"),
    )?;
    Ok(pem.into_bytes())
}

/// The identity of a TLS client whose certificate rustls verified: CN as the user name, O as
/// the groups, as the apiserver reads client certificates. `None` without a usable leaf.
pub fn client_identity(peer_certs: &[CertificateDer<'_>]) -> Option<(String, Vec<String>)> {
    let (_, leaf) = X509Certificate::from_der(peer_certs.first()?).ok()?;
    let subject = leaf.subject();
    let user = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())?
        .to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some((user, groups))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestCa;

    #[test]
    fn identity_is_cn_and_organizations() {
        let ca = TestCa::new("identity-ca");
        let (cert, _) = ca.client("kube-apiserver-kubelet-client", &["system:masters", "ops"]);
        let der = parse_certificates(cert.as_bytes(), "test").unwrap();
        assert_eq!(
            client_identity(&der),
            Some((
                "kube-apiserver-kubelet-client".to_owned(),
                vec!["system:masters".to_owned(), "ops".to_owned()]
            ))
        );
        let (cert, _) = ca.client("alice", &[]);
        let der = parse_certificates(cert.as_bytes(), "test").unwrap();
        assert_eq!(client_identity(&der), Some(("alice".to_owned(), vec![])));
    }

    #[test]
    fn no_identity_without_a_usable_certificate() {
        assert_eq!(client_identity(&[]), None);
        assert_eq!(
            client_identity(&[CertificateDer::from(vec![1, 2, 3])]),
            None
        );
        let ca = TestCa::new("identity-ca");
        let (cert, _) = ca.client("", &["group-only"]);
        let der = parse_certificates(cert.as_bytes(), "test").unwrap();
        assert_eq!(client_identity(&der), None);
    }

    #[test]
    fn config_speaks_tls12_and_tls13_with_h2_and_http1() {
        let ca = TestCa::new("config-ca");
        let resolver = Arc::new(crate::ServingCertResolver::new(ca.certified_leaf("vk")));
        let config = kubelet_server_config(resolver, Some(ca.cert_pem().as_bytes())).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    /// A ClientHello that offers only `version` (no supported_versions extension), with
    /// ciphersuites every TLS 1.0/1.1 server knows.
    fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
        let mut body = version.to_vec();
        body.extend([7u8; 32]); // random
        body.push(0); // no session id
        body.extend([0, 6, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x2f]);
        body.extend([1, 0]); // null compression
        let mut handshake = vec![1, 0, 0, body.len() as u8];
        handshake.extend(body);
        let mut record = vec![0x16, 0x03, 0x01, 0, handshake.len() as u8];
        record.extend(handshake);
        record
    }

    #[test]
    fn tls10_and_tls11_are_refused() {
        let ca = TestCa::new("config-ca");
        let resolver = Arc::new(crate::ServingCertResolver::new(ca.certified_leaf("vk")));
        let config = Arc::new(kubelet_server_config(resolver, None).unwrap());
        for version in [[3, 1], [3, 2]] {
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let hello = legacy_client_hello(version);
            conn.read_tls(&mut hello.as_slice()).unwrap();
            let err = conn.process_new_packets().unwrap_err();
            assert!(
                matches!(err, rustls::Error::PeerIncompatible(_)),
                "version {version:?}: {err:?}"
            );
        }
    }

    #[test]
    fn a_bad_client_ca_bundle_is_named() {
        let ca = TestCa::new("config-ca");
        let resolver = Arc::new(crate::ServingCertResolver::new(ca.certified_leaf("vk")));
        let err = kubelet_server_config(resolver, Some(b"junk")).unwrap_err();
        assert!(err.to_string().contains("client CA bundle"), "{err}");
    }
}
