//! ECI's image caches: `CreateImageCache`, `DescribeImageCaches`, `UpdateImageCache`,
//! `DeleteImageCache` (parameters decoded and checked by `eci::wire::request_image_cache`),
//! and the cache a `CreateContainerGroup` starts from (`ImageSnapshotId`,
//! `AutoMatchImageCache`, `AutoCreateImageCache`).
//!
//! A cache goes Preparing (its temporary group is placed and attached) -> Creating (its
//! images are pulled, then the disk's snapshot is taken) -> Ready; or Failed, with a Warning
//! event saying why, when an image is not in the catalog or the images, unpacked, do not fit
//! `ImageCacheSize`. An update goes Updating -> Ready or UpdateFailed. The times follow the
//! engine's latency model (`engine::latency`): in `realistic`, placement + network attach,
//! then the pull of the images' distinct layers and `snapshot_ms`; in `instant`, a few hundred
//! ms (`instant_preparing_ms`, `instant_creating_ms`) so clients still see Creating before
//! Ready. Every status is worked out from the clock when the caches are looked at (no task
//! runs), which also removes the caches whose `RetentionDays` have passed.
//!
//! Not modelled: the temporary group is an id only (it is not listed by
//! `DescribeContainerGroups`); registry credentials are accepted and not used (the catalog
//! needs none); `StandardCopyCount`/`FlashCopyCount` and EIP/ACR parameters are ignored.
//!
//! Figures: ECI's API reference gives `ImageCacheSize` 20 to 32768 GiB (default 20) and
//! `RetentionDays` 1 to 65536 (see `eci::wire::request_image_cache`). No per-account quota
//! for image caches was found in ECI's published documentation; the default of
//! `DEFAULT_QUOTA` (`config`) is the simulator's choice (configurable: `image_cache.quota`). The temporary
//! group is 2 vCPU / 4 GiB, as
//! <https://www.alibabacloud.com/help/en/elastic-container-instance/latest/overview-of-the-image-cache-feature>
//! says (not billed here).

use std::sync::MutexGuard;

use jiff::{SignedDuration, Timestamp};
use rand::RngExt as _;

use super::cache_table::{Cache, CacheTable, Job, Token};
use super::error::ApiError;
use super::face::Face;
use crate::engine::CacheUse;
use crate::engine::catalog::normalize;
use crate::engine::latency::LatencyModel;
use eci::wire::api::{
    CreateImageCacheResponse, DescribeImageCachesResponse, Tag, errors, image_cache_status,
};
use eci::wire::request::CreateContainerGroup;
use eci::wire::request_image_cache::{
    CreateImageCache, DEFAULT_IMAGE_CACHE_SIZE_GIB, DescribeImageCaches, MAX_DESCRIBE_LIMIT,
    UpdateImageCache,
};

fn random(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}{tail}")
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        errors::IMAGE_CACHE_NOT_FOUND,
        format!("The specified ImageCacheId {id:?} does not exist."),
    )
}

fn after(t: Timestamp, ms: u64) -> Timestamp {
    t.checked_add(SignedDuration::from_millis(
        i64::try_from(ms).unwrap_or(i64::MAX),
    ))
    .unwrap_or(t)
}

/// What making a cache of `images` takes: (job, Preparing's length) from `now`.
struct Made {
    creating_at: Timestamp,
    done_at: Timestamp,
    failure: Option<String>,
    pull_mb: f64,
}

impl Face {
    fn caches_now(&self) -> (MutexGuard<'_, CacheTable>, Timestamp) {
        let now = self.engine().now();
        let mut table = self.image_caches().lock();
        table
            .caches
            .retain(|_, c| c.expires().is_none_or(|at| at > now));
        for c in table.caches.values_mut() {
            c.advance(now);
        }
        let ttl = SignedDuration::from_secs(
            i64::try_from(self.config().client_token_ttl_secs).unwrap_or(i64::MAX),
        );
        table
            .tokens
            .retain(|_, t| t.at.checked_add(ttl).is_ok_and(|end| end > now));
        (table, now)
    }

