//! `GET /containerLogs/{namespace}/{pod}/{container}`: the kubelet's log endpoint, what
//! `kubectl logs` reaches through the API server. The provider's stream is never held back:
//! what it has ready goes out at once, so `follow` shows lines as they are written; items that
//! are ready together (a provider yielding one line per item) share one body frame.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;

use super::KubeletServer;
use super::response::{KubeletBody, TEXT_PLAIN, failure, with_body};
use crate::provider::{ErrorClass, LogOptions, LogStream, PodRef, ProviderError};

/// A query parameter the kubelet would reject; answered with 400.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogQueryError {
    #[error("{param}: Invalid value: {value:?}: {reason}")]
    Invalid {
        param: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("at most one of `sinceTime` or `sinceSeconds` may be specified")]
    SinceConflict,
}

fn invalid(param: &'static str, value: &str, reason: &'static str) -> LogQueryError {
    LogQueryError::Invalid {
        param,
        value: value.to_string(),
        reason,
    }
}

/// `v1.PodLogOptions` from the query string, validated like the API server validates them.
/// Unknown parameters are ignored and the first of repeated ones wins, as in the kubelet.
pub(crate) fn parse_log_options(
    query: Option<&str>,
    now: Timestamp,
) -> Result<LogOptions, LogQueryError> {
    let mut opts = LogOptions::default();
    let (mut since_seconds, mut since_time, mut tail) = (None, None, None);
    let mut seen = std::collections::HashSet::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if !seen.insert(key.clone()) {
            continue;
        }
        match key.as_ref() {
            "follow" => opts.follow = parse_bool("follow", &value)?,
            "previous" => opts.previous = parse_bool("previous", &value)?,
            "timestamps" => opts.timestamps = parse_bool("timestamps", &value)?,
            "tailLines" => opts.tail_lines = Some(parse_count("tailLines", &value, 0)?),
            "limitBytes" => opts.limit_bytes = Some(parse_count("limitBytes", &value, 1)?),
            "sinceSeconds" => since_seconds = Some(parse_count("sinceSeconds", &value, 1)?),
            "sinceTime" => {
                let time = value
                    .parse::<Timestamp>()
                    .map_err(|_| invalid("sinceTime", &value, "must be an RFC 3339 timestamp"))?;
                since_time = Some(time);
            }
            // The kubelet's legacy spelling: `tail=all` means no tail.
            "tail" if value != "all" => tail = Some(parse_count("tail", &value, 0)?),
            _ => {}
        }
    }
    if tail.is_some() {
        opts.tail_lines = tail;
    }
    opts.since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => return Err(LogQueryError::SinceConflict),
        (Some(seconds), None) => {
            let seconds = i64::try_from(seconds)
                .ok()
                .and_then(|s| now.checked_sub(SignedDuration::from_secs(s)).ok())
                .ok_or_else(|| invalid("sinceSeconds", &seconds.to_string(), "too large"))?;
            Some(seconds)
        }
        (None, time) => time,
    };
    Ok(opts)
}

/// Go's `strconv.ParseBool`, which the kubelet's query decoding accepts.
fn parse_bool(param: &'static str, value: &str) -> Result<bool, LogQueryError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(param, value, "must be true or false")),
    }
}

fn parse_count(param: &'static str, value: &str, min: u64) -> Result<u64, LogQueryError> {
    let reason = if min == 0 {
        "must be greater than or equal to 0"
    } else {
        "must be greater than 0"
    };
    match value.parse::<i64>() {
        Ok(n) => u64::try_from(n)
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| invalid(param, value, reason)),
        Err(_) => Err(invalid(param, value, "must be an integer")),
    }
}

