//! How long a group takes from create to its containers starting, by the chosen model.
//!
//! - [`LatencyModel::Instant`] (the default): the configured `schedule_latency_ms` and
//!   `provision_latency_ms` plus jitter, whatever the images; what the tests and the
//!   everyday simulator use.
//! - [`LatencyModel::Realistic`] (benches, demos): placement, then the network interface
//!   attach, then the image pulls one after another (the kubelet pulls serially by default),
//!   each image's time being a fixed overhead plus its new layers over a bandwidth. A layer is
//!   pulled once per group however many images share it, and not at all when the group's
//!   image cache holds an image that has it (a cache is a disk snapshot of the pulled
//!   layers). Images the cache holds are attached instead (`cache_attach_ms`, once).
//!
//! The defaults come from ECI's published figures:
//! - <https://www.alibabacloud.com/help/en/elastic-container-instance/latest/overview-of-the-image-cache-feature>:
//!   the flink image from Docker Hub (about 386.26 MB) takes about 50 s of image preparation;
//!   with an image cache that time is gone. 386.26 MB at 8 MB/s is 48.3 s, plus the
//!   per-image overhead of 2 s: 50.3 s.
//! - <https://alibabacloud.com/help/en/ack/ack-managed-and-ack-dedicated/user-guide/use-image-caches-to-accelerate-pod-creation-for-knative-services>:
//!   with an image cache that image preparation takes about 5 s (the ECI overview above, a
//!   newer page, says it is gone); the model attaches the cache in 0.5 s, nearer the newer
//!   page.
//! - Placement (2 s) and the network attach (2.5 s) have no published figure for ECI (AWS
//!   says an ENI attach "adds several seconds" to a Fargate task); they are the simulator's
//!   choice, and so the floor of a cached start here is 5 s before vk's own part.
//! - The snapshot step of an image cache's creation (`snapshot_ms`, 20 s) has no published
//!   figure; it is the simulator's choice.

use serde::{Deserialize, Serialize};

use super::catalog::{self, ImageCatalog, PullError};

/// What an image cache does for a new group: the face matches caches, the engine models
/// their effect (images the cache holds are not pulled) and records the events.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum CacheUse {
    /// No image cache was asked for.
    #[default]
    None,
    /// The group starts from cache `id`, which holds `images`.
    Hit { id: String, images: Vec<String> },
    /// Automatic matching found no cache; `auto_created` is the one made for the group.
    Missed { auto_created: Option<String> },
}

/// Which latency model the engine follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyModel {
    /// The configured scheduling and provisioning latencies (plus jitter), no image sizes.
    #[default]
    Instant,
    /// Placement, network attach and image pulls by size, as ECI takes them.
    Realistic,
}

impl std::str::FromStr for LatencyModel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "instant" => Ok(Self::Instant),
            "realistic" => Ok(Self::Realistic),
            other => Err(format!("{other:?} is not instant or realistic")),
        }
    }
}

/// The realistic model's figures (see the module's sources).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RealisticLatency {
    /// Image layers arrive at this many MB (10^6 bytes) per second.
    pub pull_bandwidth_mb_s: f64,
    /// Create -> Pending: the instance is placed.
    pub placement_ms: u64,
    /// The elastic network interface is attached, before any image.
    pub eni_attach_ms: u64,
    /// The image cache's disk is attached (once, when the group uses a cache).
    pub cache_attach_ms: u64,
    /// Every pulled image costs this besides its bytes (manifest, auth, unpacking).
    pub per_image_ms: u64,
    /// An image cache's snapshot is taken after its images are pulled.
    pub snapshot_ms: u64,
    /// An image whose catalog entry lists no layers counts as one layer of this size.
    pub unlisted_image_mb: f64,
}

impl Default for RealisticLatency {
    fn default() -> Self {
        Self {
            pull_bandwidth_mb_s: 8.0,
            placement_ms: 2000,
            eni_attach_ms: 2500,
            cache_attach_ms: 500,
            per_image_ms: 2000,
            snapshot_ms: 20_000,
            unlisted_image_mb: 100.0,
        }
    }
}

/// One image of a group's pull plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePull {
    /// The reference as the container gave it.
    pub image: String,
    /// The group's image cache holds it: nothing is pulled.
    pub cached: bool,
    /// MB pulled for it (layers no earlier image of the group, and no cached image, had).
    pub new_mb: f64,
    /// Its modelled pull time (0 when cached).
    pub ms: u64,
}

/// What pulling a group's images costs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PullPlan {
    /// Each distinct image once, in the containers' order (init containers first).
    pub images: Vec<ImagePull>,
    /// Some image came from the cache (its disk is attached).
    pub uses_cache: bool,
}

impl PullPlan {
    /// The pulls one after another.
    pub fn pull_ms(&self) -> u64 {
        self.images.iter().map(|i| i.ms).sum()
    }

