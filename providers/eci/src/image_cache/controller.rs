//! The `ImageCache` controller: a kube-runtime `Controller` over the cluster's ImageCache
//! objects. Each object gets a finalizer; [`sync::apply`] runs on every change and when its
//! requeue comes; the status is written back when it changed, and the notes become Events on
//! the object (events.k8s.io, in `default`, as for any cluster-scoped object). On deletion
//! [`sync::cleanup`] deletes the cloud's cache, then the finalizer goes.
//!
//! `image_cache: label_selector:` narrows it to some objects, for several vk deployments in one
//! cluster. One controller per process (the vk binary starts it once, for all its eci nodes, and with
//! leader election only on the leader). Without the CRD in the cluster it waits, looking every
//! minute, instead of failing the node.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource as _};
use serde::Deserialize;

use crate::client::EciClient;
use crate::error::EciError;
use crate::image_cache::crd::ImageCache;
use crate::image_cache::sync::{self, CachePlacement, Note};
use crate::wire::request::ImageRegistryCredential;

pub const FINALIZER: &str = "eci.alibabacloud.com/vk-image-cache";
/// The events' reporting controller.
pub const REPORTER: &str = "vk-image-cache";
/// How often to look for the CRD while it is not installed.
const CRD_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the cloud: {0}")]
    Cloud(#[from] EciError),
    #[error("the API server: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Finalizer(String),
}

struct Ctx {
    kube: Client,
    cloud: Arc<EciClient>,
    placement: CachePlacement,
    recorder: Recorder,
}

/// Run until `stop` resolves.
pub async fn run(
    kube: Client,
    cloud: Arc<EciClient>,
    placement: CachePlacement,
    label_selector: Option<String>,
    instance: String,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ImageCache> = Api::all(kube.clone());
    let stop = futures::future::FutureExt::shared(Box::pin(stop));
    let mut warned = false;
    loop {
        let mut probe = ListParams::default().limit(1);
        if let Some(selector) = &label_selector {
            probe = probe.labels(selector);
        }
        match api.list(&probe).await {
            Ok(_) => break,
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "the ImageCache CRD (imagecaches.eci.alibabacloud.com) cannot be listed; the image cache controller waits for it (kubectl apply -f manifests/crds/imagecache.yaml)");
                    warned = true;
                }
                tokio::select! {
                    _ = stop.clone() => return,
                    _ = tokio::time::sleep(CRD_WAIT) => {}
                }
            }
        }
    }
    tracing::info!("image cache controller running");
    let recorder = Recorder::new(
        kube.clone(),
        Reporter {
            controller: REPORTER.into(),
            instance: Some(instance),
        },
    );
    let ctx = Arc::new(Ctx {
        kube,
        cloud,
        placement,
        recorder,
    });
    let mut watch = watcher::Config::default();
    if let Some(selector) = &label_selector {
        watch = watch.labels(selector);
    }
    Controller::new(api, watch)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "image cache reconcile");
            }
        })
        .await;
    tracing::info!("image cache controller stopped");
}

