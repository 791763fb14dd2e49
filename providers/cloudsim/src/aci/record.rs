//! The face's record of a group, kept opaque by the engine (`NewGroup::face`): where it
//! lives in ARM (subscription, resource group, name, location), its tags (PATCH changes
//! them), the request as it came (secure values included; `render` leaves them out), and
//! whether it was stopped.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aci::wire::ContainerGroup;

pub struct Record {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: Mutex<BTreeMap<String, String>>,
    /// The PUT body as it came.
    pub spec: ContainerGroup,
    pub cpu: f64,
    pub memory_gb: f64,
    pub created: jiff::Timestamp,
}

impl Record {
    /// The engine's id of a group: its ARM resource id, lowercased (ARM names are
    /// case-insensitive).
    pub fn engine_id(subscription: &str, resource_group: &str, name: &str) -> String {
        aci::wire::paths::group(subscription, resource_group, name).to_ascii_lowercase()
    }

    pub fn id(&self) -> String {
        aci::wire::paths::group(&self.subscription, &self.resource_group, &self.name)
    }

    pub fn engine_key(&self) -> String {
        Self::engine_id(&self.subscription, &self.resource_group, &self.name)
    }

    pub fn tags(&self) -> BTreeMap<String, String> {
        self.tags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_tags(&self, tags: BTreeMap<String, String>) {
        *self
            .tags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = tags;
    }

    /// In resource group `rg` of `subscription` (`rg` None: anywhere in it).
    pub fn is_in(&self, subscription: &str, rg: Option<&str>) -> bool {
        self.subscription.eq_ignore_ascii_case(subscription)
            && rg.is_none_or(|rg| self.resource_group.eq_ignore_ascii_case(rg))
    }
}
