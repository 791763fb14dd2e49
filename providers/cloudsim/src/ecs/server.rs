//! The HTTP server of the ECS face: `POST /` for ECS and CloudWatch Logs (told apart by
//! `X-Amz-Target`) and STS (a form body), `GET`/`POST /admin/faults` for fault injection.
//! Plain HTTP; SDKs reach it with an endpoint URL (`endpoint_url="http://ADDR"`).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::api::{self, Answer};
use super::config::EcsConfig;
use super::error::ApiError;
use super::face::Face;
use super::identity;
use super::sigv4::Signed;
use super::ssm;
use crate::engine::Engine;
use crate::launch::{self, StartError};
use fargate::wire::JSON_CONTENT_TYPE;
use fargate::wire::error::codes;

/// Request bodies larger than this are refused.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// A running ECS cloud. Dropping it stops the server.
pub struct EcsCloud {
    addr: SocketAddr,
    face: Face,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    own_work_dir: Option<std::path::PathBuf>,
}

/// The connection is dropped without an answer (the `api_down` fault).
#[derive(Debug, thiserror::Error)]
#[error("the API is down (injected)")]
struct Down;

fn respond(a: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(a.body)));
    *response.status_mut() =
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(a.content_type),
    );
    if let Ok(v) = header::HeaderValue::from_str(&a.request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

fn json_error(e: ApiError) -> Answer {
    Answer {
        status: e.status,
        content_type: JSON_CONTENT_TYPE,
        body: e.body(),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

async fn handle(
    face: Face,
    stop: CancellationToken,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Down> {
    if req.uri().path().starts_with(ssm::PATH_PREFIX) {
        return Ok(ssm::agent::upgrade(&face, req, stop));
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(respond(json_error(ApiError::new(
                codes::SERIALIZATION,
                "The request body is too large.",
            ))));
        }
    };
    if parts.uri.path() == "/admin/faults" {
        let (status, text) = launch::admin_faults(face.engine(), parts.method.as_str(), &body);
        return Ok(respond(Answer {
            status,
            content_type: "application/json",
            body: text,
            request_id: String::new(),
        }));
    }
    if let Some(answer) = identity::answer(&face, &parts.method, parts.uri.path(), &parts.headers) {
        return Ok(respond(answer));
    }
    let faults = face.engine().faults();
    if faults.api_down() {
        return Err(Down);
    }
    let latency = faults.latency_ms();
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    if parts.method != Method::POST && parts.method != Method::GET {
        return Ok(respond(json_error(ApiError::new(
            codes::UNKNOWN_OPERATION,
            "Only POST (and GET for STS) are served.",
        ))));
    }
    let signed = Signed {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body: &body,
    };
    let answer = match api::route(&parts.headers) {
        None => json_error(ApiError::new(
            codes::UNKNOWN_OPERATION,
            "X-Amz-Target names no action of ECS (AmazonEC2ContainerServiceV20141113) or CloudWatch Logs (Logs_20140328).",
        )),
        Some(Some(target)) => api::handle_json(&face, target, &signed).await,
        Some(None) => api::handle_sts(&face, &signed),
    };
    Ok(respond(answer))
}

impl EcsCloud {
    /// Bind `listen` (port 0 picks one), build the executor, and serve until dropped.
    pub async fn start(config: EcsConfig, listen: &str) -> Result<Self, StartError> {
        let launch::Launched {
            executor,
            own_work_dir,
        } = launch::executor(config.executor, &config.simulate, &config.process).await?;
        let (listener, addr) = launch::bind(listen).await?;
        let cancel = CancellationToken::new();
        let face = Face::new(config, executor, cancel.clone());
        let serving = face.clone();
        let stop = cancel.clone();
        let task = tokio::spawn(launch::serve(listener, cancel.clone(), move |req| {
            handle(serving.clone(), stop.clone(), req)
        }));
        Ok(Self {
            addr,
            face,
            cancel,
            task: Some(task),
            own_work_dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the SDKs' endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn engine(&self) -> &Engine {
        self.face.engine()
    }

    /// ExecuteCommand's sessions waiting for their client (tests shorten their lifetime).
    pub fn exec_sessions(&self) -> &ssm::sessions::Sessions {
        &self.face.ssm
    }

    /// Serve until `shutdown` completes, then stop accepting.
    pub async fn run_until(mut self, shutdown: impl std::future::Future<Output = ()>) {
        shutdown.await;
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        launch::remove_work_dir(self.own_work_dir.take()).await;
    }
}

impl Drop for EcsCloud {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
