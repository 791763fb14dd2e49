//! The wire types read ARM's documented shapes (with fields they do not know), and write the
//! names ARM expects.

use serde_json::json;

use super::*;

#[test]
fn a_group_answer_reads_with_unknown_fields() {
    let body = json!({
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g",
        "name": "g", "type": GROUP_TYPE, "location": "westeurope",
        "tags": {"pod-uid": "u1"},
        "somethingNew": {"x": 1},
        "properties": {
            "provisioningState": "Succeeded",
            "sku": "Standard", "osType": "Linux", "restartPolicy": "Never",
            "containers": [{
                "name": "c",
                "properties": {
                    "image": "busybox", "command": ["sh", "-c", "echo hi"],
                    "ports": [{"port": 80, "protocol": "TCP"}],
                    "environmentVariables": [{"name": "A", "value": "1"}, {"name": "S"}],
                    "resources": {"requests": {"cpu": 0.5, "memoryInGB": 1.5}},
                    "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": false}],
                    "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5},
                    "instanceView": {
                        "restartCount": 0,
                        "currentState": {"state": "Terminated", "exitCode": 3, "detailStatus": "Error",
                            "startTime": "2026-01-01T00:00:00Z", "finishTime": "2026-01-01T00:00:01Z"},
                        "events": [{"count": 1, "name": "Pulling", "message": "pulling image", "type": "Normal",
                            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"}]
                    },
                    "newField": true
                }
            }],
            "initContainers": [{"name": "i", "properties": {"image": "busybox", "command": ["true"]}}],
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "s", "secret": {"f": "aGk="}}],
            "ipAddress": {"type": "Private", "ip": "10.0.0.4", "ports": [{"port": 80}]},
            "dnsConfig": {"nameServers": ["10.0.0.10"], "searchDomains": "a b", "options": "ndots:5"},
            "subnetIds": [{"id": "/sub/net"}],
            "instanceView": {"state": "Failed", "events": []}
        }
    });
    let group: ContainerGroup = serde_json::from_value(body).unwrap();
    let c = &group.properties.containers[0].properties;
    assert_eq!(c.resources.requests.memory_in_gb, 1.5);
    let state = c
        .instance_view
        .as_ref()
        .unwrap()
        .current_state
        .as_ref()
        .unwrap();
    assert_eq!(state.exit_code, Some(3));
    assert_eq!(state.state.as_deref(), Some(container_state::TERMINATED));
    assert_eq!(
        c.instance_view.as_ref().unwrap().events[0].kind.as_deref(),
        Some("Normal")
    );
    assert_eq!(group.properties.volumes[0].empty_dir, Some(EmptyDir {}));
    assert_eq!(
        group.properties.volumes[1].secret.as_ref().unwrap()["f"],
        "aGk="
    );
    assert_eq!(
        group.properties.instance_view.unwrap().state.as_deref(),
        Some(group_state::FAILED)
    );
    assert_eq!(group.properties.init_containers[0].name, "i");
}

#[test]
fn a_group_writes_arm_names() {
    let mut group = ContainerGroup {
        location: Some("westeurope".into()),
        ..Default::default()
    };
    group.properties.os_type = os_type::LINUX.into();
    group.properties.containers.push(Container {
        name: "c".into(),
        properties: ContainerProperties {
            image: "busybox".into(),
            environment_variables: vec![EnvironmentVariable {
                name: "S".into(),
                secure_value: Some("x".into()),
                value: None,
            }],
            resources: ResourceRequirements {
                requests: Resources {
                    memory_in_gb: 1.0,
                    cpu: 1.0,
                    gpu: None,
                },
                limits: None,
            },
            ..Default::default()
        },
    });
    group.properties.volumes.push(Volume {
        name: "e".into(),
        empty_dir: Some(EmptyDir {}),
        ..Default::default()
    });
    let text = serde_json::to_value(&group).unwrap();
    assert_eq!(
        text,
        json!({"location": "westeurope", "properties": {"containers": [{"name": "c", "properties": {
            "image": "busybox",
            "environmentVariables": [{"name": "S", "secureValue": "x"}],
            "resources": {"requests": {"memoryInGB": 1.0, "cpu": 1.0}}}}],
            "osType": "Linux", "volumes": [{"name": "e", "emptyDir": {}}]}})
    );
}

#[test]
fn errors_tokens_and_pages_read() {
    let error: ArmError = serde_json::from_str(
        r#"{"error":{"code":"ResourceNotFound","message":"gone","details":[{"code":"x","message":"y"}]}}"#,
    )
    .unwrap();
    assert_eq!(error.error.code, codes::RESOURCE_NOT_FOUND);
    assert_eq!(error.error.details[0].code, "x");
    let imds: ImdsToken = serde_json::from_str(
        r#"{"access_token":"t","expires_in":"86399","expires_on":"1700000000","not_before":"1699913600","resource":"https://management.azure.com/","token_type":"Bearer"}"#,
    )
    .unwrap();
    assert_eq!(imds.expires_in, 86399);
    assert_eq!(
        serde_json::to_value(&imds).unwrap()["expires_on"],
        "1700000000"
    );
    let aad: AadToken = serde_json::from_str(
        r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"a"}"#,
    )
    .unwrap();
    assert_eq!(aad.expires_in, 3599);
    let page: ContainerGroupList =
        serde_json::from_str(r#"{"value":[{"name":"g","properties":{"containers":[],"osType":"Linux"}}],"nextLink":"https://x/next"}"#).unwrap();
    assert_eq!(page.value[0].name.as_deref(), Some("g"));
    let exec: ContainerExecResponse =
        serde_json::from_str(r#"{"webSocketUri":"wss://h/x","password":"p"}"#).unwrap();
    assert_eq!(exec.password, "p");
    let form = TokenRequest::from_pairs([("grant_type", "client_credentials"), ("other", "x")]);
    assert_eq!(form.grant_type, aad::GRANT_CLIENT_CREDENTIALS);
    assert_eq!(form.pairs().len(), 3);
}

#[test]
fn paths_are_arms() {
    assert_eq!(
        paths::container_exec("s", "rg", "g", "c"),
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g/containers/c/exec"
    );
    assert_eq!(paths::aad_token("t"), "/t/oauth2/v2.0/token");
}
