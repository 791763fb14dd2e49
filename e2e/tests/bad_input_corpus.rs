//! A corpus of hostile and broken pod specs on one eci node (the simulator's `simulate`
//! executor): specs the API server accepts but a virtual node cannot run as written (too big,
//! volumes and host namespaces it cannot give, privileges it must not fake, images the cloud
//! cannot pull, containers that fail) or can run only with care (huge env and args, hundreds of
//! volumes and ports, 253-character names, names a cloud might reserve, probes and hooks that
//! cannot work), all created at once beside a few ordinary pods.
//!
//! Every pod must end up either running (Running or Succeeded) or showing why not: a reason in
//! its status (the pod's, a container's waiting/terminated reason, or the scheduler's) and a
//! Warning event about it; never stuck without a word. The specs that cannot run as written
//! must be refused, not run (nothing silently dropped). The ordinary pods must run; vk must not
//! restart and its memory must stay bounded. Specs the API server itself refuses are counted
//! and left out (they never reach a node). The test prints every pod's outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::harness::{Options, TestBed};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

/// A container that the simulator runs until it is stopped.
fn c(name: &str) -> Value {
    json!({
        "name": name,
        "image": "busybox:1.36",
        "command": ["sleep", "3600"],
        "env": [{"name": "MOCKCLOUD_RUN_MS", "value": "forever"}],
    })
}

