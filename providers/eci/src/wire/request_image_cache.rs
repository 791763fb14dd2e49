//! The image cache actions: `CreateImageCache`, `DescribeImageCaches`, `UpdateImageCache` and
//! `DeleteImageCache` (ECI OpenAPI 2018-08-08), encoded by the client and decoded (and checked)
//! by the mock cloud with the same code.
//!
//! Where the limits come from:
//! - `ImageCacheName`: 2 to 128 characters of lower-case letters, digits and hyphens, not
//!   starting or ending with a hyphen — the same rule as a group's name
//!   (<https://www.alibabacloud.com/help/en/eci/developer-reference/api-eci-2018-08-08-createimagecache>).
//! - `ImageCacheSize`: GiB, 20 by default, 20 to 32768
//!   (<https://alibabacloud.com/help/en/eci/user-guide/kubernetes-imagecache-api>: "Value range:
//!   20 to 32768. Default value: 20").
//! - `RetentionDays`: 1 to 65536, absent = never expires (same page).
//! - `Image.N`: at least one; at most [`MAX_IMAGES`] (one group's containers, which is what the
//!   cache's temporary group pulls).
//! - `UpdateImageCache` only on `Ready` or `UpdateFailed` caches
//!   (<https://www.alibabacloud.com/help/en/eci/developer-reference/api-eci-2018-08-08-updateimagecache>).

use crate::wire::api::Tag;
use crate::wire::params::{ParamError, Params};
use crate::wire::request::{
    ImageRegistryCredential, MAX_TAGS, decode_registry_credentials, decode_tags,
    encode_registry_credentials, encode_tags,
};

pub const MIN_IMAGE_CACHE_SIZE_GIB: u32 = 20;
pub const MAX_IMAGE_CACHE_SIZE_GIB: u32 = 32768;
pub const DEFAULT_IMAGE_CACHE_SIZE_GIB: u32 = 20;
pub const MAX_RETENTION_DAYS: u32 = 65536;
/// The images of one cache: as many as one group has containers.
pub const MAX_IMAGES: usize = crate::wire::request::MAX_CONTAINERS;
/// `DescribeImageCaches`' `Limit` at most.
pub const MAX_DESCRIBE_LIMIT: u32 = 100;

/// `CreateImageCache`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateImageCache {
    pub region_id: String,
    pub image_cache_name: String,
    pub images: Vec<String>,
    pub security_group_id: Option<String>,
    pub vswitch_id: Option<String>,
    /// GiB; absent: 20.
    pub image_cache_size: Option<u32>,
    /// Absent: never expires.
    pub retention_days: Option<u32>,
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    /// A retried create with the same token makes no second cache.
    pub client_token: Option<String>,
    pub tags: Vec<Tag>,
}

/// `ImageCacheName`'s rule.
pub fn validate_cache_name(name: &str) -> Result<(), ParamError> {
    let ok = (2..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ParamError::invalid(
            "ImageCacheName",
            "2 to 128 characters of lower-case letters, digits and hyphens, not starting or ending with a hyphen",
        ))
    }
}

