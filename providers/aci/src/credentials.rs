//! The bearer token ARM calls carry, kept fresh.
//!
//! - [`Secret`]: a string that never prints (`Debug` shows `***`, there is no `Display`).
//! - [`TokenSource`]: one way to get a token (workload identity, client secret, managed
//!   identity: [`crate::credentials_sources`]); [`crate::credentials_chain`] picks one.
//! - [`TokenCache`]: the token shared by every call. It is refreshed before it expires (see
//!   [`refresh_after`]) by one caller at a time: callers that find it due while it is still
//!   valid go on with it while one of them refreshes; callers without a valid token wait for
//!   that one refresh instead of each asking the identity provider.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

/// A credential string: kept out of logs, `Debug` output and error messages.
pub use vk_core::provider::Secret;

/// A token as a source hands it out.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: Secret,
    /// How long it stays valid from now.
    pub valid_for: Duration,
}

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

/// One source of tokens.
pub trait TokenSource: Send + Sync {
    /// A short name for logs and the Node condition: `workload_identity`, `client_secret`,
    /// `managed_identity`, `static`.
    fn name(&self) -> &'static str;
    /// Where the tokens come from, for the start-up log (no secret).
    fn describe(&self) -> String;
    fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, CredentialError>>;
}

/// A fixed token (tests, and `az account get-access-token` pasted for a quick try).
pub struct StaticToken(pub Secret);

impl TokenSource for StaticToken {
    fn name(&self) -> &'static str {
        "static"
    }

    fn describe(&self) -> String {
        "a fixed bearer token".into()
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            Ok(AccessToken {
                token: self.0.clone(),
                valid_for: Duration::from_secs(100 * 365 * 24 * 3600),
            })
        })
    }
}

/// Refresh 5 minutes before expiry, or at 80% of the life when that comes first, but never
/// before half of it (a very short-lived token would otherwise be fetched on every call).
pub fn refresh_after(valid_for: Duration) -> Duration {
    let by_fraction = valid_for.mul_f64(0.8);
    let by_margin = valid_for.saturating_sub(Duration::from_secs(300));
    by_fraction.min(by_margin).max(valid_for / 2)
}

/// What [`TokenCache::health`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialHealth {
    /// Nothing failed since the last successful fetch (or nothing was fetched yet).
    Fine,
    /// The last fetch failed; `valid_for` is what is left of the current token.
    RefreshFailing {
        error: CredentialError,
        valid_for: Option<Duration>,
    },
}

struct Cached {
    token: Arc<Secret>,
    refresh_at: Instant,
    expires_at: Instant,
}

/// How long a failed fetch stands before the next caller without a valid token tries again.
pub const RETRY_FETCH_AFTER: Duration = Duration::from_secs(1);

