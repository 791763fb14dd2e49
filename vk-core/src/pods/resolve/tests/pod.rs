//! Pod-level fields, container fields, mounts, caching, errors from the source.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::provider::{ContainerPort, PodRef, RestartPolicy, VolumeMount};

fn require_static_send<F: std::future::Future + Send + 'static>(_: F) {}

#[test]
fn future_is_send() {
    let src = Arc::new(FakeSource::new());
    let p = Arc::new(pod(json!({"containers": []})));
    require_static_send(async move {
        let _ = resolve_pod(&p, NODE, NODE_IP, &*src).await;
    });
}

#[tokio::test]
async fn pod_metadata_and_spec() {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u-42",
            "labels": {"app": "web"}, "annotations": {"note": "x"},
        },
        "spec": {
            "restartPolicy": "OnFailure",
            "terminationGracePeriodSeconds": 45,
            "activeDeadlineSeconds": 600,
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }))
    .unwrap();
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(
        r.pod,
        PodRef {
            namespace: "shop".into(),
            name: "web".into(),
            uid: "u-42".into()
        }
    );
    assert_eq!(r.node_name, NODE);
    assert_eq!(
        r.labels,
        BTreeMap::from([("app".to_string(), "web".to_string())])
    );
    assert_eq!(
        r.annotations,
        BTreeMap::from([("note".to_string(), "x".to_string())])
    );
    assert_eq!(r.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(r.termination_grace_period, Some(Duration::from_secs(45)));
    assert_eq!(r.active_deadline_seconds, Some(600));
    assert_eq!(r.containers.len(), 1);
    assert!(r.init_containers.is_empty());
    assert!(r.volumes.is_empty());
}

#[tokio::test]
async fn defaults_for_missing_metadata() {
    let p: Pod =
        serde_json::from_value(json!({"spec": {"containers": [{"name": "app"}]}})).unwrap();
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(
        r.pod,
        PodRef {
            namespace: "default".into(),
            name: String::new(),
            uid: String::new()
        }
    );
    assert_eq!(r.restart_policy, RestartPolicy::Always);
    assert_eq!(r.termination_grace_period, None);
    assert_eq!(r.active_deadline_seconds, None);
    assert!(r.labels.is_empty());
    assert_eq!(app(&r).image, "");

    let mut p = pod(json!({"terminationGracePeriodSeconds": -5, "containers": []}));
    p.metadata.namespace = Some(String::new());
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(r.pod.namespace, "default");
    assert_eq!(r.termination_grace_period, Some(Duration::ZERO));
}

#[tokio::test]
async fn pod_without_spec_is_invalid() {
    let p = Pod::default();
    assert_invalid(resolve(&p, &FakeSource::new()).await, "no spec");
}

#[tokio::test]
async fn container_fields() {
    let p = pod(json!({
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [{
            "name": "app",
            "image": "nginx:1.27",
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", "-c"],
            "args": ["echo hi"],
            "workingDir": "/srv",
            "ports": [
                {"containerPort": 80},
                {"containerPort": 53, "protocol": "UDP", "name": "dns"},
                {"containerPort": 65535, "protocol": "SCTP"},
            ],
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "data", "mountPath": "/cfg", "readOnly": true, "subPath": "conf/app"},
            ],
            "stdin": true,
            "tty": true,
            "terminationMessagePath": "/dev/termination-log",
        }],
    }));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let c = app(&r);
    assert_eq!(c.name, "app");
    assert_eq!(c.image, "nginx:1.27");
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(c.command, ["/bin/sh", "-c"]);
    assert_eq!(c.args, ["echo hi"]);
    assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    assert_eq!(
        c.ports,
        [
            ContainerPort {
                port: 80,
                protocol: "TCP".into()
            },
            ContainerPort {
                port: 53,
                protocol: "UDP".into()
            },
            ContainerPort {
                port: 65535,
                protocol: "SCTP".into()
            },
        ]
    );
    assert_eq!(
        c.volume_mounts,
        [
            VolumeMount {
                volume: "data".into(),
                mount_path: "/data".into(),
                read_only: false,
                sub_path: None
            },
            VolumeMount {
                volume: "data".into(),
                mount_path: "/cfg".into(),
                read_only: true,
                sub_path: Some("conf/app".into()),
            },
        ]
    );
    assert!(c.stdin && c.tty);
    assert_eq!(c.restart_policy, None);
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
}

#[tokio::test]
async fn container_defaults() {
    let r = resolve(&pod_with_container(json!({})), &FakeSource::new())
        .await
        .unwrap();
    let c = app(&r);
    assert!(c.command.is_empty() && c.args.is_empty() && c.env.is_empty());
    assert!(c.ports.is_empty() && c.volume_mounts.is_empty());
    assert!(!c.stdin && !c.tty);
    assert_eq!(c.image_pull_policy, None);
    assert_eq!(c.working_dir, None);
    assert_eq!(c.termination_message_path, None);
    assert_eq!(c.resources, Default::default());
}

#[tokio::test]
async fn ports_out_of_range_are_invalid() {
    for port in [0, -1, 65536, 70000, i32::MAX, i32::MIN] {
        let p = pod_with_container(json!({"ports": [{"containerPort": port}]}));
        assert_invalid(
            resolve(&p, &FakeSource::new()).await,
            &format!("containerPort {port}"),
        );
    }
}

