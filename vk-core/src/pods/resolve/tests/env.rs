//! Environment variables, envFrom, valueFrom and `$(VAR)` expansion.

use super::*;

fn vars(p: &ResolvedPod) -> Vec<(&str, &str)> {
    app(p)
        .env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect()
}

#[tokio::test]
async fn literal_values_and_expansion_order() {
    let p = pod_with_container(json!({"env": [
        {"name": "A", "value": "a"},
        {"name": "B", "value": "$(A)-b"},
        {"name": "C", "value": "$(D)-c"},          // D is defined later: stays literal
        {"name": "D", "value": "d"},
        {"name": "E", "value": "$$(A) $(A)$(B) $(NOPE) $(A"},
        {"name": "F"},                              // no value at all: empty
        {"name": "G", "value": ""},
        {"name": "H", "value": "$(F)$(G)x"},        // defined but empty: expands to ""
    ]}));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(
        vars(&r),
        [
            ("A", "a"),
            ("B", "a-b"),
            ("C", "$(D)-c"),
            ("D", "d"),
            ("E", "$(A) aa-b $(NOPE) $(A"),
            ("F", ""),
            ("G", ""),
            ("H", "x"),
        ]
    );
}

#[tokio::test]
async fn later_entries_override_in_place() {
    let src = FakeSource::new().config_map("ns1", "cfg", &[("MODE", "from-cm"), ("PORT", "80")]);
    let p = pod_with_container(json!({
        "envFrom": [{"configMapRef": {"name": "cfg"}}],
        "env": [
            {"name": "X", "value": "1"},
            {"name": "MODE", "value": "$(MODE)+env"},   // sees the envFrom value
            {"name": "X", "value": "$(X)2"},             // sees the earlier X
        ],
    }));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(
        vars(&r),
        [("MODE", "from-cm+env"), ("PORT", "80"), ("X", "12")]
    );
}

#[tokio::test]
async fn env_from_sources_prefixes_and_precedence() {
    let src = FakeSource::new()
        .config_map("ns1", "one", &[("A", "1"), ("B", "1")])
        .config_map("ns1", "two", &[("B", "2")])
        .secret(
            "ns1",
            "sec",
            &[("PASSWORD", b"hunter2"), ("BIN", &[0xff, b'o', b'k'])],
        );
    let p = pod_with_container(json!({"envFrom": [
        {"configMapRef": {"name": "one"}},
        {"configMapRef": {"name": "two"}},
        {"prefix": "DB_", "secretRef": {"name": "sec"}},
        {"prefix": "P_", "configMapRef": {"name": "one"}},
    ]}));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(
        env_map(&r),
        BTreeMap::from(
            [
                ("A", "1"),
                ("B", "2"),
                ("DB_BIN", "\u{fffd}ok"),
                ("DB_PASSWORD", "hunter2"),
                ("P_A", "1"),
                ("P_B", "1")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        )
    );
}

#[tokio::test]
async fn env_from_values_are_not_expanded() {
    let src = FakeSource::new().config_map("ns1", "cfg", &[("A", "x"), ("REF", "$(A)")]);
    let p = pod_with_container(json!({"envFrom": [{"configMapRef": {"name": "cfg"}}]}));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(env_map(&r)["REF"], "$(A)");
}

#[tokio::test]
async fn value_from_results_are_not_expanded() {
    let src = FakeSource::new()
        .config_map("ns1", "cfg", &[("k", "$(A)")])
        .secret("ns1", "s", &[("k", b"$(A)")]);
    let p = pod_with_container(json!({"env": [
        {"name": "A", "value": "a"},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]}));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(vars(&r), [("A", "a"), ("B", "$(A)"), ("C", "$(A)")]);
}

#[tokio::test]
async fn env_from_missing_objects() {
    let p = pod_with_container(json!({"envFrom": [
        {"configMapRef": {"name": "gone", "optional": true}},
        {"secretRef": {"name": "gone", "optional": true}},
    ]}));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert!(app(&r).env.is_empty());

    let p = pod_with_container(json!({"envFrom": [{"configMapRef": {"name": "gone"}}]}));
    assert_missing(
        resolve(&p, &FakeSource::new()).await,
        "configmap \"ns1/gone\" not found",
    );
    let p = pod_with_container(
        json!({"envFrom": [{"secretRef": {"name": "gone", "optional": false}}]}),
    );
    assert_missing(
        resolve(&p, &FakeSource::new()).await,
        "secret \"ns1/gone\" not found",
    );
}

#[tokio::test]
async fn key_refs_missing_objects_and_keys() {
    let src = FakeSource::new()
        .config_map("ns1", "cfg", &[("k", "v")])
        .secret("ns1", "s", &[("k", b"v")]);
    let opt = |kind: &str, name: &str, key: &str| json!({"name": "OPT", "valueFrom": {kind: {"name": name, "key": key, "optional": true}}});
    // Optional misses skip the variable entirely (an earlier value survives).
    let p = pod_with_container(json!({"env": [
        {"name": "OPT", "value": "kept"},
        opt("configMapKeyRef", "nope", "k"),
        opt("configMapKeyRef", "cfg", "nope"),
        opt("secretKeyRef", "nope", "k"),
        opt("secretKeyRef", "s", "nope"),
    ]}));
    let r = resolve(&p, &src).await.unwrap();
    assert_eq!(vars(&r), [("OPT", "kept")]);

    for (kind, name, key, message) in [
        (
            "configMapKeyRef",
            "nope",
            "k",
            "configmap \"ns1/nope\" not found",
        ),
        (
            "configMapKeyRef",
            "cfg",
            "nope",
            "key \"nope\" not found in configmap \"ns1/cfg\"",
        ),
        ("secretKeyRef", "nope", "k", "secret \"ns1/nope\" not found"),
        (
            "secretKeyRef",
            "s",
            "nope",
            "key \"nope\" not found in secret \"ns1/s\"",
        ),
    ] {
        let p = pod_with_container(
            json!({"env": [{"name": "X", "valueFrom": {kind: {"name": name, "key": key}}}]}),
        );
        assert_missing(resolve(&p, &src).await, message);
    }
}

#[tokio::test]
async fn config_map_key_ref_ignores_binary_data() {
    // Like the kubelet, only `data` feeds environment variables.
    let src = FakeSource::new().config_map_with_binary("ns1", "cfg", &[], &[("bin", b"x")]);
    let p = pod_with_container(
        json!({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "bin"}}}]}),
    );
    assert_missing(
        resolve(&p, &src).await,
        "key \"bin\" not found in configmap \"ns1/cfg\"",
    );
}

