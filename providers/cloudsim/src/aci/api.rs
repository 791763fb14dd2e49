//! The routes of the ACI face: Azure AD's token endpoint and OpenID configuration, the
//! instance metadata service's token, and ARM's `Microsoft.ContainerInstance` resources under
//! `/subscriptions/…` (bearer token, api-version, subscription and resource group checked in
//! that order, then ARM's request budget and the injected faults). Every ARM answer carries
//! `x-ms-request-id`, `x-ms-correlation-request-id` and what is left of the budget.

use hyper::HeaderMap;

use super::answer::Answer;
use super::error::AciError;
use super::face::AciFace;
use super::groups::{self, Scope};
use super::{auth, containers};
use crate::engine::faults::Injected;
use aci::wire::{codes, headers};

/// One request, as the server read it.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// `https://HOST` (or `http://`): this face's own address as the client reached it.
    pub base: &'a str,
    pub host: &'a str,
    pub tls: bool,
}

impl Call<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

fn not_found(what: &str) -> Answer {
    AciError::new(404, "NotFound", format!("No route for '{what}'.")).into()
}

/// Answer `call`.
pub async fn handle(face: &AciFace, call: &Call<'_>) -> Answer {
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    match (call.method, segments.as_slice()) {
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => {
            auth::token_endpoint(&face.tokens, face.config(), tenant, call.body)
        }
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
            auth::openid_configuration(face.config(), tenant, call.base)
        }
        ("GET", ["metadata", "identity", "oauth2", "token"]) => auth::imds(
            &face.tokens,
            face.config(),
            call.query,
            call.header(headers::METADATA),
        ),
        (_, [first, ..]) if first.eq_ignore_ascii_case("subscriptions") => {
            arm(face, call, &segments).await
        }
        _ => not_found(call.path),
    }
}

async fn arm(face: &AciFace, call: &Call<'_>, segments: &[&str]) -> Answer {
    let request_id = uuid::Uuid::new_v4().to_string();
    let correlation = call
        .header(headers::CORRELATION_REQUEST_ID)
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let read = call.method == "GET";
    let mut remaining = None;
    let answer = match checked(face, call, segments, read, &mut remaining).await {
        Ok(answer) | Err(answer) => answer,
    };
    let mut answer = answer
        .header(headers::REQUEST_ID, request_id)
        .header(headers::CORRELATION_REQUEST_ID, correlation);
    if let Some(left) = remaining {
        let name = if read {
            headers::REMAINING_READS
        } else {
            headers::REMAINING_WRITES
        };
        answer = answer.header(name, left.to_string());
    }
    if answer.status == 401 {
        let authority = call.base;
        answer = answer.header(
            headers::WWW_AUTHENTICATE,
            auth::challenge(face.config(), authority),
        );
    }
    answer
}