    /// The timeline of pulling `images` into a cache of `size_gib` from `now`.
    fn make(&self, images: &[String], size_gib: u32, now: Timestamp) -> Made {
        let engine = self.engine().config();
        let cfg = &self.config().image_cache;
        let r = &engine.realistic;
        let realistic = engine.latency_model == LatencyModel::Realistic;
        let preparing = if realistic {
            r.placement_ms + r.eni_attach_ms
        } else {
            cfg.instant_preparing_ms
        };
        let creating_at = after(now, preparing);
        let creating = |pull_ms: u64| {
            if realistic {
                pull_ms + r.snapshot_ms
            } else {
                cfg.instant_creating_ms
            }
        };
        match r.plan(&engine.catalog, images, &[]) {
            Err(e) => Made {
                creating_at,
                done_at: after(
                    creating_at,
                    if realistic {
                        r.per_image_ms
                    } else {
                        cfg.instant_creating_ms
                    },
                ),
                failure: Some(e.to_string()),
                pull_mb: 0.0,
            },
            Ok(plan) => {
                let pull_mb = plan.pulled_mb();
                let disk_gib = pull_mb * cfg.unpacked_ratio * 1e6 / f64::from(1u32 << 30);
                if disk_gib > f64::from(size_gib) {
                    // The disk fills while the images are pulled: no snapshot.
                    let pulled = if realistic {
                        plan.pull_ms()
                    } else {
                        creating(0)
                    };
                    return Made {
                        creating_at,
                        done_at: after(creating_at, pulled),
                        failure: Some(format!(
                            "The images need {disk_gib:.1} GiB unpacked ({pull_mb:.1} MB compressed), more than the image cache's ImageCacheSize of {size_gib} GiB."
                        )),
                        pull_mb,
                    };
                }
                Made {
                    creating_at,
                    done_at: after(creating_at, creating(plan.pull_ms())),
                    failure: None,
                    pull_mb,
                }
            }
        }
    }

    /// A new cache in `table` (quota checked); its id and temporary group.
    #[allow(clippy::too_many_arguments)]
    fn insert_cache(
        &self,
        table: &mut CacheTable,
        now: Timestamp,
        name: String,
        images: Vec<String>,
        size_gib: u32,
        retention_days: Option<u32>,
        tags: Vec<Tag>,
    ) -> Result<(String, String), ApiError> {
        let quota = self.config().image_cache.quota;
        if table.caches.len() >= quota as usize {
            return Err(ApiError::new(
                errors::IMAGE_CACHE_QUOTA_EXCEEDED,
                format!("The account holds {quota} image caches in the region, its quota."),
            ));
        }
        let made = self.make(&images, size_gib, now);
        let seq = table.next_seq;
        table.next_seq += 1;
        let mut cache = Cache {
            seq,
            id: random("imc-"),
            name,
            images,
            size_gib,
            retention_days,
            tags,
            snapshot_id: random("s-"),
            container_group_id: random("eci-"),
            created: now,
            last_matched: None,
            status: image_cache_status::PREPARING.into(),
            job: Some(Job {
                update: false,
                creating_at: made.creating_at,
                done_at: made.done_at,
                failure: made.failure,
                pull_mb: made.pull_mb,
            }),
            events: Vec::new(),
        };
        let message = format!(
            "Preparing image cache {}: temporary container group {} (2 vCPU, 4 GiB)",
            cache.id, cache.container_group_id
        );
        cache.event("Normal", "Preparing", message, now);
        cache.advance(now);
        let ids = (cache.id.clone(), cache.container_group_id.clone());
        table.caches.insert(seq, cache);
        Ok(ids)
    }

