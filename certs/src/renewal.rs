//! When a serving certificate is still good enough, and when to replace it.

use jiff::{SignedDuration, Timestamp};

use crate::config::ServingCertConfig;
use crate::material::CertificateFacts;

/// Renew once this share of a certificate's lifetime has passed, as the kubelet does (it
/// jitters between 70% and 90%), leaving a fifth of it to get the next one approved.
const RENEW_AT_SHARE: f64 = 0.8;

/// The moment a certificate should be replaced.
pub(crate) fn renewal_due(facts: &CertificateFacts) -> Timestamp {
    let lifetime = facts.not_after.duration_since(facts.not_before);
    let until_due = lifetime.mul_f64(RENEW_AT_SHARE);
    facts
        .not_before
        .checked_add(until_due)
        .unwrap_or(facts.not_before)
}

/// Whether a stored certificate may serve this node now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Reuse,
    /// Why a new one is needed, for the log.
    Renew(String),
}

pub(crate) fn assess(
    facts: &CertificateFacts,
    config: &ServingCertConfig,
    now: Timestamp,
) -> Verdict {
    if now < facts.not_before {
        return Verdict::Renew(format!("it is not valid before {}", facts.not_before));
    }
    if now >= facts.not_after {
        return Verdict::Renew(format!("it expired at {}", facts.not_after));
    }
    let due = renewal_due(facts);
    if now >= due {
        return Verdict::Renew(format!(
            "it expires at {} and was due for renewal at {due}",
            facts.not_after
        ));
    }
    let common_name = config.common_name();
    if facts.common_name.as_deref() != Some(common_name.as_str()) {
        return Verdict::Renew(format!(
            "it was issued to {:?}, not {common_name}",
            facts.common_name.as_deref().unwrap_or("")
        ));
    }
    let wanted = config.subject_alt_names();
    if facts.sans != wanted {
        return Verdict::Renew(format!(
            "its names {} differ from the node's {wanted}",
            facts.sans
        ));
    }
    Verdict::Reuse
}

/// How long to sleep before checking again: never more than an hour at a time, so a clock
/// that jumps (a suspended VM) does not make the node miss its renewal.
pub(crate) fn sleep_before(due: Timestamp, now: Timestamp) -> std::time::Duration {
    let wait = due
        .duration_since(now)
        .clamp(SignedDuration::ZERO, SignedDuration::from_hours(1));
    std::time::Duration::try_from(wait).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServingCertMode, SubjectAltNames};

    fn config() -> ServingCertConfig {
        ServingCertConfig {
            node_name: "vk".into(),
            ips: vec!["10.0.0.7".parse().unwrap()],
            hostnames: vec!["vk.example".into()],
            dir: "/nonexistent".into(),
            mode: ServingCertMode::default(),
            requested_duration: None,
        }
    }

    fn facts(not_before: i64, not_after: i64) -> CertificateFacts {
        CertificateFacts {
            not_before: Timestamp::from_second(not_before).unwrap(),
            not_after: Timestamp::from_second(not_after).unwrap(),
            common_name: Some("system:node:vk".into()),
            sans: config().subject_alt_names(),
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn renewal_is_due_at_four_fifths_of_the_lifetime() {
        assert_eq!(renewal_due(&facts(1000, 2000)), at(1800));
    }

    #[test]
    fn a_fresh_matching_certificate_is_reused() {
        assert_eq!(
            assess(&facts(1000, 2000), &config(), at(1500)),
            Verdict::Reuse
        );
        assert_eq!(
            assess(&facts(1000, 2000), &config(), at(1000)),
            Verdict::Reuse
        );
    }

    #[test]
    fn an_expiring_or_expired_certificate_is_renewed() {
        let c = config();
        assert!(
            matches!(assess(&facts(1000, 2000), &c, at(1800)), Verdict::Renew(r) if r.contains("due for renewal"))
        );
        assert!(
            matches!(assess(&facts(1000, 2000), &c, at(2000)), Verdict::Renew(r) if r.contains("expired"))
        );
        assert!(
            matches!(assess(&facts(1000, 2000), &c, at(999)), Verdict::Renew(r) if r.contains("not valid before"))
        );
    }

    #[test]
    fn changed_names_force_a_renewal() {
        let mut moved = config();
        moved.ips = vec!["10.0.0.8".parse().unwrap()];
        let Verdict::Renew(reason) = assess(&facts(1000, 2000), &moved, at(1500)) else {
            panic!("a moved node must renew");
        };
        assert!(
            reason.contains("IP:10.0.0.7") && reason.contains("IP:10.0.0.8"),
            "{reason}"
        );

        let mut extra = facts(1000, 2000);
        extra.sans = SubjectAltNames::default();
        assert!(matches!(
            assess(&extra, &config(), at(1500)),
            Verdict::Renew(_)
        ));

        let mut renamed = facts(1000, 2000);
        renamed.common_name = Some("system:node:other".into());
        assert!(
            matches!(assess(&renamed, &config(), at(1500)), Verdict::Renew(r) if r.contains("other"))
        );
    }

    #[test]
    fn sleeps_are_bounded() {
        assert_eq!(sleep_before(at(100), at(200)), std::time::Duration::ZERO);
        assert_eq!(
            sleep_before(at(200), at(100)),
            std::time::Duration::from_secs(100)
        );
        assert_eq!(
            sleep_before(at(100_000), at(0)),
            std::time::Duration::from_secs(3600)
        );
    }
}
