//! What one reconcile did that is measured: the reconcile fills a [`Report`], the wrapper in
//! [`super::measure`] turns it into metrics and timing logs.

use std::time::{Duration, Instant};

use super::decide::Decision;
use crate::provider::{ErrorClass, ProviderError};

/// What one reconcile did that is measured.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// What was decided, in order (a deletion decides again after stopping the instance).
    pub decisions: Vec<Decision>,
    pub create: Option<CreateReport>,
    pub status_writes: Vec<StatusWrite>,
}

#[derive(Debug)]
pub(super) struct CreateReport {
    pub began: Instant,
    /// Resolving the pod took this long.
    pub resolve: Duration,
    /// The provider's create call took this long.
    pub call: Duration,
    pub outcome: CreateOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CreateOutcome {
    Ok,
    /// The provider can never run the spec.
    Invalid,
    Error,
}

impl CreateOutcome {
    pub fn of(result: &Result<(), ProviderError>) -> Self {
        match result {
            Ok(()) => Self::Ok,
            Err(e) if e.class() == ErrorClass::InvalidSpec => Self::Invalid,
            Err(_) => Self::Error,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

#[derive(Debug)]
pub(super) struct StatusWrite {
    pub took: Duration,
    /// When the answer came.
    pub at: Instant,
    pub ok: bool,
    pub phase: String,
    /// The write made the pod Running.
    pub became_running: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_spec_counts_as_invalid_with_or_without_its_cause() {
        let invalid = || ProviderError::invalid("TooLarge", "64 CPUs");
        assert_eq!(CreateOutcome::of(&Err(invalid())), CreateOutcome::Invalid);
        let caused = invalid().caused_by(std::io::Error::other("quota"));
        assert_eq!(CreateOutcome::of(&Err(caused)), CreateOutcome::Invalid);
        let transient = ProviderError::transient_from(std::io::Error::other("reset"));
        assert_eq!(CreateOutcome::of(&Err(transient)), CreateOutcome::Error);
        assert_eq!(CreateOutcome::of(&Ok(())), CreateOutcome::Ok);
    }
}
