//! Volumes: emptyDir, configMap, secret, downwardAPI, projected, and what is refused.

use super::*;

fn f(content: &str, mode: u32) -> (String, u32) {
    (content.to_string(), mode)
}

fn fm(entries: &[(&str, (String, u32))]) -> BTreeMap<String, (String, u32)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn vol_pod(volumes: serde_json::Value) -> Pod {
    pod(json!({"volumes": volumes, "containers": [{"name": "app"}]}))
}

#[tokio::test]
async fn empty_dirs() {
    let p = vol_pod(json!([
        {"name": "plain", "emptyDir": {}},
        {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "sized", "emptyDir": {"medium": "", "sizeLimit": "1G"}},
        {"name": "nothing"},
    ]));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let sources: Vec<_> = r
        .volumes
        .iter()
        .map(|v| (v.name.as_str(), v.source.clone()))
        .collect();
    assert_eq!(
        sources,
        [
            (
                "plain",
                VolumeSource::EmptyDir {
                    memory: false,
                    size_limit_bytes: None
                }
            ),
            (
                "ram",
                VolumeSource::EmptyDir {
                    memory: true,
                    size_limit_bytes: Some(64 << 20)
                }
            ),
            (
                "sized",
                VolumeSource::EmptyDir {
                    memory: false,
                    size_limit_bytes: Some(1_000_000_000)
                }
            ),
            (
                "nothing",
                VolumeSource::EmptyDir {
                    memory: false,
                    size_limit_bytes: None
                }
            ),
        ]
    );
}

#[tokio::test]
async fn empty_dir_errors() {
    let p = vol_pod(json!([{"name": "v", "emptyDir": {"sizeLimit": "big"}}]));
    assert_invalid(resolve(&p, &FakeSource::new()).await, "sizeLimit");
    let p = vol_pod(json!([{"name": "v", "emptyDir": {"medium": "Disk"}}]));
    assert_invalid(resolve(&p, &FakeSource::new()).await, "medium");
    let p = vol_pod(json!([{"name": "v", "emptyDir": {"medium": "HugePages-2Mi"}}]));
    assert!(matches!(
        resolve(&p, &FakeSource::new()).await,
        Err(ResolveError::Unsupported { reason, .. }) if reason == "UnsupportedVolume"
    ));
}

#[tokio::test]
async fn config_map_all_keys() {
    let src = FakeSource::new().config_map_with_binary(
        "ns1",
        "cfg",
        &[("app.yaml", "a: 1"), ("z", "last")],
        &[("logo.png", &[0x89, b'P', b'N', b'G'])],
    );
    let p = vol_pod(json!([{"name": "cfg", "configMap": {"name": "cfg"}}]));
    let r = resolve(&p, &src).await.unwrap();
    let written = files(&r, "cfg");
    let paths: Vec<_> = written.iter().map(|f| (f.path.as_str(), f.mode)).collect();
    assert_eq!(
        paths,
        [("app.yaml", 0o644), ("logo.png", 0o644), ("z", 0o644)]
    );
    assert_eq!(written[0].content, b"a: 1");
    assert_eq!(written[1].content, [0x89, b'P', b'N', b'G']);

    let p = vol_pod(json!([{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o400}}]));
    let r = resolve(&p, &src).await.unwrap();
    assert!(files(&r, "cfg").iter().all(|f| f.mode == 0o400));
}

#[tokio::test]
async fn config_map_items() {
    let src = FakeSource::new().config_map("ns1", "cfg", &[("a", "A"), ("b", "B"), ("c", "C")]);
    let p = vol_pod(json!([{"name": "cfg", "configMap": {
        "name": "cfg",
        "defaultMode": 0o440,
        "items": [
            {"key": "a", "path": "conf/a.txt"},
            {"key": "b", "path": "./b.sh", "mode": 0o755},
            {"key": "a", "path": "copy-of-a"},
        ],
    }}]));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(
        file_map(&r, "cfg"),
        fm(&[
            ("b.sh", f("B", 0o755)),
            ("conf/a.txt", f("A", 0o440)),
            ("copy-of-a", f("A", 0o440))
        ])
    );
}

