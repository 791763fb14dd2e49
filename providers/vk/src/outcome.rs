//! What one `vk doctor` check found: shared by the cluster-side and the cloud-side checks.

/// What one check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    /// Not broken, but worth a look (e.g. the node is not registered yet).
    Warn {
        found: String,
        fix: String,
    },
    Fail {
        found: String,
        fix: String,
    },
}