fn error_policy(object: Arc<ImageCache>, error: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(imagecache = object.name(), error = %error, "image cache reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(object: Arc<ImageCache>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let api: Api<ImageCache> = Api::all(ctx.kube.clone());
    finalizer(&api, FINALIZER, object, |event| async {
        match event {
            Finalized::Apply(object) => apply(&api, &object, &ctx).await,
            Finalized::Cleanup(object) => {
                let notes = sync::cleanup(&ctx.cloud, &object).await?;
                publish(&ctx, &object, &notes).await;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

async fn apply(api: &Api<ImageCache>, object: &ImageCache, ctx: &Ctx) -> Result<Action, Error> {
    let (credentials, mut notes) =
        pull_credentials(&ctx.kube, &object.spec.image_pull_secrets).await;
    let step = sync::apply(&ctx.cloud, &ctx.placement, object, credentials).await?;
    if object.status.as_ref() != Some(&step.status) {
        api.patch_status(
            object.name(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": step.status })),
        )
        .await?;
    }
    notes.extend(step.notes);
    publish(ctx, object, &notes).await;
    Ok(Action::requeue(step.requeue))
}

async fn publish(ctx: &Ctx, object: &ImageCache, notes: &[Note]) {
    let reference = object.object_ref(&());
    for note in notes {
        let event = KubeEvent {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.clone(),
            note: Some(note.message.clone()),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(imagecache = object.name(), reason = %note.reason, error = %e, "recording an ImageCache event failed");
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Entry {
    username: String,
    password: String,
    auth: String,
}

/// Registry logins of a `kubernetes.io/dockerconfigjson` (or `dockercfg`) secret; `auth`
/// (base64 of `user:password`) wins over `username`/`password`, as in the kubelet.
pub fn registry_credentials(secret: &Secret) -> Option<Vec<ImageRegistryCredential>> {
    let data = secret.data.as_ref()?;
    let auths: std::collections::BTreeMap<String, Entry> =
        if let Some(json) = data.get(".dockerconfigjson") {
            serde_json::from_slice::<DockerConfig>(&json.0).ok()?.auths
        } else {
            serde_json::from_slice(&data.get(".dockercfg")?.0).ok()?
        };
    Some(
        auths
            .into_iter()
            .map(|(server, e)| {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(e.auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| {
                        s.split_once(':')
                            .map(|(u, p)| (u.to_string(), p.to_string()))
                    });
                let (user_name, password) = decoded.unwrap_or((e.username, e.password));
                let server = server
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .trim_end_matches("/v1")
                    .trim_end_matches("/v2")
                    .to_string();
                ImageRegistryCredential {
                    server,
                    user_name,
                    password,
                }
            })
            .collect(),
    )
}

/// The spec's `namespace:name` secrets as registry logins; what cannot be read is a Warning
/// note and is left out (the images may be public).
async fn pull_credentials(
    kube: &Client,
    refs: &[String],
) -> (Vec<ImageRegistryCredential>, Vec<Note>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for r in refs {
        let Some((ns, name)) = sync::pull_secret_ref(r) else {
            continue;
        };
        let api: Api<Secret> = Api::namespaced(kube.clone(), ns);
        let why = match api.get_opt(name).await {
            Ok(Some(secret)) => match registry_credentials(&secret) {
                Some(creds) => {
                    out.extend(creds);
                    continue;
                }
                None => "it holds no .dockerconfigjson or .dockercfg that can be read".to_string(),
            },
            Ok(None) => "it does not exist".to_string(),
            Err(e) => e.to_string(),
        };
        notes.push(Note {
            warning: true,
            reason: "FailedToRetrieveImagePullSecret".into(),
            message: format!("image pull secret {r}: {why}; the cache is made without it"),
        });
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn pull_secrets_become_registry_credentials() {
        let mut secret = Secret::default();
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:pw");
        let json = format!(
            r#"{{"auths": {{"https://registry.example.com/v1/": {{"auth": "{auth}"}}, "quay.io": {{"username": "u", "password": "p"}}}}}}"#
        );
        secret.data = Some(
            [(
                ".dockerconfigjson".to_string(),
                ByteString(json.into_bytes()),
            )]
            .into_iter()
            .collect(),
        );
        let creds = registry_credentials(&secret).unwrap();
        assert_eq!(creds.len(), 2);
        let reg = creds
            .iter()
            .find(|c| c.server == "registry.example.com")
            .unwrap();
        assert_eq!(
            (reg.user_name.as_str(), reg.password.as_str()),
            ("robot", "pw")
        );
        let quay = creds.iter().find(|c| c.server == "quay.io").unwrap();
        assert_eq!(quay.user_name, "u");
        assert!(registry_credentials(&Secret::default()).is_none());
    }
}
