//! The AccessKey the eci provider signs with, and temporary keys kept fresh.
//!
//! - [`Secret`]: a string that never prints (`Debug` shows `***`, there is no `Display`).
//! - [`Credentials`]: an AccessKey pair, plus the `SecurityToken` of temporary (STS) keys.
//! - [`Fetch`]: one source of keys (static, STS `AssumeRoleWithOIDC`, the ECS metadata
//!   service); [`crate::credentials_chain`] picks the source, [`crate::credentials_fetch`]
//!   implements them.
//! - [`CredentialProvider`]: the keys shared by every call. Temporary keys are refreshed well
//!   before they expire (see [`refresh_after`]), by one caller at a time; the others keep
//!   using the still-valid keys meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use vk_core::metrics::ProviderMetrics;

/// A credential string: kept out of logs, `Debug` output and error messages.
pub use vk_core::provider::Secret;

/// What a request is signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// Set for temporary keys: the request carries it as `SecurityToken`.
    pub security_token: Option<Secret>,
}

impl Credentials {
    pub fn new(access_key_id: &str, secret: &str, security_token: Option<&str>) -> Self {
        Self {
            access_key_id: access_key_id.to_string(),
            access_key_secret: Secret::new(secret),
            security_token: security_token.filter(|t| !t.is_empty()).map(Secret::new),
        }
    }
}

/// Keys as a source hands them out.
#[derive(Clone, Debug)]
pub struct Issued {
    pub credentials: Credentials,
    /// How long they stay valid from now; `None` for long-lived keys.
    pub valid_for: Option<Duration>,
}

/// Why no usable keys could be had. Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No source in the chain is configured.
    #[error("no credentials: {0}")]
    NotConfigured(String),
    /// A source is configured but incompletely or wrongly.
    #[error("credentials ({from}): {message}")]
    Config { from: &'static str, message: String },
    /// Fetching keys failed (and no still-valid keys were left).
    #[error("fetching credentials ({from}) failed: {message}")]
    Fetch { from: &'static str, message: String },
}

/// One source of keys.
pub trait Fetch: Send + Sync {
    /// A short name for logs: `config`, `environment`, `rrsa`, `ecs_ram_role`, `file`.
    fn name(&self) -> &'static str;
    /// Where the keys come from, for the start-up log (no secret).
    fn describe(&self) -> String;
    fn fetch(&self) -> BoxFuture<'_, Result<Issued, CredentialError>>;
}

/// Long-lived keys given once (config, environment, credentials file).
pub struct StaticKeys {
    pub name: &'static str,
    pub description: String,
    pub credentials: Credentials,
}

impl Fetch for StaticKeys {
    fn name(&self) -> &'static str {
        self.name
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Issued, CredentialError>> {
        Box::pin(async move {
            Ok(Issued {
                credentials: self.credentials.clone(),
                valid_for: None,
            })
        })
    }
}

/// What [`CredentialProvider::health`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialHealth {
    /// Nothing failed since the last successful fetch (or nothing was fetched yet).
    Fine,
    /// The last fetch failed; `valid_for` is what is left of the current keys (`None`: none
    /// left, calls fail until a fetch works).
    RefreshFailing {
        error: CredentialError,
        valid_for: Option<Duration>,
    },
}

/// Refresh at 80% of the keys' life or 5 minutes before they expire, whichever comes first,
/// but never before half their life (very short-lived keys would otherwise be refetched on
/// every call).
pub fn refresh_after(valid_for: Duration) -> Duration {
    let by_fraction = valid_for.mul_f64(0.8);
    let by_margin = valid_for.saturating_sub(Duration::from_secs(300));
    by_fraction.min(by_margin).max(valid_for / 2)
}

struct Cached {
    credentials: Arc<Credentials>,
    /// `None`: long-lived, never refreshed.
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

/// The keys shared by all callers of one client.
pub struct CredentialProvider {
    fetch: Box<dyn Fetch>,
    cached: Mutex<Option<Arc<Cached>>>,
    /// Held while fetching: one refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    /// The last failed fetch, until a fetch succeeds: callers without valid keys get its error
    /// for [`RETRY_FETCH_AFTER`] instead of each asking the source again; [`Self::health`]
    /// reports it.
    failed: Mutex<Option<(Instant, CredentialError)>>,
    /// Where failed fetches are counted; set once by the client that signs with these keys.
    metrics: OnceLock<ProviderMetrics>,
}

/// How long a failed fetch stands before the next caller without valid keys tries again.
pub const RETRY_FETCH_AFTER: Duration = Duration::from_secs(1);

impl std::fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("source", &self.fetch.name())
            .finish_non_exhaustive()
    }
}