impl KubeletServer {
    pub(crate) async fn container_logs(
        &self,
        namespace: &str,
        pod_name: &str,
        container: &str,
        query: Option<&str>,
    ) -> Response<KubeletBody> {
        let opts = match parse_log_options(query, Timestamp::now()) {
            Ok(opts) => opts,
            Err(err) => return failure(StatusCode::BAD_REQUEST, err.to_string()),
        };
        let Some(pod) = self
            .pods
            .get(&ObjectRef::<Pod>::new(pod_name).within(namespace))
        else {
            return failure(
                StatusCode::NOT_FOUND,
                format!("pod {pod_name:?} does not exist"),
            );
        };
        if !has_container(&pod, container) {
            return failure(
                StatusCode::NOT_FOUND,
                format!("container {container:?} not found in pod {pod_name:?}"),
            );
        }
        let pod_ref = PodRef {
            namespace: namespace.to_string(),
            name: pod_name.to_string(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        };
        let stream = match self.provider.logs(&pod_ref, container, &opts).await {
            Ok(stream) => stream,
            Err(err) => return log_failure(err, &opts, pod_name, container),
        };
        let follow = opts.follow;
        tracing::debug!(pod = %pod_ref, container, follow, "streaming container logs");
        let chunks = Coalesce::new(limit_bytes(stream, opts.limit_bytes), FRAME_BYTES);
        let frames = chunks.map(move |chunk| match chunk {
            Ok(bytes) => Ok(Frame::data(bytes)),
            Err(err) => {
                tracing::warn!(pod = %pod_ref, %err, "container log stream failed");
                Err(err.into())
            }
        });
        with_body(
            StatusCode::OK,
            TEXT_PLAIN,
            StreamBody::new(frames).boxed_unsync(),
        )
    }
}

fn log_failure(
    err: ProviderError,
    opts: &LogOptions,
    pod_name: &str,
    container: &str,
) -> Response<KubeletBody> {
    let message = err.message().to_owned();
    match err.class() {
        // The kubelet answers a missing previous instance as a bad request, not a missing pod.
        ErrorClass::NotFound if opts.previous => failure(
            StatusCode::BAD_REQUEST,
            format!("previous terminated container {container:?} in pod {pod_name:?} not found"),
        ),
        ErrorClass::NotFound => failure(StatusCode::NOT_FOUND, message),
        ErrorClass::Unsupported | ErrorClass::InvalidSpec => {
            failure(StatusCode::BAD_REQUEST, message)
        }
        ErrorClass::Transient => failure(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

/// Any container of the spec, init and ephemeral ones included, as the kubelet accepts.
pub(super) fn has_container(pod: &Pod, name: &str) -> bool {
    let Some(spec) = &pod.spec else {
        return false;
    };
    spec.containers.iter().any(|c| c.name == name)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
}

/// Cut the stream after `limit` bytes whatever the provider does with `limitBytes`. The limit
/// is checked before polling again, so a `follow` stream ends (and the provider's stream is
/// dropped) as soon as the limit is reached rather than at the next line.
pub(crate) fn limit_bytes(stream: LogStream, limit: Option<u64>) -> LogStream {
    let Some(limit) = limit else {
        return stream
            .filter(|chunk| std::future::ready(!is_empty(chunk)))
            .boxed();
    };
    futures::stream::unfold((stream, limit), |(mut stream, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        loop {
            match stream.next().await? {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => {
                    let take =
                        usize::try_from(remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                    let left = remaining - take as u64;
                    return Some((Ok(bytes.slice(..take)), (stream, left)));
                }
                Err(err) => return Some((Err(err), (stream, 0))),
            }
        }
    })
    .boxed()
}

/// Coalesced frames stop growing past this size: large enough that per-frame costs (a chunk
/// header, a TLS record, an HTTP/2 DATA frame) vanish, small enough to bound the copy.
const FRAME_BYTES: usize = 32 * 1024;

/// Joins the items the inner stream has ready *now* into one, up to about `max` bytes (the last
/// item joined may overshoot it; an item is never split). As soon as the inner stream is
/// pending, what was gathered goes out: nothing already written waits for more. An error ends
/// the gathering; the bytes before it go out first, then the error.
pub(crate) struct Coalesce {
    inner: Option<LogStream>,
    max: usize,
    /// An error met while gathering, returned on the next poll.
    error: Option<ProviderError>,
}

impl Coalesce {
    pub(crate) fn new(inner: LogStream, max: usize) -> Self {
        Self {
            inner: Some(inner),
            max,
            error: None,
        }
    }
}

impl Stream for Coalesce {
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(err) = this.error.take() {
            return Poll::Ready(Some(Err(err)));
        }
        // One item is passed on as it is; only a second one ready with it costs a copy.
        let mut first: Option<Bytes> = None;
        let mut joined: Option<BytesMut> = None;
        let gathered = |first: &Option<Bytes>, joined: &Option<BytesMut>| {
            joined
                .as_ref()
                .map_or(first.as_ref().map_or(0, Bytes::len), BytesMut::len)
        };
        while let Some(inner) = this.inner.as_mut() {
            if gathered(&first, &joined) >= this.max {
                break;
            }
            match inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) if bytes.is_empty() => {}
                Poll::Ready(Some(Ok(bytes))) => match (&mut joined, first.take()) {
                    (Some(buf), _) => buf.extend_from_slice(&bytes),
                    (None, None) => first = Some(bytes),
                    (None, Some(head)) => {
                        let mut buf =
                            BytesMut::with_capacity(this.max.max(head.len() + bytes.len()));
                        buf.extend_from_slice(&head);
                        buf.extend_from_slice(&bytes);
                        joined = Some(buf);
                    }
                },
                Poll::Ready(Some(Err(err))) => {
                    if gathered(&first, &joined) == 0 {
                        return Poll::Ready(Some(Err(err)));
                    }
                    this.error = Some(err);
                    break;
                }
                // Dropping the inner stream at its end releases what it holds at once.
                Poll::Ready(None) => this.inner = None,
                Poll::Pending if gathered(&first, &joined) == 0 => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        match (joined, first) {
            (Some(buf), _) => Poll::Ready(Some(Ok(buf.freeze()))),
            (None, Some(bytes)) => Poll::Ready(Some(Ok(bytes))),
            (None, None) => Poll::Ready(None),
        }
    }
}

/// An empty data frame would read as the end of a chunked body to some clients.
fn is_empty(chunk: &Result<Bytes, ProviderError>) -> bool {
    chunk.as_ref().is_ok_and(Bytes::is_empty)
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn parse(query: &str) -> Result<LogOptions, LogQueryError> {
        parse_log_options(Some(query), "2024-05-01T12:00:00Z".parse().unwrap())
    }

    #[test]
    fn parses_every_option() {
        let opts = parse(
            "tailLines=10&follow=true&timestamps=1&previous=false&limitBytes=500&sinceSeconds=60",
        )
        .unwrap();
        assert_eq!(
            opts,
            LogOptions {
                tail_lines: Some(10),
                limit_bytes: Some(500),
                timestamps: true,
                follow: true,
                previous: false,
                since: Some("2024-05-01T11:59:00Z".parse().unwrap()),
            }
        );
        assert_eq!(parse("").unwrap(), LogOptions::default());
    }

    #[test]
    fn since_time_is_rfc3339_with_offsets_decoded() {
        let opts = parse("sinceTime=2024-05-01T10%3A00%3A00%2B02%3A00").unwrap();
        assert_eq!(opts.since, Some("2024-05-01T08:00:00Z".parse().unwrap()));
        assert!(matches!(
            parse("sinceTime=yesterday"),
            Err(LogQueryError::Invalid {
                param: "sinceTime",
                ..
            })
        ));
    }

    #[test]
    fn rejects_what_the_api_server_rejects() {
        assert_eq!(
            parse("sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z"),
            Err(LogQueryError::SinceConflict)
        );
        for bad in [
            "limitBytes=0",
            "tailLines=-1",
            "sinceSeconds=0",
            "tailLines=ten",
            "follow=yes",
            "limitBytes=99999999999999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn legacy_tail_and_first_value_wins() {
        assert_eq!(parse("tail=3").unwrap().tail_lines, Some(3));
        assert_eq!(parse("tailLines=3&tail=all").unwrap().tail_lines, Some(3));
        assert_eq!(
            parse("tailLines=1&tailLines=2").unwrap().tail_lines,
            Some(1)
        );
    }

    #[tokio::test]
    async fn limit_cuts_mid_chunk_and_skips_empty_chunks() {
        let chunks =
            ["", "hello ", "", "world\n", "more\n"].map(|s| Ok(Bytes::from_static(s.as_bytes())));
        let cut: Vec<_> = limit_bytes(futures::stream::iter(chunks).boxed(), Some(8))
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(cut, vec![Bytes::from("hello "), Bytes::from("wo")]);
    }

    fn lines(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("{i:>98}\n"))).collect()
    }

    fn ready(items: Vec<Bytes>) -> LogStream {
        futures::stream::iter(items.into_iter().map(Ok)).boxed()
    }

    async fn frames_of(stream: Coalesce) -> Vec<Bytes> {
        stream.map(|c| c.unwrap()).collect().await
    }

    #[tokio::test]
    async fn ready_lines_share_frames_with_identical_bytes() {
        let items = lines(1000);
        let frames = frames_of(Coalesce::new(ready(items.clone()), 32 * 1024)).await;
        // 100 000 bytes in frames of 32 KiB (+ at most one line): four frames, not a thousand.
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(|f| f.len() <= 32 * 1024 + 100));
        assert_eq!(frames.concat(), items.concat());
    }

    #[tokio::test]
    async fn large_items_pass_whole_and_empty_ones_vanish() {
        let big = Bytes::from(vec![b'x'; 40_000]);
        let items = vec![
            Bytes::new(),
            big.clone(),
            Bytes::new(),
            Bytes::from("tail\n"),
        ];
        let frames = frames_of(Coalesce::new(ready(items), 32 * 1024)).await;
        assert_eq!(frames, vec![big, Bytes::from("tail\n")]);
    }

    /// The next frame if the stream has one ready now: `Some(None)` is the end, `None` pending.
    fn poll_now(frames: &mut Coalesce) -> Option<Option<Bytes>> {
        frames.next().now_or_never().map(|f| f.map(Result::unwrap))
    }

    #[test]
    fn a_ready_line_is_not_held_back_for_more() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, ProviderError>>();
        let mut frames = Coalesce::new(rx.boxed(), 32 * 1024);
        assert_eq!(poll_now(&mut frames), None);
        // Two lines ready together: one frame, at once, though the stream stays open.
        tx.unbounded_send(Ok(Bytes::from("one\n"))).unwrap();
        tx.unbounded_send(Ok(Bytes::from("two\n"))).unwrap();
        assert_eq!(poll_now(&mut frames), Some(Some(Bytes::from("one\ntwo\n"))));
        assert_eq!(poll_now(&mut frames), None);
        // A single line written later goes out alone, without waiting for a second one.
        tx.unbounded_send(Ok(Bytes::from("three\n"))).unwrap();
        assert_eq!(poll_now(&mut frames), Some(Some(Bytes::from("three\n"))));
        assert_eq!(poll_now(&mut frames), None);
        drop(tx);
        assert_eq!(poll_now(&mut frames), Some(None));
    }

    #[test]
    fn bytes_before_an_error_go_out_first() {
        let items = [
            Ok(Bytes::from("ok\n")),
            Err(ProviderError::Transient("gone".into())),
        ];
        let mut frames = Coalesce::new(futures::stream::iter(items).boxed(), 1024);
        let first = frames.next().now_or_never().unwrap().unwrap();
        assert_eq!(first.unwrap(), "ok\n");
        let second = frames.next().now_or_never().unwrap().unwrap();
        assert!(matches!(second, Err(ProviderError::Transient(_))));
    }

    #[tokio::test]
    async fn limit_bytes_is_exact_on_coalesced_lines() {
        let items = lines(10);
        let limited = limit_bytes(ready(items.clone()), Some(250));
        let frames = frames_of(Coalesce::new(limited, 32 * 1024)).await;
        assert_eq!(frames, vec![items.concat()[..250].to_vec()]);
    }

    #[test]
    fn a_failure_with_a_kept_cause_is_answered_by_its_class() {
        let cause = || std::io::Error::other("the cloud said 404");
        let opts = parse("").expect("options");
        let gone = ProviderError::NotFound("no such container".into()).caused_by(cause());
        assert_eq!(
            log_failure(gone, &opts, "p", "c").status(),
            StatusCode::NOT_FOUND
        );
        let busy = ProviderError::transient_from(cause());
        assert_eq!(
            log_failure(busy, &opts, "p", "c").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let bad = ProviderError::invalid("Bad", "no").caused_by(cause());
        assert_eq!(
            log_failure(bad, &opts, "p", "c").status(),
            StatusCode::BAD_REQUEST
        );
    }
}