async fn checked(
    face: &AciFace,
    call: &Call<'_>,
    segments: &[&str],
    read: bool,
    remaining: &mut Option<u32>,
) -> Result<Answer, Answer> {
    let config = face.config();
    face.tokens.check(config, call.header("authorization"))?;
    let query = call.query_pairs();
    let get = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    match get("api-version") {
        None => {
            return Err(AciError::bad_request(
                codes::MISSING_API_VERSION,
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
            .into());
        }
        Some(v) if !aci::wire::STABLE_API_VERSIONS.contains(&v) => {
            return Err(AciError::bad_request(
                codes::INVALID_API_VERSION,
                format!("The resource type 'containerGroups' could not be found for api version '{v}'. The supported api-versions are '{}'.", aci::wire::STABLE_API_VERSIONS.join(", ")),
            )
            .into());
        }
        Some(_) => {}
    }
    let subscription = segments.get(1).copied().unwrap_or_default();
    if !config.has_subscription(subscription) {
        return Err(AciError::new(
            404,
            codes::SUBSCRIPTION_NOT_FOUND,
            format!("The subscription '{subscription}' could not be found."),
        )
        .into());
    }
    let rest = segments.get(2..).unwrap_or_default();
    if let [rg_word, rg, ..] = rest
        && rg_word.eq_ignore_ascii_case("resourceGroups")
        && !config.has_resource_group(rg)
    {
        return Err(AciError::new(
            404,
            codes::RESOURCE_GROUP_NOT_FOUND,
            format!("Resource group '{rg}' could not be found."),
        )
        .into());
    }
    *remaining = Some(face.throttle.arm(&config.arm_budget, subscription, read)?);
    let faults = face.engine().faults();
    let latency = faults.latency_ms();
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    if faults.take_throttle() {
        return Err(AciError::throttled(1, "The request was throttled (injected).").into());
    }
    let injected = faults.roll_error();
    let server_error = || -> Answer {
        if rand::random::<bool>() {
            AciError::new(500, codes::INTERNAL_SERVER_ERROR, "Encountered internal server error. Diagnostic information: the failure was injected.").into()
        } else {
            AciError {
                retry_after: Some(1),
                ..AciError::new(
                    503,
                    codes::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable (injected).",
                )
            }
            .into()
        }
    };
    if injected == Some(Injected::BeforeAction) {
        return Err(server_error());
    }
    let answer = route(face, call, subscription, rest, &query).await;
    if injected == Some(Injected::AfterAction) {
        return Err(server_error());
    }
    Ok(answer)
}

fn is(segment: &str, word: &str) -> bool {
    segment.eq_ignore_ascii_case(word)
}

async fn route(
    face: &AciFace,
    call: &Call<'_>,
    subscription: &str,
    rest: &[&str],
    query: &[(String, String)],
) -> Answer {
    let skip = query
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("$skipToken"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let ns = aci::wire::paths::NAMESPACE;
    match (call.method, rest) {
        ("GET", [p, n, cg]) if is(p, "providers") && is(n, ns) && is(cg, "containerGroups") => {
            groups::list(face, call.base, call.path, subscription, None, skip)
        }
        ("GET", [p, n, l, _loc, o, id])
            if is(p, "providers") && is(n, ns) && is(l, "locations") && is(o, "operations") =>
        {
            match face.ops.status(face.engine(), subscription, id) {
                Some(op) if op.status == aci::wire::operation_status::IN_PROGRESS => {
                    Answer::json(200, &op).header(headers::RETRY_AFTER, "1")
                }
                Some(op) => Answer::json(200, &op),
                None => AciError::new(
                    404,
                    codes::RESOURCE_NOT_FOUND,
                    format!("The operation '{id}' was not found."),
                )
                .into(),
            }
        }
        ("GET", [p, n, l, _loc, u])
            if is(p, "providers") && is(n, ns) && is(l, "locations") && is(u, "usages") =>
        {
            containers::usages(face, subscription)
        }
        ("GET", [p, n, l, _loc, c])
            if is(p, "providers") && is(n, ns) && is(l, "locations") && is(c, "capabilities") =>
        {
            containers::capabilities(face)
        }
        (method, [r, rg, p, n, cg, tail @ ..])
            if is(r, "resourceGroups")
                && is(p, "providers")
                && is(n, ns)
                && is(cg, "containerGroups") =>
        {
            let scope = Scope {
                base: call.base,
                subscription,
                resource_group: rg,
            };
            match (method, tail) {
                ("GET", []) => {
                    groups::list(face, call.base, call.path, subscription, Some(rg), skip)
                }
                ("PUT", [name]) => groups::put(face, &scope, name, call.body).await,
                ("GET", [name]) => groups::get(face, &scope, name),
                ("PATCH", [name]) => groups::patch(face, &scope, name, call.body),
                ("DELETE", [name]) => groups::delete(face, &scope, name),
                ("POST", [name, action])
                    if ["restart", "stop", "start"]
                        .contains(&action.to_ascii_lowercase().as_str()) =>
                {
                    groups::action(face, &scope, name, &action.to_ascii_lowercase())
                }
                ("GET" | "POST", [name, c, container, l])
                    if is(c, "containers") && is(l, "logs") =>
                {
                    containers::logs(face, &scope, name, container, query)
                }
                ("POST", [name, c, container, e])
                    if is(c, "containers") && (is(e, "exec") || is(e, "attach")) =>
                {
                    containers::socket(
                        face,
                        &scope,
                        name,
                        container,
                        is(e, "attach"),
                        call.body,
                        (call.host, call.tls),
                    )
                }
                _ => method_or_route(call),
            }
        }
        _ => method_or_route(call),
    }
}

fn method_or_route(call: &Call<'_>) -> Answer {
    AciError::new(404, "InvalidResourceType", format!("The resource type or operation of '{} {}' could not be found in the namespace 'Microsoft.ContainerInstance'.", call.method, call.path)).into()
}
