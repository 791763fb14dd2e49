//! Keep caches of the most used image sets (`eci: image_cache: keep_top_images:`), off unless
//! configured.
//!
//! Every pod the provider creates with cache matching on adds one use of its image set (the
//! init and app containers' images, normalised, deduplicated and sorted) to [`Usage`]: counts
//! per image set per minute, buckets older than the window dropped, so memory is bounded by the
//! distinct sets seen in one window. Pods that name a cache (`eci-image-snapshot-id`) or turn
//! matching off (`eci-image-cache: "false"`) would not use such a cache and are not counted.
//!
//! Once a minute, [`run`] (started beside the ImageCache controller: one per process, on the
//! leader only) ranks the sets used in the window ([`select`]: most uses first, ties by the most
//! recent use), keeps the first `min(count, budget_gib / cache_size_gib)`, and makes the cluster
//! hold exactly those as `ImageCache` objects labelled `app.kubernetes.io/managed-by: vk`
//! ([`plan`]): it creates the missing ones (`vk-top-<hash of the set>`; the controller then makes
//! the cloud's cache), sets back the spec of a managed one that differs, and deletes the managed
//! ones that fell out (the controller's finalizer deletes the cloud's cache). Objects without
//! the label are never touched. Until the task has watched a whole window (after a start or a
//! leader change, when this process has no history yet) it only creates, so a restart does not
//! throw caches away.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde::Deserialize;
use vk_core::provider::ResolvedPod;

use crate::image_cache::crd::{ImageCache, ImageCacheSpec};
use crate::wire::request_image_cache::MAX_IMAGES;

/// The label of the objects this task owns.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VK: &str = "vk";
/// Names are this and a hash of the image set.
pub const NAME_PREFIX: &str = "vk-top-";
/// ImageCacheSize's bounds and default, GiB (the CRD's, as ACK documents them:
/// <https://alibabacloud.com/help/en/eci/user-guide/kubernetes-imagecache-api>, 20 to 32768,
/// default 20).
pub const MIN_CACHE_GIB: u32 = 20;
pub const MAX_CACHE_GIB: u32 = 32768;
/// The longest window: a week of minute buckets.
pub const MAX_WINDOW_MINUTES: u32 = 7 * 24 * 60;
/// How often the task reconciles.
const TICK: Duration = Duration::from_secs(60);

/// `keep_top_images:` — `count` sets at most, counted over the last `window_minutes`, and no
/// more caches than fit in `budget_gib` at `cache_size_gib` each.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "KeepTopFile")]
pub struct KeepTopConfig {
    pub count: usize,
    pub window_minutes: u32,
    pub budget_gib: u64,
    pub cache_size_gib: u32,
    /// What the providers record; shared by every clone of the config, so the providers of
    /// all the process's eci nodes and the task see the same counts.
    pub usage: Usage,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct KeepTopFile {
    count: usize,
    window_minutes: u32,
    budget_gib: u64,
    #[serde(default = "default_cache_size")]
    cache_size_gib: u32,
}

fn default_cache_size() -> u32 {
    MIN_CACHE_GIB
}

impl TryFrom<KeepTopFile> for KeepTopConfig {
    type Error = String;

    fn try_from(f: KeepTopFile) -> Result<Self, String> {
        if f.window_minutes == 0 || f.window_minutes > MAX_WINDOW_MINUTES {
            return Err(format!(
                "keep_top_images.window_minutes: {} is not in 1..={MAX_WINDOW_MINUTES}",
                f.window_minutes
            ));
        }
        if !(MIN_CACHE_GIB..=MAX_CACHE_GIB).contains(&f.cache_size_gib) {
            return Err(format!(
                "keep_top_images.cache_size_gib: {} is not in {MIN_CACHE_GIB}..={MAX_CACHE_GIB} (ImageCacheSize's range)",
                f.cache_size_gib
            ));
        }
        Ok(Self {
            count: f.count,
            window_minutes: f.window_minutes,
            budget_gib: f.budget_gib,
            cache_size_gib: f.cache_size_gib,
            usage: Usage::default(),
        })
    }
}

impl KeepTopConfig {
    /// How many caches to keep: `count`, and no more than the budget holds.
    pub fn limit(&self) -> usize {
        let fit = self.budget_gib / u64::from(self.cache_size_gib.max(1));
        self.count.min(usize::try_from(fit).unwrap_or(usize::MAX))
    }