#[tokio::test]
async fn field_refs() {
    let mut p = pod(json!({
        "serviceAccountName": "builder",
        "containers": [{"name": "app", "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NOLABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['missing']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['example.com/note']"}}},
            {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "HOST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}},
            {"name": "URL", "value": "http://$(POD_IP):8080/$(NAME)"},
        ]}],
    }));
    p.metadata.labels = Some(BTreeMap::from([
        ("app".into(), "web".into()),
        ("tier".into(), "front".into()),
    ]));
    p.metadata.annotations = Some(BTreeMap::from([("example.com/note".into(), "hi".into())]));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let env = env_map(&r);
    let get = |k: &str| env[k].as_str();
    assert_eq!(get("NAME"), "web");
    assert_eq!(get("NS"), "ns1");
    assert_eq!(get("UID"), "uid-1");
    assert_eq!(get("APP"), "web");
    assert_eq!(get("NOLABEL"), "");
    assert_eq!(get("NOTE"), "hi");
    assert_eq!(get("LABELS"), "app=\"web\"\ntier=\"front\"");
    assert_eq!(get("NODE"), NODE);
    assert_eq!(get("SA"), "builder");
    assert_eq!(get("POD_IP"), "");
    assert_eq!(get("POD_IPS"), "");
    assert_eq!(get("HOST_IP"), NODE_IP);
    assert_eq!(get("HOST_IPS"), NODE_IP);
    assert_eq!(get("URL"), "http://:8080/web");

    // With the pod's addresses known.
    p.status = Some(
        serde_json::from_value(json!({
            "podIP": "192.168.1.5",
            "podIPs": [{"ip": "192.168.1.5"}, {"ip": "fd00::5"}],
        }))
        .unwrap(),
    );
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let env = env_map(&r);
    assert_eq!(env["POD_IP"], "192.168.1.5");
    assert_eq!(env["POD_IPS"], "192.168.1.5,fd00::5");
    assert_eq!(env["URL"], "http://192.168.1.5:8080/web");

    // podIPs only.
    p.status = Some(serde_json::from_value(json!({"podIPs": [{"ip": "fd00::7"}]})).unwrap());
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(env_map(&r)["POD_IP"], "fd00::7");
}

