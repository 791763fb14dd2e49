//! `imagePullSecrets` as registry credentials, read the way the kubelet's keyring reads them:
//!
//! - only secrets of type `kubernetes.io/dockerconfigjson` (key `.dockerconfigjson`,
//!   `{"auths": {server: entry}}`) and `kubernetes.io/dockercfg` (key `.dockercfg`,
//!   `{server: entry}`);
//! - an entry's `auth` (base64 of `user:password`) wins over `username`/`password`;
//! - a missing secret is not an error: the pod runs, and one warning names the missing
//!   secrets (the kubelet's `FailedToRetrieveImagePullSecret` event); so is a secret that
//!   cannot be read as registry credentials (the kubelet would fail the pull instead).
//!
//! Servers are normalised (scheme, trailing `/` and Docker's `/v1`/`/v2` API suffix dropped)
//! and kept once each, the first secret in the pod's order winning.

use base64::Engine as _;
use k8s_openapi::api::core::v1::{LocalObjectReference, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::{Ctx, ResolveError, ResolveWarning};
use crate::provider::RegistryCredential;

pub const MISSING_REASON: &str = "FailedToRetrieveImagePullSecret";
pub const INVALID_REASON: &str = "InvalidImagePullSecret";

const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
const DOCKERCFG: &str = "kubernetes.io/dockercfg";

#[derive(Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Entry {
    username: String,
    password: String,
    auth: String,
}

pub(super) async fn resolve_pull_secrets(
    ctx: &mut Ctx<'_>,
    refs: &[LocalObjectReference],
) -> Result<Vec<RegistryCredential>, ResolveError> {
    let mut credentials: Vec<RegistryCredential> = Vec::new();
    let mut missing = Vec::new();
    // An empty name names nothing (the kubelet skips it too).
    for name in refs
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !n.is_empty())
    {
        let Some(secret) = ctx.secret(name).await? else {
            missing.push(name.to_string());
            continue;
        };
        match credentials_of(&secret) {
            Ok(found) => {
                for c in found {
                    if !credentials.iter().any(|known| known.server == c.server) {
                        credentials.push(c);
                    }
                }
            }
            Err(why) => ctx.warnings.push(ResolveWarning {
                reason: INVALID_REASON.to_string(),
                message: format!(
                    "Image pull secret {}/{name} is not used: {why}",
                    ctx.namespace
                ),
            }),
        }
    }
    if !missing.is_empty() {
        ctx.warnings.push(ResolveWarning {
            reason: MISSING_REASON.to_string(),
            message: format!(
                "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                missing.join(", ")
            ),
        });
    }
    Ok(credentials)
}

/// Why a pull secret cannot be used (the pod's warning says it).
#[derive(Debug, thiserror::Error)]
enum PullSecretError {
    #[error("its type is {0:?}, not {DOCKER_CONFIG_JSON} or {DOCKERCFG}")]
    WrongType(String),
    #[error("it has no {0} key")]
    NoKey(&'static str),
    #[error("{key} is not valid JSON of its type: {source}")]
    BadJson {
        key: &'static str,
        source: serde_json::Error,
    },
    #[error("the auth field for {0:?} is not base64 of user:password")]
    BadAuth(String),
}

/// The credentials in one pull secret, sorted by server.
fn credentials_of(secret: &Secret) -> Result<Vec<RegistryCredential>, PullSecretError> {
    let type_ = secret.type_.as_deref().unwrap_or_default();
    let (key, legacy) = match type_ {
        DOCKER_CONFIG_JSON => (".dockerconfigjson", false),
        DOCKERCFG => (".dockercfg", true),
        other => return Err(PullSecretError::WrongType(other.to_string())),
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .filter(|b| !b.is_empty())
        .ok_or(PullSecretError::NoKey(key))?;
    let entries: BTreeMap<String, Entry> = if legacy {
        serde_json::from_slice(bytes)
    } else {
        serde_json::from_slice::<DockerConfigJson>(bytes).map(|c| c.auths)
    }
    .map_err(|source| PullSecretError::BadJson { key, source })?;
    let mut out = Vec::new();
    for (server, entry) in entries {
        let (username, password) = if entry.auth.is_empty() {
            (entry.username, entry.password)
        } else {
            decode_auth(&entry.auth).ok_or_else(|| PullSecretError::BadAuth(server.clone()))?
        };
        // Nothing to log in with (an identity token only): not a username/password pair.
        if username.is_empty() && password.is_empty() {
            continue;
        }
        out.push(RegistryCredential {
            server: normalise_server(&server),
            username,
            password,
        });
    }
    out.sort_by(|a, b| a.server.cmp(&b.server));
    Ok(out)
}

/// `base64(user:password)`, split at the first colon.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `https://index.docker.io/v1/` -> `index.docker.io`; `registry.example.com:5000/team/` ->
/// `registry.example.com:5000/team`.
fn normalise_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.trim_end_matches('/');
    let s = s
        .strip_suffix("/v1")
        .or_else(|| s.strip_suffix("/v2"))
        .unwrap_or(s);
    s.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_normalised() {
        for (raw, want) in [
            ("https://index.docker.io/v1/", "index.docker.io"),
            ("registry.example.com", "registry.example.com"),
            ("http://localhost:5000/", "localhost:5000"),
            ("quay.io/team/", "quay.io/team"),
            ("https://ghcr.io/v2", "ghcr.io"),
        ] {
            assert_eq!(normalise_server(raw), want, "{raw}");
        }
    }

    #[test]
    fn auth_is_user_colon_password() {
        assert_eq!(
            decode_auth("ZGVtbzpwYTpzcw=="),
            Some(("demo".into(), "pa:ss".into()))
        );
        assert_eq!(decode_auth("bm9jb2xvbg=="), None, "no colon");
        assert_eq!(decode_auth("!!"), None, "not base64");
    }
}
