//! An ECI OpenAPI client: signed RPC calls over HTTP(S), a client-side token bucket per class
//! of call so the node stays under the service's quotas, and retries with exponential backoff
//! and jitter on throttling, 5xx answers and network errors. Creates are safe to retry
//! because they carry a `ClientToken`; deletes because deleting twice is harmless.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, Uri, header};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use rand::RngExt as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use vk_core::metrics::{CallOutcome, ProviderMetrics};

use crate::credentials::{CredentialProvider, Credentials};
pub use crate::error::EciError;
use crate::ratelimit::TokenBucket;
use crate::wire::action::Action;
use crate::wire::api::{API_VERSION, ErrorResponse};
use crate::wire::params::Params;
use crate::wire::sign;
use crate::wire::sign_acs3;

/// Answers larger than this are refused (a page of 20 groups is far smaller).
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// How failed calls are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay_ms: 200,
            max_delay_ms: 5000,
        }
    }
}

impl RetryPolicy {
    /// Exponential with "equal jitter": half the step is fixed, half random, so concurrent
    /// callers spread out but each still backs off.
    pub fn delay(&self, attempt: u32) -> Duration {
        let step = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_delay_ms)
            .max(1);
        let half = step / 2;
        Duration::from_millis(half + rand::rng().random_range(0..=step - half))
    }
}

/// The policy as backon's schedule: a delay before each retry, `max_attempts - 1` of them.
impl backon::BackoffBuilder for RetryPolicy {
    type Backoff = RetryDelays;

    fn build(self) -> RetryDelays {
        RetryDelays {
            policy: self,
            attempt: 0,
        }
    }
}

#[derive(Debug)]
pub struct RetryDelays {
    policy: RetryPolicy,
    attempt: u32,
}

impl Iterator for RetryDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.attempt + 1 >= self.policy.max_attempts {
            return None;
        }
        let delay = self.policy.delay(self.attempt);
        self.attempt += 1;
        Some(delay)
    }
}

/// A token bucket setting: `burst` calls at once, `per_second` sustained.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct RateLimit {
    pub burst: u32,
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: 50,
            per_second: 25.0,
        }
    }
}

/// How calls are signed (`eci: signature:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum SignatureMethod {
    /// ACS3-HMAC-SHA256 in the `Authorization` header (V3; what current SDKs send).
    #[default]
    #[serde(rename = "acs3")]
    Acs3,
    /// The RPC signature 1.0 (HMAC-SHA1) in the parameters, for gateways that want it.
    #[serde(rename = "hmac-sha1")]
    HmacSha1,
}

/// Where and as whom to call.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://eci.cn-hangzhou.aliyuncs.com` or, for the mock cloud, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub region_id: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// Where the keys come from; `None`: the fixed pair above.
    pub credentials: Option<Arc<CredentialProvider>>,
    pub retry: RetryPolicy,
    /// For CreateContainerGroup and DeleteContainerGroup, which share the service's quota
    /// (a bucket of 100 refilled at 20/s): stay below it.
    pub write_rate: RateLimit,
    /// For every other call.
    pub read_rate: RateLimit,
    pub timeout: Duration,
    /// Where every call (each attempt) and credential refresh failure is counted.
    pub metrics: ProviderMetrics,
    pub signature: SignatureMethod,
}

