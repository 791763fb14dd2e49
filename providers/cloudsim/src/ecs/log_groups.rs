//! The CloudWatch Logs groups and their streams: a task container's stream reads the
//! engine's log of that container and appears when the container starts (as the awslogs
//! driver creates it then); a stream made with CreateLogStream has a store of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use fargate::wire::error::codes;
use jiff::Timestamp;

use super::error::ApiError;
use crate::engine::logstore::LogStore;

pub(super) struct Stream {
    pub(super) created: i64,
    pub(super) store: Arc<LogStore>,
    /// A task container's stream is hidden until the container starts.
    pub(super) visible: bool,
}

pub(super) struct Group {
    pub(super) created: i64,
    pub(super) streams: BTreeMap<String, Stream>,
}

#[derive(Default)]
pub struct Logs {
    pub(super) groups: BTreeMap<String, Group>,
    /// (task id, container) -> (log group, stream) of the streams not yet visible.
    pending: std::collections::HashMap<(String, String), (String, String)>,
}

pub(super) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError::new(
        codes::RESOURCE_NOT_FOUND,
        format!("The specified log {what} does not exist."),
    )
}

pub(super) fn check_name(field: &str, name: &str, max: usize, group: bool) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && if group {
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b))
        } else {
            !name.contains(':') && !name.contains('*')
        };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field}: {name:?} is not a valid name (1 to {max} characters{}).",
            if group {
                " of [.-_/#A-Za-z0-9]"
            } else {
                ", no ':' or '*'"
            }
        )))
    }
}

impl Logs {
    pub fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    pub fn ensure_group(&mut self, name: &str, now: Timestamp) {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                created: ms(now),
                streams: BTreeMap::new(),
            });
    }

    /// A task container's stream, reading `store`; it appears when the container starts.
    pub fn attach(
        &mut self,
        (task, container): (&str, &str),
        (group, stream): (&str, &str),
        store: Arc<LogStore>,
        now: Timestamp,
    ) {
        self.ensure_group(group, now);
        if let Some(g) = self.groups.get_mut(group) {
            g.streams.insert(
                stream.to_string(),
                Stream {
                    created: ms(now),
                    store,
                    visible: false,
                },
            );
            self.pending.insert(
                (task.to_string(), container.to_string()),
                (group.to_string(), stream.to_string()),
            );
        }
    }

    /// Container `container` of task `task` started: its stream appears.
    pub fn container_started(&mut self, task: &str, container: &str, now: Timestamp) {
        let Some((group, stream)) = self
            .pending
            .remove(&(task.to_string(), container.to_string()))
        else {
            return;
        };
        if let Some(s) = self
            .groups
            .get_mut(&group)
            .and_then(|g| g.streams.get_mut(&stream))
        {
            s.visible = true;
            s.created = ms(now);
        }
    }

    pub(super) fn stream(&self, group: &str, stream: &str) -> Result<&Stream, ApiError> {
        self.groups
            .get(group)
            .ok_or_else(|| not_found("group"))?
            .streams
            .get(stream)
            .filter(|s| s.visible)
            .ok_or_else(|| not_found("stream"))
    }
}
