//! Who is calling, and may they? The kubelet's rules (`pkg/kubelet/server/auth.go`): the caller is
//! the verified TLS client certificate (CN = user, O = groups) or a bearer token the API server
//! vouches for (TokenReview); access is a SubjectAccessReview on `nodes/<subresource>` of this
//! node. Decisions are cached with the kubelet's webhook TTLs, so a busy `kubectl logs -f` or a
//! metrics scrape does not cost an API round trip per request.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hyper::Method;
use hyper::header::HeaderValue;
use tokio::time::Instant;

/// The kubelet's token webhook cache TTL (`--authentication-token-webhook-cache-ttl`), used
/// for valid and invalid tokens alike.
const TOKEN_TTL: Duration = Duration::from_secs(120);
/// The kubelet's authorization webhook TTLs for allowed and denied decisions
/// (`--authorization-webhook-cache-{authorized,unauthorized}-ttl`).
const ALLOW_TTL: Duration = Duration::from_secs(300);
const DENY_TTL: Duration = Duration::from_secs(30);
/// Bounds memory when many distinct tokens or users arrive; expired entries go first.
const CACHE_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("review through the API server: {0}")]
    Api(#[from] kube::Error),
}

/// An authenticated caller, as the API server's `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    pub user: String,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl ClientIdentity {
    pub fn new(user: &str, groups: &[&str]) -> Self {
        Self {
            user: user.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Self::default()
        }
    }

    /// The identity in a client certificate the TLS layer has already verified: CN is the user,
    /// each O a group (the API server's x509 convention). `None` without a usable CN.
    pub fn from_certificate(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let user = subject.iter_common_name().next()?.as_str().ok()?;
        if user.is_empty() {
            return None;
        }
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string)
            .collect();
        Some(Self {
            user: user.to_string(),
            groups,
            ..Self::default()
        })
    }
}

/// What a request asks of this node, as a SubjectAccessReview's resource attributes
/// (`resource` is always `nodes`, `version` `v1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeAccess {
    pub verb: &'static str,
    pub subresource: &'static str,
    pub node_name: String,
}

/// The API server's answers about tokens and access; behind a trait so the decision logic can
/// be exercised without an API server.
#[async_trait]
pub trait Reviewer: Send + Sync + 'static {
    /// The identity behind a bearer token, `None` when the token is not valid.
    async fn review_token(&self, token: &str) -> Result<Option<ClientIdentity>, AuthError>;
    /// Whether `who` may do `access`.
    async fn review_access(
        &self,
        who: &ClientIdentity,
        access: &NodeAccess,
    ) -> Result<bool, AuthError>;
}

/// How the kubelet API decides who may call it.
pub enum KubeletAuth {
    /// TokenReview + SubjectAccessReview through the API server (the default).
    Webhook { client: kube::Client },
    /// The same decisions, answered by another reviewer (embedding, tests).
    Reviewer(Arc<dyn Reviewer>),
    /// Explicit dev flag: every request is allowed, anonymous ones too; logged loudly at start.
    DisabledForDev,
}

/// Why a request was turned away.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No certificate identity and no valid bearer token: 401.
    Unauthenticated,
    /// Authenticated, not authorized: 403 with the kubelet's message.
    Forbidden(String),
    /// The SubjectAccessReview could not be made: 500 with the kubelet's message.
    Failed(String),
}

/// Authentication and authorization of one server, with their caches.
pub(crate) struct Gate {
    node_name: String,
    webhook: Option<Webhook>,
}

struct Webhook {
    reviewer: Arc<dyn Reviewer>,
    /// Keyed by the token's SHA-256 so the cache never holds a usable credential.
    tokens: TtlCache<[u8; 32], Option<ClientIdentity>>,
    decisions: TtlCache<(ClientIdentity, NodeAccess), bool>,
}

impl Gate {
    /// A gate that asks `reviewer` (none: every request is let through, for development).
    pub(crate) fn new(node_name: &str, reviewer: Option<Arc<dyn Reviewer>>) -> Self {
        Self {
            node_name: node_name.to_string(),
            webhook: reviewer.map(|reviewer| Webhook {
                reviewer,
                tokens: TtlCache::default(),
                decisions: TtlCache::default(),
            }),
        }
    }

