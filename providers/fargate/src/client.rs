//! ECS and CloudWatch Logs over JSON 1.1: every call is a signed `POST /` with
//! `X-Amz-Target: <service>.<Action>` and `Content-Type: application/x-amz-json-1.1`.
//!
//! - Pacing (vk-core's [`TokenBucket`]s, at Fargate's published rates by default): RunTask
//!   waits on the RunTask bucket and the task launch bucket, every other ECS call on the ECS
//!   bucket, CloudWatch Logs calls on theirs. A `ThrottlingException` holds every call of
//!   its API back for the backoff, not only the one that got it.
//! - Retries: throttling, 5xx answers and calls without an answer are retried with backoff
//!   and jitter ([`RetryPolicy`]). Every call the provider makes may be repeated: RunTask
//!   carries a `clientToken` (a repeat answers the first call's task), StopTask and the reads
//!   are idempotent, a repeated RegisterTaskDefinition at worst adds a revision that the
//!   provider deregisters once unused.
//! - Keys refused as expired or unknown, or a signature refused, drop the cached keys
//!   ([`crate::credentials::Credentials::invalidate`]) and the call is tried once more.
//! - Errors keep the service's `__type` code and message ([`FargateError`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use vk_core::provider::http::{Answer, Http, HttpError};
use vk_core::provider::pacing::{RateLimit, RetryPolicy, TokenBucket};

use crate::credentials::Credentials;
pub use crate::error::FargateError;
use crate::sign::{self, Scope};
use crate::wire::error::JsonError;
use crate::wire::{ECS_SIGNING_NAME, JSON_CONTENT_TYPE, LOGS_SIGNING_NAME, TARGET_HEADER, Target};

/// Which service a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Ecs,
    Logs,
}

/// The client's rates and retries.
#[derive(Clone, Debug)]
pub struct Pacing {
    pub retry: RetryPolicy,
    pub run_task: RateLimit,
    pub task_launch: RateLimit,
    pub ecs: RateLimit,
    pub logs: RateLimit,
}

pub struct AwsClient {
    http: Http,
    ecs_url: String,
    logs_url: String,
    region: String,
    credentials: Arc<Credentials>,
    retry: RetryPolicy,
    run_task: TokenBucket,
    task_launch: TokenBucket,
    ecs: TokenBucket,
    logs: TokenBucket,
    /// No call of the API before this (a throttled answer's backoff).
    holds: [Mutex<Option<Instant>>; 2],
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient")
            .field("ecs_url", &self.ecs_url)
            .field("logs_url", &self.logs_url)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn hold_index(api: Api) -> usize {
    match api {
        Api::Ecs => 0,
        Api::Logs => 1,
    }
}

impl AwsClient {
    pub fn new(
        http: Http,
        ecs_url: &str,
        logs_url: &str,
        region: &str,
        credentials: Arc<Credentials>,
        pacing: Pacing,
    ) -> Self {
        Self {
            http,
            ecs_url: format!("{}/", ecs_url.trim_end_matches('/')),
            logs_url: format!("{}/", logs_url.trim_end_matches('/')),
            region: region.to_string(),
            credentials,
            retry: pacing.retry,
            run_task: TokenBucket::new(pacing.run_task),
            task_launch: TokenBucket::new(pacing.task_launch),
            ecs: TokenBucket::new(pacing.ecs),
            logs: TokenBucket::new(pacing.logs),
            holds: [Mutex::new(None), Mutex::new(None)],
        }
    }

    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    async fn pace(&self, api: Api, action: &str) {
        let until = *self.holds[hold_index(api)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until
            && until > Instant::now()
        {
            tokio::time::sleep_until(until).await;
        }
        match (api, action) {
            (Api::Ecs, "RunTask") => {
                self.run_task.acquire().await;
                self.task_launch.acquire().await;
            }
            (Api::Ecs, _) => self.ecs.acquire().await,
            (Api::Logs, _) => self.logs.acquire().await,
        }
    }

    fn hold(&self, api: Api, wait: Duration) {
        let until = Instant::now() + wait;
        let mut held = self.holds[hold_index(api)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if held.is_none_or(|h| h < until) {
            *held = Some(until);
        }
    }

    /// One action, paced, signed and retried; its answer's JSON.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned + Default>(
        &self,
        api: Api,
        action: &str,
        request: &Req,
    ) -> Result<Resp, FargateError> {
        let op = action.to_string();
        let body = Bytes::from(
            serde_json::to_vec(request).map_err(|e| FargateError::Decode {
                op: op.clone(),
                message: e.to_string(),
            })?,
        );
        let (url, service, target) = match api {
            Api::Ecs => (&self.ecs_url, ECS_SIGNING_NAME, Target::Ecs(action)),
            Api::Logs => (&self.logs_url, LOGS_SIGNING_NAME, Target::Logs(action)),
        };
        let target = target.header();
        let mut attempt = 0u32;
        let mut refetched = false;
        loop {
            attempt += 1;
            self.pace(api, action).await;
            let keys = self.credentials.get().await?;
            let base = [
                ("content-type", JSON_CONTENT_TYPE),
                (TARGET_HEADER, target.as_str()),
            ];
            let signed = sign::signed_headers(
                "POST",
                url,
                &base,
                &body,
                &keys,
                Scope {
                    region: &self.region,
                    service,
                },
                SystemTime::now(),
            )
            .map_err(FargateError::Config)?;
            let mut headers: Vec<(&str, &str)> = base.to_vec();
            headers.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            headers.push(("accept", "application/json"));
            let sent = self
                .http
                .send(Method::POST, url, &headers, Some(body.clone()))
                .await;
            let err = match sent {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    return decode(&op, &answer);
                }
                Ok(answer) => {
                    let err = api_error(&op, &answer);
                    if err.is_stale_credentials() && !refetched {
                        tracing::info!(%op, code = ?err.code(), "AWS refused the keys; getting new ones");
                        self.credentials.invalidate(&keys);
                        refetched = true;
                        attempt -= 1;
                        continue;
                    }
                    err
                }
                Err(e) => FargateError::Transport {
                    op: op.clone(),
                    message: match e {
                        HttpError::NotSent(m) | HttpError::NoAnswer(m) => m,
                    },
                },
            };
            if !err.is_retryable() || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let wait = self.retry.delay(attempt);
            if err.is_throttled() {
                self.hold(api, wait);
            }
            tracing::debug!(%op, attempt, ?wait, error = %err, "AWS call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

fn decode<T: DeserializeOwned + Default>(op: &str, answer: &Answer) -> Result<T, FargateError> {
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&answer.body).map_err(|e| FargateError::Decode {
        op: op.to_string(),
        message: format!(
            "{e}: {}",
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
        ),
    })
}

/// The `__type`/message of an error answer, or `HTTP<status>` with the start of the body.
fn api_error(op: &str, answer: &Answer) -> FargateError {
    let (code, message) = match serde_json::from_slice::<JsonError>(&answer.body) {
        Ok(e) if !e.kind.is_empty() => (e.code().to_string(), e.message.unwrap_or_default()),
        _ => (
            format!("HTTP{}", answer.status),
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into_owned(),
        ),
    };
    FargateError::Api {
        op: op.to_string(),
        status: answer.status,
        code,
        message,
    }
}
