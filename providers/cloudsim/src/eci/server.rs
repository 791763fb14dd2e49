//! The HTTP server: `GET /?...` and `POST /` (form body) for the API, `GET`/`POST
//! /admin/faults` for fault injection, `GET /exec/?s=TOKEN` (WebSocket) for interactive exec,
//! STS's AssumeRoleWithOIDC at `/` too, the ECS metadata face under `/latest/`, and `GET
//! /admin/sts` (what STS saw). HTTP/1.1 with keep-alive, one task per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::auth::{Call, Nonces};
use super::config::MockCloudConfig;
use super::face::Face;
use super::metadata::{self, MetadataTokens};
use super::sts::{self, Sts};
use super::{api, exec_session};
use crate::engine::Engine;
use crate::launch;
use eci::wire::params::Params;

/// Request bodies larger than this are refused (config files ride in creates).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// A running mock cloud. Dropping it stops the server (groups' tasks stop with the runtime).
pub struct MockCloud {
    addr: SocketAddr,
    face: Face,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    sts: Arc<Sts>,
    /// A work directory the cloud chose itself, removed when it stops.
    own_work_dir: Option<std::path::PathBuf>,
}

pub use crate::launch::StartError;

struct Server {
    face: Face,
    nonces: Nonces,
    sts: Arc<Sts>,
    metadata: MetadataTokens,
    /// Cancelled when the cloud stops; ends exec sessions.
    stop: CancellationToken,
}

type Body = Full<Bytes>;

fn respond(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
}

/// The connection is dropped without an answer (the `api_down` fault).
#[derive(Debug, thiserror::Error)]
#[error("the API is down (injected)")]
struct Down;

impl Server {
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Body>, Down> {
        let faults = self.face.faults();
        if req.uri().path() == "/admin/faults" {
            return Ok(self.admin(req).await);
        }
        if req.uri().path() == "/admin/creates" {
            let (status, answer) =
                super::persist::admin_creates(req.method().as_str(), || self.face.creates());
            return Ok(respond(status, answer));
        }
        if req.uri().path() == "/admin/sts" {
            let method = req.method().clone();
            let body = Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let (status, answer) = self.sts.admin(method.as_str(), &body);
            return Ok(respond(status, answer));
        }
        if faults.api_down() {
            return Err(Down);
        }
        if metadata::is_metadata(req.uri().path()) {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let answer =
                self.metadata
                    .handle(&self.sts, req.method().as_str(), req.uri().path(), header);
            let mut response = respond(answer.status, answer.body);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(answer.content_type),
            );
            return Ok(response);
        }
        let path = req.uri().path();
        if path == exec_session::EXEC_PATH || path == exec_session::EXEC_PATH.trim_end_matches('/')
        {
            return Ok(exec_session::upgrade(
                self.face.engine(),
                self.face.exec_sessions(),
                &self.stop,
                req,
            ));
        }
        let latency = faults.latency_ms();
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if req.uri().path() != "/" {
            return Ok(respond(404, r#"{"Code":"InvalidAction.NotFound","Message":"Specified api is not found, please check your url and method."}"#.into()));
        }
        let method = req.method().clone();
        if method != Method::GET && method != Method::POST {
            return Ok(respond(
                405,
                r#"{"Code":"UnsupportedHTTPMethod","Message":"Only GET and POST are supported."}"#
                    .into(),
            ));
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("eci.aliyuncs.com")
            .to_string();
        let mut query = Params::new();
        let parsed = query.extend_from_form(req.uri().query().unwrap_or_default());
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Ok(respond(
                    413,
                    r#"{"Code":"InvalidParameter","Message":"The request body is too large."}"#
                        .into(),
                ));
            }
        };
        // RPC parameters ride in the query or a form body; any other body is only hashed.
        let form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| t.starts_with("application/x-www-form-urlencoded"));
        let mut params = query.clone();
        let parsed = parsed.and_then(|()| {
            if form {
                params.extend_from_form(&String::from_utf8_lossy(&body))
            } else {
                Ok(())
            }
        });
        if let Err(e) = parsed {
            let e = super::error::ApiError::from(e);
            return Ok(respond(
                e.status,
                format!(r#"{{"Code":"{}","Message":{:?}}}"#, e.code, e.message),
            ));
        }
        if sts::is_sts(&params) {
            let answer = self.sts.handle(&params, &host);
            return Ok(respond(answer.status, answer.body));
        }
        let call = Call {
            method: method.as_str(),
            params: &params,
            query: &query,
            headers: &parts.headers,
            body: &body,
        };
        let answer = api::handle(&self.face, &self.nonces, &self.sts, &call, &host).await;
        Ok(respond(answer.status, answer.body))
    }

    async fn admin(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return respond(400, format!(r#"{{"error":{:?}}}"#, e.to_string())),
        };
        let (status, answer) = launch::admin_faults(self.face.engine(), method.as_str(), &body);
        respond(status, answer)
    }
}

impl MockCloud {
    /// Bind `listen` (port 0 picks one), build the executor, and serve until dropped.
    pub async fn start(config: MockCloudConfig, listen: &str) -> Result<Self, StartError> {
        let launch::Launched {
            executor,
            own_work_dir,
        } = launch::executor(config.executor, &config.simulate, &config.process).await?;
        let (listener, addr) = launch::bind(listen).await?;
        let sts = Arc::new(Sts::new(config.sts.clone()));
        let face = Face::new(config, executor);
        let restored = face.restore_state().map_err(StartError::State)?;
        if restored > 0 {
            tracing::info!(groups = restored, "restored the groups of the state file");
        }
        let cancel = CancellationToken::new();
        if face.config().state_file.is_some() {
            // The lifecycles' own changes (a group ending) are written twice a second.
            let face = face.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => face.save_state(),
                    }
                }
            });
        }
        let server = Arc::new(Server {
            face: face.clone(),
            nonces: Nonces::default(),
            sts: sts.clone(),
            metadata: MetadataTokens::default(),
            stop: cancel.clone(),
        });
        let task = tokio::spawn(launch::serve(listener, cancel.clone(), move |req| {
            let server = server.clone();
            async move { server.handle(req).await }
        }));
        Ok(Self {
            addr,
            face,
            cancel,
            task: Some(task),
            sts,
            own_work_dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the provider's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn engine(&self) -> &Engine {
        self.face.engine()
    }

    /// What `GET /admin/creates` answers: the groups made, and the quota's refusals.
    pub fn creates(&self) -> super::persist::CreatesReport {
        self.face.creates()
    }

    /// Interactive exec sessions handed out and not yet connected.
    pub fn exec_sessions(&self) -> &super::exec_session::ExecSessions {
        self.face.exec_sessions()
    }

    /// The STS and metadata faces' state: calls seen, keys issued, a failure switch.
    pub fn sts(&self) -> &Sts {
        &self.sts
    }

    /// Serve until `shutdown` completes, then stop accepting.
    pub async fn run_until(mut self, shutdown: impl std::future::Future<Output = ()>) {
        shutdown.await;
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.face.save_state();
        // The sandboxed processes die with this process (--die-with-parent); their files go now.
        launch::remove_work_dir(self.own_work_dir.take()).await;
    }
}

impl Drop for MockCloud {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