#[tokio::test]
async fn bad_field_refs_are_invalid() {
    for (path, api_version, want) in [
        ("spec.restartPolicy", None, "unsupported fieldPath"),
        ("status.phase", None, "unsupported fieldPath"),
        ("metadata.generateName", None, "unsupported fieldPath"),
        ("metadata.name['x']", None, "does not support subscript"),
        ("metadata.labels['-bad-']", None, "invalid key subscript"),
        ("metadata.name", Some("v2"), "unsupported pod version"),
        ("", None, "unsupported fieldPath"),
    ] {
        let p = pod_with_container(json!({"env": [
            {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": path, "apiVersion": api_version}}},
        ]}));
        assert_invalid(resolve(&p, &FakeSource::new()).await, want);
    }
}

#[tokio::test]
async fn resource_field_refs() {
    let p = pod(json!({
        "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "2"}}}],
        "containers": [
            {
                "name": "app",
                "resources": {
                    "requests": {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "1Gi"},
                    "limits": {"cpu": "1500m", "memory": "128Mi"},
                },
                "env": [
                    {"name": "LIM_CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                    {"name": "LIM_CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                    {"name": "REQ_CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                    {"name": "REQ_CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
                    {"name": "LIM_MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
                    {"name": "LIM_MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "REQ_MEM_G", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1G"}}},
                    {"name": "REQ_EPH_MI", "valueFrom": {"resourceFieldRef": {"resource": "requests.ephemeral-storage", "divisor": "1Mi"}}},
                    {"name": "LIM_EPH", "valueFrom": {"resourceFieldRef": {"resource": "limits.ephemeral-storage"}}},
                    {"name": "ZERO_DIV", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "0"}}},
                    {"name": "OTHER", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "containerName": "side"}}},
                    {"name": "INIT", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "containerName": "init", "divisor": "1m"}}},
                ],
            },
            {"name": "side", "resources": {"limits": {"cpu": "3"}}},
        ],
    }));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let env = env_map(&r);
    let get = |k: &str| env[k].as_str();
    assert_eq!(get("LIM_CPU"), "2"); // 1.5 cores rounds up
    assert_eq!(get("LIM_CPU_M"), "1500");
    assert_eq!(get("REQ_CPU"), "1"); // 250m rounds up to one core
    assert_eq!(get("REQ_CPU_M"), "250");
    assert_eq!(get("LIM_MEM"), "134217728");
    assert_eq!(get("LIM_MEM_MI"), "128");
    assert_eq!(get("REQ_MEM_G"), "1"); // 64Mi = 0.067G rounds up
    assert_eq!(get("REQ_EPH_MI"), "1024");
    assert_eq!(get("LIM_EPH"), "1073741824"); // no limit: the request
    assert_eq!(get("ZERO_DIV"), "1");
    assert_eq!(get("OTHER"), "3");
    assert_eq!(get("INIT"), "2000");
}

#[tokio::test]
async fn resource_field_refs_without_values() {
    // No limit: the request is used; neither: 0. A limit alone is also the request.
    let p = pod(json!({"containers": [
        {
            "name": "app",
            "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}},
            "env": [
                {"name": "LIM_CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                {"name": "REQ_MEM", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Gi"}}},
                {"name": "LIM_EPH", "valueFrom": {"resourceFieldRef": {"resource": "limits.ephemeral-storage"}}},
                {"name": "HUGE", "valueFrom": {"resourceFieldRef": {"resource": "limits.hugepages-2Mi"}}},
            ],
        },
    ]}));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    let env = env_map(&r);
    assert_eq!(env["LIM_CPU_M"], "500");
    assert_eq!(env["REQ_MEM"], "1");
    assert_eq!(env["LIM_EPH"], "0");
    assert_eq!(env["HUGE"], "0");
}

#[tokio::test]
async fn bad_resource_field_refs_are_invalid() {
    for (sel, want) in [
        (
            json!({"resource": "limits.gpu"}),
            "unsupported container resource",
        ),
        (json!({"resource": "cpu"}), "unsupported container resource"),
        (
            json!({"resource": "usage.cpu"}),
            "unsupported container resource",
        ),
        (
            json!({"resource": "limits.cpu", "containerName": "ghost"}),
            "\"ghost\" not found",
        ),
        (
            json!({"resource": "limits.cpu", "divisor": "lots"}),
            "divisor",
        ),
        (
            json!({"resource": "limits.cpu", "divisor": "-1"}),
            "negative",
        ),
    ] {
        let p = pod_with_container(
            json!({"env": [{"name": "X", "valueFrom": {"resourceFieldRef": sel}}]}),
        );
        assert_invalid(resolve(&p, &FakeSource::new()).await, want);
    }
    let p = pod_with_container(json!({
        "resources": {"limits": {"cpu": "a lot"}},
    }));
    assert_invalid(resolve(&p, &FakeSource::new()).await, "cpu");
}

