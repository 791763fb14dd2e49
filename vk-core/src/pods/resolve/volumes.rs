//! Pod volumes, materialised the way the kubelet's volume plugins would write them:
//!
//! - `emptyDir` (also a volume with no source at all, which the API server defaults to one):
//!   `medium: Memory` is tmpfs, `sizeLimit` in bytes;
//! - `configMap` / `secret`: without `items` every key (configMap `data` and `binaryData`)
//!   becomes a file named after the key; with `items` only those keys, at their paths, with
//!   their modes. `defaultMode` defaults to 0644. A missing object or key is a
//!   [`ResolveError::MissingReference`] unless `optional`, which yields no file instead;
//! - `downwardAPI`: `metadata.*` fieldRefs (labels and annotations as sorted `k="v"` lines) and
//!   resourceFieldRefs (which must name their container);
//! - `projected`: serviceAccountToken (a bound token for the pod's service account, default
//!   expiry 3600 s), configMap, secret and downwardAPI sources merged into one directory,
//!   later sources overwriting earlier ones at the same path; `defaultMode` defaults to 0644.
//!   That is every pod's `kube-api-access-*` volume;
//! - everything that needs node or network storage is [`ResolveError::Unsupported`].
//!
//! File paths are checked like the kubelet's atomic writer (relative, no `..` element, not
//! starting with `..`, at most 4096 bytes with elements of at most 255) and cleaned; modes must
//! be within 0..=0777. The files of a volume come out sorted by path.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccountTokenProjection,
    Volume as ApiVolume,
};

use super::quantity::parse_units;
use super::{Ctx, ResolveError, fieldpath, resources};
use crate::provider::{Volume, VolumeFile, VolumeSource};

const DEFAULT_MODE: i32 = 0o644;
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// The audience (none: the API server's) and lifetime a projected token is requested with.
fn token_request(t: &ServiceAccountTokenProjection) -> (Option<&str>, i64) {
    let audience = t.audience.as_deref().filter(|a| !a.is_empty());
    let expiration = t
        .expiration_seconds
        .unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECONDS);
    (audience, expiration)
}

/// Every service-account token the pod's projected volumes ask for (audience, lifetime).
pub fn token_requests(pod: &Pod) -> Vec<(Option<String>, i64)> {
    let mut requests = Vec::new();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    for source in volumes
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
    {
        if let Some(t) = &source.service_account_token {
            let (audience, expiration) = token_request(t);
            let request = (audience.map(str::to_string), expiration);
            if !requests.contains(&request) {
                requests.push(request);
            }
        }
    }
    requests
}
const SUPPORTED: &str = "use emptyDir, configMap, secret, downwardAPI or projected";

pub(super) async fn resolve_volumes(
    ctx: &mut Ctx<'_>,
    volumes: &[ApiVolume],
) -> Result<Vec<Volume>, ResolveError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(volumes.len());
    for v in volumes {
        if !seen.insert(v.name.as_str()) {
            return Err(ResolveError::Invalid(format!(
                "volume {:?} is defined more than once",
                v.name
            )));
        }
        out.push(Volume {
            name: v.name.clone(),
            source: resolve_volume(ctx, v).await?,
        });
    }
    Ok(out)
}

/// The first volume type set on `v` that needs storage a virtual node does not have.
fn unsupported_kind(v: &ApiVolume) -> Option<&'static str> {
    [
        (v.host_path.is_some(), "hostPath"),
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.csi.is_some(), "csi"),
        (v.image.is_some(), "image"),
        (v.nfs.is_some(), "nfs"),
        (v.iscsi.is_some(), "iscsi"),
        (v.fc.is_some(), "fc"),
        (v.rbd.is_some(), "rbd"),
        (v.cephfs.is_some(), "cephfs"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.azure_file.is_some(), "azureFile"),
        (v.cinder.is_some(), "cinder"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.flocker.is_some(), "flocker"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageos"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
    ]
    .into_iter()
    .find_map(|(set, kind)| set.then_some(kind))
}

fn unsupported(message: String) -> ResolveError {
    ResolveError::Unsupported {
        reason: "UnsupportedVolume".to_string(),
        message,
    }
}