/// `c(name)` with `extra` merged into it.
fn cx(name: &str, extra: Value) -> Value {
    let mut base = c(name);
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

/// A spec of one container with `extra` merged into the container.
fn one(extra: Value) -> Value {
    json!({"containers": [cx("app", extra)]})
}

/// A spec with `extra` merged into the pod spec around one ordinary container.
fn pod_with(extra: Value) -> Value {
    let mut spec = json!({"containers": [c("app")]});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    spec
}

fn volume(name: &str, source: Value) -> Value {
    let mut v = json!({"name": name});
    v.as_object_mut()
        .unwrap()
        .extend(source.as_object().unwrap().clone());
    pod_with(json!({
        "volumes": [v],
        "containers": [cx("app", json!({"volumeMounts": [{"name": name, "mountPath": "/data"}]}))],
    }))
}

fn resources(requests: Value, limits: Value) -> Value {
    one(json!({"resources": {"requests": requests, "limits": limits}}))
}

fn security(context: Value) -> Value {
    one(json!({"securityContext": context}))
}

fn image(image: &str) -> Value {
    one(json!({"image": image}))
}

/// A container that exits with `code` after a moment.
fn exiting(name: &str, code: i32) -> Value {
    cx(
        name,
        json!({"env": [
            {"name": "MOCKCLOUD_RUN_MS", "value": "200"},
            {"name": "MOCKCLOUD_EXIT_CODE", "value": code.to_string()},
        ]}),
    )
}

/// The bad specs: (name, pod spec). Each cannot run as written.
fn corpus(runtime_class: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(&str, Value)> = vec![
        // Too big for any instance.
        ("cpu-1000", resources(json!({"cpu": "1000"}), json!({}))),
        ("cpu-97", resources(json!({"cpu": "97"}), json!({}))),
        ("mem-4ti", resources(json!({"memory": "4Ti"}), json!({}))),
        (
            "mem-per-cpu",
            resources(json!({"cpu": "1", "memory": "900Gi"}), json!({})),
        ),
        (
            "disk-100ti",
            resources(json!({"ephemeral-storage": "100Ti"}), json!({})),
        ),
        (
            "gpu-64",
            resources(
                json!({"nvidia.com/gpu": "64"}),
                json!({"nvidia.com/gpu": "64"}),
            ),
        ),
        (
            "ext-resource",
            resources(
                json!({"example.com/dongle": "1"}),
                json!({"example.com/dongle": "1"}),
            ),
        ),
        (
            "hugepages",
            resources(
                json!({"hugepages-2Mi": "1Gi", "memory": "2Gi", "cpu": "1"}),
                json!({"hugepages-2Mi": "1Gi", "memory": "2Gi", "cpu": "1"}),
            ),
        ),
        // Volumes a virtual node cannot give.
        (
            "vol-hostpath-root",
            volume("v", json!({"hostPath": {"path": "/"}})),
        ),
        (
            "vol-docker-sock",
            volume(
                "v",
                json!({"hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}),
            ),
        ),
        (
            "vol-pvc",
            volume("v", json!({"persistentVolumeClaim": {"claimName": "data"}})),
        ),
        (
            "vol-nfs",
            volume(
                "v",
                json!({"nfs": {"server": "10.0.0.1", "path": "/exports"}}),
            ),
        ),
        (
            "vol-iscsi",
            volume(
                "v",
                json!({"iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.2001-04.com.example:storage", "lun": 0}}),
            ),
        ),
        (
            "vol-csi",
            volume("v", json!({"csi": {"driver": "secrets-store.csi.k8s.io"}})),
        ),
        (
            "vol-ephemeral",
            volume(
                "v",
                json!({"ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}}}),
            ),
        ),
        (
            "vol-fc",
            volume(
                "v",
                json!({"fc": {"targetWWNs": ["500a0982991b8dc5"], "lun": 2}}),
            ),
        ),
        (
            "vol-rbd",
            volume(
                "v",
                json!({"rbd": {"monitors": ["10.0.0.1:6789"], "image": "foo"}}),
            ),
        ),
        (
            "vol-cephfs",
            volume("v", json!({"cephfs": {"monitors": ["10.0.0.1:6789"]}})),
        ),
        (
            "vol-cinder",
            volume("v", json!({"cinder": {"volumeID": "x"}})),
        ),
        (
            "vol-azuredisk",
            volume(
                "v",
                json!({"azureDisk": {"diskName": "d", "diskURI": "https://x/d.vhd"}}),
            ),
        ),
        (
            "vol-ebs",
            volume("v", json!({"awsElasticBlockStore": {"volumeID": "vol-1"}})),
        ),
        (
            "vol-gcepd",
            volume("v", json!({"gcePersistentDisk": {"pdName": "pd"}})),
        ),
        (
            "vol-flex",
            volume("v", json!({"flexVolume": {"driver": "example/lvm"}})),
        ),
        (
            "vol-portworx",
            volume("v", json!({"portworxVolume": {"volumeID": "x"}})),
        ),
        (
            "vol-image",
            volume("v", json!({"image": {"reference": "busybox:1.36"}})),
        ),
        // Host namespaces, a runtime class.
        ("host-network", pod_with(json!({"hostNetwork": true}))),
        ("host-pid", pod_with(json!({"hostPID": true}))),
        ("host-ipc", pod_with(json!({"hostIPC": true}))),
        (
            "host-all",
            pod_with(json!({"hostNetwork": true, "hostPID": true, "hostIPC": true})),
        ),
        (
            "runtime-class",
            pod_with(json!({"runtimeClassName": runtime_class})),
        ),
        // Privileges that must not be faked.
        ("privileged", security(json!({"privileged": true}))),
        (
            "cap-sys-admin",
            security(json!({"capabilities": {"add": ["SYS_ADMIN"]}})),
        ),
        (
            "cap-net-admin",
            security(json!({"capabilities": {"add": ["NET_ADMIN"]}})),
        ),
        (
            "cap-all",
            security(json!({"capabilities": {"add": ["ALL"]}})),
        ),
        (
            "cap-bpf",
            security(json!({"capabilities": {"add": ["CAP_BPF"]}})),
        ),
        (
            "non-root-as-root",
            security(json!({"runAsNonRoot": true, "runAsUser": 0})),
        ),
        (
            "pod-non-root-as-root",
            pod_with(json!({"securityContext": {"runAsNonRoot": true, "runAsUser": 0}})),
        ),
        (
            "sysctl-unsafe",
            pod_with(
                json!({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}}),
            ),
        ),
        (
            "sysctl-vm",
            pod_with(
                json!({"securityContext": {"sysctls": [{"name": "vm.swappiness", "value": "10"}]}}),
            ),
        ),
        (
            "sysctl-net-unsafe",
            pod_with(
                json!({"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "4096"}]}}),
            ),
        ),
        // Images the cloud cannot pull.
        ("img-missing", image("no-such-image-e2e:1.0")),
        ("img-uppercase", image("BusyBox:1.36")),
        ("img-double-tag", image("busybox:1.36:extra")),
        ("img-bad-digest", image("busybox@sha256:xyz")),
        ("img-bad-port", image("registry.invalid:99999/busybox:1.36")),
        ("img-dash", image("-busybox")),
        ("img-empty-tag", image("busybox:")),
        ("img-traversal", image("localhost/../../etc/passwd")),
        ("img-unicode", image("bÿsybox:1.36")),
        (
            "img-long",
            image(&format!("registry.example.com/{}:1", "a".repeat(400))),
        ),
        (
            "img-private",
            image("registry.example.com/private/builder:2.0"),
        ),
        // Containers that fail.
        (
            "init-fails",
            json!({"restartPolicy": "Never", "initContainers": [exiting("setup", 1)], "containers": [c("app")]}),
        ),
        (
            "init-fails-onfailure",
            json!({"restartPolicy": "OnFailure", "initContainers": [exiting("setup", 2)], "containers": [c("app")]}),
        ),
        (
            "app-fails",
            json!({"restartPolicy": "Never", "containers": [exiting("app", 3)]}),
        ),
        (
            "app-killed",
            json!({"restartPolicy": "Never", "containers": [exiting("app", 137)]}),
        ),
        (
            "crash-loop",
            json!({"restartPolicy": "Always", "containers": [exiting("app", 1)]}),
        ),
        (
            "init-missing-image",
            json!({"restartPolicy": "Never",
                   "initContainers": [cx("setup", json!({"image": "no-such-init-image:1"}))],
                   "containers": [c("app")]}),
        ),
        // Huge input.
        (
            "env-3000",
            one(
                json!({"env": (0..3000).map(|i| json!({"name": format!("VAR_{i}"), "value": "x"})).collect::<Vec<_>>()}),
            ),
        ),
        (
            "env-512k",
            one(json!({"env": [{"name": "BIG", "value": "x".repeat(512 * 1024)}]})),
        ),
        (
            "args-5000",
            one(json!({"args": (0..5000).map(|i| format!("arg-{i}")).collect::<Vec<_>>()})),
        ),
        ("args-512k", one(json!({"args": ["x".repeat(512 * 1024)]}))),
        (
            "containers-60",
            json!({"containers": (0..60).map(|i| c(&format!("c{i}"))).collect::<Vec<_>>()}),
        ),
        (
            "init-40",
            json!({"initContainers": (0..40).map(|i| exiting(&format!("i{i}"), 0)).collect::<Vec<_>>(),
                   "containers": [c("app")]}),
        ),
        (
            "volumes-300",
            json!({
                "volumes": (0..300).map(|i| json!({"name": format!("v{i}"), "emptyDir": {}})).collect::<Vec<_>>(),
                "containers": [cx("app", json!({"volumeMounts": (0..300).map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/v/{i}")})).collect::<Vec<_>>()}))],
            }),
        ),
        (
            "ports-500",
            one(
                json!({"ports": (0..500).map(|i| json!({"containerPort": 1000 + i})).collect::<Vec<_>>()}),
            ),
        ),
        (
            "emptydir-10ti",
            volume("v", json!({"emptyDir": {"sizeLimit": "10Ti"}})),
        ),
        (
            "memory-emptydir-1ti",
            volume(
                "v",
                json!({"emptyDir": {"medium": "Memory", "sizeLimit": "1Ti"}}),
            ),
        ),
        // References that do not exist.
        (
            "secret-missing",
            volume("v", json!({"secret": {"secretName": "no-such-secret"}})),
        ),
        (
            "configmap-missing",
            volume("v", json!({"configMap": {"name": "no-such-configmap"}})),
        ),
        (
            "env-secret-missing",
            one(
                json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "no-such-secret", "key": "k"}}}]}),
            ),
        ),
        (
            "env-configmap-key-missing",
            one(
                json!({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "no-such-cm", "key": "k"}}}]}),
            ),
        ),
        (
            "envfrom-missing",
            one(json!({"envFrom": [{"secretRef": {"name": "no-such-secret"}}]})),
        ),
        (
            "env-resource-bad",
            one(
                json!({"env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}}}]}),
            ),
        ),
        (
            "subpath-escape",
            pod_with(json!({
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [cx("app", json!({"volumeMounts": [{"name": "v", "mountPath": "/data", "subPathExpr": "$(NOPE)/../../etc"}]}))],
            })),
        ),
        // What the node cannot offer.
        (
            "host-port",
            one(json!({"ports": [{"containerPort": 80, "hostPort": 80}]})),
        ),
        ("os-windows", pod_with(json!({"os": {"name": "windows"}}))),
        (
            "fqdn-too-long",
            pod_with(
                json!({"hostname": "h".repeat(63), "subdomain": "s".repeat(63), "setHostnameAsFQDN": true}),
            ),
        ),
    ];
    // Names and values the cloud refuses or reserves.
    let long = "a".repeat(253);
    let names: Vec<(String, Value)> = vec![
        (format!("x{}", &long[1..]), pod_with(json!({}))),
        (format!("dots.{}", &long[5..]), pod_with(json!({}))),
    ];
    let mut all: Vec<(String, Value)> = out.drain(..).map(|(n, s)| (n.to_string(), s)).collect();
    all.extend(names);
    for reserved in ["eci", "pause", "sandbox", "acs-agent", "kube-proxy"] {
        all.push((
            format!("reserved-{reserved}"),
            json!({"containers": [c(reserved)]}),
        ));
    }
    // Probes and hooks that cannot work.
    for (name, container) in [
        (
            "probe-exec-missing",
            json!({"livenessProbe": {"exec": {"command": ["/no/such/bin"]}, "periodSeconds": 1, "failureThreshold": 1}}),
        ),
        (
            "probe-grpc",
            json!({"readinessProbe": {"grpc": {"port": 9000}}}),
        ),
        (
            "probe-huge-timeout",
            json!({"readinessProbe": {"exec": {"command": ["true"]}, "timeoutSeconds": 2_000_000_000}}),
        ),
        (
            "hook-http",
            json!({"lifecycle": {"postStart": {"httpGet": {"port": 1}}}}),
        ),
        (
            "hook-tcp",
            json!({"lifecycle": {"preStop": {"tcpSocket": {"port": 1}}}}),
        ),
    ] {
        all.push((name.to_string(), one(container)));
    }
    // Many of a kind: a bad spec per capability and per sysctl.
    for cap in [
        "SYS_PTRACE",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_TIME",
        "SYS_BOOT",
        "MAC_ADMIN",
        "PERFMON",
        "SYSLOG",
        "IPC_LOCK",
        "LINUX_IMMUTABLE",
    ] {
        all.push((
            format!("cap-{}", cap.to_lowercase().replace('_', "-")),
            security(json!({"capabilities": {"add": [cap]}})),
        ));
    }
    for (i, sysctl) in [
        "kernel.shmmax",
        "kernel.sem",
        "net.ipv4.tcp_tw_reuse",
        "net.ipv4.ip_forward",
        "fs.file-max",
        "kernel.pid_max",
    ]
    .iter()
    .enumerate()
    {
        all.push((
            format!("sysctl-{i}"),
            pod_with(json!({"securityContext": {"sysctls": [{"name": sysctl, "value": "1"}]}})),
        ));
    }
    for (i, size) in ["129", "65", "257"].iter().enumerate() {
        all.push((
            format!("cpu-odd-{i}"),
            resources(json!({"cpu": size}), json!({})),
        ));
    }
    for (i, mem) in ["1025Gi", "700Gi", "5000Gi"].iter().enumerate() {
        all.push((
            format!("mem-odd-{i}"),
            resources(json!({"memory": mem}), json!({})),
        ));
    }
    all
}

/// Specs that cannot run as written: they must not run (a reason and a Warning event instead).
fn must_refuse(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "cpu-",
        "mem-",
        "disk-",
        "gpu-",
        "ext-resource",
        "hugepages",
        "vol-",
        "host-network",
        "host-pid",
        "host-ipc",
        "host-all",
        "runtime-class",
        "img-",
        "init-fails",
        "app-",
        "crash-loop",
        "init-missing-image",
        "secret-missing",
        "configmap-missing",
        "env-secret-missing",
        "env-configmap-key-missing",
        "envfrom-missing",
        "os-windows",
        "fqdn-too-long",
        "non-root-as-root",
        "pod-non-root-as-root",
        "sysctl-",
    ];
    // Images the simulator can pull although a registry would refuse some of them are not
    // listed: a valid reference to a registry that does not answer is a runtime matter.
    PREFIXES.iter().any(|p| name.starts_with(p)) && name != "img-bad-port"
}