impl CredentialProvider {
    pub fn new(fetch: Box<dyn Fetch>) -> Arc<Self> {
        Arc::new(Self {
            fetch,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            failed: Mutex::new(None),
            metrics: OnceLock::new(),
        })
    }

    /// Count failed fetches into `metrics` (the first recorder given wins).
    pub fn record_into(&self, metrics: ProviderMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// Fixed keys (tests, and a client built from an AccessKey pair).
    pub fn fixed(access_key_id: &str, secret: &str) -> Arc<Self> {
        Self::new(Box::new(StaticKeys {
            name: "config",
            description: format!("the AccessKey {access_key_id}"),
            credentials: Credentials::new(access_key_id, secret, None),
        }))
    }

    pub fn source_name(&self) -> &'static str {
        self.fetch.name()
    }

    pub fn describe(&self) -> String {
        self.fetch.describe()
    }

    /// How many times keys were fetched from the source.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Whether the last fetch from the source worked; no call is made.
    pub fn health(&self) -> CredentialHealth {
        let Some((_, error)) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return CredentialHealth::Fine;
        };
        let now = Instant::now();
        let valid_for = self
            .snapshot()
            .and_then(|c| c.expires_at)
            .and_then(|at| at.checked_duration_since(now))
            .filter(|left| !left.is_zero());
        CredentialHealth::RefreshFailing { error, valid_for }
    }

    fn snapshot(&self) -> Option<Arc<Cached>> {
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Keys to sign with now.
    pub async fn get(&self) -> Result<Arc<Credentials>, CredentialError> {
        let now = Instant::now();
        if let Some(cached) = self.snapshot() {
            if cached.refresh_at.is_none_or(|at| now < at) {
                return Ok(cached.credentials.clone());
            }
            if cached.expires_at.is_some_and(|at| now < at) {
                // Due for refresh but still valid: whoever gets the lock refreshes, the
                // others go on with the current keys.
                let Ok(_guard) = self.refreshing.try_lock() else {
                    return Ok(cached.credentials.clone());
                };
                if let Some(newer) = self.snapshot().filter(|c| !Arc::ptr_eq(c, &cached)) {
                    return Ok(newer.credentials.clone());
                }
                return match self.refresh().await {
                    Ok(credentials) => Ok(credentials),
                    Err(e) => {
                        tracing::warn!(source = self.fetch.name(), error = %e,
                            "refreshing the cloud credentials failed; the current ones are still valid");
                        Ok(cached.credentials.clone())
                    }
                };
            }
        }
        let _guard = self.refreshing.lock().await;
        // Someone else may have refreshed while this caller waited.
        if let Some(cached) = self.snapshot()
            && cached.refresh_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(cached.credentials.clone());
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

    /// The service said the keys `stale` expired (clocks disagree): drop them unless a
    /// refresh already replaced them, so the next [`Self::get`] fetches anew.
    pub fn invalidate(&self, stale: &Arc<Credentials>) {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cached
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.credentials, stale) && c.refresh_at.is_some())
        {
            *cached = None;
        }
    }

    /// Fetch and store; the caller holds `refreshing`.
    async fn refresh(&self) -> Result<Arc<Credentials>, CredentialError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let issued = match self.fetch.fetch().await {
            Ok(issued) => issued,
            Err(e) => {
                if let Some(metrics) = self.metrics.get() {
                    metrics.credential_refresh_failed();
                }
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), e.clone()));
                return Err(e);
            }
        };
        let now = Instant::now();
        let credentials = Arc::new(issued.credentials);
        let cached = Arc::new(Cached {
            credentials: credentials.clone(),
            refresh_at: issued.valid_for.map(|v| now + refresh_after(v)),
            expires_at: issued.valid_for.map(|v| now + v),
        });
        match issued.valid_for {
            Some(valid_for) => tracing::debug!(
                source = self.fetch.name(),
                access_key_id = %credentials.access_key_id,
                ?valid_for,
                refresh_in = ?refresh_after(valid_for),
                "fetched temporary cloud credentials"
            ),
            None => tracing::debug!(source = self.fetch.name(), "loaded cloud credentials"),
        }
        *self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cached);
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn secrets_never_print() {
        let c = Credentials::new("id", "s3cr3t-value", Some("t0ken-value"));
        let shown = format!("{c:?} {:?}", Secret::new("x"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("t0ken"), "{shown}");
        assert!(shown.contains("***"));
        assert_eq!(c.access_key_secret.expose(), "s3cr3t-value");
        assert_eq!(Credentials::new("id", "s", Some("")).security_token, None);
    }

    #[test]
    fn refresh_times() {
        let s = Duration::from_secs;
        // An hour: 80% (48 min) comes before 5 minutes before (55 min); six hours alike.
        assert_eq!(refresh_after(s(3600)), s(2880));
        assert_eq!(refresh_after(s(21600)), s(17280));
        // STS's shortest, 15 minutes: 5 minutes before (10 min) comes first.
        assert_eq!(refresh_after(s(900)), s(600));
        // Seconds-long keys (tests): half their life.
        assert_eq!(refresh_after(s(4)), s(2));
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    /// Temporary keys valid for `life`, numbered by fetch; `fail` makes fetches fail.
    struct Counting {
        n: AtomicU32,
        life: Duration,
        delay: Duration,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Fetch for Arc<Counting> {
        fn name(&self) -> &'static str {
            "test"
        }
        fn describe(&self) -> String {
            "counting".into()
        }
        fn fetch(&self) -> BoxFuture<'_, Result<Issued, CredentialError>> {
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                if self.fail.load(Ordering::SeqCst) {
                    return Err(CredentialError::Fetch {
                        from: "test",
                        message: "down".into(),
                    });
                }
                let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Issued {
                    credentials: Credentials::new(&format!("STS.{n}"), "s", Some("t")),
                    valid_for: Some(self.life),
                })
            })
        }
    }

    fn counting(life: u64, delay_ms: u64) -> (Arc<Counting>, Arc<CredentialProvider>) {
        let c = Arc::new(Counting {
            n: AtomicU32::new(0),
            life: Duration::from_secs(life),
            delay: Duration::from_millis(delay_ms),
            fail: Default::default(),
        });
        (c.clone(), CredentialProvider::new(Box::new(c)))
    }

    #[tokio::test(start_paused = true)]
    async fn temporary_keys_are_refreshed_before_expiry() {
        let (_, provider) = counting(3600, 0);
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.1");
        tokio::time::advance(Duration::from_secs(2879)).await;
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.1");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.2");
        assert_eq!(provider.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let (_, provider) = counting(3600, 100);
        let calls = (0..20).map(|_| provider.get());
        let got = futures::future::join_all(calls).await;
        assert!(
            got.iter()
                .all(|c| c.as_ref().unwrap().access_key_id == "STS.1")
        );
        assert_eq!(provider.fetches(), 1);
        // Due for refresh: one caller refreshes, the others keep the valid keys meanwhile.
        tokio::time::advance(Duration::from_secs(2900)).await;
        let p = provider.clone();
        let refresher = tokio::spawn(async move { p.get().await });
        tokio::task::yield_now().await;
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.1");
        assert_eq!(refresher.await.unwrap().unwrap().access_key_id, "STS.2");
        assert_eq!(provider.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_valid_keys_then_fails_typed() {
        let metrics = vk_core::metrics::Metrics::new();
        let (source, provider) = counting(100, 0);
        provider.record_into(metrics.provider());
        provider.get().await.unwrap();
        assert_eq!(provider.health(), CredentialHealth::Fine);
        source.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.1");
        // Reported while the keys still work: 40 s of them are left.
        match provider.health() {
            CredentialHealth::RefreshFailing { valid_for, .. } => {
                assert_eq!(valid_for, Some(Duration::from_secs(40)))
            }
            other => panic!("{other:?}"),
        }
        // The early refresh failed (the keys are still valid): counted all the same.
        let failures = "vk_provider_credential_refresh_failures_total";
        assert!(
            metrics.encode().contains(&format!("{failures} 1\n")),
            "{}",
            metrics.encode()
        );
        tokio::time::advance(Duration::from_secs(41)).await;
        let e = provider.get().await.unwrap_err();
        assert!(
            matches!(e, CredentialError::Fetch { from: "test", .. }),
            "{e}"
        );
        // Callers right after a failure get it without asking the source again.
        let fetches = provider.fetches();
        source.fail.store(false, Ordering::SeqCst);
        assert_eq!(provider.get().await.unwrap_err(), e);
        assert_eq!(provider.fetches(), fetches);
        assert!(matches!(
            provider.health(),
            CredentialHealth::RefreshFailing {
                valid_for: None,
                ..
            }
        ));
        tokio::time::advance(RETRY_FETCH_AFTER).await;
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.2");
        // A fetch that works clears it.
        assert_eq!(provider.health(), CredentialHealth::Fine);
        assert!(
            metrics.encode().contains(&format!("{failures} 2\n")),
            "{}",
            metrics.encode()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn invalidated_keys_are_fetched_anew() {
        let (_, provider) = counting(3600, 0);
        let first = provider.get().await.unwrap();
        provider.invalidate(&first);
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.2");
        // A stale report about keys already replaced changes nothing.
        provider.invalidate(&first);
        assert_eq!(provider.get().await.unwrap().access_key_id, "STS.2");
        let fixed = CredentialProvider::fixed("id", "s");
        let keys = fixed.get().await.unwrap();
        fixed.invalidate(&keys);
        fixed.get().await.unwrap();
        assert_eq!(fixed.fetches(), 1);
    }
}