fn validate_size(size: Option<u32>) -> Result<(), ParamError> {
    match size {
        Some(s) if !(MIN_IMAGE_CACHE_SIZE_GIB..=MAX_IMAGE_CACHE_SIZE_GIB).contains(&s) => {
            Err(ParamError::invalid(
                "ImageCacheSize",
                format!(
                    "{s} GiB is not from {MIN_IMAGE_CACHE_SIZE_GIB} to {MAX_IMAGE_CACHE_SIZE_GIB}"
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn validate_retention(days: Option<u32>) -> Result<(), ParamError> {
    match days {
        Some(d) if !(1..=MAX_RETENTION_DAYS).contains(&d) => Err(ParamError::invalid(
            "RetentionDays",
            format!("{d} is not from 1 to {MAX_RETENTION_DAYS} days"),
        )),
        _ => Ok(()),
    }
}

fn decode_images(p: &Params, required: bool) -> Result<Vec<String>, ParamError> {
    let images: Vec<String> = p
        .values("Image")?
        .into_iter()
        .map(|i| i.trim().to_string())
        .collect();
    if required && images.is_empty() {
        return Err(ParamError::Missing("Image.1".into()));
    }
    if let Some(i) = images.iter().position(String::is_empty) {
        return Err(ParamError::invalid(
            format!("Image.{}", i + 1),
            "empty image",
        ));
    }
    if images.len() > MAX_IMAGES {
        return Err(ParamError::invalid(
            "Image",
            format!("at most {MAX_IMAGES} images per cache"),
        ));
    }
    Ok(images)
}

fn encode_images(p: &mut Params, images: &[String]) {
    for (i, image) in images.iter().enumerate() {
        p.push(format!("Image.{}", i + 1), image);
    }
}

impl CreateImageCache {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push("ImageCacheName", &self.image_cache_name);
        encode_images(p, &self.images);
        p.push_opt("SecurityGroupId", self.security_group_id.as_ref());
        p.push_opt("VSwitchId", self.vswitch_id.as_ref());
        p.push_opt("ImageCacheSize", self.image_cache_size);
        p.push_opt("RetentionDays", self.retention_days);
        encode_registry_credentials(p, &self.image_registry_credentials);
        p.push_opt("ClientToken", self.client_token.as_ref());
        encode_tags(p, "Tag", &self.tags);
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let name = p.required("ImageCacheName")?.to_string();
        validate_cache_name(&name)?;
        let image_cache_size = p.parse("ImageCacheSize")?;
        validate_size(image_cache_size)?;
        let retention_days = p.parse("RetentionDays")?;
        validate_retention(retention_days)?;
        let tags = decode_tags(p, "Tag")?;
        if tags.len() > MAX_TAGS {
            return Err(ParamError::invalid(
                "Tag",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            image_cache_name: name,
            images: decode_images(p, true)?,
            security_group_id: p.string("SecurityGroupId"),
            vswitch_id: p.string("VSwitchId"),
            image_cache_size,
            retention_days,
            image_registry_credentials: decode_registry_credentials(p)?,
            client_token: p.string("ClientToken"),
            tags,
        })
    }
}

/// `DescribeImageCaches`: by id, name, snapshot, image or tags, a page at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeImageCaches {
    pub region_id: String,
    pub image_cache_id: Option<String>,
    pub image_cache_name: Option<String>,
    pub snapshot_id: Option<String>,
    pub image: Option<String>,
    pub tags: Vec<Tag>,
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

impl DescribeImageCaches {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push_opt("ImageCacheId", self.image_cache_id.as_ref());
        p.push_opt("ImageCacheName", self.image_cache_name.as_ref());
        p.push_opt("SnapshotId", self.snapshot_id.as_ref());
        p.push_opt("Image", self.image.as_ref());
        encode_tags(p, "Tag", &self.tags);
        p.push_opt("Limit", self.limit);
        p.push_opt("NextToken", self.next_token.as_ref());
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let limit: Option<u32> = p.parse("Limit")?;
        if limit.is_some_and(|l| l == 0 || l > MAX_DESCRIBE_LIMIT) {
            return Err(ParamError::invalid(
                "Limit",
                format!("1 to {MAX_DESCRIBE_LIMIT}"),
            ));
        }
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            image_cache_id: p.string("ImageCacheId"),
            image_cache_name: p.string("ImageCacheName"),
            snapshot_id: p.string("SnapshotId"),
            image: p.string("Image"),
            tags: decode_tags(p, "Tag")?,
            limit,
            next_token: p.string("NextToken"),
        })
    }
}

/// `UpdateImageCache`: what is set changes; the rest stays.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateImageCache {
    pub region_id: String,
    pub image_cache_id: String,
    pub image_cache_name: Option<String>,
    /// Empty: the images stay.
    pub images: Vec<String>,
    pub image_cache_size: Option<u32>,
    pub retention_days: Option<u32>,
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    pub client_token: Option<String>,
}

impl UpdateImageCache {
    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push("ImageCacheId", &self.image_cache_id);
        p.push_opt("ImageCacheName", self.image_cache_name.as_ref());
        encode_images(p, &self.images);
        p.push_opt("ImageCacheSize", self.image_cache_size);
        p.push_opt("RetentionDays", self.retention_days);
        encode_registry_credentials(p, &self.image_registry_credentials);
        p.push_opt("ClientToken", self.client_token.as_ref());
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let image_cache_name = p.string("ImageCacheName");
        if let Some(name) = &image_cache_name {
            validate_cache_name(name)?;
        }
        let image_cache_size = p.parse("ImageCacheSize")?;
        validate_size(image_cache_size)?;
        let retention_days = p.parse("RetentionDays")?;
        validate_retention(retention_days)?;
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            image_cache_id: p.required("ImageCacheId")?.to_string(),
            image_cache_name,
            images: decode_images(p, false)?,
            image_cache_size,
            retention_days,
            image_registry_credentials: decode_registry_credentials(p)?,
            client_token: p.string("ClientToken"),
        })
    }
}

