//! What an ECI create asked, kept with the group as its face record: `render`, `placement`
//! and the listing filters read it back.

use std::sync::LazyLock;

use super::create_extras::GroupExtras;
use crate::engine::group::Group;
use eci::wire::request::CreateContainerGroup;

/// What ECI was asked, as the group's face record.
#[derive(Debug, Default)]
pub struct Record {
    pub request: CreateContainerGroup,
    /// What the shared decoder leaves out (`create_extras`).
    pub extras: GroupExtras,
    /// The request's own parameters as they came (no signature, key or nonce): what the
    /// state file keeps to make the group again after a restart (`persist`).
    pub params: Vec<(String, String)>,
}

/// The ECI record of a group (an empty one for a group some other face created).
pub fn record(g: &Group) -> &Record {
    static NONE: LazyLock<Record> = LazyLock::new(Record::default);
    g.face::<Record>().unwrap_or(&NONE)
}
