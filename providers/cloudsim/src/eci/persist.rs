//! The ECI face's state file (`state_file` in the config, `vk-cloud serve --state-file`): the
//! engine's groups and tokens (`engine::persist`), the image caches (`image_cache`), each group's create request as its
//! parameters came (without signature, key or nonce), and the face's count of the groups it
//! made. A restarted simulator reads it back and answers the same groups under the same ids,
//! their lifecycles going on; as a cloud does after a restart of its API servers. It is
//! written after every call that changes groups (before the answer) and twice a second for
//! the lifecycles' own changes, so a simulator killed at any moment loses no acknowledged
//! create or delete.
//!
//! `GET /admin/creates` answers every group the face made (not a ClientToken's repeat), with
//! its tags, when it was made and whether it still exists: how a test counts the groups made
//! per pod.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::create_extras::GroupExtras;
use super::record::record;
use crate::engine::persist::{self, Saved, SavedGroup};
use crate::engine::{Engine, NewGroup};
use eci::wire::params::Params;
use eci::wire::request::CreateContainerGroup;

/// Parameters that authenticate a call rather than describe the group: not kept.
const NOT_KEPT: &[&str] = &[
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "SignatureType",
    "SecurityToken",
    "BearerToken",
    "Timestamp",
];

/// A create's parameters as kept with its group.
pub(super) fn kept_params(p: &Params) -> Vec<(String, String)> {
    p.iter()
        .filter(|(k, _)| !NOT_KEPT.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One group the face made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Created {
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub created: Timestamp,
}

/// `GET /admin/creates`: what the face made, and which still exist.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CreatesReport {
    pub creates: Vec<CreatedNow>,
    /// Creates and deletes the quota refused (`Throttling.User`), injected faults apart.
    #[serde(default)]
    pub refused_by_quota: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedNow {
    #[serde(flatten)]
    pub created: Created,
    pub exists: bool,
}

/// The state file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    engine: Saved,
    creates: Vec<Created>,
    /// The image caches (`image_cache`); absent in older files.
    #[serde(default)]
    image_caches: super::cache_table::CacheTable,
}

/// The face's own state besides the engine's.
#[derive(Default)]
pub(super) struct Ledger {
    pub state_file: Option<PathBuf>,
    creates: Mutex<Vec<Created>>,
    /// One save at a time, so an older snapshot never replaces a newer one.
    saving: Mutex<()>,
}

impl Ledger {
    pub fn new(state_file: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            state_file,
            ..Default::default()
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A create request, what the shared decoder leaves out of it, and its kept parameters.
pub(super) type SavedRequest = (CreateContainerGroup, GroupExtras, Vec<(String, String)>);

/// A saved group's request again, from its kept parameters: the request, what the shared
/// decoder leaves out, and the parameters to keep again.
pub(super) fn saved_request(g: &SavedGroup) -> Result<SavedRequest, String> {
    let pairs: Vec<(String, String)> =
        serde_json::from_value(g.face.clone()).map_err(|e| format!("its request: {e}"))?;
    let mut params = Params::new();
    for (k, v) in &pairs {
        params.push(k.clone(), v.clone());
    }
    let req = CreateContainerGroup::decode(&params).map_err(|e| e.to_string())?;
    let extras = GroupExtras::decode(&params).map_err(|e| e.to_string())?;
    Ok((req, extras, pairs))
}

impl Ledger {
    /// Count a group the face made.
    pub fn count(&self, engine: &Engine, id: &str, name: &str, tags: BTreeMap<String, String>) {
        lock(&self.creates).push(Created {
            id: id.to_string(),
            name: name.to_string(),
            tags,
            created: engine.now(),
        });
    }

    /// Every group made, and whether it still exists.
    pub fn report(&self, engine: &Engine, refused_by_quota: u64) -> CreatesReport {
        let made = lock(&self.creates).clone();
        let state = engine.state();
        CreatesReport {
            refused_by_quota,
            creates: made
                .into_iter()
                .map(|created| CreatedNow {
                    exists: state.get(&created.id).is_some(),
                    created,
                })
                .collect(),
        }
    }

    /// Write the state file, when there is one; a failure is logged (the API goes on).
    pub fn save(&self, engine: &Engine, caches: &super::cache_table::ImageCaches) {
        let Some(path) = &self.state_file else {
            return;
        };
        let _one = lock(&self.saving);
        let file = StateFile {
            engine: engine.save(|g| {
                serde_json::to_value(&record(g).params).unwrap_or(serde_json::Value::Null)
            }),
            creates: lock(&self.creates).clone(),
            image_caches: caches.snapshot(engine.now()),
        };
        if let Err(e) = persist::write_json(path, &file) {
            tracing::warn!(file = %path.display(), error = %e, "could not write the state file");
        }
    }

    /// Read the state file back, when there is one: the groups, tokens and counts it holds
    /// (`rebuild` makes a saved group's request again); how many groups were put back. Groups
    /// that cannot be are logged and left out; a file that cannot be read is an error.
    pub fn restore(
        &self,
        engine: &Engine,
        caches: &super::cache_table::ImageCaches,
        rebuild: impl Fn(&SavedGroup) -> Result<NewGroup, String>,
    ) -> Result<usize, String> {
        let Some(path) = &self.state_file else {
            return Ok(0);
        };
        let Some(file) = persist::read_json::<StateFile>(path)? else {
            return Ok(0);
        };
        let groups = file.engine.groups.len();
        *lock(&self.creates) = file.creates;
        caches.restore(file.image_caches);
        let skipped = engine.restore(file.engine, rebuild);
        for why in &skipped {
            tracing::warn!(file = %path.display(), "not restored: {why}");
        }
        Ok(groups - skipped.len())
    }
}

/// `GET /admin/creates`: the status and body to answer with.
pub(super) fn admin_creates(method: &str, report: impl FnOnce() -> CreatesReport) -> (u16, String) {
    match method {
        "GET" => (200, serde_json::to_string(&report()).unwrap_or_default()),
        _ => (405, r#"{"error":"GET"}"#.into()),
    }
}