/// Specs that run, but not quite as written: a Warning event must say so.
fn must_warn(name: &str) -> bool {
    name == "host-port"
}

/// Ordinary pods beside the corpus: they must run.
fn ordinary() -> Vec<(String, Value)> {
    (0..4)
        .map(|i| {
            (
                format!("ordinary-{i}"),
                json!({"containers": [c("app"), c("sidecar")]}),
            )
        })
        .collect()
}

fn pod(node: &str, name: &str, spec: &Value) -> Result<Pod, serde_json::Error> {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 2,
        }
    });
    if let (Some(base), Some(extra)) = (value["spec"].as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(value)
}

/// Reasons a pod shows: the pod's own, then each container's waiting or terminated reason,
/// ordinary start-up words left out.
fn status_reasons(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ordinary = ["ContainerCreating", "PodInitializing", "Completed"];
    let mut out: Vec<String> = status.reason.iter().cloned().collect();
    // A pod the scheduler cannot place says so in its PodScheduled condition.
    for cond in status.conditions.iter().flatten() {
        if cond.status == "False" && cond.type_ == "PodScheduled" {
            out.extend(cond.reason.clone());
        }
    }
    for c in status
        .container_statuses
        .iter()
        .chain(status.init_container_statuses.iter())
        .flatten()
    {
        let state = c.state.as_ref();
        let last = c.last_state.as_ref();
        for reason in [
            state.and_then(|s| s.waiting.as_ref()?.reason.clone()),
            state.and_then(|s| s.terminated.as_ref()?.reason.clone()),
            last.and_then(|s| s.terminated.as_ref()?.reason.clone()),
        ]
        .into_iter()
        .flatten()
        {
            if !ordinary.contains(&reason.as_str()) && !out.contains(&reason) {
                out.push(reason);
            }
        }
    }
    out
}

