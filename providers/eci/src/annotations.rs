//! The pod annotations ACK's virtual node reads (`k8s.aliyun.com/eci-*`) that vk honours, as
//! `CreateContainerGroup` parameters; the node's image cache settings (`eci: image_cache:`) are
//! the defaults the annotations override. A value that cannot be read refuses the pod with a
//! reason naming the annotation; an `eci-*` annotation vk does not know is a Warning event
//! (`AnnotationNotSupported`), so nobody thinks it took effect.
//!
//! The names and values are ACK's:
//! - `k8s.aliyun.com/eci-image-cache`, `k8s.aliyun.com/eci-image-snapshot-id`,
//!   `k8s.aliyun.com/eci-auto-imc`
//!   (<https://www.alibabacloud.com/help/en/eci/user-guide/use-image-caches-to-accelerate-the-creation-of-pods>).
//! - `k8s.aliyun.com/eci-use-specs`: up to 5 specifications, comma-separated, in order of
//!   preference; `<vCPU>-<memory>Gi` or ECS types (`ecs.c6.large`); when given it wins over the
//!   containers' limits and requests (<https://help.aliyun.com/zh/ack/create-an-eci-pod>).
//! - `k8s.aliyun.com/eci-spot-strategy` (`SpotAsPriceGo`, `SpotWithPriceLimit`) and
//!   `k8s.aliyun.com/eci-spot-price-limit` (USD per hour, at most 3 decimals).
//! - `k8s.aliyun.com/eci-extra-ephemeral-storage` (`50Gi`): added to the free 30 GiB.

use std::collections::BTreeMap;

use serde::Deserialize;
use vk_core::provider::ProviderError;

use crate::pod_runtime::RuntimeWarning;
use crate::sizing;
use crate::wire::request::GroupOptions;
use crate::wire::request_image_cache::{MAX_INSTANCE_TYPES, valid_price};

pub const IMAGE_CACHE: &str = "k8s.aliyun.com/eci-image-cache";
pub const IMAGE_SNAPSHOT_ID: &str = "k8s.aliyun.com/eci-image-snapshot-id";
pub const AUTO_IMC: &str = "k8s.aliyun.com/eci-auto-imc";
pub const USE_SPECS: &str = "k8s.aliyun.com/eci-use-specs";
pub const SPOT_STRATEGY: &str = "k8s.aliyun.com/eci-spot-strategy";
pub const SPOT_PRICE_LIMIT: &str = "k8s.aliyun.com/eci-spot-price-limit";
pub const EXTRA_EPHEMERAL_STORAGE: &str = "k8s.aliyun.com/eci-extra-ephemeral-storage";

/// Every `eci-*` annotation vk reads; any other is reported.
pub const SUPPORTED: &[&str] = &[
    IMAGE_CACHE,
    IMAGE_SNAPSHOT_ID,
    AUTO_IMC,
    USE_SPECS,
    SPOT_STRATEGY,
    SPOT_PRICE_LIMIT,
    EXTRA_EPHEMERAL_STORAGE,
];

/// The prefix of ACK's ECI annotations.
pub const ECI_PREFIX: &str = "k8s.aliyun.com/eci-";

/// The Warning event of an `eci-*` annotation vk does not read.
pub const NOT_SUPPORTED: &str = "AnnotationNotSupported";
/// The reason a pod is refused for an annotation it cannot read.
pub const INVALID: &str = "InvalidAnnotation";

/// `eci: image_cache:` in the config file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, rename_all = "snake_case", deny_unknown_fields)]
pub struct ImageCacheConfig {
    /// `AutoMatchImageCache` for every group unless its pod says otherwise.
    pub auto_match: bool,
    /// `AutoCreateImageCache` for every group unless its pod says otherwise.
    pub auto_create: bool,
    /// Run the `ImageCache` controller (one per process, on the leader only).
    pub controller: bool,
    /// Only the ImageCache objects with these labels (`team=a,env=prod`): for several vk
    /// deployments (accounts, regions) in one cluster. Absent: every object.
    pub label_selector: Option<String>,
    /// Keep `ImageCache` objects of the most used image sets (off when absent; runs where the
    /// controller runs) ([`crate::image_cache::keep_top`]).
    pub keep_top_images: Option<crate::image_cache::keep_top::KeepTopConfig>,
}

impl Default for ImageCacheConfig {
    fn default() -> Self {
        Self {
            auto_match: true,
            auto_create: false,
            controller: true,
            label_selector: None,
            keep_top_images: None,
        }
    }
}

/// What the annotations add to a create.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FromAnnotations {
    pub options: GroupOptions,
    /// `<vCPU>-<memory>Gi` of `eci-use-specs`: the group's size (vCPU, GiB).
    pub size: Option<(f64, f64)>,
    /// GiB to add to what the pod's requests need.
    pub extra_ephemeral_storage_gib: u32,
}

