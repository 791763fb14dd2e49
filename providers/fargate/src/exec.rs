//! Exec into a Fargate task: ECS `ExecuteCommand` opens a Session Manager session on the
//! task's container (`interactive: true`, the only mode ECS has, `command: "/bin/sh"`); vk
//! connects to its data channel ([`crate::ssm::session`]) and drives `/bin/sh` there with the
//! shell protocol of [`vk_core::provider::terminal_exec`], which gives kubectl what ECS exec
//! does not: the command's exit code, the end of stdin and stderr apart from stdout.
//!
//! Facts and limits:
//! - ECS exec is a terminal session only: one program (`/bin/sh`) on a pseudo-terminal, no
//!   stdin end and no separate stderr. The session reports no exit code of its own that
//!   vk could trust (the message format has an `ExitCode` payload type; the interactive
//!   sessions ECS opens end with `channel_closed` whatever the command's status), so the
//!   exit code comes from the shell protocol: the command's own status (128+n for a signal).
//!   An `ExitCode` payload, if an agent sends one, is logged and not used.
//! - stderr without a TTY: apart from stdout, per line (see `terminal_exec`); with a TTY
//!   stdout and stderr are the one terminal, as on a kubelet.
//! - stdin with its EOF, binary stdin and stdout: yes.
//! - terminal size: sent at once and on every resize (`Size` messages), at any time.
//! - the image needs `/bin/sh`, `stty`, `base64`, `mkfifo` and `mktemp` (busybox has them);
//!   without them the exec fails with a message saying so.
//! - the task must run with `enableExecuteCommand` and its task role must allow
//!   `ssmmessages:*Channel`; a cluster whose exec configuration asks for KMS encryption of
//!   sessions is refused with a clear error (vk does not do the KMS handshake); sessions are
//!   not resumed after the WebSocket drops (the exec fails; kubectl can run it again);
//!   ECS's own limits apply (no exec into a task that is not RUNNING, sessions idle out
//!   after 20 minutes by default).
//! - the data channel's WebSocket upgrade is not SigV4-signed: the session's token
//!   authenticates it in the opening frame, as with AWS's plugin before it signed the upgrade
//!   (it does since 1.2.764; a release in between took the signing back out).
//! - a background job started by the command outlives the exec, as on a kubelet.
//! - the protocol: binary agent messages with sequence numbers, acknowledgements, SHA-256
//!   digests (a message whose digest does not match is dropped unacknowledged, so the agent
//!   sends it again), in-order delivery with duplicates dropped, resends of what the agent
//!   did not acknowledge, and at most 256 messages in flight before stdin waits.
//!
//! Tested against the simulator's ECS face (`src/tests_exec.rs`, with real processes), and
//! the face against AWS's own `session-manager-plugin` (`e2e/tests/ecs_exec_conformance.rs`).

use std::time::Duration;

use vk_core::provider::http::Tls;
use vk_core::provider::terminal_exec;
use vk_core::provider::{ExecIo, ExecOutcome};

use crate::ssm::session;
use crate::wire::ecs_task::Session;

/// What an image lacks when the protocol cannot start.
pub const NEEDS: &str = "exec on Fargate runs the command through /bin/sh with stty, base64, mkfifo and mktemp (ECS exec is a terminal session, without exit codes or stdin end of its own); the container's image lacks them";

/// Run `argv` in `dir` (the container's working directory) over the Session Manager session
/// that `ExecuteCommand` of `/bin/sh` opened; the command's exit code, or why there is none.
/// `ready_timeout` bounds opening the session and the wait for the shell's first answer.
pub async fn run(
    session: &Session,
    tls: &Tls,
    argv: &[String],
    dir: Option<&str>,
    io: ExecIo,
    ready_timeout: Duration,
) -> ExecOutcome {
    let (Some(url), Some(token)) = (
        session.stream_url.as_deref(),
        session.token_value.as_deref(),
    ) else {
        return ExecOutcome::Error(
            "ECS answered ExecuteCommand without a session's streamUrl and tokenValue".into(),
        );
    };
    let (input, output) = match session::open(url, token, tls.config.clone(), ready_timeout).await {
        Ok(pair) => pair,
        Err(e) => return ExecOutcome::Error(format!("opening the exec session: {e}")),
    };
    let ends = output.end_reason_handle();
    let outcome = terminal_exec::run(input, output, argv, dir, io, ready_timeout, NEEDS).await;
    match outcome {
        ExecOutcome::Error(e) => match ends.get() {
            Some(reason) if !e.contains(&reason) => ExecOutcome::Error(format!("{e} ({reason})")),
            _ => ExecOutcome::Error(e),
        },
        done => done,
    }
}
