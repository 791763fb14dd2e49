//! An ARM client for `Microsoft.ContainerInstance`: JSON over HTTPS with the bearer token of
//! [`TokenCache`], `api-version` on every call, and the pacing of [`crate::pacing`]:
//!
//! - every call waits for its bucket (reads, writes; group creates and deletes also wait on
//!   ACI's own limits) and for a hold set by ARM's remaining-calls headers or a 429;
//! - a 429 is retried after its `Retry-After`; 5xx answers and calls without an answer are
//!   retried with backoff when the call is idempotent (GET, PUT of a group whose name derives
//!   from the pod, DELETE); a POST is retried only when it was never sent or was throttled;
//! - a 401 for an expired or invalid token fetches a new token and tries once more;
//! - errors keep ARM's code and message ([`AciError`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::credentials::TokenCache;
pub use crate::error::AciError;
use crate::http::{Answer, Http, HttpError, redact_query};
use crate::pacing::{RateLimit, Remaining, RetryPolicy, TokenBucket, retry_after};
use crate::wire::{self, ArmError, headers, paths};

/// What kind of call, for pacing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    /// A create or delete of a group: also under ACI's group create/delete limits.
    GroupWrite,
}

/// Pacing and retry settings of the client.
#[derive(Clone, Debug)]
pub struct Pacing {
    pub retry: RetryPolicy,
    pub reads: RateLimit,
    pub writes: RateLimit,
    pub group_writes: Vec<RateLimit>,
    /// Below this many remaining calls (ARM's headers) the next call waits.
    pub low_water: u32,
    /// The wait at 0 remaining.
    pub pause: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            reads: RateLimit {
                burst: 100,
                per_second: 20.0,
            },
            writes: RateLimit {
                burst: 50,
                per_second: 8.0,
            },
            group_writes: crate::pacing::default_group_write_limits(),
            low_water: 20,
            pause: Duration::from_secs(5),
        }
    }
}