fn invalid(annotation: &str, value: &str, why: impl std::fmt::Display) -> ProviderError {
    ProviderError::invalid(
        INVALID,
        format!("annotation {annotation}: {value:?} is not valid: {why}"),
    )
}

fn boolean(
    annotations: &BTreeMap<String, String>,
    name: &str,
) -> Result<Option<bool>, ProviderError> {
    match annotations.get(name).map(|v| v.trim()) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(invalid(name, v, "expected \"true\" or \"false\"")),
    }
}

/// `<cpu>-<memory>Gi` (`2-4Gi`, `0.5-1Gi`).
fn vcpu_memory(spec: &str) -> Option<(f64, f64)> {
    let (cpu, mem) = spec.strip_suffix("Gi")?.split_once('-')?;
    let cpu: f64 = cpu.parse().ok()?;
    let mem: f64 = mem.parse().ok()?;
    (cpu.is_finite() && mem.is_finite() && cpu > 0.0 && mem > 0.0).then_some((cpu, mem))
}

/// A Kubernetes quantity of bytes as whole GiB, rounded up (`50Gi`, `1Ti`, `20G`, `1024Mi`).
pub fn quantity_gib(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor: f64 = match unit {
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "" => 1.0,
        _ => return None,
    };
    let bytes = n * factor;
    if !bytes.is_finite() || bytes < 0.0 {
        return None;
    }
    Some((bytes / 1024f64.powi(3)).ceil() as u64)
}

