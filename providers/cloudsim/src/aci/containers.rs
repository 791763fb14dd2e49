//! The operations on one container of a group: its logs (`tail`, `timestamps`), exec (the
//! command is one program without arguments, as ACI runs it: `echo hi` names a program called
//! `echo hi`, which fails on the terminal) and attach,
//! both answered with a socket URI and its password (`exec`), and the location's usages and
//! capabilities.

use std::time::Duration;

use super::answer::Answer;
use super::error::AciError;
use super::exec::{EXEC_PREFIX, SessionKind};
use super::face::AciFace;
use super::groups::Scope;
use super::record::Record;
use aci::wire::ops::{Capability, CapabilityLimits, CapabilityList, Usage, UsageList, UsageName};
use aci::wire::{ContainerExecRequest, ContainerExecResponse, Logs, codes};

fn engine_error(e: crate::engine::EngineError, scope: &Scope<'_>, name: &str) -> Answer {
    AciError::engine(e, scope.resource_group, name).into()
}

/// `GET|POST …/containers/{c}/logs?tail=N&timestamps=true`.
pub fn logs(
    face: &AciFace,
    scope: &Scope<'_>,
    name: &str,
    container: &str,
    query: &[(String, String)],
) -> Answer {
    let get = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let tail = match get("tail").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return AciError::invalid_content(
                "The 'tail' query parameter must be a non-negative integer.",
            )
            .into();
        }
    };
    let timestamps = get("timestamps").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let id = Record::engine_id(scope.subscription, scope.resource_group, name);
    if face.stopped_map().contains_key(&id) {
        return Answer::json(200, &Logs::default());
    }
    let log = match face.engine().log(&id, container, false) {
        Ok(log) => log,
        Err(e) => return engine_error(e, scope, name),
    };
    // ACI keeps little of a terminated container's log: its last lines and bytes only.
    let ended = face
        .engine()
        .state()
        .get(&id)
        .and_then(|g| g.find_container(container))
        .is_some_and(|c| matches!(c.state, crate::engine::group::CState::Terminated { .. }));
    let limits = &face.config().terminated_log;
    let tail = match (ended, tail) {
        (true, Some(n)) if limits.lines > 0 => Some(n.min(limits.lines)),
        (true, None) if limits.lines > 0 => Some(limits.lines),
        (_, tail) => tail,
    };
    let mut content = String::new();
    for (at, line) in log.map(|l| l.select(None, tail)).unwrap_or_default() {
        if timestamps {
            content.push_str(&at.to_string());
            content.push(' ');
        }
        content.push_str(&line);
        content.push('\n');
    }
    if ended && limits.bytes > 0 && content.len() > limits.bytes {
        let mut cut = content.len() - limits.bytes;
        while !content.is_char_boundary(cut) {
            cut += 1;
        }
        content.drain(..cut);
    }
    Answer::json(200, &Logs { content })
}

/// `POST …/containers/{c}/exec` and `…/attach`; the host the client reached and whether over
/// TLS make the socket's URI.
pub fn socket(
    face: &AciFace,
    scope: &Scope<'_>,
    name: &str,
    container: &str,
    attach: bool,
    body: &[u8],
    (host, tls): (&str, bool),
) -> Answer {
    let kind = if attach {
        SessionKind::Attach
    } else {
        let request: ContainerExecRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return AciError::invalid_content(format!(
                    "The request content was invalid and could not be deserialized: '{e}'."
                ))
                .into();
            }
        };
        let program = request.command.unwrap_or_default();
        if program.trim().is_empty() {
            return AciError::bad_request(
                codes::INVALID_EXEC_COMMAND,
                "The exec command must not be empty.",
            )
            .into();
        }
        let size = request.terminal_size.unwrap_or_default();
        SessionKind::Exec {
            program,
            rows: size.rows,
            cols: size.cols,
        }
    };
    let id = Record::engine_id(scope.subscription, scope.resource_group, name);
    if face.stopped_map().contains_key(&id) {
        return AciError::new(
            409,
            codes::CONTAINER_GROUP_NOT_RUNNING,
            format!("The container group '{name}' is stopped."),
        )
        .into();
    }
    if !attach && let Err(e) = face.engine().exec_target(&id, container) {
        return engine_error(e, scope, name);
    }
    if attach && let Err(e) = face.engine().log(&id, container, false) {
        return engine_error(e, scope, name);
    }
    let ttl = Duration::from_millis(face.config().exec_ttl_ms.max(1));
    let (token, password) = face.exec.issue(&id, container, kind, ttl);
    let scheme = if tls { "wss" } else { "ws" };
    Answer::json(
        200,
        &ContainerExecResponse {
            web_socket_uri: format!("{scheme}://{host}{EXEC_PREFIX}{token}"),
            password,
        },
    )
}

/// `GET …/locations/{loc}/usages`.
pub fn usages(face: &AciFace, subscription: &str) -> Answer {
    let (count, cores) = super::groups::usage(face, subscription);
    let quotas = &face.config().quotas;
    let usage = |name: &str, localized: &str, current: i64, limit: u32| Usage {
        id: None,
        unit: "Count".into(),
        current_value: current,
        limit: i64::from(limit),
        name: UsageName {
            value: name.into(),
            localized_value: localized.into(),
        },
    };
    Answer::json(
        200,
        &UsageList {
            value: vec![
                usage(
                    "ContainerGroups",
                    "Container Groups",
                    count as i64,
                    quotas.container_groups,
                ),
                usage(
                    "StandardCores",
                    "Standard Cores",
                    cores.ceil() as i64,
                    quotas.standard_cores,
                ),
            ],
            next_link: None,
        },
    )
}

/// `GET …/locations/{loc}/capabilities`.
pub fn capabilities(face: &AciFace) -> Answer {
    let config = face.config();
    let one = |ip: &str| Capability {
        resource_type: "containerGroups".into(),
        os_type: aci::wire::os_type::LINUX.into(),
        location: config.location.clone(),
        ip_address_type: ip.into(),
        gpu: "None".into(),
        capabilities: CapabilityLimits {
            max_memory_in_gb: config.quotas.max_group_memory_gb,
            max_cpu: config.quotas.max_group_cpu,
            max_gpu_count: 0.0,
        },
    };
    Answer::json(
        200,
        &CapabilityList {
            value: vec![one("Public"), one("Private")],
            next_link: None,
        },
    )
}
