//! `ImageCache` (`eci.alibabacloud.com/v1`, cluster-scoped), as ACK's virtual node has it:
//! spec `images` (required), `imagePullSecrets` (`namespace:name`), `imageCacheSize` (GiB, 20 to
//! 32768, default 20), `retentionDays` (1 to 65536, absent = never expires); status `phase` (the
//! cloud's status: Preparing, Creating, Ready, Failed, Updating, UpdateFailed), `progress`,
//! `imageCacheId`, `startTime`, `lastUpdatedTime`, `expireDateTime`, `events`
//! (<https://alibabacloud.com/help/en/eci/user-guide/kubernetes-imagecache-api>), and vk's own
//! `reason`, `message`, `completionTime`, `lastMatchedTime`, `imageCacheSize`,
//! `observedGeneration`. The CRD is `manifests/crds/imagecache.yaml`.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::ClusterResourceScope;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "eci.alibabacloud.com";
pub const VERSION: &str = "v1";
pub const KIND: &str = "ImageCache";
pub const PLURAL: &str = "imagecaches";

fn api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

fn kind() -> String {
    KIND.to_string()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageCache {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImageCacheSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ImageCacheStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImageCacheSpec {
    pub images: Vec<String>,
    /// `namespace:name` of `kubernetes.io/dockerconfigjson` (or `dockercfg`) secrets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// GiB; absent: 20.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_cache_size: Option<u32>,
    /// Absent: the cache never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

/// Every field is sent in a status patch: `None` is `null`, which clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImageCacheStatus {
    pub image_cache_id: Option<String>,
    /// The cloud's status of the cache, or `Failed` when vk cannot make or find it.
    pub phase: Option<String>,
    pub progress: Option<String>,
    /// Why the phase is what it is, when it is not the cloud's own (`NotFound`,
    /// `InvalidSpec`, an error code of the cloud).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub start_time: Option<String>,
    pub completion_time: Option<String>,
    pub last_updated_time: Option<String>,
    pub expire_date_time: Option<String>,
    pub last_matched_time: Option<String>,
    pub image_cache_size: Option<u32>,
    pub observed_generation: Option<i64>,
    /// The cloud's events about the cache (the last few).
    pub events: Vec<ImageCacheEvent>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImageCacheEvent {
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: u32,
    pub first_timestamp: String,
    pub last_timestamp: String,
}

impl kube::Resource for ImageCache {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(KIND)
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(GROUP)
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(VERSION)
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(PLURAL)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl ImageCache {
    pub fn new(name: &str, spec: ImageCacheSpec) -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn uid(&self) -> &str {
        self.metadata.uid.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource as _;

    #[test]
    fn reads_acks_yaml_and_names_its_api() {
        let yaml = "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: web\nspec:\n  images: [\"nginx:1.25\"]\n  imagePullSecrets: [\"default:regcred\"]\n  imageCacheSize: 40\n  retentionDays: 7\nstatus:\n  imageCacheId: imc-1\n  phase: Ready\n  progress: 100%\n";
        let ic: ImageCache = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(ic.spec.images, vec!["nginx:1.25"]);
        assert_eq!(ic.spec.image_pull_secrets, vec!["default:regcred"]);
        assert_eq!(ic.spec.image_cache_size, Some(40));
        let status = ic.status.unwrap();
        assert_eq!(status.image_cache_id.as_deref(), Some("imc-1"));
        assert_eq!(status.phase.as_deref(), Some("Ready"));
        assert_eq!(
            ImageCache::url_path(&(), None),
            "/apis/eci.alibabacloud.com/v1/imagecaches"
        );
        let json = serde_json::to_value(ImageCache::new("x", ImageCacheSpec::default())).unwrap();
        assert_eq!(json["apiVersion"], "eci.alibabacloud.com/v1");
        assert_eq!(json["kind"], "ImageCache");
        // A status patch clears what is unset.
        let patch = serde_json::to_value(ImageCacheStatus::default()).unwrap();
        assert!(patch["reason"].is_null() && patch.get("reason").is_some());
    }
}
