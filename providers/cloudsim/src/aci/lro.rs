//! Asynchronous operations as ARM reports them: a PUT, DELETE, restart or start answers with
//! `Azure-AsyncOperation` naming `…/locations/{loc}/operations/{id}`, whose GET says
//! `InProgress`, `Succeeded` or `Failed` (with the error). The status is read from the engine
//! each time it is asked: a create is done once its containers started (or the group ended),
//! a delete once the group is gone, a restart or start once it runs again.

use std::collections::HashMap;
use std::sync::Mutex;

use aci::wire::ops::operation_status;
use aci::wire::{AsyncOperation, ErrorBody, codes};

use crate::engine::{Engine, Phase};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waits {
    /// The group of this engine id runs (or ended).
    Runs(String),
    /// The group of this engine id is gone.
    Gone(String),
}

#[derive(Clone, Debug)]
struct Operation {
    subscription: String,
    waits: Waits,
    started: jiff::Timestamp,
    ended: Option<(jiff::Timestamp, Option<ErrorBody>)>,
}

#[derive(Default)]
pub struct Operations {
    ops: Mutex<HashMap<String, Operation>>,
}

impl Operations {
    /// A new operation of `subscription`: its id.
    pub fn start(&self, subscription: &str, waits: Waits) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        // Old finished operations go after an hour.
        let now = jiff::Timestamp::now();
        ops.retain(|_, op| {
            op.ended
                .as_ref()
                .is_none_or(|(at, _)| now.duration_since(*at).as_secs() < 3600)
        });
        ops.insert(
            id.clone(),
            Operation {
                subscription: subscription.to_ascii_lowercase(),
                waits,
                started: now,
                ended: None,
            },
        );
        id
    }

    /// The status of operation `id` of `subscription`, `None` when there is no such one.
    pub fn status(&self, engine: &Engine, subscription: &str, id: &str) -> Option<AsyncOperation> {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let op = ops
            .get_mut(id)
            .filter(|op| op.subscription == subscription.to_ascii_lowercase())?;
        if op.ended.is_none() {
            let state = engine.state();
            let outcome = match &op.waits {
                Waits::Gone(group) => state.get(group).is_none().then_some(None),
                Waits::Runs(group) => match state.get(group).map(|g| g.status) {
                    None => Some(Some(ErrorBody {
                        code: codes::RESOURCE_NOT_FOUND.into(),
                        message: "The container group was deleted before it was provisioned.".into(),
                        ..Default::default()
                    })),
                    Some(Phase::ScheduleFailed) => Some(Some(ErrorBody {
                        code: codes::SERVICE_UNAVAILABLE.into(),
                        message: "The requested resource is not available in the location at this moment. Please retry with a different resource request or in another location.".into(),
                        ..Default::default()
                    })),
                    Some(Phase::Scheduling | Phase::Pending | Phase::Restarting) => None,
                    Some(_) => Some(None),
                },
            };
            drop(state);
            if let Some(error) = outcome {
                op.ended = Some((jiff::Timestamp::now(), error));
            }
        }
        let (status, end, error) = match &op.ended {
            None => (operation_status::IN_PROGRESS, None, None),
            Some((at, None)) => (operation_status::SUCCEEDED, Some(at.to_string()), None),
            Some((at, Some(e))) => (
                operation_status::FAILED,
                Some(at.to_string()),
                Some(e.clone()),
            ),
        };
        Some(AsyncOperation {
            id: None,
            name: Some(id.to_string()),
            status: status.into(),
            start_time: Some(op.started.to_string()),
            end_time: end,
            error,
        })
    }
}
