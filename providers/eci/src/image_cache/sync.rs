//! One `ImageCache` object against the cloud, without the API server: what to call, the status
//! to write, the events to record and when to look again. The controller ([`super::controller`])
//! reads the object, resolves its pull secrets, runs [`apply`] or [`cleanup`] and writes back.
//!
//! - No cache yet: `CreateImageCache` with the object's uid as `ClientToken` (a retry after a
//!   lost answer or a lost status write gets the same cache back, never a second one) and tags
//!   naming the object.
//! - A cache: `DescribeImageCaches` by id; the status mirrors it. While it is not done
//!   (`Preparing`, `Creating`, `Updating`) it is described again soon, less often the longer it
//!   takes ([`poll_after`]); a done cache is looked at every [`SETTLED_RECHECK`].
//! - A new spec (generation) on a `Ready` or `UpdateFailed` cache: `UpdateImageCache`.
//! - A cache the cloud no longer has: phase `Failed`, reason `NotFound`.
//! - Deleting: `DeleteImageCache` (gone already is fine); with no id in the status (its write
//!   was lost), the caches tagged with the object's uid.

use std::time::Duration;

use crate::client::EciClient;
use crate::error::EciError;
use crate::image_cache::cloud;
use crate::image_cache::crd::{ImageCache, ImageCacheEvent, ImageCacheSpec, ImageCacheStatus};
use crate::wire::api::{ImageCache as CloudCache, Tag, image_cache_status as st};
use crate::wire::request::ImageRegistryCredential;
use crate::wire::request_image_cache::{
    CreateImageCache, DEFAULT_IMAGE_CACHE_SIZE_GIB, MAX_IMAGE_CACHE_SIZE_GIB, MAX_IMAGES,
    MAX_RETENTION_DAYS, MIN_IMAGE_CACHE_SIZE_GIB, UpdateImageCache,
};

/// Tags on every cache vk makes for an object.
pub const TAG_OBJECT: &str = "vk.imagecache/name";
pub const TAG_UID: &str = "vk.imagecache/uid";

/// A done cache is described again this often (a cache deleted or expired in the cloud shows).
pub const SETTLED_RECHECK: Duration = Duration::from_secs(300);

/// Event reasons on the ImageCache object.
pub mod reasons {
    pub const CREATING: &str = "CreatingImageCache";
    pub const READY: &str = "ImageCacheReady";
    pub const FAILED: &str = "ImageCacheFailed";
    pub const UPDATING: &str = "UpdatingImageCache";
    pub const DELETED: &str = "ImageCacheDeleted";
    pub const NOT_FOUND: &str = "NotFound";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const FAILED_CREATE: &str = "FailedCreate";
}

/// Where the cache's temporary group runs.
#[derive(Clone, Debug, Default)]
pub struct CachePlacement {
    pub security_group_id: Option<String>,
    pub vswitch_id: Option<String>,
}

/// An event for the ImageCache object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Note {
    fn normal(reason: &str, message: String) -> Self {
        Self {
            warning: false,
            reason: reason.into(),
            message,
        }
    }

    fn warning(reason: &str, message: String) -> Self {
        Self {
            warning: true,
            reason: reason.into(),
            message,
        }
    }
}

/// What one pass decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub status: ImageCacheStatus,
    pub notes: Vec<Note>,
    /// Look again after this long.
    pub requeue: Duration,
}

/// How soon to describe a cache that is not done, by how long it has been at it: every 2 s for
/// the first half minute, every 10 s up to 5 minutes, then every 30 s.
pub fn poll_after(elapsed: Duration) -> Duration {
    if elapsed < Duration::from_secs(30) {
        Duration::from_secs(2)
    } else if elapsed < Duration::from_secs(300) {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    }
}

fn done(phase: &str) -> bool {
    matches!(phase, st::READY | st::FAILED | st::UPDATE_FAILED)
}

/// ECI's `ImageCacheName` from the object's name (a DNS subdomain: dots become hyphens).
pub fn cache_name(object: &str) -> String {
    let name: String = object
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(128)
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.len() < 2 {
        format!("vk-{name}")
    } else {
        name
    }
}

