//! What a pod asks of its node that no virtual node has: the host's network, PID and IPC
//! namespaces (there is no host: each pod is its own serverless instance), another OS than
//! Linux, and a runtime class
//! (the cloud runs the pod in its own sandbox; there are no runtime handlers to pick from).
//!
//! The kubelet's rule is the reference: a pod that cannot run as written is refused with a
//! reason (the pod goes Failed with a Warning event naming the field), never run silently
//! different. The usual way such pods arrive is a DaemonSet that tolerates every taint; the
//! message says how to keep it off the virtual node.

use k8s_openapi::api::core::v1::PodSpec;

use super::ResolveError;

/// The reason of a refused host namespace.
pub const HOST_NAMESPACE: &str = "HostNamespaceNotSupported";
/// The reason of a pod for another OS (the kubelet's admission reason).
pub const POD_OS: &str = "PodOSNotSupported";
/// The reason of a refused runtime class.
pub const RUNTIME_CLASS: &str = "RuntimeClassNotSupported";

const KEEP_OFF: &str = "run it on a real node (for a DaemonSet: a nodeAffinity with \
                        `type NotIn [virtual-kubelet]`)";

/// Refuses what no virtual node can give; Ok for everything else.
pub fn check(spec: &PodSpec) -> Result<(), ResolveError> {
    let asked: Vec<&str> = [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ]
    .into_iter()
    .filter(|(_, on)| *on == Some(true))
    .map(|(field, _)| field)
    .collect();
    if !asked.is_empty() {
        return Err(ResolveError::Unsupported {
            reason: HOST_NAMESPACE.into(),
            message: format!(
                "{}: this virtual node has no host to share namespaces with (each pod is its own \
                 serverless instance); {KEEP_OFF}",
                asked.join(", ")
            ),
        });
    }
    if let Some(os) = spec
        .os
        .as_ref()
        .map(|o| o.name.as_str())
        .filter(|os| *os != "linux")
    {
        return Err(ResolveError::Unsupported {
            reason: POD_OS.into(),
            message: format!(
                "the pod's OS ({os}) does not match the node's (linux): the cloud runs Linux \
                 instances here"
            ),
        });
    }
    if let Some(class) = spec.runtime_class_name.as_deref().filter(|c| !c.is_empty()) {
        return Err(ResolveError::Unsupported {
            reason: RUNTIME_CLASS.into(),
            message: format!(
                "runtimeClassName {class:?}: this virtual node has no runtime handlers (the \
                 cloud runs every pod in its own sandbox); drop the field or {KEEP_OFF}"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> PodSpec {
        let mut value = serde_json::json!({"containers": [{"name": "c", "image": "busybox"}]});
        value
            .as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn refused(json: serde_json::Value) -> (String, String) {
        match check(&spec(json)) {
            Err(ResolveError::Unsupported { reason, message }) => (reason, message),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn host_namespaces_are_refused_and_named() {
        let (reason, message) = refused(serde_json::json!({"hostNetwork": true}));
        assert_eq!(reason, HOST_NAMESPACE);
        assert!(message.starts_with("hostNetwork:"), "{message}");
        let (_, message) = refused(serde_json::json!({"hostPID": true, "hostIPC": true}));
        assert!(message.starts_with("hostPID, hostIPC:"), "{message}");
        assert!(message.contains("nodeAffinity"), "{message}");
    }

    #[test]
    fn a_runtime_class_is_refused_by_name() {
        let (reason, message) = refused(serde_json::json!({"runtimeClassName": "gvisor"}));
        assert_eq!(reason, RUNTIME_CLASS);
        assert!(message.contains("\"gvisor\""), "{message}");
    }

    #[test]
    fn a_windows_pod_is_refused() {
        let (reason, message) = refused(serde_json::json!({"os": {"name": "windows"}}));
        assert_eq!(reason, POD_OS);
        assert!(message.contains("windows"), "{message}");
        assert!(check(&spec(serde_json::json!({"os": {"name": "linux"}}))).is_ok());
    }

    #[test]
    fn false_and_empty_values_ask_for_nothing() {
        for json in [
            serde_json::json!({}),
            serde_json::json!({"hostNetwork": false, "hostPID": false, "hostIPC": false}),
            serde_json::json!({"runtimeClassName": ""}),
        ] {
            assert!(check(&spec(json.clone())).is_ok(), "{json}");
        }
    }
}