    /// MB pulled in all.
    pub fn pulled_mb(&self) -> f64 {
        self.images.iter().map(|i| i.new_mb).sum()
    }
}

impl RealisticLatency {
    /// The time `mb` MB take at the pull bandwidth, in ms.
    pub fn transfer_ms(&self, mb: f64) -> u64 {
        if self.pull_bandwidth_mb_s <= 0.0 || mb <= 0.0 {
            return 0;
        }
        (mb / self.pull_bandwidth_mb_s * 1000.0).round() as u64
    }

    /// The pulls of `images` (in order, repeats once) when the cache holds `cached` (image
    /// references, compared normalised: [`catalog::normalize`]).
    pub fn plan(
        &self,
        catalog: &ImageCatalog,
        images: &[String],
        cached: &[String],
    ) -> Result<PullPlan, PullError> {
        let cached: Vec<String> = cached.iter().map(|c| catalog::normalize(c)).collect();
        let mut have = std::collections::HashSet::new();
        for image in &cached {
            // A cached image the catalog does not know brings no layers of its own.
            for (id, _) in catalog
                .layers(image, self.unlisted_image_mb)
                .unwrap_or_default()
            {
                have.insert(id);
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut plan = PullPlan::default();
        for image in images {
            let norm = catalog::normalize(image);
            if !seen.insert(norm.clone()) {
                continue;
            }
            let layers = catalog.layers(image, self.unlisted_image_mb)?;
            if cached.contains(&norm) {
                plan.uses_cache = true;
                plan.images.push(ImagePull {
                    image: image.clone(),
                    cached: true,
                    new_mb: 0.0,
                    ms: 0,
                });
                continue;
            }
            let new_mb: f64 = layers
                .into_iter()
                .filter(|(id, _)| have.insert(id.clone()))
                .map(|(_, mb)| mb)
                .sum();
            plan.images.push(ImagePull {
                image: image.clone(),
                cached: false,
                new_mb,
                ms: self.per_image_ms + self.transfer_ms(new_mb),
            });
        }
        Ok(plan)
    }
}

/// The reasons of the events about images (ECI's words; the engine names no face's crate).
pub mod reasons {
    pub const PULLING: &str = "Pulling";
    pub const PULLED: &str = "Pulled";
    pub const HIT_IMAGE_CACHE: &str = "SuccessfulHitImageCache";
    pub const MISSED_IMAGE_CACHE: &str = "ImageCacheMissed";
    pub const AUTO_CREATED_IMAGE_CACHE: &str = "ImageCacheAutoCreated";
}

/// `12.3s`, as the kubelet writes a pull's duration.
pub fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_flink_figure_is_met() {
        let r = RealisticLatency::default();
        let ms = r.per_image_ms + r.transfer_ms(386.26);
        assert!((49_000..=51_000).contains(&ms), "{ms}");
        // With a cache: placement + attach + cache attach is about 5 s.
        assert_eq!(r.placement_ms + r.eni_attach_ms + r.cache_attach_ms, 5000);
    }

    #[test]
    fn shared_layers_are_pulled_once_and_cached_images_not_at_all() {
        let r = RealisticLatency::default();
        let catalog = ImageCatalog::default();
        let golang = catalog.layers("golang:1.22", 0.0).unwrap();
        let agent = catalog.layers("jenkins/inbound-agent", 0.0).unwrap();
        let total = |l: &[(String, f64)]| l.iter().map(|x| x.1).sum::<f64>();
        let base = catalog.layers("debian", 0.0).unwrap();
        let plan = r
            .plan(
                &catalog,
                &s(&["golang:1.22", "jenkins/inbound-agent:latest", "golang:1.22"]),
                &[],
            )
            .unwrap();
        assert_eq!(plan.images.len(), 2, "a repeated image is pulled once");
        assert!((plan.images[0].new_mb - total(&golang)).abs() < 1e-9);
        // The agent shares debian bookworm's layer with golang: not pulled again.
        let expected = total(&agent) - total(&base);
        assert!((plan.images[1].new_mb - expected).abs() < 1e-9);
        assert_eq!(
            plan.images[1].ms,
            r.per_image_ms + r.transfer_ms(expected),
            "the formula"
        );
        // The cache holds golang: nothing of it is pulled, nor its layers for the agent.
        let plan = r
            .plan(
                &catalog,
                &s(&["docker.io/library/golang:1.22", "jenkins/inbound-agent"]),
                &s(&["golang:1.22"]),
            )
            .unwrap();
        assert!(plan.uses_cache && plan.images[0].cached && plan.images[0].ms == 0);
        assert!((plan.images[1].new_mb - expected).abs() < 1e-9);
        assert!(r.plan(&catalog, &s(&["nope.example.com/x"]), &[]).is_err());
    }
}
