//! The container group operations of the ACI face over HTTP: the asynchronous create and
//! delete, secrets left out of a GET, sizing and naming errors, lists with paging, tags,
//! restart/stop/start, logs, quotas and ARM's budgets.

use std::time::Duration;

use serde_json::{Value, json};

use super::tests::{
    Face, Reply, SUB, config, container_path, create, group_body, group_path, start, wait_operation,
};

async fn wait_state(face: &Face, name: &str, state: &str) -> Value {
    for _ in 0..300 {
        let g = face.call("GET", &group_path(name), None).await.body;
        if g["properties"]["instanceView"]["state"] == state {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never got to {state}");
}

#[tokio::test]
async fn a_create_is_asynchronous_and_a_get_hides_secrets() {
    let face = start(config()).await;
    let put = face
        .call("PUT", &group_path("g1"), Some(group_body(1.0, 1.5)))
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert!(
        ["Pending", "Creating"].contains(
            &put.body["properties"]["provisioningState"]
                .as_str()
                .unwrap()
        )
    );
    assert!(
        put.headers
            .contains_key("x-ms-ratelimit-remaining-subscription-writes")
    );
    assert_eq!(wait_operation(&face, &put).await["status"], "Succeeded");
    let g = wait_state(&face, "g1", "Running").await;
    let group: aci::wire::ContainerGroup = serde_json::from_value(g.clone()).unwrap();
    assert_eq!(
        group.properties.provisioning_state.as_deref(),
        Some("Succeeded")
    );
    let app = &group.properties.containers[0].properties;
    assert_eq!(
        app.environment_variables[1].secure_value, None,
        "secure values are never returned"
    );
    assert_eq!(
        group.properties.volumes[1].secret.as_ref().unwrap()["token"],
        ""
    );
    assert_eq!(
        app.instance_view
            .as_ref()
            .unwrap()
            .current_state
            .as_ref()
            .unwrap()
            .state
            .as_deref(),
        Some("Running")
    );
    let init = group.properties.init_containers[0]
        .properties
        .instance_view
        .as_ref()
        .unwrap();
    assert_eq!(init.current_state.as_ref().unwrap().exit_code, Some(0));
    assert!(
        group
            .properties
            .ip_address
            .unwrap()
            .ip
            .unwrap()
            .starts_with("10.240.")
    );

    // The same PUT again is the same group; a changed one replaces it.
    let again = face
        .call("PUT", &group_path("g1"), Some(group_body(1.0, 1.5)))
        .await;
    assert_eq!(again.status, 200);
    let changed = face
        .call("PUT", &group_path("g1"), Some(group_body(2.0, 1.5)))
        .await;
    assert_eq!(changed.status, 200);
    assert_eq!(face.cloud.engine().len(), 1);
}

#[tokio::test]
async fn sizing_and_naming_follow_acis_rules() {
    let face = start(config()).await;
    let code = |r: &Reply| {
        r.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let too_big = face
        .call("PUT", &group_path("big"), Some(group_body(4.5, 1.0)))
        .await;
    assert_eq!(
        (too_big.status, code(&too_big).as_str()),
        (409, "ServiceUnavailable")
    );
    let odd = face
        .call("PUT", &group_path("odd"), Some(group_body(1.0, 0.15)))
        .await;
    assert_eq!(
        (odd.status, code(&odd).as_str()),
        (400, "InvalidMemoryRequest")
    );
    let cpu = face
        .call("PUT", &group_path("cpu"), Some(group_body(0.005, 1.0)))
        .await;
    assert_eq!(code(&cpu), "InvalidCpuRequest");
    let name = face
        .call("PUT", &group_path("Bad-Name"), Some(group_body(1.0, 1.0)))
        .await;
    assert_eq!(code(&name), "InvalidContainerGroupName");
    let mut limits = group_body(1.0, 1.0);
    limits["properties"]["containers"][0]["properties"]["resources"]["limits"] =
        json!({"cpu": 2.0});
    assert_eq!(
        code(
            &face
                .call("PUT", &group_path("l1"), Some(limits.clone()))
                .await
        ),
        "ContainerLimitGreaterThanContainerGroupTotalRequest"
    );
    limits["properties"]["containers"][0]["properties"]["resources"]["limits"] =
        json!({"cpu": 0.5});
    assert_eq!(
        code(&face.call("PUT", &group_path("l2"), Some(limits)).await),
        "ResourceLimitsLessThanRequests"
    );
    let mut mount = group_body(1.0, 1.0);
    mount["properties"]["volumes"] = json!([]);
    assert_eq!(
        code(&face.call("PUT", &group_path("m"), Some(mount)).await),
        "InvalidVolumeMount"
    );
    let mut windows = group_body(1.0, 1.0);
    windows["properties"]["osType"] = json!("Windows");
    assert_eq!(
        code(&face.call("PUT", &group_path("w"), Some(windows)).await),
        "InvalidOsType"
    );
    let mut image = group_body(1.0, 1.0);
    image["properties"]["containers"][0]["properties"]["image"] = json!("example.test/nothing:1");
    assert_eq!(
        code(&face.call("PUT", &group_path("i"), Some(image)).await),
        "InaccessibleImage"
    );
    let garbage = face
        .raw(
            "PUT",
            &group_path("x"),
            Some(b"{".to_vec()),
            Some(&face.token),
            &[],
        )
        .await;
    assert_eq!(
        (garbage.status, code(&garbage).as_str()),
        (400, "InvalidRequestContent")
    );
    assert_eq!(face.cloud.engine().len(), 0);
}

#[tokio::test]
async fn lists_page_and_tags_patch() {
    let mut config = config();
    config.page_size = 2;
    let face = start(config).await;
    for name in ["a", "b", "c"] {
        create(&face, name).await;
    }
    let first = face.call("GET", &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01"), None).await;
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let listed = &first.body["value"][0]["properties"];
    assert_eq!(listed["provisioningState"], "Succeeded");
    assert!(
        listed.get("instanceView").is_none(),
        "as ACI's, a list has no instance views"
    );
    assert!(
        listed["containers"][0]["properties"]
            .get("instanceView")
            .is_none()
    );
    let next = first.body["nextLink"].as_str().unwrap().to_string();
    let second = face.call("GET", &next, None).await;
    assert_eq!(second.body["value"][0]["name"], "c");
    assert!(second.body.get("nextLink").is_none());
    let all = face.call("GET", &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01"), None).await;
    assert_eq!(all.body["value"].as_array().unwrap().len(), 2);
    let patched = face
        .call("PATCH", &group_path("a"), Some(json!({"tags": {"x": "y"}})))
        .await;
    assert_eq!(patched.body["tags"], json!({"x": "y"}));
}

#[tokio::test]
async fn restart_stop_start_and_delete() {
    let face = start(config()).await;
    create(&face, "g").await;
    let action = |a: &str| {
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g/{a}?api-version=2023-05-01"
        )
    };
    let restart = face.call("POST", &action("restart"), None).await;
    assert_eq!(restart.status, 204);
    assert_eq!(wait_operation(&face, &restart).await["status"], "Succeeded");
    assert_eq!(face.call("POST", &action("stop"), None).await.status, 204);
    let stopped = wait_state(&face, "g", "Stopped").await;
    assert_eq!(
        stopped["properties"]["containers"][0]["properties"]["instanceView"]["currentState"]["state"],
        "Terminated"
    );
    assert_eq!(
        face.cloud.engine().len(),
        0,
        "a stopped group holds no resources"
    );
    let start = face.call("POST", &action("start"), None).await;
    assert_eq!(start.status, 202);
    wait_operation(&face, &start).await;
    wait_state(&face, "g", "Running").await;
    let delete = face.call("DELETE", &group_path("g"), None).await;
    assert_eq!(delete.status, 202);
    assert_eq!(wait_operation(&face, &delete).await["status"], "Succeeded");
    assert_eq!(face.call("GET", &group_path("g"), None).await.status, 404);
    assert_eq!(
        face.call("DELETE", &group_path("g"), None).await.status,
        204
    );
}

#[tokio::test]
async fn logs_take_tail_and_timestamps() {
    let face = start(config()).await;
    create(&face, "g").await;
    wait_state(&face, "g", "Running").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let all = face
        .call("GET", &container_path("g", "app", "logs"), None)
        .await;
    let content = all.body["content"].as_str().unwrap().to_string();
    assert!(content.starts_with("app: started"), "{content}");
    let tail = face
        .call(
            "GET",
            &format!(
                "{}&tail=1&timestamps=true",
                container_path("g", "app", "logs")
            ),
            None,
        )
        .await;
    let line = tail.body["content"].as_str().unwrap();
    assert_eq!(line.lines().count(), 1);
    assert!(
        line.split(' ')
            .next()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok(),
        "{line}"
    );
    let missing = face
        .call("GET", &container_path("g", "nope", "logs"), None)
        .await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("ContainerNotFound"))
    );
}

#[tokio::test]
async fn quotas_and_budgets_answer_like_arm() {
    let mut small = config();
    small.quotas.container_groups = 1;
    small.arm_budget.writes = 3;
    let face = start(small).await;
    create(&face, "one").await;
    let second = face
        .call("PUT", &group_path("two"), Some(group_body(1.0, 1.0)))
        .await;
    assert_eq!(
        (second.status, second.body["error"]["code"].as_str()),
        (409, Some("ContainerGroupQuotaReached"))
    );
    assert_eq!(
        second.headers["x-ms-ratelimit-remaining-subscription-writes"],
        "1"
    );
    face.call("PATCH", &group_path("one"), Some(json!({"tags": {}})))
        .await;
    let throttled = face
        .call("PATCH", &group_path("one"), Some(json!({"tags": {}})))
        .await;
    assert_eq!(
        (throttled.status, throttled.body["error"]["code"].as_str()),
        (429, Some("SubscriptionRequestsThrottled"))
    );
    assert!(
        throttled.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );

    let mut limited_config = config();
    limited_config.quotas.creates_per_5_min = 1;
    let face = start(limited_config).await;
    create(&face, "one").await;
    let limited = face
        .call("PUT", &group_path("two"), Some(group_body(1.0, 1.0)))
        .await;
    assert_eq!(
        (limited.status, limited.body["error"]["code"].as_str()),
        (429, Some("TooManyRequests"))
    );
}
