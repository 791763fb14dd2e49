//! The mock cloud's memory across vk restarts: the spec of every instance and how many times
//! each pod was created, in one JSON file written atomically on every create and delete.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vk_core::provider::ResolvedPod;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Persisted {
    /// By pod key (the UID).
    pub instances: BTreeMap<String, ResolvedPod>,
    /// Successful creates per pod key; a resumed instance is not counted again.
    pub creates: BTreeMap<String, u64>,
    /// Pod IPs per pod key: a resumed instance keeps its address.
    #[serde(default)]
    pub ips: BTreeMap<String, String>,
}

impl Persisted {
    /// A missing or unreadable file is an empty cloud (with a warning for the latter).
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable mock state file");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    pub fn save(&self, path: &Path) {
        let tmp = path.with_extension("tmp");
        let result = serde_json::to_vec(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "writing the mock state file failed");
        }
    }
}