#[tokio::test]
async fn secret_volumes() {
    let src = FakeSource::new().secret("ns1", "tls", &[("tls.crt", b"CERT"), ("tls.key", b"KEY")]);
    let p = vol_pod(json!([
        {"name": "all", "secret": {"secretName": "tls"}},
        {"name": "key", "secret": {"secretName": "tls", "defaultMode": 0o400, "items": [{"key": "tls.key", "path": "private/key.pem"}]}},
    ]));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(
        file_map(&r, "all"),
        fm(&[("tls.crt", f("CERT", 0o644)), ("tls.key", f("KEY", 0o644))])
    );
    assert_eq!(
        file_map(&r, "key"),
        fm(&[("private/key.pem", f("KEY", 0o400))])
    );
}

#[tokio::test]
async fn missing_objects_and_keys() {
    let src = FakeSource::new()
        .config_map("ns1", "cfg", &[("a", "A")])
        .secret("ns1", "s", &[("a", b"A")]);
    for (volume, message) in [
        (
            json!({"configMap": {"name": "gone"}}),
            "configmap \"ns1/gone\" not found",
        ),
        (
            json!({"configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}}),
            "key \"nope\" not found in configmap \"ns1/cfg\"",
        ),
        (
            json!({"secret": {"secretName": "gone"}}),
            "secret \"ns1/gone\" not found",
        ),
        (
            json!({"secret": {"secretName": "s", "items": [{"key": "nope", "path": "x"}]}}),
            "key \"nope\" not found in secret \"ns1/s\"",
        ),
        (
            json!({"projected": {"sources": [{"secret": {"name": "gone"}}]}}),
            "secret \"ns1/gone\" not found",
        ),
        (
            json!({"projected": {"sources": [{"configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}}]}}),
            "key \"nope\" not found in configmap \"ns1/cfg\"",
        ),
    ] {
        let mut v = json!({"name": "v"});
        v.as_object_mut()
            .unwrap()
            .extend(volume.as_object().unwrap().clone());
        assert_missing(resolve(&vol_pod(json!([v])), &src).await, message);
    }

    // Optional: a missing object is an empty volume, a missing key is left out.
    let p = vol_pod(json!([
        {"name": "v1", "configMap": {"name": "gone", "optional": true}},
        {"name": "v2", "secret": {"secretName": "gone", "optional": true, "items": [{"key": "a", "path": "a"}]}},
        {"name": "v3", "configMap": {"name": "cfg", "optional": true, "items": [{"key": "nope", "path": "x"}, {"key": "a", "path": "a"}]}},
        {"name": "v4", "projected": {"sources": [
            {"secret": {"name": "gone", "optional": true}},
            {"configMap": {"name": "cfg", "optional": true, "items": [{"key": "nope", "path": "x"}]}},
        ]}},
    ]));
    let r = resolve(&p, &src).await.unwrap();
    assert!(files(&r, "v1").is_empty());
    assert!(files(&r, "v2").is_empty());
    assert_eq!(file_map(&r, "v3"), fm(&[("a", f("A", 0o644))]));
    assert!(files(&r, "v4").is_empty());
}

#[tokio::test]
async fn downward_api_volume() {
    let mut p = pod(json!({
        "volumes": [{"name": "info", "downwardAPI": {"defaultMode": 0o400, "items": [
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}, "mode": 0o444},
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
            {"path": "cpu_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
            {"path": "mem_request", "resourceFieldRef": {"containerName": "app", "resource": "requests.memory", "divisor": "1Mi"}},
        ]}}],
        "containers": [{"name": "app", "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}],
    }));
    p.metadata.labels = Some(BTreeMap::from([
        ("tier".into(), "front".into()),
        ("app".into(), "web".into()),
    ]));
    p.metadata.annotations = Some(BTreeMap::from([
        ("quote".into(), "say \"hi\"\nbye".into()),
        ("kubernetes.io/config.seen".into(), "2024-01-01".into()),
    ]));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(
        file_map(&r, "info"),
        fm(&[
            (
                "annotations",
                f(
                    "kubernetes.io/config.seen=\"2024-01-01\"\nquote=\"say \\\"hi\\\"\\nbye\"",
                    0o400
                )
            ),
            ("cpu_limit", f("500", 0o400)),
            ("labels", f("app=\"web\"\ntier=\"front\"", 0o400)),
            ("mem_request", f("256", 0o400)),
            ("name", f("web", 0o400)),
            ("namespace", f("ns1", 0o400)),
            ("tier", f("front", 0o400)),
            ("uid", f("uid-1", 0o444)),
        ])
    );
}

#[tokio::test]
async fn downward_api_defaults_and_errors() {
    let p = vol_pod(
        json!([{"name": "info", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]),
    );
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(file_map(&r, "info"), fm(&[("name", f("web", 0o644))]));

    for (item, want) in [
        (
            json!({"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}}),
            "containerName is required",
        ),
        (
            json!({"path": "node", "fieldRef": {"fieldPath": "spec.nodeName"}}),
            "unsupported fieldPath",
        ),
        (
            json!({"path": "../escape", "fieldRef": {"fieldPath": "metadata.name"}}),
            "must not contain '..'",
        ),
        (
            json!({"path": "/abs", "fieldRef": {"fieldPath": "metadata.name"}}),
            "relative",
        ),
        (
            json!({"path": "x", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o1777}),
            "mode",
        ),
        (
            json!({"path": "x", "fieldRef": {"fieldPath": "metadata.name"}, "mode": -1}),
            "mode",
        ),
    ] {
        let p = vol_pod(json!([{"name": "info", "downwardAPI": {"items": [item]}}]));
        assert_invalid(resolve(&p, &FakeSource::new()).await, want);
    }
}

/// What the API server injects into every pod.
fn kube_api_access() -> serde_json::Value {
    json!({"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
}

#[tokio::test]
async fn kube_api_access_volume() {
    let src = FakeSource::new().config_map(
        "ns1",
        "kube-root-ca.crt",
        &[("ca.crt", "-----BEGIN CERTIFICATE-----")],
    );
    let p = pod(json!({
        "serviceAccountName": "builder",
        "volumes": [kube_api_access()],
        "containers": [{"name": "app", "volumeMounts": [{
            "name": "kube-api-access-abcde",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": true,
        }]}],
    }));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(
        file_map(&r, "kube-api-access-abcde"),
        fm(&[
            ("ca.crt", f("-----BEGIN CERTIFICATE-----", 0o644)),
            ("namespace", f("ns1", 0o644)),
            (
                "token",
                f("jwt(token ns1/builder web uid-1 aud=None exp=3607)", 0o644)
            ),
        ])
    );
    assert_eq!(
        src.calls(),
        [
            "token ns1/builder web uid-1 aud=None exp=3607",
            "configmap ns1/kube-root-ca.crt"
        ]
    );
}

#[tokio::test]
async fn token_projection_defaults_and_audience() {
    let p = pod(json!({
        "volumes": [{"name": "t", "projected": {"defaultMode": 0o600, "sources": [
            {"serviceAccountToken": {"path": "default-token"}},
            {"serviceAccountToken": {"path": "vault/token", "audience": "vault", "expirationSeconds": 7200}},
            {"serviceAccountToken": {"path": "again", "audience": ""}},
        ]}}],
        "containers": [],
    }));
    let src = FakeSource::new();
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(
        file_map(&r, "t"),
        fm(&[
            (
                "again",
                f("jwt(token ns1/default web uid-1 aud=None exp=3600)", 0o600)
            ),
            (
                "default-token",
                f("jwt(token ns1/default web uid-1 aud=None exp=3600)", 0o600)
            ),
            (
                "vault/token",
                f(
                    "jwt(token ns1/default web uid-1 aud=Some(\"vault\") exp=7200)",
                    0o600
                )
            ),
        ])
    );
    // The same token request is made once.
    assert_eq!(
        src.calls(),
        [
            "token ns1/default web uid-1 aud=None exp=3600",
            "token ns1/default web uid-1 aud=Some(\"vault\") exp=7200"
        ]
    );

    // The deprecated serviceAccount field is honoured when serviceAccountName is unset.
    let p = pod(json!({
        "serviceAccount": "legacy",
        "volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
        "containers": [],
    }));
    let src = FakeSource::new();
    resolve(&p, &src).await.unwrap();
    assert_eq!(
        src.calls(),
        ["token ns1/legacy web uid-1 aud=None exp=3600"]
    );
}

#[tokio::test]
async fn projected_sources_merge_later_wins() {
    let src = FakeSource::new()
        .config_map("ns1", "cfg", &[("shared", "from-cm"), ("only-cm", "c")])
        .secret("ns1", "s", &[("shared", b"from-secret")]);
    let p = vol_pod(json!([{"name": "all", "projected": {"sources": [
        {"configMap": {"name": "cfg"}},
        {"secret": {"name": "s", "items": [{"key": "shared", "path": "shared", "mode": 0o400}]}},
    ]}}]));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(
        file_map(&r, "all"),
        fm(&[
            ("only-cm", f("c", 0o644)),
            ("shared", f("from-secret", 0o400))
        ])
    );
}

#[tokio::test]
async fn unsupported_volumes() {
    for (source, kind) in [
        (json!({"hostPath": {"path": "/var/log"}}), "hostPath"),
        (
            json!({"persistentVolumeClaim": {"claimName": "data"}}),
            "persistentVolumeClaim",
        ),
        (json!({"nfs": {"server": "nfs", "path": "/"}}), "nfs"),
        (json!({"csi": {"driver": "x"}}), "csi"),
        (json!({"ephemeral": {}}), "ephemeral"),
        (json!({"image": {"reference": "busybox"}}), "image"),
        (json!({"gitRepo": {"repository": "x"}}), "gitRepo"),
        (
            json!({"awsElasticBlockStore": {"volumeID": "x"}}),
            "awsElasticBlockStore",
        ),
    ] {
        let mut v = json!({"name": "x"});
        v.as_object_mut()
            .unwrap()
            .extend(source.as_object().unwrap().clone());
        match resolve(&vol_pod(json!([v])), &FakeSource::new()).await {
            Err(ResolveError::Unsupported { reason, message }) => {
                assert_eq!(reason, "UnsupportedVolume");
                assert_eq!(
                    message,
                    format!(
                        "volume \"x\" uses {kind}, which a virtual node cannot provide; \
                         use emptyDir, configMap, secret, downwardAPI or projected"
                    )
                );
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    let p = vol_pod(
        json!([{"name": "ctb", "projected": {"sources": [{"clusterTrustBundle": {"path": "b", "name": "x"}}]}}]),
    );
    assert!(matches!(
        resolve(&p, &FakeSource::new()).await,
        Err(ResolveError::Unsupported { reason, message }) if reason == "UnsupportedVolume" && message.contains("clusterTrustBundle")
    ));
}

#[tokio::test]
async fn malformed_volumes() {
    let src = FakeSource::new().config_map("ns1", "cfg", &[("a", "A")]);
    for (volumes, want) in [
        (
            json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
            "more than once",
        ),
        (
            json!([{"name": "v", "emptyDir": {}, "configMap": {"name": "cfg"}}]),
            "more than one volume type",
        ),
        (
            json!([{"name": "v", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "../../etc/passwd"}]}}]),
            "'..'",
        ),
        (
            json!([{"name": "v", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "..data"}]}}]),
            "start with '..'",
        ),
        (
            json!([{"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o4755}}]),
            "mode",
        ),
        (
            json!([{"name": "v", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a", "mode": 4096}]}}]),
            "mode",
        ),
    ] {
        assert_invalid(resolve(&vol_pod(volumes), &src).await, want);
    }
}