pub struct ArmClient {
    http: Http,
    /// `https://management.azure.com`, no trailing slash.
    endpoint: String,
    pub subscription_id: String,
    pub resource_group: String,
    api_version: String,
    tokens: Arc<TokenCache>,
    pacing: Pacing,
    reads: TokenBucket,
    writes: TokenBucket,
    group_writes: Vec<TokenBucket>,
    remaining_reads: Remaining,
    remaining_writes: Remaining,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.endpoint)
            .field("subscription_id", &self.subscription_id)
            .field("resource_group", &self.resource_group)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl ArmClient {
    pub fn new(
        http: Http,
        endpoint: &str,
        subscription_id: &str,
        resource_group: &str,
        tokens: Arc<TokenCache>,
        pacing: Pacing,
    ) -> Result<Self, AciError> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let uri: hyper::Uri = endpoint
            .parse()
            .map_err(|e| AciError::Config(format!("endpoint {endpoint:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(AciError::Config(format!(
                "endpoint {endpoint:?} needs http(s) and a host, e.g. {}",
                wire::ARM_ENDPOINT
            )));
        }
        for (what, v) in [
            ("subscription_id", subscription_id),
            ("resource_group", resource_group),
        ] {
            if v.is_empty() || v.contains(['/', '?', '#']) {
                return Err(AciError::Config(format!(
                    "{what} {v:?} is empty or not a name"
                )));
            }
        }
        Ok(Self {
            http,
            endpoint,
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            api_version: wire::API_VERSION.into(),
            tokens,
            reads: TokenBucket::new(pacing.reads),
            writes: TokenBucket::new(pacing.writes),
            group_writes: pacing
                .group_writes
                .iter()
                .map(|l| TokenBucket::new(*l))
                .collect(),
            remaining_reads: Remaining::new(pacing.low_water, pacing.pause),
            remaining_writes: Remaining::new(pacing.low_water, pacing.pause),
            pacing,
        })
    }

    pub fn tokens(&self) -> &Arc<TokenCache> {
        &self.tokens
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The URL of `path` (relative to the endpoint) with the api-version and `query`; an
    /// absolute URL (a `nextLink`, an operation status) is taken as it is.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair(paths::query::API_VERSION, &self.api_version);
        for (k, v) in query {
            q.append_pair(k, v);
        }
        format!("{}{path}?{}", self.endpoint, q.finish())
    }

    pub fn group_path(&self, name: &str) -> String {
        paths::group(&self.subscription_id, &self.resource_group, name)
    }

    /// One call, paced and retried; the answer of a 2xx, else the error.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        kind: Kind,
    ) -> Result<Answer, AciError> {
        let idempotent = method != Method::POST;
        let op = format!("{method} {}", redact_query(url));
        let mut attempt = 0u32;
        let mut refetched = false;
        loop {
            attempt += 1;
            self.pace(kind).await;
            let token = self.tokens.get().await?;
            let auth = format!("Bearer {}", token.expose());
            let mut hdrs = vec![
                ("authorization", auth.as_str()),
                ("accept", "application/json"),
            ];
            if body.is_some() {
                hdrs.push(("content-type", "application/json"));
            }
            let sent = self
                .http
                .send(method.clone(), url, &hdrs, body.clone())
                .await;
            let (err, wait) = match sent {
                Ok(answer) => {
                    self.note_remaining(&answer, kind);
                    if (200..300).contains(&answer.status) {
                        return Ok(answer);
                    }
                    let err = api_error(&op, &answer);
                    if err.is_stale_token() && !refetched {
                        tracing::info!(%op, "ARM refused the token; fetching a new one");
                        self.tokens.invalidate(&token);
                        refetched = true;
                        attempt -= 1;
                        continue;
                    }
                    let wait = if answer.status == 429 {
                        let wait = retry_after(answer.header(headers::RETRY_AFTER))
                            .map(|w| self.pacing.retry.cap_retry_after(w))
                            .unwrap_or_else(|| self.pacing.retry.delay(attempt));
                        self.remaining(kind).hold(wait);
                        Some(wait)
                    } else if answer.status >= 500 && idempotent {
                        Some(self.pacing.retry.delay(attempt))
                    } else {
                        None
                    };
                    (err, wait)
                }
                Err(e) => {
                    let retry = idempotent || matches!(e, HttpError::NotSent(_));
                    let err = AciError::Transport {
                        op: op.clone(),
                        message: e.to_string(),
                    };
                    (err, retry.then(|| self.pacing.retry.delay(attempt)))
                }
            };
            match wait {
                Some(wait) if attempt < self.pacing.retry.max_attempts => {
                    tracing::debug!(%op, attempt, ?wait, error = %err, "ARM call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(err),
            }
        }
    }

    fn remaining(&self, kind: Kind) -> &Remaining {
        match kind {
            Kind::Read => &self.remaining_reads,
            _ => &self.remaining_writes,
        }
    }

    async fn pace(&self, kind: Kind) {
        self.remaining(kind).wait().await;
        match kind {
            Kind::Read => self.reads.acquire().await,
            Kind::Write => self.writes.acquire().await,
            Kind::GroupWrite => {
                for bucket in &self.group_writes {
                    bucket.acquire().await;
                }
                self.writes.acquire().await;
            }
        }
    }

    fn note_remaining(&self, answer: &Answer, kind: Kind) {
        let name = match kind {
            Kind::Read => headers::REMAINING_READS,
            _ => headers::REMAINING_WRITES,
        };
        if let Some(left) = answer
            .header(name)
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            self.remaining(kind).note(left);
        }
    }

    /// A call whose answer is JSON of `T` (an empty body reads as `T::default()`).
    pub async fn json<T: DeserializeOwned + Default>(
        &self,
        method: Method,
        url: &str,
        body: Option<&impl Serialize>,
        kind: Kind,
    ) -> Result<(T, Answer), AciError> {
        let op = format!("{method} {}", redact_query(url));
        let body = body
            .map(|b| serde_json::to_vec(b).map(Bytes::from))
            .transpose()
            .map_err(|e| AciError::Decode {
                op: op.clone(),
                message: e.to_string(),
            })?;
        let answer = self.call(method, url, body, kind).await?;
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok((T::default(), answer));
        }
        let value = serde_json::from_slice(&answer.body).map_err(|e| AciError::Decode {
            op,
            message: format!(
                "{e}: {}",
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
            ),
        })?;
        Ok((value, answer))
    }
}

/// ARM's error of an answer, or `HTTP<status>` with the start of the body.
fn api_error(op: &str, answer: &Answer) -> AciError {
    let (code, message) = match serde_json::from_slice::<ArmError>(&answer.body) {
        Ok(e) if !e.error.code.is_empty() => {
            let mut message = e.error.message;
            for d in e.error.details.iter().filter(|d| !d.message.is_empty()) {
                message.push_str(&format!(" ({}: {})", d.code, d.message));
            }
            (e.error.code, message)
        }
        _ => (
            format!("HTTP{}", answer.status),
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into_owned(),
        ),
    };
    AciError::Api {
        op: op.to_string(),
        status: answer.status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Tls;

    fn client(endpoint: &str) -> Result<ArmClient, AciError> {
        ArmClient::new(
            Http::new(&Tls::new(None).unwrap(), Duration::from_secs(1)),
            endpoint,
            "sub",
            "rg",
            crate::credentials::fixed_token("t"),
            Pacing::default(),
        )
    }

    #[test]
    fn urls_carry_the_api_version_and_links_are_kept() {
        let c = client("https://arm.example/").unwrap();
        assert_eq!(
            c.url(&c.group_path("g"), &[("tail", "5")]),
            "https://arm.example/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g?api-version=2023-05-01&tail=5"
        );
        assert_eq!(c.url("https://x/next?a=1", &[]), "https://x/next?a=1");
        assert!(client("ftp://x").is_err());
        assert!(client("management.azure.com").is_err());
        assert!(!format!("{:?}", c).contains("Bearer"));
    }
}
