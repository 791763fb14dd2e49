//! The face over HTTPS with its throwaway CA, as a rustls (webpki) client sees it: the CA
//! verifies the server's certificate for `127.0.0.1` and `localhost`, and ARM answers behind it.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::server::AciCloud;
use super::tests::config;
use super::tls::TlsMode;

async fn get_over_tls(cloud: &AciCloud, ca: &str, name: &str) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(cloud.addr()).await?;
    let mut tls = connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await?;
    let path = "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01";
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: {name}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn the_self_signed_ca_verifies_the_face() {
    let dir = std::env::temp_dir().join(format!("aci-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_out = dir.join("ca.pem");
    let cloud = AciCloud::start(
        config(),
        "127.0.0.1:0",
        TlsMode::SelfSigned {
            ca_out: Some(ca_out.clone()),
        },
    )
    .await
    .unwrap();
    assert!(cloud.endpoint().starts_with("https://"));
    let ca = std::fs::read_to_string(&ca_out).unwrap();
    assert_eq!(Some(ca.as_str()), cloud.ca_pem());
    for name in ["127.0.0.1", "localhost"] {
        let answer = get_over_tls(&cloud, &ca, name).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(answer.contains("AuthenticationFailed"));
    }
    // Another CA does not verify it.
    let other = AciCloud::start(
        config(),
        "127.0.0.1:0",
        TlsMode::SelfSigned { ca_out: None },
    )
    .await
    .unwrap();
    assert!(
        get_over_tls(&cloud, other.ca_pem().unwrap(), "localhost")
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);

    let missing = AciCloud::start(
        config(),
        "127.0.0.1:0",
        TlsMode::Files {
            cert: dir.join("no.pem"),
            key: dir.join("no.key"),
        },
    )
    .await;
    assert!(matches!(missing, Err(crate::launch::StartError::Tls(_))));
}
