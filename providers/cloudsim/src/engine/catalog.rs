//! The images the mock cloud can "pull". A container's image is looked up by its repository
//! name (registry host, tag and digest stripped: `registry.example.com/library/busybox:1.36`
//! is `library/busybox`, then `busybox`); an image not in the catalog fails to pull, as a
//! missing image does on the real service (`ErrImagePull`). An entry gives the image's
//! ENTRYPOINT and CMD, which decide what runs when the pod sets no command (Kubernetes rules:
//! `command` replaces the entrypoint, `args` replace CMD).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageEntry {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageCatalog {
    /// By repository name (`busybox`, `jenkins/inbound-agent`).
    pub images: BTreeMap<String, ImageEntry>,
    /// Pull any image, with `unknown_entry` as its configuration.
    pub allow_unknown: bool,
    pub unknown_entry: ImageEntry,
}

fn shell() -> ImageEntry {
    ImageEntry {
        entrypoint: Vec::new(),
        cmd: vec!["/bin/sh".into()],
    }
}

impl Default for ImageCatalog {
    /// Common base and build images, each a shell when nothing else is said, as their
    /// Docker Hub images are.
    fn default() -> Self {
        let images = [
            "busybox",
            "alpine",
            "ubuntu",
            "debian",
            "golang",
            "python",
            "node",
            "bash",
            "maven",
            "gradle",
            "openjdk",
            "eclipse-temurin",
            "rust",
            // What Jenkins kubernetes-plugin agent pods run beside the build tools.
            "jenkins/inbound-agent",
            "kaniko-project/executor",
        ]
        .into_iter()
        .map(|name| (name.to_string(), shell()))
        .collect();
        Self {
            images,
            allow_unknown: false,
            unknown_entry: shell(),
        }
    }
}

/// `host[:port]/a/b:tag@digest` -> `a/b`.
pub fn repository(image: &str) -> &str {
    let s = image.split('@').next().unwrap_or(image);
    let s = match s.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => s,
    };
    // A tag is a colon after the last slash.
    let name_start = s.rfind('/').map_or(0, |i| i + 1);
    match s[name_start..].rfind(':') {
        Some(colon) => &s[..name_start + colon],
        None => s,
    }
}

impl ImageCatalog {
    /// The image's configuration, or why it cannot be pulled.
    pub fn resolve(&self, image: &str) -> Result<ImageEntry, PullError> {
        if image.trim().is_empty() {
            return Err(PullError::EmptyName);
        }
        let repo = repository(image);
        let short = repo.rsplit('/').next().unwrap_or(repo);
        let library = repo.strip_prefix("library/");
        for key in [Some(repo), library, Some(short)].into_iter().flatten() {
            if let Some(entry) = self.images.get(key) {
                return Ok(entry.clone());
            }
        }
        if self.allow_unknown {
            return Ok(self.unknown_entry.clone());
        }
        Err(PullError::NotFound {
            image: image.to_string(),
            repository: repo.to_string(),
        })
    }
}

/// Why an image cannot be pulled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    #[error("the image name is empty")]
    EmptyName,
    #[error(
        "Failed to pull image \"{image}\": repository {repository} not found in the mock cloud's image catalog"
    )]
    NotFound { image: String, repository: String },
}

/// The argv of a container, Kubernetes style.
pub fn argv(entry: &ImageEntry, command: &[String], args: &[String]) -> Vec<String> {
    let head = if command.is_empty() {
        entry.entrypoint.clone()
    } else {
        command.to_vec()
    };
    let tail = if !args.is_empty() {
        args.to_vec()
    } else if command.is_empty() {
        entry.cmd.clone()
    } else {
        Vec::new()
    };
    head.into_iter().chain(tail).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_drop_host_tag_and_digest() {
        assert_eq!(repository("busybox"), "busybox");
        assert_eq!(repository("busybox:1.36"), "busybox");
        assert_eq!(repository("library/busybox:1.36"), "library/busybox");
        assert_eq!(
            repository("registry-vpc.cn-hangzhou.aliyuncs.com/eci_open/busybox:1.30"),
            "eci_open/busybox"
        );
        assert_eq!(repository("localhost:5000/app:v1"), "app");
        assert_eq!(
            repository("jenkins/inbound-agent@sha256:abc"),
            "jenkins/inbound-agent"
        );
        assert_eq!(
            repository("gcr.io/kaniko-project/executor:debug"),
            "kaniko-project/executor"
        );
    }

    #[test]
    fn catalog_resolves_known_images_and_refuses_others() {
        let catalog = ImageCatalog::default();
        assert_eq!(catalog.resolve("busybox:1.36").unwrap(), shell());
        assert!(catalog.resolve("docker.io/library/golang:1.22").is_ok());
        let err = catalog.resolve("example.com/nope:1").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(catalog.resolve("").is_err());
        let open = ImageCatalog {
            allow_unknown: true,
            ..Default::default()
        };
        assert!(open.resolve("example.com/nope:1").is_ok());
    }

    #[test]
    fn argv_follows_kubernetes_rules() {
        let entry = ImageEntry {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(argv(&entry, &[], &[]), s(&["/entry", "default"]));
        assert_eq!(argv(&entry, &[], &s(&["a"])), s(&["/entry", "a"]));
        assert_eq!(argv(&entry, &s(&["sh"]), &[]), s(&["sh"]));
        assert_eq!(
            argv(&entry, &s(&["sh"]), &s(&["-c", "x"])),
            s(&["sh", "-c", "x"])
        );
    }
}