/// The secret stays out of logs.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("region_id", &self.region_id)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .field("write_rate", &self.write_rate)
            .field("read_rate", &self.read_rate)
            .field("timeout", &self.timeout)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(endpoint: &str, region_id: &str, access_key_id: &str, secret: &str) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            region_id: region_id.to_string(),
            access_key_id: access_key_id.to_string(),
            access_key_secret: secret.to_string(),
            credentials: None,
            retry: RetryPolicy::default(),
            write_rate: RateLimit {
                burst: 80,
                per_second: 16.0,
            },
            read_rate: RateLimit::default(),
            timeout: Duration::from_secs(30),
            metrics: ProviderMetrics::default(),
            signature: SignatureMethod::default(),
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Where an action goes: ECI itself, or another product of the same account (VPC, ECS,
/// Quota Center, for `vk doctor`), each with its endpoint and API version.
#[derive(Clone, Debug)]
pub struct ServiceTarget {
    endpoint: Uri,
    host: String,
    version: &'static str,
}

impl ServiceTarget {
    /// `endpoint` is `scheme://host[:port]`; `version` the product's API version.
    pub fn new(endpoint: &str, version: &'static str) -> Result<Self, EciError> {
        let parsed: Uri = endpoint
            .trim_end_matches('/')
            .parse()
            .map_err(|e| EciError::Config(format!("endpoint {endpoint:?}: {e}")))?;
        let (Some(scheme), Some(authority)) = (parsed.scheme_str(), parsed.authority()) else {
            return Err(EciError::Config(format!(
                "endpoint {endpoint:?} needs a scheme and a host, e.g. https://eci.cn-hangzhou.aliyuncs.com"
            )));
        };
        if scheme != "http" && scheme != "https" {
            return Err(EciError::Config(format!(
                "endpoint {endpoint:?}: only http and https are supported"
            )));
        }
        let host = authority.to_string();
        let endpoint = Uri::builder()
            .scheme(scheme)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| EciError::Config(e.to_string()))?;
        Ok(Self {
            endpoint,
            host,
            version,
        })
    }

    /// `host[:port]`, as the `Host` header carries it.
    pub fn host_name(&self) -> &str {
        &self.host
    }
}

pub struct EciClient {
    http: Client<Connector, Full<Bytes>>,
    eci: ServiceTarget,
    config: ClientConfig,
    credentials: Arc<CredentialProvider>,
    writes: TokenBucket,
    reads: TokenBucket,
}