/// Read the pod's `eci-*` annotations over the node's `defaults`; warnings for the ones vk
/// does not read.
pub fn read(
    annotations: &BTreeMap<String, String>,
    defaults: &ImageCacheConfig,
    warnings: &mut Vec<RuntimeWarning>,
) -> Result<FromAnnotations, ProviderError> {
    for name in annotations.keys() {
        if name.starts_with(ECI_PREFIX) && !SUPPORTED.contains(&name.as_str()) {
            warnings.push(RuntimeWarning {
                container: None,
                reason: NOT_SUPPORTED.into(),
                message: format!(
                    "annotation {name} is not supported by this virtual node and has no effect (supported: {})",
                    SUPPORTED.join(", ")
                ),
            });
        }
    }
    let mut out = FromAnnotations::default();

    // The image cache: a named cache, or matching (and maybe making) one.
    let snapshot = annotations
        .get(IMAGE_SNAPSHOT_ID)
        .map(|v| v.trim().to_string());
    if let Some(id) = &snapshot {
        let ok = id.len() > 4
            && id.starts_with("imc-")
            && id[4..].bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(invalid(
                IMAGE_SNAPSHOT_ID,
                id,
                "expected an image cache id (imc-...)",
            ));
        }
    }
    let auto_match = boolean(annotations, IMAGE_CACHE)?.unwrap_or(defaults.auto_match);
    let auto_create = boolean(annotations, AUTO_IMC)?.unwrap_or(defaults.auto_create);
    match snapshot {
        Some(id) => out.options.image_snapshot_id = Some(id),
        None => {
            out.options.auto_match_image_cache = Some(auto_match);
            if auto_create {
                out.options.auto_create_image_cache = Some(true);
            }
        }
    }

    // The specification.
    if let Some(value) = annotations.get(USE_SPECS) {
        let specs: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if specs.is_empty() || specs.len() > MAX_INSTANCE_TYPES {
            return Err(invalid(
                USE_SPECS,
                value,
                format!("1 to {MAX_INSTANCE_TYPES} specifications, comma-separated"),
            ));
        }
        let mut types = Vec::new();
        for spec in specs {
            if let Some(rest) = spec.strip_prefix("ecs.") {
                if rest.is_empty()
                    || !rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                {
                    return Err(invalid(
                        USE_SPECS,
                        value,
                        format!("{spec:?} is not an ECS type"),
                    ));
                }
                types.push(spec.to_string());
            } else if let Some((cpu, mem)) = vcpu_memory(spec) {
                if sizing::round_up(cpu, mem).is_none() {
                    return Err(invalid(
                        USE_SPECS,
                        value,
                        format!("{spec}: the largest ECI instance has 64 vCPU and 512 GiB"),
                    ));
                }
                // The first size is the one asked for; ECI rounds it up to a size it has.
                out.size.get_or_insert((cpu, mem));
            } else {
                return Err(invalid(
                    USE_SPECS,
                    value,
                    format!(
                        "{spec:?} is neither <vCPU>-<memory>Gi (2-4Gi) nor an ECS type (ecs.c6.large)"
                    ),
                ));
            }
        }
        if !types.is_empty() {
            out.options.instance_type = Some(types.join(","));
        }
    }

    // Spot.
    let strategy = annotations.get(SPOT_STRATEGY).map(|v| v.trim().to_string());
    let limit = match annotations.get(SPOT_PRICE_LIMIT) {
        None => None,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(l) if valid_price(l) => Some(l),
            _ => {
                return Err(invalid(
                    SPOT_PRICE_LIMIT,
                    v,
                    "a positive price per hour with at most 3 decimals",
                ));
            }
        },
    };
    match (strategy.as_deref(), limit) {
        (None, None) => {}
        (Some("SpotAsPriceGo"), None) => out.options.spot_strategy = strategy,
        (Some("SpotWithPriceLimit"), Some(_)) => {
            out.options.spot_strategy = strategy;
            out.options.spot_price_limit = limit;
        }
        (Some("SpotWithPriceLimit"), None) => {
            return Err(invalid(
                SPOT_STRATEGY,
                "SpotWithPriceLimit",
                format!("it needs {SPOT_PRICE_LIMIT}"),
            ));
        }
        (Some("SpotAsPriceGo"), Some(_)) | (None, Some(_)) => {
            return Err(invalid(
                SPOT_PRICE_LIMIT,
                annotations.get(SPOT_PRICE_LIMIT).map_or("", String::as_str),
                format!("a price limit needs {SPOT_STRATEGY}: SpotWithPriceLimit"),
            ));
        }
        (Some(other), _) => {
            return Err(invalid(
                SPOT_STRATEGY,
                other,
                "expected SpotAsPriceGo or SpotWithPriceLimit",
            ));
        }
    }

    // Extra ephemeral storage.
    if let Some(v) = annotations.get(EXTRA_EPHEMERAL_STORAGE) {
        let gib = quantity_gib(v)
            .filter(|g| *g > 0)
            .ok_or_else(|| invalid(EXTRA_EPHEMERAL_STORAGE, v, "expected a size such as 50Gi"))?;
        out.extra_ephemeral_storage_gib = u32::try_from(gib).unwrap_or(u32::MAX);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read_ok(pairs: &[(&str, &str)]) -> (FromAnnotations, Vec<RuntimeWarning>) {
        let mut warnings = Vec::new();
        let out = read(
            &annotations(pairs),
            &ImageCacheConfig::default(),
            &mut warnings,
        )
        .expect("accepted");
        (out, warnings)
    }

    fn refused(pairs: &[(&str, &str)]) -> String {
        match read(
            &annotations(pairs),
            &ImageCacheConfig::default(),
            &mut Vec::new(),
        ) {
            Err(ProviderError::InvalidSpec { reason, message }) => {
                assert_eq!(reason, INVALID);
                message
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn image_cache_matching_is_on_by_default_and_annotations_override_it() {
        let (out, warnings) = read_ok(&[]);
        assert!(warnings.is_empty());
        assert_eq!(out.options.auto_match_image_cache, Some(true));
        assert_eq!(out.options.auto_create_image_cache, None);
        assert_eq!(out.options.image_snapshot_id, None);

        let (out, _) = read_ok(&[(IMAGE_CACHE, "false")]);
        assert_eq!(out.options.auto_match_image_cache, Some(false));
        let (out, _) = read_ok(&[(AUTO_IMC, "true")]);
        assert_eq!(out.options.auto_create_image_cache, Some(true));

        let off = ImageCacheConfig {
            auto_match: false,
            auto_create: true,
            ..Default::default()
        };
        let out = read(
            &annotations(&[(IMAGE_CACHE, "TRUE"), (AUTO_IMC, "false")]),
            &off,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(out.options.auto_match_image_cache, Some(true));
        assert_eq!(out.options.auto_create_image_cache, None);

        // A named cache is used as such: no matching asked.
        let (out, _) = read_ok(&[(IMAGE_SNAPSHOT_ID, "imc-2ze1abc")]);
        assert_eq!(
            out.options.image_snapshot_id.as_deref(),
            Some("imc-2ze1abc")
        );
        assert_eq!(out.options.auto_match_image_cache, None);

        assert!(refused(&[(IMAGE_CACHE, "yes")]).contains(IMAGE_CACHE));
        assert!(refused(&[(AUTO_IMC, "1")]).contains(AUTO_IMC));
        assert!(refused(&[(IMAGE_SNAPSHOT_ID, "s-123")]).contains("imc-"));
        assert!(refused(&[(IMAGE_SNAPSHOT_ID, "imc-")]).contains(IMAGE_SNAPSHOT_ID));
    }

    #[test]
    fn use_specs_are_ecs_types_or_a_size() {
        let (out, _) = read_ok(&[(USE_SPECS, "ecs.c6.large, ecs.g6.large")]);
        assert_eq!(
            out.options.instance_type.as_deref(),
            Some("ecs.c6.large,ecs.g6.large")
        );
        assert_eq!(out.size, None);
        let (out, _) = read_ok(&[(USE_SPECS, "2-4Gi,4-8Gi,ecs.c6.xlarge")]);
        assert_eq!(out.size, Some((2.0, 4.0)));
        assert_eq!(out.options.instance_type.as_deref(), Some("ecs.c6.xlarge"));
        assert!(refused(&[(USE_SPECS, "big")]).contains("neither"));
        assert!(refused(&[(USE_SPECS, "")]).contains("1 to 5"));
        assert!(refused(&[(USE_SPECS, "1-1Gi,2-2Gi,3-3Gi,4-4Gi,5-5Gi,6-6Gi")]).contains("1 to 5"));
        assert!(refused(&[(USE_SPECS, "128-1024Gi")]).contains("largest"));
        assert!(refused(&[(USE_SPECS, "ecs.")]).contains("ECS type"));
    }

    #[test]
    fn spot_strategy_and_price_limit() {
        let (out, _) = read_ok(&[(SPOT_STRATEGY, "SpotAsPriceGo")]);
        assert_eq!(out.options.spot_strategy.as_deref(), Some("SpotAsPriceGo"));
        let (out, _) = read_ok(&[
            (SPOT_STRATEGY, "SpotWithPriceLimit"),
            (SPOT_PRICE_LIMIT, "0.25"),
        ]);
        assert_eq!(out.options.spot_price_limit, Some(0.25));
        assert!(refused(&[(SPOT_STRATEGY, "SpotWithPriceLimit")]).contains(SPOT_PRICE_LIMIT));
        assert!(refused(&[(SPOT_PRICE_LIMIT, "0.25")]).contains("needs"));
        assert!(refused(&[(SPOT_STRATEGY, "Cheap")]).contains("SpotAsPriceGo"));
        assert!(
            refused(&[
                (SPOT_STRATEGY, "SpotWithPriceLimit"),
                (SPOT_PRICE_LIMIT, "0.0001")
            ])
            .contains("3 decimals")
        );
        assert!(
            refused(&[
                (SPOT_STRATEGY, "SpotWithPriceLimit"),
                (SPOT_PRICE_LIMIT, "-1")
            ])
            .contains(SPOT_PRICE_LIMIT)
        );
    }

    #[test]
    fn extra_ephemeral_storage_in_gib() {
        let (out, _) = read_ok(&[(EXTRA_EPHEMERAL_STORAGE, "50Gi")]);
        assert_eq!(out.extra_ephemeral_storage_gib, 50);
        assert_eq!(quantity_gib("1Ti"), Some(1024));
        assert_eq!(quantity_gib("20G"), Some(19));
        assert_eq!(quantity_gib("1536Mi"), Some(2));
        assert_eq!(quantity_gib("1Xi"), None);
        assert!(refused(&[(EXTRA_EPHEMERAL_STORAGE, "lots")]).contains("50Gi"));
        assert!(refused(&[(EXTRA_EPHEMERAL_STORAGE, "0Gi")]).contains(EXTRA_EPHEMERAL_STORAGE));
    }

    #[test]
    fn unknown_eci_annotations_are_warned_about_by_name() {
        let (_, warnings) = read_ok(&[
            ("k8s.aliyun.com/eci-with-eip", "true"),
            ("k8s.aliyun.com/other", "x"),
            ("example.com/eci-x", "y"),
        ]);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].reason, NOT_SUPPORTED);
        assert!(warnings[0].message.contains("k8s.aliyun.com/eci-with-eip"));
        assert_eq!(warnings[0].container, None);
    }

    #[test]
    fn config_section_parses_with_defaults() {
        let c: ImageCacheConfig = serde_yaml::from_str("auto_create: true\n").unwrap();
        assert!(c.auto_match && c.auto_create && c.controller);
        let c: ImageCacheConfig =
            serde_yaml::from_str("controller: false\nlabel_selector: team=a\n").unwrap();
        assert!(!c.controller);
        assert_eq!(c.label_selector.as_deref(), Some("team=a"));
        assert!(serde_yaml::from_str::<ImageCacheConfig>("automatch: true\n").is_err());
        assert_eq!(c.keep_top_images, None, "off unless configured");
        let c: ImageCacheConfig = serde_yaml::from_str(
            "keep_top_images:\n  count: 5\n  window_minutes: 60\n  budget_gib: 200\n",
        )
        .unwrap();
        let keep = c.keep_top_images.unwrap();
        assert_eq!(
            (
                keep.count,
                keep.window_minutes,
                keep.budget_gib,
                keep.cache_size_gib
            ),
            (5, 60, 200, 20)
        );
    }
}
