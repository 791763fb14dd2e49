//! Pod UID -> ContainerGroupId, learned from creates, lookups and listings. A listing
//! replaces only what was known before it began: a group created while its pages were being
//! read may be missing from them, and forgetting it would make the pod's next reconcile send
//! a second CreateContainerGroup (refused as IdempotentParameterMismatch once the pod's
//! service-account token has been re-issued).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct GroupIds {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ids: HashMap<String, Learned>,
    /// Bumped when a listing begins.
    epoch: u64,
}

#[derive(Debug)]
struct Learned {
    group_id: String,
    epoch: u64,
}

/// Where a listing began; hand it back to [`GroupIds::finish_listing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListingMark(u64);

impl GroupIds {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, uid: &str) -> Option<String> {
        self.lock().ids.get(uid).map(|l| l.group_id.clone())
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.lock().ids.contains_key(uid)
    }

    pub fn insert(&self, uid: &str, group_id: &str) {
        let mut state = self.lock();
        let epoch = state.epoch;
        state.ids.insert(
            uid.to_string(),
            Learned {
                group_id: group_id.to_string(),
                epoch,
            },
        );
    }

    pub fn remove(&self, uid: &str) {
        self.lock().ids.remove(uid);
    }

    pub fn begin_listing(&self) -> ListingMark {
        let mut state = self.lock();
        state.epoch += 1;
        ListingMark(state.epoch)
    }

    /// The listing that began at `mark` found exactly these groups (UID -> group id).
    pub fn finish_listing(&self, mark: ListingMark, listed: HashMap<String, String>) {
        let mut state = self.lock();
        state.ids.retain(|_, learned| learned.epoch >= mark.0);
        for (uid, group_id) in listed {
            state.ids.insert(
                uid,
                Learned {
                    group_id,
                    epoch: mark.0,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(u, g)| (u.to_string(), g.to_string()))
            .collect()
    }

    #[test]
    fn a_listing_forgets_only_what_it_could_have_seen() {
        let ids = GroupIds::default();
        ids.insert("old", "eci-old");
        ids.insert("gone", "eci-gone");
        let mark = ids.begin_listing();
        // Created while the pages were read, and not on them.
        ids.insert("new", "eci-new");
        ids.finish_listing(mark, listed(&[("old", "eci-old"), ("other", "eci-other")]));
        assert_eq!(ids.get("old").as_deref(), Some("eci-old"));
        assert_eq!(ids.get("other").as_deref(), Some("eci-other"));
        assert_eq!(ids.get("new").as_deref(), Some("eci-new"));
        assert!(!ids.contains("gone"));

        // The next listing that does not find it forgets it.
        let mark = ids.begin_listing();
        ids.finish_listing(mark, listed(&[("old", "eci-old")]));
        assert!(!ids.contains("new"));
        assert!(!ids.contains("other"));
    }

    #[test]
    fn overlapping_listings_keep_creates_made_during_either() {
        let ids = GroupIds::default();
        let first = ids.begin_listing();
        let second = ids.begin_listing();
        ids.insert("made", "eci-made");
        ids.finish_listing(second, listed(&[]));
        ids.finish_listing(first, listed(&[]));
        assert!(ids.contains("made"));
        ids.remove("made");
        assert_eq!(ids.get("made"), None);
    }
}
