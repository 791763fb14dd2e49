//! How this module takes a `std` mutex: every critical section here is short and never awaits.

use std::sync::{Mutex, MutexGuard};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another reconcile panicked; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