    pub(crate) fn is_disabled(&self) -> bool {
        self.webhook.is_none()
    }

    /// Decide one request. `peer` is the identity from a verified client certificate, if any.
    pub(crate) async fn admit(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&HeaderValue>,
        peer: Option<ClientIdentity>,
    ) -> Result<(), Rejection> {
        let Some(webhook) = &self.webhook else {
            return Ok(());
        };
        let who = match peer {
            Some(who) => who,
            None => webhook
                .authenticate(authorization)
                .await
                .ok_or(Rejection::Unauthenticated)?,
        };
        let subresources = subresources(path);
        let verb = api_verb(method);
        let forbidden = || {
            Rejection::Forbidden(format!(
                "Forbidden (user={}, verb={}, resource=nodes, subresource(s)=[{}])",
                who.user,
                verb.unwrap_or_default(),
                subresources.join(" ")
            ))
        };
        // No API verb can grant a method the kubelet does not map (OPTIONS, TRACE, ...).
        let verb = verb.ok_or_else(forbidden)?;
        for &subresource in &subresources {
            let access = NodeAccess {
                verb,
                subresource,
                node_name: self.node_name.clone(),
            };
            match webhook.authorize(&who, access).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(user = %who.user, %err, "SubjectAccessReview failed");
                    let user = &who.user;
                    return Err(Rejection::Failed(format!(
                        "Authorization error (user={user}, verb={verb}, resource=nodes, \
                         subresource={subresource})"
                    )));
                }
            }
        }
        tracing::debug!(user = %who.user, verb, path, "kubelet API request forbidden");
        Err(forbidden())
    }
}

impl Webhook {
    async fn authenticate(&self, authorization: Option<&HeaderValue>) -> Option<ClientIdentity> {
        let token = bearer_token(authorization?)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        if let Some(known) = self.tokens.get(&key) {
            return known;
        }
        match self.reviewer.review_token(token).await {
            Ok(identity) => {
                self.tokens.insert(key, identity.clone(), TOKEN_TTL);
                identity
            }
            // Not cached: the next request asks again once the API server is back.
            Err(err) => {
                tracing::warn!(%err, "TokenReview failed; answering 401");
                None
            }
        }
    }

    async fn authorize(&self, who: &ClientIdentity, access: NodeAccess) -> Result<bool, AuthError> {
        let key = (who.clone(), access);
        if let Some(allowed) = self.decisions.get(&key) {
            return Ok(allowed);
        }
        let allowed = self.reviewer.review_access(who, &key.1).await?;
        let ttl = if allowed { ALLOW_TTL } else { DENY_TTL };
        self.decisions.insert(key, allowed, ttl);
        Ok(allowed)
    }
}

/// `Authorization: Bearer <token>`, scheme case-insensitive, as the API server parses it.
fn bearer_token(header: &HeaderValue) -> Option<&str> {
    let mut parts = header.to_str().ok()?.split(' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The kubelet's HTTP method to API verb mapping; HEAD reads like GET.
pub(crate) fn api_verb(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => return None,
    })
}

/// The `nodes` subresources that may grant `path`, most specific first; any one suffices.
/// With KubeletFineGrainedAuthz (beta, on by default since 1.33) `/pods`, `/runningpods` and
/// `/healthz` have their own subresource with `proxy` as the fallback.
pub(crate) fn subresources(path: &str) -> Vec<&'static str> {
    let mut subresources = Vec::with_capacity(2);
    if is_subpath(path, "/pods") || is_subpath(path, "/runningpods") {
        subresources.push("pods");
    } else if is_subpath(path, "/healthz") {
        subresources.push("healthz");
    }
    subresources.push(if is_subpath(path, "/stats") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs") {
        // "log" to match the other log subresources (pods/log).
        "log"
    } else if is_subpath(path, "/checkpoint") {
        "checkpoint"
    } else {
        "proxy"
    });
    subresources
}

fn is_subpath(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone())
    }

    fn insert(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + ttl));
    }
}