#[tokio::test]
async fn init_containers_and_sidecars() {
    let p = pod(json!({
        "initContainers": [
            {"name": "migrate", "image": "migrate"},
            {"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
        ],
        "containers": [{"name": "app", "image": "app"}],
    }));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let names: Vec<_> = r
        .init_containers
        .iter()
        .map(|c| (c.name.as_str(), c.restart_policy))
        .collect();
    assert_eq!(
        names,
        [("migrate", None), ("proxy", Some(RestartPolicy::Always))]
    );
    assert_eq!(app(&r).restart_policy, None);

    let p = pod(
        json!({"initContainers": [{"name": "x", "restartPolicy": "Sometimes"}], "containers": []}),
    );
    assert_invalid(resolve(&p, &FakeSource::new()).await, "restartPolicy");
}

#[tokio::test]
async fn mount_of_undefined_volume_is_invalid() {
    let p = pod_with_container(json!({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}));
    assert_invalid(resolve(&p, &FakeSource::new()).await, "\"nope\"");
    let p = pod(json!({
        "initContainers": [{"name": "init", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}],
        "containers": [],
    }));
    assert_invalid(resolve(&p, &FakeSource::new()).await, "\"nope\"");
}

#[tokio::test]
async fn sub_path_expr_expands_against_env() {
    let p = pod(json!({
        "volumes": [{"name": "logs", "emptyDir": {}}],
        "containers": [{
            "name": "app",
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "SUB", "value": "x"},
            ],
            "volumeMounts": [
                {"name": "logs", "mountPath": "/logs", "subPathExpr": "$(POD_NAME)/$(SUB)"},
                {"name": "logs", "mountPath": "/old", "subPath": "ignored", "subPathExpr": "$(POD_NAME)"},
            ],
        }],
    }));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let subs: Vec<_> = app(&r)
        .volume_mounts
        .iter()
        .map(|m| m.sub_path.as_deref())
        .collect();
    assert_eq!(subs, [Some("web/x"), Some("web")]);
}

#[tokio::test]
async fn sub_path_errors() {
    for (mount, want) in [
        (
            json!({"subPathExpr": "$(MISSING)"}),
            "missing value for MISSING",
        ),
        (
            json!({"subPathExpr": "$(EMPTY)/x"}),
            "missing value for EMPTY",
        ),
        (json!({"subPathExpr": "$(UP)/x"}), "without '..'"),
        (json!({"subPath": "../escape"}), "without '..'"),
        (json!({"subPath": "a/../../b"}), "without '..'"),
        (json!({"subPath": "/abs"}), "relative"),
        (json!({"subPathExpr": "$(ABS)"}), "relative"),
    ] {
        let mut m = json!({"name": "v", "mountPath": "/m"});
        m.as_object_mut()
            .unwrap()
            .extend(mount.as_object().unwrap().clone());
        let p = pod(json!({
            "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [{
                "name": "app",
                "env": [{"name": "EMPTY", "value": ""}, {"name": "UP", "value": ".."}, {"name": "ABS", "value": "/etc"}],
                "volumeMounts": [m],
            }],
        }));
        assert_invalid(resolve(&p, &FakeSource::new()).await, want);
    }
}

#[tokio::test]
async fn objects_are_fetched_once_per_resolution() {
    let src = FakeSource::new()
        .secret("ns1", "s", &[("k", b"v")])
        .config_map("ns1", "c", &[("k", "v")]);
    let env = json!([
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
    ]);
    let p = pod(json!({
        "volumes": [
            {"name": "s", "secret": {"secretName": "s"}},
            {"name": "c", "configMap": {"name": "c"}},
        ],
        "initContainers": [{"name": "i", "env": env, "envFrom": [{"secretRef": {"name": "s"}}]}],
        "containers": [{"name": "a", "env": env}, {"name": "b", "env": env}],
    }));
    resolve(&p, &src).await.unwrap();
    assert_eq!(src.calls(), ["secret ns1/s", "configmap ns1/c"]);
}

#[tokio::test]
async fn api_errors_propagate() {
    let p = pod_with_container(
        json!({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}),
    );
    match resolve(&p, &FakeSource::broken()).await {
        Err(ResolveError::Api(m)) => assert_eq!(m, "connection refused"),
        other => panic!("{other:?}"),
    }
    let p = pod(json!({
        "volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
        "containers": [],
    }));
    assert!(matches!(
        resolve(&p, &FakeSource::broken()).await,
        Err(ResolveError::Api(_))
    ));
}

#[tokio::test]
async fn empty_reference_names_are_invalid_not_listed() {
    let p = pod_with_container(
        json!({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "", "key": "k"}}}]}),
    );
    let src = FakeSource::new();
    assert_invalid(resolve(&p, &src).await, "empty name");
    let p = pod(json!({"volumes": [{"name": "s", "secret": {}}], "containers": []}));
    assert_invalid(resolve(&p, &src).await, "empty name");
    assert!(src.calls().is_empty());
}

#[test]
fn error_display() {
    let e = ResolveError::Unsupported {
        reason: "UnsupportedVolume".into(),
        message: "no".into(),
    };
    assert_eq!(e.to_string(), "UnsupportedVolume: no");
    assert_eq!(
        ResolveError::Api("down".into()).to_string(),
        "Kubernetes API: down"
    );
    assert_eq!(ResolveError::MissingReference("m".into()).to_string(), "m");
    assert_eq!(ResolveError::Invalid("i".into()).to_string(), "i");
}