/// `DeleteImageCache`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteImageCache {
    pub region_id: String,
    pub image_cache_id: String,
}

impl DeleteImageCache {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            region_id: String::new(),
            image_cache_id: id.into(),
        }
    }

    pub fn encode(&self, p: &mut Params) {
        p.push("RegionId", &self.region_id);
        p.push("ImageCacheId", &self.image_cache_id);
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            region_id: p.required("RegionId")?.to_string(),
            image_cache_id: p.required("ImageCacheId")?.to_string(),
        })
    }
}

/// `SpotStrategy` values.
pub const SPOT_STRATEGIES: &[&str] = &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"];
/// `InstanceType` names at most this many types, comma-separated.
pub const MAX_INSTANCE_TYPES: usize = 5;

/// The `CreateContainerGroup` parameters that pick the billed specification and the image
/// cache: `InstanceType`, `SpotStrategy`, `SpotPriceLimit`, `AutoMatchImageCache`,
/// `ImageSnapshotId`, `AutoCreateImageCache`. Unset ones are not sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupOptions {
    /// ECS types, comma-separated, in order of preference (`ecs.c6.large,ecs.g6.large`).
    pub instance_type: Option<String>,
    pub spot_strategy: Option<String>,
    /// USD per hour, at most 3 decimals.
    pub spot_price_limit: Option<f64>,
    pub auto_match_image_cache: Option<bool>,
    /// An `imc-` id: the group starts from that cache.
    pub image_snapshot_id: Option<String>,
    /// On a miss, a cache of the group's images is made.
    pub auto_create_image_cache: Option<bool>,
}

impl GroupOptions {
    pub fn encode(&self, p: &mut Params) {
        p.push_opt("InstanceType", self.instance_type.as_ref());
        p.push_opt("SpotStrategy", self.spot_strategy.as_ref());
        p.push_opt("SpotPriceLimit", self.spot_price_limit);
        p.push_opt("AutoMatchImageCache", self.auto_match_image_cache);
        p.push_opt("ImageSnapshotId", self.image_snapshot_id.as_ref());
        p.push_opt("AutoCreateImageCache", self.auto_create_image_cache);
    }

    pub fn decode(p: &Params) -> Result<Self, ParamError> {
        let flag = |name: &str| -> Result<Option<bool>, ParamError> {
            match p.string(name) {
                None => Ok(None),
                Some(_) => p.flag(name, false).map(Some),
            }
        };
        let spot_strategy = p.string("SpotStrategy");
        if let Some(s) = &spot_strategy
            && !SPOT_STRATEGIES.contains(&s.as_str())
        {
            return Err(ParamError::invalid(
                "SpotStrategy",
                format!("{s:?} is not one of {}", SPOT_STRATEGIES.join(", ")),
            ));
        }
        let spot_price_limit = p.parse::<f64>("SpotPriceLimit")?;
        if let Some(limit) = spot_price_limit
            && !valid_price(limit)
        {
            return Err(ParamError::invalid(
                "SpotPriceLimit",
                "a positive price with at most 3 decimal places",
            ));
        }
        if spot_strategy.as_deref() == Some("SpotWithPriceLimit") && spot_price_limit.is_none() {
            return Err(ParamError::Missing("SpotPriceLimit".into()));
        }
        let image_snapshot_id = p.string("ImageSnapshotId");
        if let Some(id) = &image_snapshot_id
            && !id.starts_with("imc-")
        {
            return Err(ParamError::invalid(
                "ImageSnapshotId",
                format!("{id:?} is not an image cache id (imc-...)"),
            ));
        }
        Ok(Self {
            instance_type: p.string("InstanceType"),
            spot_strategy,
            spot_price_limit,
            auto_match_image_cache: flag("AutoMatchImageCache")?,
            image_snapshot_id,
            auto_create_image_cache: flag("AutoCreateImageCache")?,
        })
    }
}

