//! The bearer token ARM calls carry, kept fresh.
//!
//! - [`Secret`]: a string that never prints (`Debug` shows `***`, there is no `Display`).
//! - a [`CredentialSource`] of [`Secret`]s: one way to get a token (workload identity, client secret, managed
//!   identity: [`crate::credentials_sources`]); [`crate::credentials_chain`] picks one.
//! - [`TokenCache`]: the token shared by every call, refreshed before it expires by one caller
//!   at a time (vk-core's [`CredentialCache`], shared with the other providers).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use vk_core::provider::credential_cache::{self, CredentialCache, CredentialSource, Issued};

/// A credential string: kept out of logs, `Debug` output and error messages.
pub use vk_core::provider::Secret;
pub use vk_core::provider::credential_cache::{RETRY_FETCH_AFTER, refresh_after};

/// A token as a source hands it out (`value` is the token).
pub type AccessToken = Issued<Secret>;

/// The token shared by all calls of one client.
pub type TokenCache = CredentialCache<Secret, CredentialError>;

/// What [`TokenCache::health`] found.
pub type CredentialHealth = credential_cache::CredentialHealth<CredentialError>;

/// Why no usable token could be had. Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No source is configured (or the one asked for lacks a setting).
    #[error("Azure credentials ({from}): {message}")]
    Config { from: &'static str, message: String },
    /// Asking for a token failed (and no still-valid token was left).
    #[error("getting an Azure token ({from}) failed: {message}")]
    Fetch { from: &'static str, message: String },
}

/// The cache over `source`.
pub fn token_cache(source: Box<dyn CredentialSource<Secret, CredentialError>>) -> Arc<TokenCache> {
    TokenCache::new("Azure token", source)
}

/// A cache of one fixed token.
pub fn fixed_token(token: &str) -> Arc<TokenCache> {
    token_cache(Box::new(StaticToken(Secret::new(token))))
}

/// A fixed token (tests, and `az account get-access-token` pasted for a quick try).
pub struct StaticToken(pub Secret);

impl CredentialSource<Secret, CredentialError> for StaticToken {
    fn name(&self) -> &'static str {
        "static"
    }

    fn describe(&self) -> String {
        "a fixed bearer token".into()
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            Ok(AccessToken {
                value: self.0.clone(),
                valid_for: Duration::from_secs(100 * 365 * 24 * 3600),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fixed_token_is_served_and_never_printed() {
        let cache = fixed_token("s3cr3t");
        assert_eq!(cache.get().await.unwrap().expose(), "s3cr3t");
        assert!(!format!("{:?}", Secret::new("s3cr3t")).contains("s3cr3t"));
        assert!(!format!("{cache:?}").contains("s3cr3t"));
    }
}