fn warnings(events: &[Event], pod: &str) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn setup() -> TestBed {
    Options::eci("vk-corpus", "simulate", &[]).start().await
}

#[tokio::test]
async fn every_bad_spec_gets_a_warning_and_a_reason_and_the_rest_run() {
    let s = setup().await;
    let node = s.vk.node.clone();
    let vk_pid = s.vk.pid().expect("vk runs");
    // A RuntimeClass the cluster has, so the pod passes admission and reaches the node.
    let runtime_class = format!("{}-rc", s.ns.name);
    let rc: k8s_openapi::api::node::v1::RuntimeClass = serde_json::from_value(json!({
        "metadata": {"name": runtime_class}, "handler": "runsc"
    }))
    .unwrap();
    let classes: Api<k8s_openapi::api::node::v1::RuntimeClass> = Api::all(s.client.clone());
    classes
        .create(&PostParams::default(), &rc)
        .await
        .expect("a RuntimeClass");

    let corpus = corpus(&runtime_class);
    let ordinary = ordinary();
    let mut created: Vec<String> = Vec::new();
    let mut refused_by_api: Vec<(String, String)> = Vec::new();
    for (name, spec) in corpus.iter().chain(ordinary.iter()) {
        let p = pod(&node, name, spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        match s.pods.create(&PostParams::default(), &p).await {
            Ok(_) => created.push(name.clone()),
            Err(kube::Error::Api(e)) if e.code == 422 || e.code == 403 || e.code == 400 => {
                assert!(
                    !name.starts_with("ordinary-"),
                    "{name} refused: {}",
                    e.message
                );
                refused_by_api.push((name.clone(), e.message.chars().take(120).collect()));
            }
            Err(e) => panic!("creating {name}: {e}"),
        }
    }
    let bad: Vec<&String> = created
        .iter()
        .filter(|n| !n.starts_with("ordinary-"))
        .collect();
    assert!(
        bad.len() >= 100,
        "only {} bad specs passed API validation; refused: {refused_by_api:?}",
        bad.len()
    );

    // Every bad pod: a Warning event and a reason in its status. Ordinary ones: Running.
    let events_api: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let mut peak_rss = 0;
    let (pods, events) = loop {
        let pods: BTreeMap<String, Pod> = s
            .pods
            .list(&ListParams::default())
            .await
            .expect("list pods")
            .items
            .into_iter()
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
            .collect();
        let events = events_api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items;
        peak_rss = peak_rss.max(rss_kib(vk_pid).unwrap_or_default());
        let missing: Vec<&String> = created
            .iter()
            .filter(|name| {
                let Some(p) = pods.get(*name) else {
                    return true;
                };
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                let ran =
                    matches!(phase, Some("Running" | "Succeeded")) && status_reasons(p).is_empty();
                let explained =
                    !warnings(&events, name).is_empty() && !status_reasons(p).is_empty();
                if name.starts_with("ordinary-") {
                    return phase != Some("Running");
                }
                // A failing container explains itself by its exit; no event needed.
                if name.starts_with("app-") {
                    return phase != Some("Failed") || status_reasons(p).is_empty();
                }
                if must_refuse(name) {
                    return !explained;
                }
                if must_warn(name) {
                    return warnings(&events, name).is_empty();
                }
                !(ran || explained)
            })
            .collect();
        if missing.is_empty() {
            break (pods, events);
        }
        if tokio::time::Instant::now() >= deadline {
            let detail: Vec<String> = missing
                .iter()
                .map(|n| {
                    let p = pods.get(*n);
                    format!(
                        "{n:.40}: phase {:?}, reasons {:?}, warnings {:?}",
                        p.and_then(|p| p.status.as_ref()?.phase.clone()),
                        p.map(status_reasons).unwrap_or_default(),
                        warnings(&events, n)
                    )
                })
                .collect();
            panic!(
                "{} of {} pods without what they should show:\n{}",
                missing.len(),
                created.len(),
                detail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    eprintln!(
        "{:<44} {:<10} {:<44} warnings",
        "pod", "phase", "status reasons"
    );
    for name in &created {
        let p = &pods[name];
        eprintln!(
            "{:<44.44} {:<10} {:<44.44} {}",
            name,
            p.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default(),
            status_reasons(p).join(","),
            warnings(&events, name).join(",")
        );
    }
    eprintln!(
        "[corpus] {} bad specs reached the node, {} refused by the API server, {} ordinary pods \
         Running; vk RSS peak {} MiB",
        bad.len(),
        refused_by_api.len(),
        ordinary.len(),
        peak_rss / 1024
    );
    for (name, why) in &refused_by_api {
        eprintln!("[corpus] the API refused {name}: {why}");
    }
    assert!(
        rss_kib(vk_pid).is_some(),
        "vk (pid {vk_pid}) is gone: it exited or was restarted during the corpus"
    );
    assert!(
        peak_rss < 300 * 1024,
        "vk's RSS reached {} MiB",
        peak_rss / 1024
    );
    classes
        .delete(&runtime_class, &Default::default())
        .await
        .expect("delete the RuntimeClass");
}