/// What is wrong with a spec, in the CRD's terms (the CRD's schema checks the same; this is
/// for objects made before it, or without it).
pub fn check_spec(spec: &ImageCacheSpec) -> Result<(), String> {
    if spec.images.is_empty() {
        return Err("spec.images is empty: name at least one image".into());
    }
    if spec.images.len() > MAX_IMAGES {
        return Err(format!(
            "spec.images has {} images; at most {MAX_IMAGES}",
            spec.images.len()
        ));
    }
    if let Some(i) = spec.images.iter().position(|i| i.trim().is_empty()) {
        return Err(format!("spec.images[{i}] is empty"));
    }
    if let Some(size) = spec.image_cache_size
        && !(MIN_IMAGE_CACHE_SIZE_GIB..=MAX_IMAGE_CACHE_SIZE_GIB).contains(&size)
    {
        return Err(format!(
            "spec.imageCacheSize {size} is not from {MIN_IMAGE_CACHE_SIZE_GIB} to {MAX_IMAGE_CACHE_SIZE_GIB} GiB"
        ));
    }
    if let Some(days) = spec.retention_days
        && !(1..=MAX_RETENTION_DAYS).contains(&days)
    {
        return Err(format!(
            "spec.retentionDays {days} is not from 1 to {MAX_RETENTION_DAYS}"
        ));
    }
    for s in &spec.image_pull_secrets {
        if pull_secret_ref(s).is_none() {
            return Err(format!(
                "spec.imagePullSecrets: {s:?} is not namespace:name"
            ));
        }
    }
    Ok(())
}