impl EciClient {
    pub fn new(config: ClientConfig) -> Result<Self, EciError> {
        let credentials = config.credentials.clone().unwrap_or_else(|| {
            CredentialProvider::fixed(&config.access_key_id, &config.access_key_secret)
        });
        credentials.record_into(config.metrics.clone());
        let eci = ServiceTarget::new(&config.endpoint, API_VERSION)?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = if eci.endpoint.scheme_str() == Some("https") {
            builder.with_native_roots().map_err(|e| {
                EciError::Config(format!("loading the system's CA certificates: {e}"))
            })?
        } else {
            // Plain HTTP (the mock cloud) needs no trust roots, so a machine without any
            // still works.
            builder.with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        };
        let connector = builder.https_or_http().enable_http1().build();
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            eci,
            writes: TokenBucket::new(config.write_rate.burst, config.write_rate.per_second),
            reads: TokenBucket::new(config.read_rate.burst, config.read_rate.per_second),
            credentials,
            config,
        })
    }

    pub fn region_id(&self) -> &str {
        &self.config.region_id
    }

    /// The keys calls are signed with.
    pub fn credentials(&self) -> &Arc<CredentialProvider> {
        &self.credentials
    }

    /// Send one action (rate limited, retried, counted): every ECI call goes this way.
    pub async fn send<A: Action>(&self, request: &A) -> Result<A::Response, EciError> {
        self.call(A::NAME, request.params()).await
    }

    /// One action, rate limited and retried. `RegionId` is always this client's region.
    pub async fn call<T: DeserializeOwned>(
        &self,
        action: &str,
        params: Params,
    ) -> Result<T, EciError> {
        self.call_at(&self.eci, action, params).await
    }

    /// [`Self::call`] to another product of the account (`target`), signed with the same
    /// keys, under the same read rate limit.
    pub async fn call_at<T: DeserializeOwned>(
        &self,
        target: &ServiceTarget,
        action: &str,
        mut params: Params,
    ) -> Result<T, EciError> {
        params.set("RegionId", &self.config.region_id);
        let bucket = match action {
            "CreateContainerGroup"
            | "DeleteContainerGroup"
            | "CreateImageCache"
            | "DeleteImageCache" => &self.writes,
            _ => &self.reads,
        };
        (|| self.attempt(target, action, &params, bucket))
            .retry(self.config.retry)
            .when(EciError::is_retryable)
            .notify(|e, delay| {
                tracing::debug!(%action, ?delay, error = %e, "ECI call failed; retrying");
            })
            .await
    }

    /// One attempt: wait for the rate limit, sign with the current keys, send, count. When
    /// the service finds the STS token expired before we do (clock skew), fetch new keys and
    /// send again once.
    async fn attempt<T: DeserializeOwned>(
        &self,
        target: &ServiceTarget,
        action: &str,
        params: &Params,
        bucket: &TokenBucket,
    ) -> Result<T, EciError> {
        let mut refetched = false;
        loop {
            bucket.acquire().await;
            let credentials = self
                .credentials
                .get()
                .await
                .map_err(EciError::Credentials)?;
            let started = Instant::now();
            let answer = self.call_once(target, action, params, &credentials).await;
            let outcome = answer
                .as_ref()
                .map_or_else(EciError::outcome, |_| CallOutcome::Ok);
            let seconds = started.elapsed().as_secs_f64();
            self.config.metrics.record_call(action, outcome, seconds);
            match answer {
                Err(e) if e.is_expired_token() && !refetched => {
                    tracing::info!(%action, "the service says the STS token expired; fetching new credentials");
                    self.credentials.invalidate(&credentials);
                    refetched = true;
                }
                answer => return answer,
            }
        }
    }

    /// Sign and send once. Parameters go in a form body, so large creates (config files)
    /// never hit URL length limits; the signature covers them all the same.
    async fn call_once<T: DeserializeOwned>(
        &self,
        target: &ServiceTarget,
        action: &str,
        params: &Params,
        credentials: &Credentials,
    ) -> Result<T, EciError> {
        let transport = |message: String| EciError::Transport {
            action: action.to_string(),
            message,
        };
        let request = match self.config.signature {
            SignatureMethod::Acs3 => self.acs3_request(target, action, params, credentials),
            SignatureMethod::HmacSha1 => self.rpc_request(target, action, params, credentials),
        }
        .map_err(|e| transport(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| transport(format!("{e:#}")))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, EciError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.config.timeout, exchange)
            .await
            .map_err(|_| transport(format!("no answer within {:?}", self.config.timeout)))??;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|e| EciError::Decode {
                action: action.to_string(),
                message: format!(
                    "{e}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            });
        }
        let error: ErrorResponse =
            serde_json::from_slice(&body).unwrap_or_else(|_| ErrorResponse {
                code: format!("HTTP{status}"),
                message: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
                ..Default::default()
            });
        // The service may echo the string to sign, which holds the SecurityToken.
        let message = match &credentials.security_token {
            Some(token) => {
                let once = sign::percent_encode(token.expose());
                let twice = sign::percent_encode(&once);
                error
                    .message
                    .replace(&twice, "***")
                    .replace(&once, "***")
                    .replace(token.expose(), "***")
            }
            None => error.message,
        };
        Err(EciError::Api {
            action: action.to_string(),
            status,
            code: error.code,
            message,
            request_id: error.request_id,
        })
    }
}

