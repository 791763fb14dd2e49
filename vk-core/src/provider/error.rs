//! What a provider call fails with: a class that decides what vk-core does next, a message
//! for the user, and, when there is one, the error behind it.

/// Any error that can be kept as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a provider call failed. The class decides what the pod controller does next.
///
/// The four classes are made with their variants (`ProviderError::Transient(message)`,
/// [`ProviderError::invalid`], ...); [`ProviderError::caused_by`] keeps the error behind one
/// as its [`source`](std::error::Error::source), and [`ProviderError::transient_from`] does
/// both for a transient failure. A kept cause wraps the plain error in
/// [`ProviderError::Caused`], so look at errors through [`ProviderError::class`],
/// [`ProviderError::message`], [`ProviderError::reason`] or [`ProviderError::plain`] rather
/// than by matching the variants.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying with backoff (throttling, 5xx, network).
    #[error("transient provider error: {0}")]
    Transient(String),
    /// The pod can never run as specified (too big, unsupported feature, bad image name).
    #[error("{reason}: {message}")]
    InvalidSpec { reason: String, message: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("not supported by this provider: {0}")]
    Unsupported(String),
    /// One of the above (never itself `Caused`) with the error that caused it; it reads as
    /// the plain error does.
    #[error("{error}")]
    Caused {
        error: Box<ProviderError>,
        #[source]
        source: BoxError,
    },
}

/// The class of a [`ProviderError`], whichever variant carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    InvalidSpec,
    NotFound,
    Unsupported,
}

impl ProviderError {
    pub fn invalid(reason: &str, message: impl Into<String>) -> Self {
        Self::InvalidSpec {
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    /// A transient failure that reads as `err` and keeps it as its source.
    pub fn transient_from<E>(err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Transient(err.to_string()).caused_by(err)
    }

    /// This error, keeping `source` as its cause (replacing one kept before).
    pub fn caused_by(self, source: impl Into<BoxError>) -> Self {
        let error = match self {
            Self::Caused { error, .. } => error,
            plain => Box::new(plain),
        };
        Self::Caused {
            error,
            source: source.into(),
        }
    }

    /// The error without its kept cause: never [`ProviderError::Caused`].
    pub fn plain(&self) -> &ProviderError {
        match self {
            Self::Caused { error, .. } => error.plain(),
            plain => plain,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self.plain() {
            Self::Transient(_) | Self::Caused { .. } => ErrorClass::Transient,
            Self::InvalidSpec { .. } => ErrorClass::InvalidSpec,
            Self::NotFound(_) => ErrorClass::NotFound,
            Self::Unsupported(_) => ErrorClass::Unsupported,
        }
    }

    /// The message alone, without the class the `Display` form starts with.
    pub fn message(&self) -> &str {
        match self.plain() {
            Self::InvalidSpec { message, .. }
            | Self::NotFound(message)
            | Self::Unsupported(message)
            | Self::Transient(message) => message,
            Self::Caused { .. } => "",
        }
    }

    /// The reason of an invalid spec (`TooLarge`, `UnsupportedSpec`, ...).
    pub fn reason(&self) -> Option<&str> {
        match self.plain() {
            Self::InvalidSpec { reason, .. } => Some(reason),
            _ => None,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn refused() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
    }

    #[test]
    fn plain_errors_keep_their_class_message_and_text() {
        let cases = [
            (
                ProviderError::Transient("throttled".into()),
                ErrorClass::Transient,
                "transient provider error: throttled",
            ),
            (
                ProviderError::invalid("TooLarge", "64 CPUs"),
                ErrorClass::InvalidSpec,
                "TooLarge: 64 CPUs",
            ),
            (
                ProviderError::NotFound("pod ns/a".into()),
                ErrorClass::NotFound,
                "not found: pod ns/a",
            ),
            (
                ProviderError::Unsupported("attach".into()),
                ErrorClass::Unsupported,
                "not supported by this provider: attach",
            ),
        ];
        for (err, class, text) in cases {
            assert_eq!(err.class(), class);
            assert_eq!(err.to_string(), text);
            assert!(text.ends_with(err.message()), "{text}");
            assert!(err.source().is_none());
            assert!(std::ptr::eq(err.plain(), &err));
        }
        assert_eq!(
            ProviderError::invalid("TooLarge", "x").reason(),
            Some("TooLarge")
        );
        assert_eq!(ProviderError::NotFound("x".into()).reason(), None);
    }

    #[test]
    fn a_kept_cause_is_the_source_and_changes_nothing_else() {
        let err = ProviderError::invalid("TooLarge", "64 CPUs").caused_by(refused());
        assert_eq!(err.to_string(), "TooLarge: 64 CPUs");
        assert_eq!(err.class(), ErrorClass::InvalidSpec);
        assert_eq!(err.reason(), Some("TooLarge"));
        assert_eq!(err.message(), "64 CPUs");
        assert!(!err.is_transient());
        assert!(matches!(
            err.plain(),
            ProviderError::InvalidSpec { reason, .. } if reason == "TooLarge"
        ));
        let source = err.source().expect("the cause");
        assert_eq!(source.to_string(), "connection refused");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn transient_from_reads_as_its_cause() {
        let err = ProviderError::transient_from(refused());
        assert!(err.is_transient());
        assert_eq!(err.message(), "connection refused");
        assert_eq!(
            err.to_string(),
            "transient provider error: connection refused"
        );
        assert!(err.source().is_some());
    }

    #[test]
    fn a_second_cause_replaces_the_first_without_nesting() {
        let err = ProviderError::NotFound("gone".into())
            .caused_by(refused())
            .caused_by("the second");
        let ProviderError::Caused { error, source } = &err else {
            panic!("{err:?}");
        };
        assert!(matches!(**error, ProviderError::NotFound(_)));
        assert_eq!(source.to_string(), "the second");
        assert_eq!(err.class(), ErrorClass::NotFound);
    }
}
