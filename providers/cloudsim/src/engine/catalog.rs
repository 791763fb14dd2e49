//! The images the mock cloud can "pull". A container's image is looked up by its repository
//! name (registry host, tag and digest stripped: `registry.example.com/library/busybox:1.36`
//! is `library/busybox`, then `busybox`); an image not in the catalog fails to pull, as a
//! missing image does on the real service (`ErrImagePull`). An entry gives the image's
//! ENTRYPOINT and CMD, which decide what runs when the pod sets no command (Kubernetes rules:
//! `command` replaces the entrypoint, `args` replace CMD), and its compressed layers, which
//! the realistic latency model (`latency`) pulls.
//!
//! The default catalog's layers: the compressed sizes (linux/amd64, MB) of the current tags
//! as Docker Hub's tag pages list them (golang 1.22, python 3.12, node 20, rust 1, maven 3.9,
//! gradle 8, eclipse-temurin 17, jenkins/inbound-agent latest-jdk17, bash 5, alpine 3.20,
//! busybox 1.36, ubuntu 24.04, debian 12), rounded, split into layers by each image's
//! Dockerfile `FROM` chain so that shared bases are one layer id: debian bookworm is shared by
//! golang, python, node, rust and jenkins/inbound-agent (and the `buildpack-deps:bookworm*`
//! layers by the first four); ubuntu noble by eclipse-temurin, maven and gradle; alpine by
//! bash. They are approximations (a tag's size moves with every rebuild), good to tens of MB.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One compressed layer of an image: the same id in two images is one download.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layer {
    pub id: String,
    /// Compressed size, MB (10^6 bytes).
    pub size_mb: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageEntry {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// Its compressed layers, base first; none: the realistic model counts
    /// `unlisted_image_mb`.
    pub layers: Vec<Layer>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
        layers: Vec::new(),
    }
}

// Shared bases (id, MB).
const BOOKWORM: (&str, f64) = ("debian:bookworm", 48.5);
const BOOKWORM_CURL: (&str, f64) = ("buildpack-deps:bookworm-curl", 24.0);
const BOOKWORM_SCM: (&str, f64) = ("buildpack-deps:bookworm-scm", 64.4);
const BOOKWORM_FULL: (&str, f64) = ("buildpack-deps:bookworm", 211.0);
const NOBLE: (&str, f64) = ("ubuntu:noble", 29.7);
const TEMURIN_17: [(&str, f64); 2] = [
    ("eclipse-temurin:17-jdk/packages", 17.0),
    ("eclipse-temurin:17-jdk/jdk", 144.0),
];
const ALPINE: (&str, f64) = ("alpine:3.20", 3.6);

/// The default catalog: repository, layers.
fn default_images() -> Vec<(&'static str, Vec<(&'static str, f64)>)> {
    let buildpack = [BOOKWORM, BOOKWORM_CURL, BOOKWORM_SCM, BOOKWORM_FULL];
    let temurin = [NOBLE, TEMURIN_17[0], TEMURIN_17[1]];
    let with = |base: &[(&'static str, f64)], own: &[(&'static str, f64)]| {
        base.iter().chain(own).copied().collect::<Vec<_>>()
    };
    vec![
        ("busybox", vec![("busybox:1.36", 2.2)]),
        ("alpine", vec![ALPINE]),
        ("ubuntu", vec![NOBLE]),
        ("debian", vec![BOOKWORM]),
        ("bash", with(&[ALPINE], &[("bash:5", 2.9)])),
        // FROM buildpack-deps:bookworm-scm, + gcc/libc6-dev/make, + the Go toolchain.
        (
            "golang",
            with(
                &buildpack[..3],
                &[("golang:1.22/gcc", 86.0), ("golang:1.22/go", 68.0)],
            ),
        ),
        (
            "python",
            with(
                &buildpack,
                &[("python:3.12/deps", 6.2), ("python:3.12/python", 29.0)],
            ),
        ),
        (
            "node",
            with(&buildpack, &[("node:20/node", 48.0), ("node:20/yarn", 1.3)]),
        ),
        ("rust", with(&buildpack, &[("rust:1/toolchain", 185.0)])),
        ("eclipse-temurin", temurin.to_vec()),
        ("openjdk", temurin.to_vec()),
        ("maven", with(&temurin, &[("maven:3.9/maven", 9.5)])),
        (
            "gradle",
            with(
                &temurin,
                &[("gradle:8/deps", 30.0), ("gradle:8/gradle", 135.0)],
            ),
        ),
        // What Jenkins kubernetes-plugin agent pods run beside the build tools: FROM debian
        // bookworm, + git/curl/openssh, + a JDK 17, + agent.jar and the launcher.
        (
            "jenkins/inbound-agent",
            with(
                &[BOOKWORM],
                &[
                    ("jenkins/agent:packages", 42.0),
                    ("jenkins/agent:jdk17", 56.0),
                    ("jenkins/agent:agent.jar", 1.5),
                ],
            ),
        ),
        // A static executor on scratch: small.
        (
            "kaniko-project/executor",
            vec![
                ("kaniko-project/executor:binary", 20.0),
                ("kaniko-project/executor:helpers", 4.5),
            ],
        ),
        // GitLab Runner's helper (registry.gitlab.com), in every job pod beside the build
        // image: no size listed where the others' come from, so the realistic model counts
        // `unlisted_image_mb` for it.
        ("gitlab-org/gitlab-runner/gitlab-runner-helper", Vec::new()),
    ]
}

