//! The image caches' records (`image_cache` has the actions): each cache's status worked out
//! from the clock, its events, and the table the state file keeps (`persist`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::render;
use crate::engine::catalog::normalize;
use eci::wire::api::{self, Tag, image_cache_status};

/// What a cache is doing: its creation or an update, worked out from the clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub update: bool,
    /// Preparing until then (an update is Updating throughout).
    pub creating_at: Timestamp,
    pub done_at: Timestamp,
    /// Why it fails at `done_at`; `None`: Ready then.
    pub failure: Option<String>,
    /// MB pulled while Creating.
    pub pull_mb: f64,
}

/// One image cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cache {
    pub seq: u64,
    pub id: String,
    pub name: String,
    pub images: Vec<String>,
    pub size_gib: u32,
    pub retention_days: Option<u32>,
    pub tags: Vec<Tag>,
    pub snapshot_id: String,
    pub container_group_id: String,
    pub created: Timestamp,
    pub last_matched: Option<Timestamp>,
    /// The status once no job runs (`Ready`, `Failed`, `UpdateFailed`); during a job, the
    /// job's (`Preparing`, `Creating`, `Updating`).
    pub status: String,
    pub job: Option<Job>,
    pub events: Vec<api::Event>,
}

impl Cache {
    pub(super) fn expires(&self) -> Option<Timestamp> {
        let days = self.retention_days?;
        self.created
            .checked_add(SignedDuration::from_hours(24 * i64::from(days)))
            .ok()
    }

    pub(super) fn event(&mut self, kind: &str, reason: &str, message: String, at: Timestamp) {
        let n = self.events.len();
        self.events.push(api::Event {
            count: 1,
            kind: kind.into(),
            name: format!("{}.{n}", self.id),
            reason: reason.into(),
            message,
            first_timestamp: render::time(at),
            last_timestamp: render::time(at),
        });
    }

    /// Bring the status up to `now`.
    pub(super) fn advance(&mut self, now: Timestamp) {
        let Some(job) = self.job.clone() else {
            return;
        };
        if !job.update && self.status == image_cache_status::PREPARING && now >= job.creating_at {
            self.status = image_cache_status::CREATING.into();
            self.event(
                "Normal",
                "Creating",
                format!(
                    "Temporary container group {} pulls the images ({:.1} MB) into the cache disk",
                    self.container_group_id, job.pull_mb
                ),
                job.creating_at,
            );
        }
        if now < job.done_at {
            return;
        }
        self.job = None;
        match (&job.failure, job.update) {
            (None, _) => {
                self.status = image_cache_status::READY.into();
                let what = if job.update { "updated" } else { "created" };
                self.event(
                    "Normal",
                    "Ready",
                    format!(
                        "Image cache {} is {what}: snapshot {}",
                        self.id, self.snapshot_id
                    ),
                    job.done_at,
                );
            }
            (Some(why), update) => {
                self.status = if update {
                    image_cache_status::UPDATE_FAILED
                } else {
                    image_cache_status::FAILED
                }
                .into();
                self.event("Warning", "Failed", why.clone(), job.done_at);
            }
        }
    }

    /// `"0%"` .. `"100%"` at `now`.
    pub(super) fn progress(&self, now: Timestamp) -> String {
        let pct = match &self.job {
            None if self.status == image_cache_status::READY => 100,
            None => 0,
            Some(job) if now < job.creating_at => 0,
            Some(job) => {
                let total = job.creating_at.duration_until(job.done_at).as_secs_f64();
                let done = job.creating_at.duration_until(now).as_secs_f64();
                if total <= 0.0 {
                    99
                } else {
                    ((done / total) * 100.0).clamp(0.0, 99.0) as u32
                }
            }
        };
        format!("{pct}%")
    }

    pub(super) fn render(&self, region: &str, now: Timestamp) -> api::ImageCache {
        api::ImageCache {
            image_cache_id: self.id.clone(),
            image_cache_name: self.name.clone(),
            region_id: region.to_string(),
            snapshot_id: self.snapshot_id.clone(),
            images: self.images.clone(),
            status: self.status.clone(),
            progress: self.progress(now),
            container_group_id: self.container_group_id.clone(),
            image_cache_size: self.size_gib,
            retention_days: self.retention_days.unwrap_or(0),
            creation_time: render::time(self.created),
            expire_date_time: self.expires().map(render::time).unwrap_or_default(),
            last_matched_time: self.last_matched.map(render::time).unwrap_or_default(),
            events: self.events.clone(),
            tags: self.tags.clone(),
        }
    }

    /// How many of `images` (normalised) the cache holds.
    pub(super) fn covers(&self, images: &[String]) -> usize {
        let mine: Vec<String> = self.images.iter().map(|i| normalize(i)).collect();
        images.iter().filter(|i| mine.contains(i)).count()
    }
}

/// A ClientToken's first create.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Token {
    pub fingerprint: String,
    pub id: String,
    pub container_group_id: String,
    pub at: Timestamp,
}

/// The caches, as the state file keeps them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheTable {
    pub(super) caches: BTreeMap<u64, Cache>,
    pub(super) next_seq: u64,
    pub(super) tokens: HashMap<String, Token>,
}

/// The face's image caches.
#[derive(Default)]
pub struct ImageCaches {
    table: Mutex<CacheTable>,
}

impl ImageCaches {
    pub(super) fn lock(&self) -> MutexGuard<'_, CacheTable> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The caches for the state file, brought up to `now`.
    pub fn snapshot(&self, now: Timestamp) -> CacheTable {
        let mut table = self.lock();
        for c in table.caches.values_mut() {
            c.advance(now);
        }
        table.clone()
    }

    /// Put back the caches of the state file.
    pub fn restore(&self, table: CacheTable) {
        *self.lock() = table;
    }
}
