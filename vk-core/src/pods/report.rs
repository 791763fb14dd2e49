//! What one reconcile did that is measured: the reconcile fills a [`Report`], the wrapper in
//! [`super::measure`] turns it into metrics and timing logs.

use std::time::{Duration, Instant};

use super::decide::Decision;
use crate::provider::ProviderError;

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
            Err(ProviderError::InvalidSpec { .. }) => Self::Invalid,
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