async fn resolve_volume(ctx: &mut Ctx<'_>, v: &ApiVolume) -> Result<VolumeSource, ResolveError> {
    if let Some(kind) = unsupported_kind(v) {
        return Err(unsupported(format!(
            "volume {:?} uses {kind}, which a virtual node cannot provide; {SUPPORTED}",
            v.name
        )));
    }
    let kinds = [
        v.empty_dir.is_some(),
        v.config_map.is_some(),
        v.secret.is_some(),
        v.downward_api.is_some(),
        v.projected.is_some(),
    ];
    if kinds.into_iter().filter(|set| *set).count() > 1 {
        return Err(ResolveError::Invalid(format!(
            "volume {:?} specifies more than one volume type",
            v.name
        )));
    }
    let mut files = Files::new(&v.name);
    if let Some(src) = &v.config_map {
        let items = Items {
            list: src.items.as_deref(),
            default_mode: src.default_mode.unwrap_or(DEFAULT_MODE),
            optional: src.optional.unwrap_or(false),
        };
        project_config_map(ctx, &mut files, &src.name, items).await?;
    } else if let Some(src) = &v.secret {
        let items = Items {
            list: src.items.as_deref(),
            default_mode: src.default_mode.unwrap_or(DEFAULT_MODE),
            optional: src.optional.unwrap_or(false),
        };
        let name = src.secret_name.as_deref().unwrap_or_default();
        project_secret(ctx, &mut files, name, items).await?;
    } else if let Some(src) = &v.downward_api {
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        downward_items(
            ctx,
            &mut files,
            src.items.as_deref().unwrap_or_default(),
            mode,
        )?;
    } else if let Some(src) = &v.projected {
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        for source in src.sources.as_deref().unwrap_or_default() {
            if let Some(s) = &source.secret {
                let items = Items {
                    list: s.items.as_deref(),
                    default_mode: mode,
                    optional: s.optional.unwrap_or(false),
                };
                project_secret(ctx, &mut files, &s.name, items).await?;
            } else if let Some(c) = &source.config_map {
                let items = Items {
                    list: c.items.as_deref(),
                    default_mode: mode,
                    optional: c.optional.unwrap_or(false),
                };
                project_config_map(ctx, &mut files, &c.name, items).await?;
            } else if let Some(d) = &source.downward_api {
                downward_items(
                    ctx,
                    &mut files,
                    d.items.as_deref().unwrap_or_default(),
                    mode,
                )?;
            } else if let Some(t) = &source.service_account_token {
                let (audience, expiration) = token_request(t);
                let token = ctx.token(audience, expiration).await?;
                files.add(&t.path, token.into_bytes(), mode)?;
            } else if source.cluster_trust_bundle.is_some() {
                return Err(unsupported(format!(
                    "volume {:?} projects a clusterTrustBundle, which a virtual node cannot provide; \
                     project the bundle from a configMap or secret instead",
                    v.name
                )));
            }
        }
    } else {
        let empty_dir = v.empty_dir.clone().unwrap_or_default();
        let memory = match empty_dir.medium.as_deref().unwrap_or_default() {
            "" => false,
            "Memory" => true,
            m if m.starts_with("HugePages") => {
                return Err(unsupported(format!(
                    "volume {:?} is an emptyDir with medium {m}, which a virtual node cannot provide; \
                     use medium \"\" or \"Memory\"",
                    v.name
                )));
            }
            m => {
                return Err(ResolveError::Invalid(format!(
                    "volume {:?}: unknown emptyDir medium {m:?}",
                    v.name
                )));
            }
        };
        let size_limit_bytes = empty_dir
            .size_limit
            .map(|q| {
                parse_units(&q.0).map_err(|e| {
                    ResolveError::Invalid(format!("volume {:?}: sizeLimit: {e}", v.name))
                })
            })
            .transpose()?;
        return Ok(VolumeSource::EmptyDir {
            memory,
            size_limit_bytes,
        });
    }
    Ok(VolumeSource::Files(files.into_vec()))
}

/// configMap `data` and `binaryData` by key (`data` wins on a clash, which validation forbids).
fn config_map_content(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut content: BTreeMap<String, Vec<u8>> = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    content.extend(
        cm.data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes())),
    );
    content
}

fn secret_content(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// Which keys of a configMap or secret become files, and how.
#[derive(Clone, Copy)]
struct Items<'a> {
    /// `items`: without them (or with none) every key, named after itself.
    list: Option<&'a [KeyToPath]>,
    default_mode: i32,
    /// A missing object or key yields no file instead of an error.
    optional: bool,
}

/// A configMap volume or projection: its keys as files (see [`project_keys`]).
async fn project_config_map(
    ctx: &mut Ctx<'_>,
    files: &mut Files<'_>,
    name: &str,
    items: Items<'_>,
) -> Result<(), ResolveError> {
    match ctx.config_map(name).await? {
        Some(cm) => project_keys(
            ctx,
            files,
            &config_map_content(&cm),
            items,
            "configmap",
            name,
        ),
        None if items.optional => Ok(()),
        None => Err(ctx.not_found("configmap", name)),
    }
}

/// A secret volume or projection: its keys as files (see [`project_keys`]).
async fn project_secret(
    ctx: &mut Ctx<'_>,
    files: &mut Files<'_>,
    name: &str,
    items: Items<'_>,
) -> Result<(), ResolveError> {
    match ctx.secret(name).await? {
        Some(secret) => project_keys(ctx, files, &secret_content(&secret), items, "secret", name),
        None if items.optional => Ok(()),
        None => Err(ctx.not_found("secret", name)),
    }
}