    /// Count a use of the pod's image set now.
    pub fn record(&self, pod: &ResolvedPod) {
        let set = image_set(pod);
        if !set.is_empty() {
            self.usage
                .record_at(set, self.usage.minute(), u64::from(self.window_minutes));
        }
    }
}

/// An image reference as caches compare them: `docker.io/` (or `index.docker.io/`) and
/// `library/` dropped, `:latest` added when there is neither tag nor digest.
pub fn normalise(image: &str) -> String {
    let s = image.trim();
    let s = s
        .strip_prefix("docker.io/")
        .or_else(|| s.strip_prefix("index.docker.io/"))
        .unwrap_or(s);
    let s = s.strip_prefix("library/").unwrap_or(s);
    let last = s.rfind('/').map_or(0, |i| i + 1);
    if s.contains('@') || s[last..].contains(':') {
        s.to_string()
    } else {
        format!("{s}:latest")
    }
}

/// The pod's images (init and app containers), normalised, without repeats, sorted.
pub fn image_set(pod: &ResolvedPod) -> Vec<String> {
    pod.init_containers
        .iter()
        .chain(&pod.containers)
        .map(|c| c.image.trim())
        .filter(|i| !i.is_empty())
        .map(normalise)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `vk-top-` and the first 10 hex digits of SHA-256 over the set (one image a line).
pub fn object_name(set: &[String]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, set.join("\n").as_bytes());
    let hex: String = digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{NAME_PREFIX}{hex}")
}

/// Uses of one image set in one minute.
#[derive(Clone, Copy, Debug, Default)]
struct Count {
    uses: u64,
    /// The order of the latest use (a counter over all records).
    last: u64,
}

#[derive(Debug, Default)]
struct Buckets {
    origin: Option<tokio::time::Instant>,
    seq: u64,
    by_minute: BTreeMap<u64, HashMap<Vec<String>, Count>>,
}

impl Buckets {
    fn expire(&mut self, minute: u64, window: u64) {
        // The window is the minutes `minute - window + 1 ..= minute`.
        let first = (minute + 1).saturating_sub(window);
        self.by_minute = self.by_minute.split_off(&first);
    }
}

/// Uses per image set per minute; cloning shares the counts.
#[derive(Clone, Debug, Default)]
pub struct Usage(Arc<Mutex<Buckets>>);

/// Runtime state, not configuration: configs compare equal whatever was recorded.
impl PartialEq for Usage {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One image set's uses over the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub images: Vec<String>,
    pub uses: u64,
    /// The order of its latest use: higher is more recent.
    pub last: u64,
}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whole minutes since the first call (tokio's clock, so a paused test clock drives it).
    pub fn minute(&self) -> u64 {
        let mut b = self.lock();
        let origin = *b.origin.get_or_insert_with(tokio::time::Instant::now);
        origin.elapsed().as_secs() / 60
    }

    /// One use of `set` (normalised and sorted) in `minute`; buckets out of the window go.
    pub fn record_at(&self, set: Vec<String>, minute: u64, window: u64) {
        let mut b = self.lock();
        b.seq += 1;
        let seq = b.seq;
        b.expire(minute, window);
        let count = b
            .by_minute
            .entry(minute)
            .or_default()
            .entry(set)
            .or_default();
        count.uses += 1;
        count.last = seq;
    }

    /// Each set's uses in the `window` minutes up to `minute`; older buckets go.
    pub fn tallies_at(&self, minute: u64, window: u64) -> Vec<Tally> {
        let mut b = self.lock();
        b.expire(minute, window);
        let mut sum: HashMap<&Vec<String>, Count> = HashMap::new();
        for (_, sets) in b.by_minute.range(..=minute) {
            for (set, c) in sets {
                let t = sum.entry(set).or_default();
                t.uses += c.uses;
                t.last = t.last.max(c.last);
            }
        }
        sum.into_iter()
            .map(|(images, c)| Tally {
                images: images.clone(),
                uses: c.uses,
                last: c.last,
            })
            .collect()
    }

    /// Minute buckets held (for tests of the bound).
    pub fn buckets(&self) -> usize {
        self.lock().by_minute.len()
    }
}

/// The sets to keep: most uses first, ties by the most recent use, then by the images (so the
/// answer never depends on hashing order); the first `limit`. A set of more images than a
/// cache takes ([`MAX_IMAGES`], the CRD's `maxItems`) is no candidate.
pub fn select(mut tallies: Vec<Tally>, limit: usize) -> Vec<Tally> {
    tallies.retain(|t| !t.images.is_empty() && t.images.len() <= MAX_IMAGES);
    tallies.sort_by(|a, b| {
        b.uses
            .cmp(&a.uses)
            .then(b.last.cmp(&a.last))
            .then_with(|| a.images.cmp(&b.images))
    });
    tallies.truncate(limit);
    tallies
}

/// What to change in the cluster.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create: Vec<ImageCache>,
    /// Managed objects whose spec differs from the wanted one: name, spec to set.
    pub respec: Vec<(String, ImageCacheSpec)>,
    pub delete: Vec<String>,
}

fn wanted_spec(images: &[String], cache_size_gib: u32) -> ImageCacheSpec {
    ImageCacheSpec {
        images: images.to_vec(),
        image_cache_size: Some(cache_size_gib),
        ..Default::default()
    }
}

fn is_managed(object: &ImageCache) -> bool {
    object.labels().get(MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VK)
}