impl Default for ImageCatalog {
    /// Common base and build images, each a shell when nothing else is said, as their
    /// Docker Hub images are, with their layers (see the module's note on sizes).
    fn default() -> Self {
        let images = default_images()
            .into_iter()
            .map(|(name, layers)| {
                let entry = ImageEntry {
                    layers: layers
                        .into_iter()
                        .map(|(id, size_mb)| Layer {
                            id: id.to_string(),
                            size_mb,
                        })
                        .collect(),
                    ..shell()
                };
                (name.to_string(), entry)
            })
            .collect();
        Self {
            images,
            allow_unknown: false,
            unknown_entry: shell(),
        }
    }
}

/// An image reference as image caches compare them: `docker.io/` (or `index.docker.io/`)
/// and `library/` dropped, `:latest` added when there is neither tag nor digest.
pub fn normalize(image: &str) -> String {
    let s = image.trim();
    let s = s
        .strip_prefix("docker.io/")
        .or_else(|| s.strip_prefix("index.docker.io/"))
        .unwrap_or(s);
    let s = s.strip_prefix("library/").unwrap_or(s);
    let name_start = s.rfind('/').map_or(0, |i| i + 1);
    if s.contains('@') || s[name_start..].contains(':') {
        s.to_string()
    } else {
        format!("{s}:latest")
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

    /// The image's layers (id, MB); an entry without layers is one layer of `unlisted_mb`
    /// of its own (named by its normalised reference).
    pub fn layers(&self, image: &str, unlisted_mb: f64) -> Result<Vec<(String, f64)>, PullError> {
        let entry = self.resolve(image)?;
        if entry.layers.is_empty() {
            return Ok(vec![(normalize(image), unlisted_mb)]);
        }
        Ok(entry
            .layers
            .into_iter()
            .map(|l| (l.id, l.size_mb))
            .collect())
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
        assert_eq!(catalog.resolve("busybox:1.36").unwrap().cmd, shell().cmd);
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
    fn references_normalise_as_caches_compare_them() {
        assert_eq!(normalize("golang"), "golang:latest");
        assert_eq!(normalize("docker.io/library/golang:1.22"), "golang:1.22");
        assert_eq!(normalize("library/golang"), "golang:latest");
        assert_eq!(
            normalize("jenkins/inbound-agent"),
            "jenkins/inbound-agent:latest"
        );
        assert_eq!(
            normalize("localhost:5000/app"),
            "localhost:5000/app:latest",
            "a registry's port is no tag"
        );
        assert_eq!(normalize("busybox@sha256:ab"), "busybox@sha256:ab");
    }

    #[test]
    fn argv_follows_kubernetes_rules() {
        let entry = ImageEntry {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            layers: Vec::new(),
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