    pub fn create_image_cache(
        &self,
        req: CreateImageCache,
    ) -> Result<CreateImageCacheResponse, ApiError> {
        let (mut table, now) = self.caches_now();
        let fingerprint = {
            let mut r = req.clone();
            r.client_token = None;
            format!("{r:?}")
        };
        if let Some(token) = &req.client_token
            && let Some(known) = table.tokens.get(token)
        {
            if known.fingerprint != fingerprint {
                return Err(ApiError::new(
                    errors::IDEMPOTENT_MISMATCH,
                    "The request uses the same client token as a previous, but non-identical request.",
                ));
            }
            return Ok(CreateImageCacheResponse {
                request_id: String::new(),
                image_cache_id: known.id.clone(),
                container_group_id: known.container_group_id.clone(),
            });
        }
        let (id, group) = self.insert_cache(
            &mut table,
            now,
            req.image_cache_name,
            req.images,
            req.image_cache_size.unwrap_or(DEFAULT_IMAGE_CACHE_SIZE_GIB),
            req.retention_days,
            req.tags,
        )?;
        if let Some(token) = req.client_token {
            table.tokens.insert(
                token,
                Token {
                    fingerprint,
                    id: id.clone(),
                    container_group_id: group.clone(),
                    at: now,
                },
            );
        }
        Ok(CreateImageCacheResponse {
            request_id: String::new(),
            image_cache_id: id,
            container_group_id: group,
        })
    }

