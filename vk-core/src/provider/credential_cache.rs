//! A cloud credential shared by every call of a provider, kept fresh.
//!
//! - [`CredentialSource`]: one way to get the credential (an identity endpoint, a token file,
//!   keys from the environment); each provider has its own.
//! - [`CredentialCache`]: the credential every call uses. It is refreshed before it expires
//!   (see [`refresh_after`]) by one caller at a time: callers that find it due while it is
//!   still valid go on with it while one of them refreshes; callers without a valid one wait
//!   for that one refresh instead of each asking the identity provider. A failed fetch stands
//!   for [`RETRY_FETCH_AFTER`] before the next caller without a valid credential tries again.
//!
//! The cache never logs the credential, only the source's name and the validity.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

/// A credential as a source hands it out.
#[derive(Clone, Debug)]
pub struct Issued<T> {
    pub value: T,
    /// How long it stays valid from now.
    pub valid_for: Duration,
}

/// One source of credentials of type `T`; `E` says why none could be had (never a secret).
pub trait CredentialSource<T, E>: Send + Sync {
    /// A short name for logs and the Node condition (`irsa`, `workload_identity`, ...).
    fn name(&self) -> &'static str;
    /// Where the credentials come from, for the start-up log (no secret).
    fn describe(&self) -> String;
    fn fetch(&self) -> BoxFuture<'_, Result<Issued<T>, E>>;
}

/// Refresh 5 minutes before expiry, or at 80% of the life when that comes first, but never
/// before half of it (a very short-lived credential would otherwise be fetched on every call).
pub fn refresh_after(valid_for: Duration) -> Duration {
    let by_fraction = valid_for.mul_f64(0.8);
    let by_margin = valid_for.saturating_sub(Duration::from_secs(300));
    by_fraction.min(by_margin).max(valid_for / 2)
}

/// What [`CredentialCache::health`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialHealth<E> {
    /// Nothing failed since the last successful fetch (or nothing was fetched yet).
    Fine,
    /// The last fetch failed; `valid_for` is what is left of the current credential.
    RefreshFailing {
        error: E,
        valid_for: Option<Duration>,
    },
}

struct Cached<T> {
    value: Arc<T>,
    refresh_at: Instant,
    expires_at: Instant,
}

/// How a provider names its credential in the `CloudCredentials` Node condition.
#[derive(Clone, Copy, Debug)]
pub struct Wording {
    /// `the AWS credentials`
    pub what: &'static str,
    /// `the current keys stay`
    pub current: &'static str,
    /// `no valid keys are left`
    pub none_left: &'static str,
}

/// How long a failed fetch stands before the next caller without a valid credential tries
/// again.
pub const RETRY_FETCH_AFTER: Duration = Duration::from_secs(1);

/// The credential shared by all calls of one client.
pub struct CredentialCache<T, E> {
    source: Box<dyn CredentialSource<T, E>>,
    /// What is cached, for the log lines: `Azure token`, `AWS credentials`.
    what: &'static str,
    cached: Mutex<Option<Arc<Cached<T>>>>,
    /// Held while fetching: one refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    failed: Mutex<Option<(Instant, E)>>,
}