impl EciClient {
    fn base_request(&self, target: &ServiceTarget) -> hyper::http::request::Builder {
        Request::builder()
            .method(Method::POST)
            .uri(target.endpoint.clone())
            .header(header::HOST, &target.host)
            .header(header::CONTENT_TYPE, FORM)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("vk-serverless/", env!("CARGO_PKG_VERSION")),
            )
    }

    /// ACS3-HMAC-SHA256: the action and the common fields in `x-acs-*` headers, the
    /// parameters in a form body (so large creates never hit URL limits), its hash signed.
    fn acs3_request(
        &self,
        target: &ServiceTarget,
        action: &str,
        params: &Params,
        credentials: &Credentials,
    ) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let body = params.to_form();
        let payload = sign_acs3::hashed_payload(body.as_bytes());
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), target.host.clone()),
            ("content-type".into(), FORM.into()),
            ("x-acs-action".into(), action.into()),
            ("x-acs-version".into(), target.version.into()),
            ("x-acs-date".into(), now_iso8601()),
            ("x-acs-signature-nonce".into(), random_uuid()),
            ("x-acs-content-sha256".into(), payload.clone()),
        ];
        if let Some(token) = &credentials.security_token {
            headers.push(("x-acs-security-token".into(), token.expose().to_string()));
        }
        let signed = sign_acs3::canonical_request(
            "POST",
            std::iter::empty::<(&str, &str)>(),
            &headers,
            &payload,
        );
        let mut request = self.base_request(target).header(
            header::AUTHORIZATION,
            sign_acs3::authorization(
                &credentials.access_key_id,
                credentials.access_key_secret.expose(),
                &signed,
            ),
        );
        for (name, value) in &headers {
            if name.starts_with("x-acs-") {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        request.body(Full::new(Bytes::from(body)))
    }

    /// The RPC signature 1.0: common fields and `Signature` among the form parameters.
    fn rpc_request(
        &self,
        target: &ServiceTarget,
        action: &str,
        params: &Params,
        credentials: &Credentials,
    ) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let mut signed = common_params(action, target.version, &credentials.access_key_id);
        if let Some(token) = &credentials.security_token {
            signed.push("SecurityToken", token.expose());
        }
        for (k, v) in params.iter() {
            signed.push(k, v);
        }
        let signature = sign::sign(
            "POST",
            signed.iter(),
            credentials.access_key_secret.expose(),
        );
        signed.push("Signature", signature);
        self.base_request(target)
            .body(Full::new(Bytes::from(signed.to_form())))
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn now_iso8601() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The parameters every RPC call carries besides its own.
fn common_params(action: &str, version: &str, access_key_id: &str) -> Params {
    let mut p = Params::new();
    p.push("Action", action)
        .push("Version", version)
        .push("Format", "JSON")
        .push("AccessKeyId", access_key_id)
        .push("SignatureMethod", sign::SIGNATURE_METHOD)
        .push("SignatureVersion", sign::SIGNATURE_VERSION)
        .push("SignatureNonce", random_uuid())
        .push("Timestamp", now_iso8601());
    p
}

/// A random version-4 UUID, upper-case like the service's RequestIds.
pub fn random_uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_max_attempts_with_growing_jittered_delays() {
        use backon::BackoffBuilder as _;
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay_ms: 100,
            max_delay_ms: 300,
        };
        let delays: Vec<Duration> = policy.build().collect();
        assert_eq!(
            delays.len(),
            3,
            "a retry before each attempt after the first"
        );
        // Equal jitter: at least half of each step (100, 200, then capped at 300 ms).
        for (delay, step) in delays.iter().zip([100, 200, 300]) {
            let ms = delay.as_millis() as u64;
            assert!(
                (step / 2..=step).contains(&ms),
                "{ms} ms for a {step} ms step"
            );
        }
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy
        };
        assert_eq!(once.build().count(), 0);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay_ms: 100,
            max_delay_ms: 1000,
        };
        for _ in 0..50 {
            let d0 = policy.delay(0).as_millis();
            assert!((50..=100).contains(&d0), "{d0}");
            let d3 = policy.delay(3).as_millis();
            assert!((400..=800).contains(&d3), "{d3}");
            let d9 = policy.delay(9).as_millis();
            assert!((500..=1000).contains(&d9), "{d9}");
        }
    }

    #[test]
    fn uuids_look_like_request_ids() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, random_uuid());
    }

    #[test]
    fn endpoints_are_checked() {
        let config = |e: &str| ClientConfig::new(e, "r", "id", "secret");
        assert!(EciClient::new(config("ftp://x")).is_err());
        assert!(EciClient::new(config("localhost")).is_err());
    }
}
