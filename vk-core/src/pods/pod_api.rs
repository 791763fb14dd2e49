//! The pod controller's writes to the pod object: its status subresource, and the final
//! delete once the instance is gone.

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};

use crate::provider::PodRef;

pub(super) fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.namespace().unwrap_or_else(|| "default".into()),
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
    }
}

/// Patch the pod's status; the API's answer (the pod after the write).
pub(super) async fn patch_status(
    client: &kube::Client,
    pod: &Pod,
    status: PodStatus,
) -> Result<Pod, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod_ref(pod).namespace);
    let patch = Pod {
        status: Some(status),
        ..Default::default()
    };
    let mut patch = serde_json::to_value(&patch).map_err(kube::Error::SerdeError)?;
    // podIPs/hostIPs merge by IP in a strategic patch; a changed IP must replace the old
    // one, not be appended to it (the API rejects two IPs of one family).
    for list in ["podIPs", "hostIPs"] {
        if let Some(serde_json::Value::Array(items)) = patch.pointer_mut(&format!("/status/{list}"))
        {
            items.push(serde_json::json!({"$patch": "replace"}));
        }
    }
    api.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
}

/// Set one annotation on the pod, through its status subresource: the API server resets only
/// the spec, `deletionTimestamp` and `ownerReferences` of a status write (the pod status
/// strategy), so vk needs no write access to whole pods for it.
pub(super) async fn annotate(
    client: &kube::Client,
    pod: &Pod,
    key: &str,
    value: &str,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod_ref(pod).namespace);
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    api.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

/// Delete the pod object at once, only if it is still this pod (its UID).
pub(super) async fn delete_pod(client: &kube::Client, pod: &Pod) -> Result<(), kube::Error> {
    let r = pod_ref(pod);
    let api: Api<Pod> = Api::namespaced(client.clone(), &r.namespace);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(r.uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&r.name, &params).await {
        Ok(_) => Ok(()),
        // Already gone, or a new pod with the same name: nothing of ours to delete.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether resourceVersion `a` is older than `b`. Versions are opaque to clients, but every
/// API server backed by etcd hands out increasing integers; anything else is only compared
/// for equality (then a different version counts as older, and the next write corrects it).
pub(super) fn older_version(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => a != b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers_when_they_are() {
        assert!(older_version("9", "10"));
        assert!(!older_version("10", "10"));
        assert!(!older_version("11", "10"));
        assert!(older_version("a", "b"));
        assert!(!older_version("a", "a"));
    }
}
