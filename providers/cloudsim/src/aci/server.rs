//! The ACI face's server: HTTPS (or plain HTTP for tests) with HTTP/1.1 keep-alive, one task
//! per connection. Serves the ARM, Azure AD and IMDS routes (`api`), the exec/attach sockets
//! under [`super::exec::EXEC_PREFIX`], and fault injection at `/admin/faults` (as the ECI
//! face does).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;
use vk_core::stream::websocket::handshake::Handshake;

use super::answer::Answer;
use super::api::{self, Call};
use super::config::AciConfig;
use super::error::AciError;
use super::exec::{self, EXEC_PREFIX};
use super::face::AciFace;
use super::tls::{self, TlsMode};
use crate::engine::Engine;
use crate::launch::{self, Launched, StartError};

const MAX_BODY: usize = 8 * 1024 * 1024;

type Body = Full<Bytes>;

/// A running ACI face. Dropping it stops the server.
pub struct AciCloud {
    addr: SocketAddr,
    face: AciFace,
    tls: bool,
    ca_pem: Option<String>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    own_work_dir: Option<std::path::PathBuf>,
}

struct Server {
    face: AciFace,
    tls: bool,
    stop: CancellationToken,
}

fn respond(answer: Answer) -> Response<Body> {
    let has_body = !answer.body.is_empty();
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if has_body {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The connection is dropped without an answer (the `api_down` fault).
#[derive(Debug, thiserror::Error)]
#[error("the API is down (injected)")]
struct Down;

impl Server {
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Body>, Down> {
        let path = req.uri().path().to_string();
        if path == "/admin/faults" {
            return Ok(self.admin(req).await);
        }
        if self.face.engine().faults().api_down() {
            return Err(Down);
        }
        if let Some(token) = path.strip_prefix(EXEC_PREFIX) {
            return Ok(self.upgrade(token.to_string(), req));
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_string();
        let scheme = if self.tls { "https" } else { "http" };
        let base = format!("{scheme}://{host}");
        let method = req.method().as_str().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Ok(respond(
                    AciError::new(
                        413,
                        "RequestEntityTooLarge",
                        "The request body is too large.",
                    )
                    .into(),
                ));
            }
        };
        let call = Call {
            method: &method,
            path: &path,
            query: &query,
            headers: &parts.headers,
            body: &body,
            base: &base,
            host: &host,
            tls: self.tls,
        };
        Ok(respond(api::handle(&self.face, &call).await))
    }

    fn upgrade(&self, token: String, req: Request<Incoming>) -> Response<Body> {
        let handshake = match Handshake::from_request(&req) {
            Ok(h) => h,
            Err(e) => {
                return respond(
                    AciError::new(
                        e.status().as_u16(),
                        "BadRequest",
                        format!("This address takes a WebSocket upgrade: {e}."),
                    )
                    .into(),
                );
            }
        };
        let response = match handshake.response(None) {
            Ok(r) => r,
            Err(e) => {
                return respond(AciError::new(500, "InternalServerError", e.to_string()).into());
            }
        };
        let Some(session) = self.face.exec.take(&token) else {
            return respond(
                AciError::new(
                    403,
                    "Forbidden",
                    "The exec session is unknown, already used or expired.",
                )
                .into(),
            );
        };
        let engine = self.face.engine().clone();
        let stop = self.stop.clone();
        let on_upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    exec::run(engine, session, ws, stop).await;
                }
                Err(e) => tracing::warn!(error = %e, "the exec WebSocket upgrade failed"),
            }
        });
        response
    }

    async fn admin(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().as_str().to_string();
        let (status, body) = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => launch::admin_faults(self.face.engine(), &method, &body.to_bytes()),
            Err(e) => (400, serde_json::json!({"error": e.to_string()}).to_string()),
        };
        respond(Answer {
            status,
            headers: Vec::new(),
            body,
        })
    }
}

impl AciCloud {
    /// Bind `listen` (port 0 picks one), build the executor, and serve until dropped.
    pub async fn start(config: AciConfig, listen: &str, tls: TlsMode) -> Result<Self, StartError> {
        let tls_config = tls::server_config(&tls)?;
        let Launched {
            executor,
            own_work_dir,
        } = launch::executor(config.executor, &config.simulate, &config.process).await?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: listen.to_string(),
            source,
        })?;
        let face = AciFace::new(config, executor);
        let cancel = CancellationToken::new();
        let (acceptor, ca_pem) = match tls_config {
            Some((config, ca)) => (Some(tokio_rustls::TlsAcceptor::from(config)), ca),
            None => (None, None),
        };
        let server = Arc::new(Server {
            face: face.clone(),
            tls: acceptor.is_some(),
            stop: cancel.clone(),
        });
        let tls = acceptor.is_some();
        let task = tokio::spawn(serve(listener, acceptor, server, cancel.clone()));
        Ok(Self {
            addr,
            face,
            tls,
            ca_pem,
            cancel,
            task: Some(task),
            own_work_dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (or `http://`): ARM's and Azure AD's endpoint alike.
    pub fn endpoint(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// The PEM of the CA a client must trust (self-signed mode).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn engine(&self) -> &Engine {
        self.face.engine()
    }

    pub fn face(&self) -> &AciFace {
        &self.face
    }

    /// Serve until `shutdown` completes, then stop.
    pub async fn run_until(mut self, shutdown: impl std::future::Future<Output = ()>) {
        shutdown.await;
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        launch::remove_work_dir(self.own_work_dir.take()).await;
    }
}

impl Drop for AciCloud {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    server: Arc<Server>,
    cancel: CancellationToken,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let server = server.clone();
        let cancel = cancel.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let server = server.clone();
                async move { server.handle(req).await }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                    else {
                        return;
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = conn => {}
                    }
                }
                None => {
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = conn => {}
                    }
                }
            }
        });
    }
}