/// `namespace:name`.
pub fn pull_secret_ref(s: &str) -> Option<(&str, &str)> {
    let (ns, name) = s.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

fn tags(object: &ImageCache) -> Vec<Tag> {
    vec![
        Tag {
            key: TAG_OBJECT.into(),
            value: object.name().to_string(),
        },
        Tag {
            key: TAG_UID.into(),
            value: object.uid().to_string(),
        },
    ]
}

fn same_images(spec: &ImageCacheSpec, cache: &CloudCache) -> bool {
    let mut a: Vec<&str> = spec.images.iter().map(|s| s.trim()).collect();
    let mut b: Vec<&str> = cache.images.iter().map(String::as_str).collect();
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    a == b
}

/// The spec differs from what the cloud holds.
fn differs(spec: &ImageCacheSpec, cache: &CloudCache) -> bool {
    let size = spec
        .image_cache_size
        .unwrap_or(DEFAULT_IMAGE_CACHE_SIZE_GIB);
    !same_images(spec, cache)
        || (cache.image_cache_size != 0 && size != cache.image_cache_size)
        || spec.retention_days.unwrap_or(0) != cache.retention_days
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// The status mirroring `cache`, over the previous one.
fn mirror(previous: &ImageCacheStatus, cache: &CloudCache) -> ImageCacheStatus {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut status = previous.clone();
    status.image_cache_id = Some(cache.image_cache_id.clone());
    status.phase = Some(cache.status.clone());
    status.progress = opt(&cache.progress);
    status.start_time = opt(&cache.creation_time).or(status.start_time);
    status.expire_date_time = opt(&cache.expire_date_time);
    status.last_matched_time = opt(&cache.last_matched_time);
    status.image_cache_size = (cache.image_cache_size > 0).then_some(cache.image_cache_size);
    let failed = matches!(cache.status.as_str(), st::FAILED | st::UPDATE_FAILED);
    let last_warning = cache
        .events
        .iter()
        .rev()
        .find(|e| e.kind == "Warning")
        .map(|e| (e.reason.clone(), e.message.clone()));
    (status.reason, status.message) = match (failed, last_warning) {
        (true, Some((reason, message))) => (Some(reason), Some(message)),
        (true, None) => (
            Some(cache.status.clone()),
            Some(format!(
                "the cloud reports image cache {} as {}",
                cache.image_cache_id, cache.status
            )),
        ),
        (false, _) => (None, None),
    };
    if cache.status == st::READY && previous.phase.as_deref() != Some(st::READY) {
        status.completion_time = Some(now());
    }
    if previous.phase.as_deref() != Some(cache.status.as_str()) {
        status.last_updated_time = Some(now());
    }
    status.events = cache
        .events
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(|e| ImageCacheEvent {
            type_: e.kind.clone(),
            reason: e.reason.clone(),
            message: e.message.clone(),
            count: e.count,
            first_timestamp: e.first_timestamp.clone(),
            last_timestamp: e.last_timestamp.clone(),
        })
        .collect();
    status
}

/// The notes of a phase change.
fn transition(previous: Option<&str>, status: &ImageCacheStatus) -> Vec<Note> {
    let phase = status.phase.as_deref().unwrap_or_default();
    if previous == Some(phase) {
        return Vec::new();
    }
    let id = status.image_cache_id.as_deref().unwrap_or_default();
    match phase {
        st::READY => vec![Note::normal(
            reasons::READY,
            format!("image cache {id} is ready"),
        )],
        st::FAILED | st::UPDATE_FAILED => vec![Note::warning(
            reasons::FAILED,
            format!(
                "image cache {id} is {phase}: {}",
                status.message.as_deref().unwrap_or("no reason given")
            ),
        )],
        _ => Vec::new(),
    }
}

fn elapsed_since(start: Option<&str>) -> Duration {
    start
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| {
            let secs = jiff::Timestamp::now().as_second() - t.as_second();
            Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        })
        .unwrap_or_default()
}

/// Whether an error is the cloud's refusal of the request itself (it will be refused again):
/// the object is marked Failed with the code, instead of being retried at once.
fn refused(e: &EciError) -> bool {
    matches!(e, EciError::Api { .. }) && !e.is_retryable()
}

/// Bring the cloud in line with the object; `credentials` are its pull secrets, resolved.
/// A retryable error (throttling, 5xx, the network) is returned for the controller to retry.
pub async fn apply(
    client: &EciClient,
    placement: &CachePlacement,
    object: &ImageCache,
    credentials: Vec<ImageRegistryCredential>,
) -> Result<Step, EciError> {
    let previous = object.status.clone().unwrap_or_default();
    let generation = object.metadata.generation;
    if let Err(why) = check_spec(&object.spec) {
        let mut status = previous.clone();
        status.phase = Some(st::FAILED.into());
        status.reason = Some(reasons::INVALID_SPEC.into());
        status.message = Some(why.clone());
        status.observed_generation = generation;
        let notes = if previous.reason.as_deref() == Some(reasons::INVALID_SPEC)
            && previous.observed_generation == generation
        {
            Vec::new()
        } else {
            vec![Note::warning(reasons::INVALID_SPEC, why)]
        };
        return Ok(Step {
            status,
            notes,
            requeue: SETTLED_RECHECK,
        });
    }

    let Some(id) = previous.image_cache_id.clone().filter(|id| !id.is_empty()) else {
        return create(client, placement, object, credentials, previous).await;
    };

    let Some(cache) = cloud::by_id(client, &id).await? else {
        let mut status = previous.clone();
        let notes = if status.reason.as_deref() == Some(reasons::NOT_FOUND) {
            Vec::new()
        } else {
            vec![Note::warning(
                reasons::NOT_FOUND,
                format!("image cache {id} is not in the cloud any more (deleted or expired)"),
            )]
        };
        status.phase = Some(st::FAILED.into());
        status.reason = Some(reasons::NOT_FOUND.into());
        status.message = Some(format!(
            "image cache {id} is not in the cloud any more (deleted or expired); delete this object, or recreate it to make a new one"
        ));
        status.progress = None;
        return Ok(Step {
            status,
            notes,
            requeue: SETTLED_RECHECK,
        });
    };

    let mut status = mirror(&previous, &cache);
    let mut notes = transition(previous.phase.as_deref(), &status);
    let phase = cache.status.clone();
    let new_spec = generation.is_some() && previous.observed_generation != generation;
    if new_spec {
        if !differs(&object.spec, &cache) {
            status.observed_generation = generation;
        } else if matches!(phase.as_str(), st::READY | st::UPDATE_FAILED) {
            let request = UpdateImageCache {
                region_id: String::new(),
                image_cache_id: id.clone(),
                image_cache_name: None,
                images: object
                    .spec
                    .images
                    .iter()
                    .map(|i| i.trim().to_string())
                    .collect(),
                image_cache_size: Some(
                    object
                        .spec
                        .image_cache_size
                        .unwrap_or(DEFAULT_IMAGE_CACHE_SIZE_GIB),
                ),
                retention_days: object.spec.retention_days,
                image_registry_credentials: credentials,
                client_token: None,
            };
            match cloud::update(client, &request).await {
                Ok(()) => {
                    status.phase = Some(st::UPDATING.into());
                    status.observed_generation = generation;
                    status.last_updated_time = Some(now());
                    notes.push(Note::normal(
                        reasons::UPDATING,
                        format!(
                            "updating image cache {id} to images {}",
                            object.spec.images.join(", ")
                        ),
                    ));
                    return Ok(Step {
                        status,
                        notes,
                        requeue: poll_after(Duration::ZERO),
                    });
                }
                // Busy after all (it started something): look again soon.
                Err(e) if e.code() == Some("IncorrectStatus") => {}
                Err(e) if refused(&e) => {
                    status.observed_generation = generation;
                    status.reason = Some(e.code().unwrap_or("UpdateRefused").to_string());
                    status.message = Some(e.to_string());
                    notes.push(Note::warning(
                        reasons::FAILED,
                        format!("updating image cache {id} was refused: {e}"),
                    ));
                }
                Err(e) => return Err(e),
            }
        } else if phase == st::FAILED {
            // A failed cache cannot be updated; the new spec waits for a new object.
            status.observed_generation = generation;
        }
        // Creating or Updating: the update is sent once the cache is done.
    }
    let requeue = if done(&status.phase.clone().unwrap_or_default())
        && !(new_spec && status.observed_generation != generation)
    {
        SETTLED_RECHECK
    } else {
        poll_after(elapsed_since(
            status
                .last_updated_time
                .as_deref()
                .or(status.start_time.as_deref()),
        ))
    };
    Ok(Step {
        status,
        notes,
        requeue,
    })
}

async fn create(
    client: &EciClient,
    placement: &CachePlacement,
    object: &ImageCache,
    credentials: Vec<ImageRegistryCredential>,
    previous: ImageCacheStatus,
) -> Result<Step, EciError> {
    let request = CreateImageCache {
        region_id: String::new(),
        image_cache_name: cache_name(object.name()),
        images: object
            .spec
            .images
            .iter()
            .map(|i| i.trim().to_string())
            .collect(),
        security_group_id: placement.security_group_id.clone(),
        vswitch_id: placement.vswitch_id.clone(),
        image_cache_size: object.spec.image_cache_size,
        retention_days: object.spec.retention_days,
        image_registry_credentials: credentials,
        client_token: (!object.uid().is_empty()).then(|| {
            object
                .uid()
                .chars()
                .filter(char::is_ascii)
                .take(64)
                .collect()
        }),
        tags: tags(object),
    };
    let mut status = previous.clone();
    match cloud::create(client, &request).await {
        Ok(id) => {
            status.image_cache_id = Some(id.clone());
            status.phase = Some(st::PREPARING.into());
            status.reason = None;
            status.message = None;
            status.start_time = Some(now());
            status.last_updated_time = status.start_time.clone();
            status.observed_generation = object.metadata.generation;
            Ok(Step {
                status,
                notes: vec![Note::normal(
                    reasons::CREATING,
                    format!(
                        "creating image cache {id} of {}",
                        object.spec.images.join(", ")
                    ),
                )],
                requeue: poll_after(Duration::ZERO),
            })
        }
        Err(e) if refused(&e) => {
            let code = e.code().unwrap_or(reasons::FAILED_CREATE).to_string();
            let repeated = status.reason.as_deref() == Some(code.as_str())
                && status.observed_generation == object.metadata.generation;
            status.phase = Some(st::FAILED.into());
            status.reason = Some(code);
            status.message = Some(e.to_string());
            status.observed_generation = object.metadata.generation;
            Ok(Step {
                status,
                notes: if repeated {
                    Vec::new()
                } else {
                    vec![Note::warning(
                        reasons::FAILED_CREATE,
                        format!("the cloud refused to create the image cache: {e}"),
                    )]
                },
                requeue: SETTLED_RECHECK,
            })
        }
        Err(e) => Err(e),
    }
}

/// The object is being deleted: delete its cache. Without an id in the status, the caches
/// tagged with its uid (a create whose status write was lost).
pub async fn cleanup(client: &EciClient, object: &ImageCache) -> Result<Vec<Note>, EciError> {
    let mut ids: Vec<String> = object
        .status
        .as_ref()
        .and_then(|s| s.image_cache_id.clone())
        .filter(|id| !id.is_empty())
        .into_iter()
        .collect();
    if ids.is_empty() && !object.uid().is_empty() {
        ids = cloud::by_tag(
            client,
            Tag {
                key: TAG_UID.into(),
                value: object.uid().to_string(),
            },
        )
        .await?
        .into_iter()
        .map(|c| c.image_cache_id)
        .collect();
    }
    let mut notes = Vec::new();
    for id in ids {
        cloud::delete(client, &id).await?;
        notes.push(Note::normal(
            reasons::DELETED,
            format!("image cache {id} deleted"),
        ));
    }
    Ok(notes)
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