#[tokio::test]
async fn command_and_args_expand_against_the_final_env() {
    let src = FakeSource::new().config_map("ns1", "cfg", &[("FROM_CM", "cm")]);
    let p = pod_with_container(json!({
        "envFrom": [{"configMapRef": {"name": "cfg"}}],
        "env": [
            {"name": "FIRST", "value": "$(LAST)"},  // LAST not yet defined here
            {"name": "LAST", "value": "last"},
        ],
        "command": ["run", "$(LAST)", "$(FIRST)", "$(FROM_CM)"],
        "args": ["--x=$(LAST)", "$$(LAST)", "$(UNDEFINED)", "$(LAST", "cost: $5", "$"],
    }));
    let r = resolve(&p, &src).await.unwrap();
    let c = app(&r);
    assert_eq!(c.command, ["run", "last", "$(LAST)", "cm"]);
    assert_eq!(
        c.args,
        [
            "--x=last",
            "$(LAST)",
            "$(UNDEFINED)",
            "$(LAST",
            "cost: $5",
            "$"
        ]
    );
}

#[tokio::test]
async fn invalid_env_from_keys_are_skipped_with_a_warning() {
    let src = FakeSource::new()
        .config_map(
            "ns1",
            "cfg",
            &[
                ("GOOD", "1"),
                ("has=equals", "2"),
                ("tab\tkey", "3"),
                ("1key.ok-too", "4"),
            ],
        )
        .secret("ns1", "sec", &[("ok", b"1"), ("é", b"2")]);
    let p = pod_with_container(json!({"envFrom": [
        {"configMapRef": {"name": "cfg"}},
        {"secretRef": {"name": "sec"}},
    ]}));
    let (r, warnings) = resolve_warn(&p, &src).await.unwrap();
    assert_eq!(vars(&r), [("1key.ok-too", "4"), ("GOOD", "1"), ("ok", "1")]);
    let warnings: Vec<(&str, &str)> = warnings
        .iter()
        .map(|w| (w.reason.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                "InvalidEnvironmentVariableNames",
                "Keys [has=equals, tab\tkey] from the EnvFrom configMap ns1/cfg were skipped since they are considered invalid environment variable names."
            ),
            (
                "InvalidEnvironmentVariableNames",
                "Keys [é] from the EnvFrom secret ns1/sec were skipped since they are considered invalid environment variable names."
            ),
        ]
    );
}

#[tokio::test]
async fn each_container_has_its_own_env() {
    let p = pod(json!({
        "initContainers": [{"name": "init", "env": [{"name": "A", "value": "init"}], "command": ["$(A)"]}],
        "containers": [
            {"name": "one", "env": [{"name": "A", "value": "one"}], "args": ["$(A)"]},
            {"name": "two", "args": ["$(A)"]},
        ],
    }));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(r.init_containers[0].command, ["init"]);
    assert_eq!(r.containers[0].args, ["one"]);
    assert_eq!(r.containers[1].args, ["$(A)"]);
    assert!(r.containers[1].env.is_empty());
}

#[tokio::test]
async fn every_container_finds_the_api_server_like_under_a_kubelet() {
    let p = pod_with_container(json!({"env": [
        {"name": "API", "value": "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
        {"name": "KUBERNETES_SERVICE_PORT_HTTPS", "value": "8443"},
    ]}));
    let r = resolve(&p, &FakeSource::new().api_endpoint("10.96.0.1", 443))
        .await
        .unwrap();
    assert_eq!(
        vars(&r),
        [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            // The container's own value wins, in place.
            ("KUBERNETES_SERVICE_PORT_HTTPS", "8443"),
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
            ("API", "https://10.96.0.1:443"),
        ]
    );

    // IPv6 addresses are bracketed in the URLs; without an endpoint nothing is added.
    let r = resolve(&p, &FakeSource::new().api_endpoint("fd00::1", 6443))
        .await
        .unwrap();
    assert!(vars(&r).contains(&("KUBERNETES_PORT", "tcp://[fd00::1]:6443")));
    assert!(vars(&r).contains(&("KUBERNETES_PORT_6443_TCP_ADDR", "fd00::1")));
    let r = resolve(&p, &FakeSource::new()).await.unwrap();
    assert_eq!(
        vars(&r),
        [
            (
                "API",
                "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"
            ),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "8443"),
        ]
    );
}