/// The kubelet's `MakePayload` for configMap/secret volumes and projections.
fn project_keys(
    ctx: &Ctx<'_>,
    files: &mut Files,
    content: &BTreeMap<String, Vec<u8>>,
    items: Items<'_>,
    kind: &str,
    name: &str,
) -> Result<(), ResolveError> {
    let Items {
        list,
        default_mode,
        optional,
    } = items;
    match list.filter(|i| !i.is_empty()) {
        None => {
            for (key, data) in content {
                files.add(key, data.clone(), default_mode)?;
            }
        }
        Some(items) => {
            for item in items {
                match content.get(&item.key) {
                    Some(data) => {
                        files.add(&item.path, data.clone(), item.mode.unwrap_or(default_mode))?
                    }
                    None if optional => {}
                    None => return Err(ctx.key_not_found(kind, name, &item.key)),
                }
            }
        }
    }
    Ok(())
}

/// The kubelet's `downwardapi.CollectData`.
fn downward_items(
    ctx: &Ctx<'_>,
    files: &mut Files,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
) -> Result<(), ResolveError> {
    for item in items {
        let content = if let Some(fs) = &item.field_ref {
            fieldpath::volume_value(ctx.pod, &ctx.namespace, fs)?
        } else if let Some(rs) = &item.resource_field_ref {
            resources::resource_field_value(ctx.pod, None, rs)?
        } else {
            String::new()
        };
        files.add(
            &item.path,
            content.into_bytes(),
            item.mode.unwrap_or(default_mode),
        )?;
    }
    Ok(())
}

/// The files of one volume, by cleaned path.
struct Files<'a> {
    volume: &'a str,
    files: BTreeMap<String, VolumeFile>,
}

impl<'a> Files<'a> {
    fn new(volume: &'a str) -> Self {
        Self {
            volume,
            files: BTreeMap::new(),
        }
    }

    fn add(&mut self, path: &str, content: Vec<u8>, mode: i32) -> Result<(), ResolveError> {
        let bad = |why: &str| {
            ResolveError::Invalid(format!(
                "volume {:?}: file path {path:?} {why}",
                self.volume
            ))
        };
        let path = clean_path(path).map_err(bad)?;
        let mode = u32::try_from(mode)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                ResolveError::Invalid(format!(
                    "volume {:?}: file {path:?}: mode {mode} is not between 0 and 0777 (511)",
                    self.volume
                ))
            })?;
        self.files.insert(
            path.clone(),
            VolumeFile {
                path,
                content,
                mode,
            },
        );
        Ok(())
    }

    fn into_vec(self) -> Vec<VolumeFile> {
        self.files.into_values().collect()
    }
}

/// The atomic writer's `validatePath`, then `filepath.Clean`.
fn clean_path(path: &str) -> Result<String, &'static str> {
    if path.is_empty() {
        return Err("must not be empty");
    }
    if path.starts_with('/') {
        return Err("must be a relative path");
    }
    if path.len() > 4096 {
        return Err("must be at most 4096 bytes long");
    }
    if path.contains('\0') {
        return Err("must not contain NUL");
    }
    let elements: Vec<&str> = path.split('/').collect();
    if elements.contains(&"..") {
        return Err("must not contain '..'");
    }
    if elements.iter().any(|e| e.len() > 255) {
        return Err("has an element longer than 255 bytes");
    }
    if elements.first().is_some_and(|e| e.starts_with("..")) {
        return Err("must not start with '..'");
    }
    let cleaned: Vec<&str> = elements
        .into_iter()
        .filter(|e| !e.is_empty() && *e != ".")
        .collect();
    if cleaned.is_empty() {
        return Err("does not name a file");
    }
    Ok(cleaned.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_and_cleaned() {
        assert_eq!(clean_path("token"), Ok("token".to_string()));
        assert_eq!(clean_path("a/b"), Ok("a/b".to_string()));
        assert_eq!(clean_path("./a//b/./c"), Ok("a/b/c".to_string()));
        assert_eq!(clean_path("a/.hidden"), Ok("a/.hidden".to_string()));
        assert_eq!(clean_path("a/..b"), Ok("a/..b".to_string()));
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../b",
            "a/..",
            "..data",
            "..data/x",
            ".",
            "./",
            "a\0b",
        ] {
            assert!(clean_path(bad).is_err(), "{bad:?}");
        }
        assert!(clean_path(&"x".repeat(256)).is_err());
        assert!(clean_path(&"x/".repeat(2100)).is_err());
        assert!(clean_path(&"x".repeat(255)).is_ok());
    }
}