/// Positive, finite, at most 3 decimals (as `SpotPriceLimit` takes it).
pub fn valid_price(limit: f64) -> bool {
    limit.is_finite() && limit > 0.0 && ((limit * 1000.0).round() - limit * 1000.0).abs() < 1e-6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::action::Action;

    fn round<T>(
        encode: impl Fn(&mut Params),
        decode: impl Fn(&Params) -> Result<T, ParamError>,
    ) -> T {
        let mut p = Params::new();
        encode(&mut p);
        p.set("RegionId", "cn-hangzhou");
        decode(&p).expect("decodes")
    }

    fn create() -> CreateImageCache {
        CreateImageCache {
            region_id: "cn-hangzhou".into(),
            image_cache_name: "web-cache".into(),
            images: vec!["nginx:1.25".into(), "busybox:1.36".into()],
            security_group_id: Some("sg-1".into()),
            vswitch_id: Some("vsw-1".into()),
            image_cache_size: Some(40),
            retention_days: Some(7),
            image_registry_credentials: vec![ImageRegistryCredential {
                server: "registry.example.com".into(),
                user_name: "u".into(),
                password: "p".into(),
            }],
            client_token: Some("uid-1".into()),
            tags: vec![Tag {
                key: "k".into(),
                value: "v".into(),
            }],
        }
    }

    #[test]
    fn create_survives_the_wire_with_the_services_names() {
        let c = create();
        let p = c.params();
        assert_eq!(CreateImageCache::NAME, "CreateImageCache");
        assert_eq!(p.get("ImageCacheName"), Some("web-cache"));
        assert_eq!(p.get("Image.2"), Some("busybox:1.36"));
        assert_eq!(p.get("ImageCacheSize"), Some("40"));
        assert_eq!(p.get("RetentionDays"), Some("7"));
        assert_eq!(p.get("ClientToken"), Some("uid-1"));
        assert_eq!(p.get("Tag.1.Key"), Some("k"));
        assert_eq!(
            p.get("ImageRegistryCredential.1.Server"),
            Some("registry.example.com")
        );
        assert_eq!(round(|p| c.encode(p), CreateImageCache::decode), c);
        // Absent size and retention stay absent (the service's default and "never expires").
        let mut bare = create();
        bare.image_cache_size = None;
        bare.retention_days = None;
        let p = bare.params();
        assert_eq!(p.get("ImageCacheSize"), None);
        assert_eq!(p.get("RetentionDays"), None);
    }

    #[test]
    fn create_refuses_what_the_service_refuses_by_name() {
        let refused = |edit: &dyn Fn(&mut Params)| {
            let mut p = create().params();
            edit(&mut p);
            CreateImageCache::decode(&p).unwrap_err()
        };
        let named = |e: ParamError| match e {
            ParamError::Missing(n) | ParamError::Invalid { name: n, .. } => n,
        };
        assert_eq!(
            named(refused(&|p| {
                p.set("ImageCacheName", "Web_Cache");
            })),
            "ImageCacheName"
        );
        assert_eq!(
            named(refused(&|p| {
                p.set("ImageCacheSize", "19");
            })),
            "ImageCacheSize"
        );
        assert_eq!(
            named(refused(&|p| {
                p.set("ImageCacheSize", "32769");
            })),
            "ImageCacheSize"
        );
        assert_eq!(
            named(refused(&|p| {
                p.set("RetentionDays", "0");
            })),
            "RetentionDays"
        );
        assert_eq!(
            named(refused(&|p| {
                p.set("Image.1", "");
                p.set("Image.2", "");
            })),
            "Image.1"
        );
        let mut none = Params::new();
        none.push("RegionId", "r").push("ImageCacheName", "ok-name");
        assert_eq!(
            CreateImageCache::decode(&none).unwrap_err(),
            ParamError::Missing("Image.1".into())
        );
        let mut many = create().params();
        for i in 1..=21 {
            many.set(&format!("Image.{i}"), format!("img{i}"));
        }
        assert!(CreateImageCache::decode(&many).is_err());
    }

    #[test]
    fn describe_update_delete_on_the_wire() {
        let d = DescribeImageCaches {
            region_id: "cn-hangzhou".into(),
            image_cache_id: Some("imc-1".into()),
            image_cache_name: Some("web".into()),
            limit: Some(50),
            next_token: Some("t2".into()),
            ..Default::default()
        };
        assert_eq!(DescribeImageCaches::NAME, "DescribeImageCaches");
        let p = d.params();
        assert_eq!(p.get("ImageCacheId"), Some("imc-1"));
        assert_eq!(p.get("NextToken"), Some("t2"));
        assert_eq!(round(|p| d.encode(p), DescribeImageCaches::decode), d);
        let mut big = d.params();
        big.set("Limit", "101");
        assert!(DescribeImageCaches::decode(&big).is_err());

        let u = UpdateImageCache {
            region_id: "cn-hangzhou".into(),
            image_cache_id: "imc-1".into(),
            images: vec!["nginx:1.26".into()],
            image_cache_size: Some(30),
            ..Default::default()
        };
        assert_eq!(UpdateImageCache::NAME, "UpdateImageCache");
        assert_eq!(round(|p| u.encode(p), UpdateImageCache::decode), u);
        let mut no_id = u.params();
        no_id.set("ImageCacheId", "");
        assert_eq!(
            UpdateImageCache::decode(&no_id).unwrap_err(),
            ParamError::Missing("ImageCacheId".into())
        );

        let del = DeleteImageCache::new("imc-1");
        assert_eq!(DeleteImageCache::NAME, "DeleteImageCache");
        assert_eq!(del.params().get("ImageCacheId"), Some("imc-1"));
        assert_eq!(
            round(|p| del.encode(p), DeleteImageCache::decode).image_cache_id,
            "imc-1"
        );
    }

    #[test]
    fn group_options_are_sent_only_when_set_and_read_back() {
        let mut p = Params::new();
        GroupOptions::default().encode(&mut p);
        assert!(p.is_empty());
        let o = GroupOptions {
            instance_type: Some("ecs.c6.large,ecs.g6.large".into()),
            spot_strategy: Some("SpotWithPriceLimit".into()),
            spot_price_limit: Some(0.25),
            auto_match_image_cache: Some(true),
            image_snapshot_id: Some("imc-abc".into()),
            auto_create_image_cache: Some(false),
        };
        o.encode(&mut p);
        assert_eq!(p.get("AutoMatchImageCache"), Some("true"));
        assert_eq!(p.get("AutoCreateImageCache"), Some("false"));
        assert_eq!(p.get("ImageSnapshotId"), Some("imc-abc"));
        assert_eq!(p.get("SpotPriceLimit"), Some("0.25"));
        assert_eq!(GroupOptions::decode(&p).unwrap(), o);
        p.set("ImageSnapshotId", "s-123");
        assert!(GroupOptions::decode(&p).is_err());
        p.set("ImageSnapshotId", "imc-1");
        p.set("SpotPriceLimit", "0.0001");
        assert!(GroupOptions::decode(&p).is_err());
        assert!(valid_price(0.125) && !valid_price(-1.0) && !valid_price(f64::NAN));
    }
}
