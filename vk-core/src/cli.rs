//! What the `vk` and `vk-cloud` binaries share: logging to stderr, stopping on SIGTERM or
//! SIGINT, and turning the outcome into the process's exit status.

use std::process::ExitCode;

/// Libraries that log what goes over the wire at trace level: WebSocket frames with their
/// payload (exec stdin, stdout: tokens, secret env values), HTTP/2 and HTTP/1 internals, TLS
/// handshakes, kube's response texts. They are capped at debug whatever `RUST_LOG` says.
const PAYLOAD_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio_rustls",
    "reqwest",
    "tower_http",
    "kube_client",
    // SigV4 signing traces the request it signs, body included (an ECS RunTask carries the
    // pod's env).
    "aws_sigv4",
];

/// The env var that lifts the cap (unsafe: secrets then reach the log).
pub const LOG_PAYLOADS_VAR: &str = "VK_LOG_PAYLOADS";

/// The per-target cap on [`PAYLOAD_TARGETS`], all else let through (`RUST_LOG` decides).
fn payload_cap() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(PAYLOAD_TARGETS.iter().map(|t| (*t, LevelFilter::DEBUG)))
}

fn payloads_opted_in() -> bool {
    std::env::var(LOG_PAYLOADS_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Logs to stderr, filtered by `RUST_LOG` (`info` without it), in colour on a terminal. The
/// wire-level libraries never log above debug (their trace lines carry payloads) unless
/// `VK_LOG_PAYLOADS=1`; a separate filter, so no `RUST_LOG` directive can lift it.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let opted_in = payloads_opted_in();
    let cap = (!opted_in).then(payload_cap);
    // Both filters global, not per layer: a span or event either one turns away is never
    // built (per-layer filters make the registry keep every span and look each one up on
    // every poll of a future instrumented with it).
    tracing_subscriber::registry()
        .with(cap)
        .with(env)
        .with(fmt)
        .init();
    if opted_in {
        tracing::warn!(
            "{LOG_PAYLOADS_VAR} is set: wire payloads (exec streams, tokens, secret values) may be logged"
        );
    } else {
        // Says, to whoever asked for trace, why the wire libraries stay quiet.
        tracing::trace!(
            capped = ?PAYLOAD_TARGETS,
            "wire-level libraries log at debug at most ({LOG_PAYLOADS_VAR}=1 lifts it, unsafe)"
        );
    }
}

/// Resolves on the first SIGTERM or SIGINT (on Ctrl-C alone where the handlers cannot be set).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Success, or the error on stderr (`PROGRAM: error: ...`, with its causes when the error's
/// alternate form prints them, as `anyhow`'s does) and failure.
pub fn exit_status<E: std::fmt::Display>(program: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::payload_cap;

    #[test]
    fn wire_libraries_are_capped_at_debug_and_the_rest_is_left_to_rust_log() {
        let cap = payload_cap();
        for target in [
            "tungstenite::protocol",
            "tungstenite::protocol::frame",
            "tokio_tungstenite::compat",
            "h2::codec::framed_read",
            "hyper::proto::h1::io",
            "hyper_util::client::legacy::pool",
            "rustls::client::hs",
            "kube_client::client",
            "aws_sigv4::http_request::sign",
        ] {
            assert!(
                !cap.would_enable(target, &Level::TRACE),
                "{target} at trace"
            );
            assert!(cap.would_enable(target, &Level::DEBUG), "{target} at debug");
        }
        for target in [
            "vk_core::pods",
            "eci::client",
            "cloudsim",
            "mock",
            "vk_cloud",
            "vk",
            "certs",
        ] {
            assert!(cap.would_enable(target, &Level::TRACE), "{target} at trace");
        }
    }
}
