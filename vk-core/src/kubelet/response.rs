//! Response bodies and the `metav1.Status` every failure carries, so that `kubectl` and the API
//! server's node proxy show a reason and a message instead of an opaque code.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Serialize;

use super::KubeletError;

/// The body of every kubelet API response. Not `Sync`: a provider's log stream need not be.
pub type KubeletBody = UnsyncBoxBody<Bytes, KubeletError>;

pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const APPLICATION_JSON: &str = "application/json";

pub(crate) fn full(bytes: impl Into<Bytes>) -> KubeletBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn with_body(
    code: StatusCode,
    content_type: &'static str,
    body: KubeletBody,
) -> Response<KubeletBody> {
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn text(content_type: &'static str, body: impl Into<Bytes>) -> Response<KubeletBody> {
    with_body(StatusCode::OK, content_type, full(body))
}

pub(crate) fn json<T: Serialize>(value: &T) -> Response<KubeletBody> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_body(StatusCode::OK, APPLICATION_JSON, full(bytes)),
        Err(err) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the response: {err}"),
        ),
    }
}

/// A `metav1.Status` failure with the reason the API server would give for `code`.
/// The 405 answer, unless `method` is one of `allowed`.
pub(crate) fn method_not_allowed(
    method: &hyper::Method,
    allowed: &[hyper::Method],
) -> Option<Response<KubeletBody>> {
    (!allowed.contains(method)).then(|| {
        failure(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("the server does not allow method {method} on the requested resource"),
        )
    })
}

pub(crate) fn failure(code: StatusCode, message: impl Into<String>) -> Response<KubeletBody> {
    let reason = match code {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        _ => "InternalError",
    };
    let status = Status {
        code: Some(i32::from(code.as_u16())),
        message: Some(message.into()),
        reason: Some(reason.to_string()),
        status: Some("Failure".to_string()),
        ..Status::default()
    };
    // A Status of plain strings always encodes; the fallback only keeps this path panic-free.
    let body = serde_json::to_vec(&status).unwrap_or_else(|_| reason.as_bytes().to_vec());
    with_body(code, APPLICATION_JSON, full(body))
}