/// The changes that make the managed objects among `existing` exactly `wanted`. New objects
/// carry the managed-by label and `labels` (the controller's selector, so it sees them).
/// Deletions only when `may_delete`; objects without the label are left alone whatever their
/// name, as are objects already being deleted.
pub fn plan(
    wanted: &[Tally],
    existing: &[ImageCache],
    cache_size_gib: u32,
    labels: &BTreeMap<String, String>,
    may_delete: bool,
) -> Plan {
    let mut out = Plan::default();
    let by_name: HashMap<&str, &ImageCache> = existing.iter().map(|o| (o.name(), o)).collect();
    let mut keep = BTreeSet::new();
    for t in wanted {
        let name = object_name(&t.images);
        let spec = wanted_spec(&t.images, cache_size_gib);
        match by_name.get(name.as_str()) {
            None => {
                let mut object = ImageCache::new(&name, spec);
                let mut all = labels.clone();
                all.insert(MANAGED_BY.into(), MANAGED_BY_VK.into());
                object.metadata.labels = Some(all);
                out.create.push(object);
            }
            Some(o) if !is_managed(o) || o.metadata.deletion_timestamp.is_some() => {}
            Some(o) => {
                if o.spec.images != spec.images
                    || o.spec.image_cache_size.unwrap_or(MIN_CACHE_GIB) != cache_size_gib
                {
                    out.respec.push((name.clone(), spec));
                }
            }
        }
        keep.insert(name);
    }
    if may_delete {
        out.delete = existing
            .iter()
            .filter(|o| is_managed(o) && o.metadata.deletion_timestamp.is_none())
            .filter(|o| !keep.contains(o.name()))
            .map(|o| o.name().to_string())
            .collect();
    }
    out
}

/// The labels a selector of equality terms (`team=a,env==prod`) asks for; `None` when it has
/// other terms (`!=`, `in (...)`, existence), which no set of labels is sure to satisfy.
pub fn selector_labels(selector: Option<&str>) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(selector) = selector else {
        return Some(out);
    };
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if term.contains("!=") || term.contains('(') || term.starts_with('!') {
            return None;
        }
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return None;
        }
        out.insert(k.to_string(), v.to_string());
    }
    Some(out)
}

/// Run until `stop` resolves: every minute, [`select`] and [`plan`] against the cluster's
/// managed objects (those with the label, within `label_selector`).
pub async fn run(
    kube: Client,
    config: KeepTopConfig,
    label_selector: Option<String>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let Some(labels) = selector_labels(label_selector.as_deref()) else {
        tracing::warn!(selector = ?label_selector, "keep_top_images is off: image_cache.label_selector has terms other than key=value, so the ImageCache objects it would make might not be seen by the controller");
        return;
    };
    let mut list = ListParams::default().labels(&format!("{MANAGED_BY}={MANAGED_BY_VK}"));
    if let Some(selector) = label_selector.as_deref().filter(|s| !s.trim().is_empty()) {
        list = ListParams::default().labels(&format!("{MANAGED_BY}={MANAGED_BY_VK},{selector}"));
    }
    let api: Api<ImageCache> = Api::all(kube);
    let started = tokio::time::Instant::now();
    let window = u64::from(config.window_minutes);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    tracing::info!(
        count = config.count,
        window_minutes = config.window_minutes,
        limit = config.limit(),
        "keeping image caches of the most used image sets"
    );
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let may_delete = started.elapsed() >= Duration::from_secs(60 * window);
        let wanted = select(
            config.usage.tallies_at(config.usage.minute(), window),
            config.limit(),
        );
        match reconcile_once(&api, &list, &wanted, &config, &labels, may_delete).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                tracing::warn!(error = %e, "keeping the most used image caches failed; trying again every minute");
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "keeping the most used image caches"),
        }
    }
}

/// One pass: list the managed objects, then create, respec and delete as [`plan`] says.
pub async fn reconcile_once(
    api: &Api<ImageCache>,
    list: &ListParams,
    wanted: &[Tally],
    config: &KeepTopConfig,
    labels: &BTreeMap<String, String>,
    may_delete: bool,
) -> Result<(), kube::Error> {
    let existing = api.list(list).await?.items;
    let plan = plan(wanted, &existing, config.cache_size_gib, labels, may_delete);
    for object in &plan.create {
        match api.create(&PostParams::default(), object).await {
            Ok(_) => {
                tracing::info!(imagecache = object.name(), images = ?object.spec.images, "created an ImageCache for a most used image set")
            }
            // An object of that name without the label (someone else's), or one still being
            // deleted: left alone.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::debug!(
                    imagecache = object.name(),
                    "an ImageCache of that name exists"
                )
            }
            // Refused (by the CRD's schema or an admission policy): the other sets still go.
            Err(kube::Error::Api(e)) if e.code == 422 || e.code == 403 => {
                tracing::warn!(imagecache = object.name(), error = %e.message, "the API server refused an ImageCache for a most used image set")
            }
            Err(e) => return Err(e),
        }
    }
    for (name, spec) in &plan.respec {
        let patch = serde_json::json!({ "spec": { "images": spec.images, "imageCacheSize": spec.image_cache_size } });
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(
                imagecache = %name,
                "deleted an ImageCache whose image set is no longer among the most used"
            ),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "keep_top_tests.rs"]
mod tests;