impl<T, E> std::fmt::Debug for CredentialCache<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("what", &self.what)
            .field("source", &self.source.name())
            .finish_non_exhaustive()
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T, E> CredentialCache<T, E>
where
    T: Send + Sync,
    E: Clone + Display + Send + Sync,
{
    pub fn new(what: &'static str, source: Box<dyn CredentialSource<T, E>>) -> Arc<Self> {
        Arc::new(Self {
            source,
            what,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            failed: Mutex::new(None),
        })
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// How many times a credential was asked of the source.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Option<Arc<Cached<T>>> {
        lock(&self.cached).clone()
    }

    /// Whether the last fetch worked; no call is made.
    pub fn health(&self) -> CredentialHealth<E> {
        let Some((_, error)) = lock(&self.failed).clone() else {
            return CredentialHealth::Fine;
        };
        let valid_for = self
            .snapshot()
            .and_then(|c| c.expires_at.checked_duration_since(Instant::now()))
            .filter(|left| !left.is_zero());
        CredentialHealth::RefreshFailing { error, valid_for }
    }

    /// The `CloudCredentials` Node condition: False while fetching a new credential fails
    /// (the message says how long the current one lasts), True again once a fetch works.
    pub fn condition(&self, words: &Wording) -> crate::provider::ProviderCondition {
        let (healthy, reason, message) = match self.health() {
            CredentialHealth::Fine => (
                true,
                "CredentialsValid",
                format!("{} ({}) are valid", words.what, self.source_name()),
            ),
            CredentialHealth::RefreshFailing { error, valid_for } => (
                false,
                "CredentialRefreshFailed",
                match valid_for {
                    Some(left) => format!(
                        "{error}; {} valid for {}s more",
                        words.current,
                        left.as_secs()
                    ),
                    None => format!(
                        "{error}; {}, cloud calls fail until a refresh works",
                        words.none_left
                    ),
                },
            ),
        };
        crate::provider::ProviderCondition {
            type_: "CloudCredentials".into(),
            healthy,
            reason: reason.into(),
            message,
        }
    }

    /// The credential to call with now.
    pub async fn get(&self) -> Result<Arc<T>, E> {
        let now = Instant::now();
        if let Some(cached) = self.snapshot() {
            if now < cached.refresh_at {
                return Ok(cached.value.clone());
            }
            if now < cached.expires_at {
                // Due but still valid: whoever gets the lock refreshes, the others go on.
                let Ok(_guard) = self.refreshing.try_lock() else {
                    return Ok(cached.value.clone());
                };
                if let Some(newer) = self.snapshot().filter(|c| !Arc::ptr_eq(c, &cached)) {
                    return Ok(newer.value.clone());
                }
                return match self.refresh().await {
                    Ok(value) => Ok(value),
                    Err(e) => {
                        tracing::warn!(source = self.source.name(), error = %e,
                            "refreshing the {} failed; the current ones are still valid", self.what);
                        Ok(cached.value.clone())
                    }
                };
            }
        }
        let _guard = self.refreshing.lock().await;
        // Someone else may have refreshed while this caller waited.
        if let Some(cached) = self.snapshot()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.value.clone());
        }
        if let Some((at, e)) = lock(&self.failed).as_ref()
            && at.elapsed() < RETRY_FETCH_AFTER
        {
            return Err(e.clone());
        }
        self.refresh().await
    }

    /// The cloud refused `stale` as expired or invalid: drop it unless a refresh already
    /// replaced it, so the next [`Self::get`] fetches anew.
    pub fn invalidate(&self, stale: &Arc<T>) {
        let mut cached = lock(&self.cached);
        if cached
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.value, stale))
        {
            *cached = None;
        }
    }

    /// Fetch and store; the caller holds `refreshing`.
    async fn refresh(&self) -> Result<Arc<T>, E> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let issued = match self.source.fetch().await {
            Ok(issued) => issued,
            Err(e) => {
                *lock(&self.failed) = Some((Instant::now(), e.clone()));
                return Err(e);
            }
        };
        let now = Instant::now();
        let value = Arc::new(issued.value);
        *lock(&self.cached) = Some(Arc::new(Cached {
            value: value.clone(),
            refresh_at: now + refresh_after(issued.valid_for),
            expires_at: now + issued.valid_for,
        }));
        *lock(&self.failed) = None;
        tracing::debug!(
            source = self.source.name(),
            valid_for = ?issued.valid_for,
            refresh_in = ?refresh_after(issued.valid_for),
            "fetched the {}", self.what
        );
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32};

    use super::*;

    /// Hands out `t1`, `t2`, ... valid for `life`, slowly; fails while `fail` is set.
    struct Counting {
        n: AtomicU32,
        life: Duration,
        fail: AtomicBool,
    }

    impl CredentialSource<String, String> for Arc<Counting> {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn describe(&self) -> String {
            "test".into()
        }
        fn fetch(&self) -> BoxFuture<'_, Result<Issued<String>, String>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.fail.load(Ordering::SeqCst) {
                    return Err("down".into());
                }
                let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Issued {
                    value: format!("t{n}"),
                    valid_for: self.life,
                })
            })
        }
    }

    type Cache = Arc<CredentialCache<String, String>>;

    fn counting(life: Duration) -> (Arc<Counting>, Cache) {
        let source = Arc::new(Counting {
            n: AtomicU32::new(0),
            life,
            fail: Default::default(),
        });
        (
            source.clone(),
            CredentialCache::new("test token", Box::new(source)),
        )
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
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_and_refresh_before_expiry() {
        let (_source, cache) = counting(Duration::from_secs(3600));
        let all = futures::future::join_all((0..20).map(|_| cache.get())).await;
        assert!(all.iter().all(|t| t.as_deref().unwrap() == "t1"));
        assert_eq!(cache.fetches(), 1);
        // Past the refresh point, still valid: one caller refreshes.
        tokio::time::advance(Duration::from_secs(2900)).await;
        let all = futures::future::join_all((0..20).map(|_| cache.get())).await;
        assert!(all.iter().all(|t| t.is_ok()));
        assert_eq!(cache.fetches(), 2);
        assert_eq!(cache.get().await.unwrap().as_str(), "t2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_refresh_keeps_the_valid_credential_and_reports_itself() {
        let (source, cache) = counting(Duration::from_secs(600));
        assert_eq!(cache.get().await.unwrap().as_str(), "t1");
        source.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(500)).await;
        assert_eq!(cache.get().await.unwrap().as_str(), "t1");
        let CredentialHealth::RefreshFailing { valid_for, .. } = cache.health() else {
            panic!("{:?}", cache.health());
        };
        assert!(valid_for.is_some());
        tokio::time::advance(Duration::from_secs(200)).await;
        assert!(cache.get().await.is_err(), "expired and no new one");
        source.fail.store(false, Ordering::SeqCst);
        tokio::time::advance(RETRY_FETCH_AFTER).await;
        assert_eq!(cache.get().await.unwrap().as_str(), "t2");
        assert_eq!(cache.health(), CredentialHealth::Fine);
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalidated_credential_is_fetched_again() {
        let (_source, cache) = counting(Duration::from_secs(3600));
        let t1 = cache.get().await.unwrap();
        cache.invalidate(&t1);
        assert_eq!(cache.get().await.unwrap().as_str(), "t2");
        // A stale invalidation after a refresh changes nothing.
        cache.invalidate(&t1);
        assert_eq!(cache.get().await.unwrap().as_str(), "t2");
    }
}
