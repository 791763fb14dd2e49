//! The floor of `pod-startup`: what bind -> Running costs on this control plane when the
//! "kubelet" does the least any kubelet must: a Node object the bench registers itself; per
//! pod, straight from the watch event, the TokenRequest its projected service-account token
//! volume needs (as every kubelet makes before starting the containers) and one status PATCH.
//! No events, no provider, no other resolution. vk's figures are read against it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use vk_core::pods::ApiObjectSource;
use vk_core::pods::resolve::{ObjectSource as _, service_account_name, token_requests};

/// Create a Ready node named `name` with vk's labels and taint.
pub async fn register_node(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {
                "type": "virtual-kubelet",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
        },
        "spec": {
            "taints": [{"key": "virtual-kubelet.io/provider", "value": "mock", "effect": "NoSchedule"}],
        },
    }))?;
    nodes.create(&PostParams::default(), &node).await?;
    let now = Timestamp::now().to_string();
    let status = json!({
        "status": {
            "capacity": {"cpu": "1000", "memory": "4Ti", "pods": "1000"},
            "allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "1000"},
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "bench floor", "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
        },
    });
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Until dropped, patch every pending pod bound to `node` to Running, `workers` at once.
pub fn spawn_status_writer(
    client: kube::Client,
    node: String,
    workers: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let done = Arc::new(Mutex::new(HashSet::<String>::new()));
        watcher(pods, config)
            .applied_objects()
            .filter_map(|pod| async move { pod.ok() })
            .for_each_concurrent(workers, |pod| {
                let client = client.clone();
                let done = done.clone();
                async move {
                    let pending = pod.status.as_ref().and_then(|s| s.phase.as_deref())
                        == Some("Pending");
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    if !pending || !done.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone()) {
                        return;
                    }
                    let ns = pod.metadata.namespace.clone().unwrap_or_default();
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    // The same TokenRequests vk makes (one per token the volumes ask for).
                    let tokens = ApiObjectSource::new(client.clone());
                    let account = service_account_name(&pod);
                    for (audience, expiration) in token_requests(&pod) {
                        if let Err(e) = tokens
                            .service_account_token(
                                &ns,
                                account,
                                &name,
                                &uid,
                                audience.as_deref(),
                                expiration,
                            )
                            .await
                        {
                            eprintln!("floor: token for {ns}/{name}: {e}");
                        }
                    }
                    let now = Timestamp::now().to_string();
                    let containers: Vec<serde_json::Value> = pod
                        .spec
                        .iter()
                        .flat_map(|s| s.containers.iter())
                        .map(|c| {
                            json!({
                                "name": c.name, "image": c.image, "imageID": "", "ready": true,
                                "started": true, "restartCount": 0,
                                "state": {"running": {"startedAt": now}},
                            })
                        })
                        .collect();
                    let status = json!({
                        "status": {
                            "phase": "Running",
                            "startTime": now,
                            "conditions": [
                                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                            ],
                            "containerStatuses": containers,
                        },
                    });
                    let api: Api<Pod> = Api::namespaced(client, &ns);
                    if let Err(e) = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&status))
                        .await
                    {
                        eprintln!("floor: writing {ns}/{name}: {e}");
                    }
                }
            })
            .await;
    })
}