    pub fn describe_image_caches(
        &self,
        q: &DescribeImageCaches,
    ) -> Result<DescribeImageCachesResponse, ApiError> {
        let (table, now) = self.caches_now();
        let ids: Option<Vec<&str>> = q
            .image_cache_id
            .as_deref()
            .map(|ids| ids.split(',').map(str::trim).collect());
        let image = q.image.as_deref().map(normalize);
        let matching: Vec<&Cache> = table
            .caches
            .values()
            .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id.as_str())))
            .filter(|c| q.image_cache_name.as_ref().is_none_or(|n| *n == c.name))
            .filter(|c| q.snapshot_id.as_ref().is_none_or(|s| *s == c.snapshot_id))
            .filter(|c| {
                image
                    .as_ref()
                    .is_none_or(|i| c.covers(std::slice::from_ref(i)) > 0)
            })
            .filter(|c| {
                q.tags.iter().all(|t| {
                    c.tags
                        .iter()
                        .any(|ct| ct.key == t.key && ct.value == t.value)
                })
            })
            .collect();
        let limit = q.limit.unwrap_or(MAX_DESCRIBE_LIMIT) as usize;
        let (range, next_token) =
            super::describe::page_of(&matching, |c| c.seq, q.next_token.as_deref(), limit)?;
        let region = &self.config().region_id;
        Ok(DescribeImageCachesResponse {
            request_id: String::new(),
            next_token,
            total_count: matching.len() as u64,
            image_caches: matching[range]
                .iter()
                .map(|c| c.render(region, now))
                .collect(),
        })
    }

    pub fn update_image_cache(&self, req: UpdateImageCache) -> Result<(), ApiError> {
        let (mut table, now) = self.caches_now();
        let cache = table
            .caches
            .values()
            .find(|c| c.id == req.image_cache_id)
            .cloned()
            .ok_or_else(|| not_found(&req.image_cache_id))?;
        if cache.status != image_cache_status::READY
            && cache.status != image_cache_status::UPDATE_FAILED
        {
            return Err(ApiError::new(
                errors::INCORRECT_STATUS,
                format!(
                    "The image cache {} is {}; only Ready or UpdateFailed caches can be updated.",
                    cache.id, cache.status
                ),
            ));
        }
        let mut cache = cache;
        if let Some(name) = req.image_cache_name {
            cache.name = name;
        }
        if !req.images.is_empty() {
            cache.images = req.images;
        }
        if let Some(size) = req.image_cache_size {
            cache.size_gib = size;
        }
        if req.retention_days.is_some() {
            cache.retention_days = req.retention_days;
        }
        let made = self.make(&cache.images, cache.size_gib, now);
        cache.status = image_cache_status::UPDATING.into();
        cache.job = Some(Job {
            update: true,
            creating_at: made.creating_at,
            done_at: made.done_at,
            failure: made.failure,
            pull_mb: made.pull_mb,
        });
        let message = format!("Updating image cache {}", cache.id);
        cache.event("Normal", "Updating", message, now);
        table.caches.insert(cache.seq, cache);
        Ok(())
    }

    pub fn delete_image_cache(&self, id: &str) -> Result<(), ApiError> {
        let (mut table, _) = self.caches_now();
        let seq = table
            .caches
            .values()
            .find(|c| c.id == id)
            .map(|c| c.seq)
            .ok_or_else(|| not_found(id))?;
        table.caches.remove(&seq);
        Ok(())
    }

    /// The cache a create starts from, by `ImageSnapshotId`, `AutoMatchImageCache` and
    /// `AutoCreateImageCache` (which also matches first: a miss needs a match). With
    /// `commit`, the matched cache's LastMatchedTime is set and a cache is auto created;
    /// without (DryRun), only the checks run.
    pub(super) fn cache_for(
        &self,
        req: &CreateContainerGroup,
        snapshot_id: Option<&str>,
        auto_match: bool,
        auto_create: bool,
        commit: bool,
    ) -> Result<CacheUse, ApiError> {
        if snapshot_id.is_none() && !auto_match && !auto_create {
            return Ok(CacheUse::None);
        }
        let images: Vec<String> = req
            .init_containers
            .iter()
            .chain(&req.containers)
            .map(|c| c.image.clone())
            .collect();
        let wanted: Vec<String> = images.iter().map(|i| normalize(i)).collect();
        let (mut table, now) = self.caches_now();
        if let Some(id) = snapshot_id {
            let cache = table
                .caches
                .values_mut()
                .find(|c| c.id == id)
                .ok_or_else(|| {
                    ApiError::new(
                        errors::IMAGE_CACHE_NOT_FOUND,
                        format!("The specified ImageSnapshotId {id:?} does not exist."),
                    )
                })?;
            if cache.status != image_cache_status::READY {
                return Err(ApiError::new(
                    errors::INCORRECT_STATUS,
                    format!(
                        "The image cache {id} is {}; only a Ready image cache can be used.",
                        cache.status
                    ),
                ));
            }
            if commit {
                cache.last_matched = Some(now);
            }
            return Ok(CacheUse::Hit {
                id: cache.id.clone(),
                images: cache.images.clone(),
            });
        }
        // The Ready cache holding the most of the images; ties: the newest.
        let best = table
            .caches
            .values_mut()
            .filter(|c| c.status == image_cache_status::READY)
            .map(|c| (c.covers(&wanted), c.created, c.seq, c))
            .filter(|(n, ..)| *n > 0)
            .max_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)))
            .map(|(.., c)| c);
        if let Some(cache) = best {
            if commit {
                cache.last_matched = Some(now);
            }
            return Ok(CacheUse::Hit {
                id: cache.id.clone(),
                images: cache.images.clone(),
            });
        }
        if !(auto_create && commit) {
            return Ok(CacheUse::Missed { auto_created: None });
        }
        // One cache per image set is being made at a time (a retried create makes no second).
        let mut set = wanted.clone();
        set.sort();
        set.dedup();
        let underway = table.caches.values().any(|c| {
            let mut theirs: Vec<String> = c.images.iter().map(|i| normalize(i)).collect();
            theirs.sort();
            theirs.dedup();
            c.job.is_some() && theirs == set
        });
        if underway {
            return Ok(CacheUse::Missed { auto_created: None });
        }
        let mut distinct = Vec::new();
        for (image, norm) in images.iter().zip(&wanted) {
            if !distinct.iter().any(|(_, n)| n == norm) {
                distinct.push((image.clone(), norm.clone()));
            }
        }
        let name = format!("imc-auto-{}", req.container_group_name)
            .chars()
            .take(128)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string();
        let auto_created = self
            .insert_cache(
                &mut table,
                now,
                name,
                distinct.into_iter().map(|(i, _)| i).collect(),
                DEFAULT_IMAGE_CACHE_SIZE_GIB,
                None,
                Vec::new(),
            )
            .ok()
            .map(|(id, _)| id);
        Ok(CacheUse::Missed { auto_created })
    }
}
