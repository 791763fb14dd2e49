//! The development-only serving certificate that signs itself.

use std::time::Duration;

use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

use crate::CertError;
use crate::config::ServingCertConfig;
use crate::material::ServingMaterial;
use crate::request::{generate_key, serving_params};

/// Long enough for any development session; rotation renews it like any other certificate.
pub(crate) const SELF_SIGNED_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A certificate with the node's names, signed by its own key. Nobody can verify it.
pub(crate) fn issue(config: &ServingCertConfig) -> Result<ServingMaterial, CertError> {
    let key = generate_key()?;
    let mut params = serving_params(config)?;
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clients whose clocks run behind.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + SELF_SIGNED_LIFETIME;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .self_signed(&key)
        .map_err(|source| CertError::Generate {
            action: "signing the self-signed serving certificate",
            source,
        })?;
    ServingMaterial::from_pem(
        cert.pem().as_bytes(),
        "the self-signed certificate",
        key.serialize_pem().as_bytes(),
        "the self-signed key",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServingCertMode;

    #[test]
    fn self_signed_carries_the_node_names() {
        let config = ServingCertConfig {
            node_name: "vk-dev".into(),
            ips: vec!["127.0.0.1".parse().unwrap()],
            hostnames: vec!["localhost".into()],
            dir: "/nonexistent".into(),
            mode: ServingCertMode::SelfSigned,
            requested_duration: None,
        };
        let material = issue(&config).unwrap();
        assert_eq!(
            material.facts.common_name.as_deref(),
            Some("system:node:vk-dev")
        );
        assert_eq!(material.facts.sans, config.subject_alt_names());
        let lifetime = material
            .facts
            .not_after
            .duration_since(material.facts.not_before);
        assert!(lifetime.as_secs() > 364 * 24 * 3600);
        assert!(material.facts.not_before <= jiff::Timestamp::now());
    }
}
