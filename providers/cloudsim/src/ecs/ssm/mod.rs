//! The Session Manager side of ECS exec: `ExecuteCommand` files a session ([`sessions`]) and
//! answers its `streamUrl` on this face's own server (`ws://HOST/v1/data-channel/<id>?role=
//! publish_subscribe`, as AWS's `ssmmessages` endpoint has it) with a token; [`agent`] plays
//! the SSM agent on that WebSocket, with the codec and sequencing of
//! [`fargate::ssm`]: the token checked once in the client's opening text frame, the
//! handshake (SessionType `InteractiveCommands`), acknowledgements, in-order input, resends
//! of unacknowledged output, digests verified (a message whose digest does not match is
//! refused: not acknowledged, not used), sizes passed to the engine's exec, and
//! `channel_closed` when the command ends. The command (split on whitespace, no shell, as
//! the agent runs it) runs through the engine's exec on a terminal. A session waits
//! [`sessions::DEFAULT_TTL`] for its client, is taken by the first connection, and ends
//! when its command ends, the client sends the TerminateSession flag, or the task stops.
//! The WebSocket upgrade's SigV4 headers (which newer plugins add) are not checked: the
//! token authenticates the channel.

pub mod agent;
pub mod sessions;
#[cfg(test)]
mod tests;

use fargate::wire::ecs_task::{ExecuteCommandRequest, ExecuteCommandResponse, Session, Task};
use fargate::wire::error::codes;

use super::error::ApiError;
use super::face::Face;

/// The path every data channel URL starts with.
pub const PATH_PREFIX: &str = "/v1/data-channel/";

/// The message ECS gives when the agent cannot be reached.
const NOT_CONNECTED: &str = "The execute command failed due to an internal error. Try again later.";

/// Open a session on `task` (already found, with execute command enabled): the answer, its
/// stream URL on `base` (`ws://HOST`).
pub fn open(
    face: &Face,
    req: &ExecuteCommandRequest,
    task_id: &str,
    task: &Task,
    base: &str,
) -> Result<ExecuteCommandResponse, ApiError> {
    if !req.interactive {
        return Err(ApiError::invalid(
            "Interactive is the only mode supported currently.",
        ));
    }
    let argv: Vec<String> = req.command.split_whitespace().map(str::to_string).collect();
    if argv.is_empty() {
        return Err(ApiError::invalid("command: the command must not be empty."));
    }
    let container = match req.container.as_deref() {
        Some(name) => task
            .containers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                ApiError::invalid(format!("The container {name} does not exist in the task."))
            })?,
        None if task.containers.len() == 1 => &task.containers[0],
        None => {
            return Err(ApiError::invalid(
                "The task has more than one container: a container name is required.",
            ));
        }
    };
    let running = |s: &Option<String>| s.as_deref() == Some("RUNNING");
    if !running(&task.last_status) || !running(&container.last_status) {
        return Err(ApiError::new(codes::TARGET_NOT_CONNECTED, NOT_CONNECTED));
    }
    let (session_id, token) = face.ssm.issue(task_id, &container.name, argv);
    Ok(ExecuteCommandResponse {
        cluster_arn: task.cluster_arn.clone(),
        container_arn: container.container_arn.clone(),
        container_name: Some(container.name.clone()),
        interactive: true,
        session: Some(Session {
            stream_url: Some(format!(
                "{base}{PATH_PREFIX}{session_id}?role=publish_subscribe&cell-number=1"
            )),
            token_value: Some(token),
            session_id: Some(session_id),
        }),
        task_arn: Some(task.task_arn.clone()),
    })
}

/// `ws://HOST` from a request's `Host` header.
pub fn base(headers: &hyper::HeaderMap) -> String {
    let host = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("ws://{host}")
}
