//! Backends behind the `Provider` trait of vk-core.
//!
//! - [`mock`]: an in-process provider that simulates instances with timers; it needs no cloud
//!   account, so the whole node/pod machinery can be exercised in tests and e2e runs.

pub mod mock;