/// The token shared by all calls of one client.
pub struct TokenCache {
    source: Box<dyn TokenSource>,
    cached: Mutex<Option<Arc<Cached>>>,
    /// Held while fetching: one refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    failed: Mutex<Option<(Instant, CredentialError)>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", &self.source.name())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(source: Box<dyn TokenSource>) -> Arc<Self> {
        Arc::new(Self {
            source,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            failed: Mutex::new(None),
        })
    }

    /// A cache of one fixed token.
    pub fn fixed(token: &str) -> Arc<Self> {
        Self::new(Box::new(StaticToken(Secret::new(token))))
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// How many times a token was asked of the source.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Option<Arc<Cached>> {
        self.cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the last fetch worked; no call is made.
    pub fn health(&self) -> CredentialHealth {
        let Some((_, error)) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return CredentialHealth::Fine;
        };
        let valid_for = self
            .snapshot()
            .and_then(|c| c.expires_at.checked_duration_since(Instant::now()))
            .filter(|left| !left.is_zero());
        CredentialHealth::RefreshFailing { error, valid_for }
    }

    /// The token to call with now.
    pub async fn get(&self) -> Result<Arc<Secret>, CredentialError> {
        let now = Instant::now();
        if let Some(cached) = self.snapshot() {
            if now < cached.refresh_at {
                return Ok(cached.token.clone());
            }
            if now < cached.expires_at {
                // Due but still valid: whoever gets the lock refreshes, the others go on.
                let Ok(_guard) = self.refreshing.try_lock() else {
                    return Ok(cached.token.clone());
                };
                if let Some(newer) = self.snapshot().filter(|c| !Arc::ptr_eq(c, &cached)) {
                    return Ok(newer.token.clone());
                }
                return match self.refresh().await {
                    Ok(token) => Ok(token),
                    Err(e) => {
                        tracing::warn!(source = self.source.name(), error = %e,
                            "refreshing the Azure token failed; the current one is still valid");
                        Ok(cached.token.clone())
                    }
                };
            }
        }
        let _guard = self.refreshing.lock().await;
        // Someone else may have refreshed while this caller waited.
        if let Some(cached) = self.snapshot()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        if let Some((at, e)) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < RETRY_FETCH_AFTER
        {
            return Err(e.clone());
        }
        self.refresh().await
    }

    /// ARM refused `stale` as expired or invalid: drop it unless a refresh already replaced
    /// it, so the next [`Self::get`] fetches anew.
    pub fn invalidate(&self, stale: &Arc<Secret>) {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.token, stale))
        {
            *cached = None;
        }
    }

    /// Fetch and store; the caller holds `refreshing`.
    async fn refresh(&self) -> Result<Arc<Secret>, CredentialError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let issued = match self.source.fetch().await {
            Ok(issued) => issued,
            Err(e) => {
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), e.clone()));
                return Err(e);
            }
        };
        let now = Instant::now();
        let token = Arc::new(issued.token);
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Cached {
            token: token.clone(),
            refresh_at: now + refresh_after(issued.valid_for),
            expires_at: now + issued.valid_for,
        }));
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::debug!(
            source = self.source.name(),
            valid_for = ?issued.valid_for,
            refresh_in = ?refresh_after(issued.valid_for),
            "fetched an Azure token"
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// Hands out `t1`, `t2`, ... valid for `life`, slowly; fails while `fail` is set.
    struct Counting {
        n: AtomicU32,
        life: Duration,
        fail: std::sync::atomic::AtomicBool,
    }

    impl TokenSource for Arc<Counting> {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn describe(&self) -> String {
            "test".into()
        }
        fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, CredentialError>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.fail.load(Ordering::SeqCst) {
                    return Err(CredentialError::Fetch {
                        from: "counting",
                        message: "down".into(),
                    });
                }
                let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(AccessToken {
                    token: Secret::new(format!("t{n}")),
                    valid_for: self.life,
                })
            })
        }
    }

    fn counting(life: Duration) -> (Arc<Counting>, Arc<TokenCache>) {
        let source = Arc::new(Counting {
            n: AtomicU32::new(0),
            life,
            fail: Default::default(),
        });
        (source.clone(), TokenCache::new(Box::new(source)))
    }

    #[test]
    fn refresh_comes_before_expiry() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(1200)),
            Duration::from_secs(900)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert!(!format!("{:?}", Secret::new("s3cr3t")).contains("s3cr3t"));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_and_refresh_before_expiry() {
        let (_source, cache) = counting(Duration::from_secs(3600));
        let all = futures::future::join_all((0..20).map(|_| cache.get())).await;
        assert!(all.iter().all(|t| t.as_ref().unwrap().expose() == "t1"));
        assert_eq!(cache.fetches(), 1);
        // Past the refresh point, still valid: one caller refreshes.
        tokio::time::advance(Duration::from_secs(2900)).await;
        let all = futures::future::join_all((0..20).map(|_| cache.get())).await;
        assert!(all.iter().all(|t| t.is_ok()));
        assert_eq!(cache.fetches(), 2);
        assert_eq!(cache.get().await.unwrap().expose(), "t2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_refresh_keeps_the_valid_token_and_reports_itself() {
        let (source, cache) = counting(Duration::from_secs(600));
        assert_eq!(cache.get().await.unwrap().expose(), "t1");
        source.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(500)).await;
        assert_eq!(cache.get().await.unwrap().expose(), "t1");
        let CredentialHealth::RefreshFailing { valid_for, .. } = cache.health() else {
            panic!("{:?}", cache.health());
        };
        assert!(valid_for.is_some());
        tokio::time::advance(Duration::from_secs(200)).await;
        assert!(cache.get().await.is_err(), "expired and no new token");
        source.fail.store(false, Ordering::SeqCst);
        tokio::time::advance(RETRY_FETCH_AFTER).await;
        assert_eq!(cache.get().await.unwrap().expose(), "t2");
        assert_eq!(cache.health(), CredentialHealth::Fine);
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalidated_token_is_fetched_again() {
        let (_source, cache) = counting(Duration::from_secs(3600));
        let t1 = cache.get().await.unwrap();
        cache.invalidate(&t1);
        assert_eq!(cache.get().await.unwrap().expose(), "t2");
        // A stale invalidation after a refresh changes nothing.
        cache.invalidate(&t1);
        assert_eq!(cache.get().await.unwrap().expose(), "t2");
    }
}
