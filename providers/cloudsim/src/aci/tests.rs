//! The ACI face over plain HTTP, driven with a hyper client as any ARM client drives it:
//! Azure AD and IMDS tokens, the bearer and api-version checks, the asynchronous create and
//! delete, sizing and naming errors, lists with paging, tags, restart/stop/start, logs,
//! quotas and ARM's budgets.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::HeaderMap;
use serde_json::{Value, json};

use super::config::{AciConfig, FederatedTrust};
use super::server::AciCloud;
use super::tls::TlsMode;

pub(super) const SUB: &str = "00000000-0000-0000-0000-000000000001";

pub(super) struct Face {
    pub cloud: AciCloud,
    pub token: String,
}

pub(super) fn config() -> AciConfig {
    let mut config = AciConfig::with_client("app", "secret");
    config.schedule_latency_ms = 10;
    config.provision_latency_ms = 10;
    config.latency_jitter_ms = 0;
    config
}

pub(super) async fn start(config: AciConfig) -> Face {
    let cloud = AciCloud::start(config, "127.0.0.1:0", TlsMode::Plain)
        .await
        .unwrap();
    let token = cloud.face().token_for("app");
    Face { cloud, token }
}

pub(super) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Face {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.raw(
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            Some(&self.token),
            &[],
        )
        .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let uri = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.cloud.endpoint())
        };
        let mut req = hyper::Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let res = client.request(req).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}

pub(super) fn group_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/{name}?api-version=2023-05-01"
    )
}

pub(super) fn container_path(group: &str, container: &str, op: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/{group}/containers/{container}/{op}?api-version=2023-05-01"
    )
}

pub(super) fn group_body(cpu: f64, memory: f64) -> Value {
    json!({
        "location": "westeurope",
        "tags": {"pod": "p1"},
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Always",
            "containers": [{"name": "app", "properties": {
                "image": "busybox",
                "command": ["sleep", "3600"],
                "environmentVariables": [{"name": "A", "value": "1"}, {"name": "S", "secureValue": "hidden"}],
                "resources": {"requests": {"cpu": cpu, "memoryInGB": memory}},
                "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "creds", "mountPath": "/creds"}]
            }}],
            "initContainers": [{"name": "setup", "properties": {"image": "busybox", "command": ["true"],
                "environmentVariables": [{"name": "MOCKCLOUD_RUN_MS", "value": "0"}]}}],
            "volumes": [{"name": "work", "emptyDir": {}}, {"name": "creds", "secret": {"token": "czNjcmV0"}}]
        }
    })
}

/// Create `name` and wait for its operation to succeed.
pub(super) async fn create(face: &Face, name: &str) -> Reply {
    let reply = face
        .call("PUT", &group_path(name), Some(group_body(1.0, 1.5)))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    wait_operation(face, &reply).await;
    face.call("GET", &group_path(name), None).await
}

pub(super) async fn wait_operation(face: &Face, reply: &Reply) -> Value {
    let op = reply
        .headers
        .get("azure-asyncoperation")
        .expect("Azure-AsyncOperation")
        .to_str()
        .unwrap()
        .to_string();
    assert!(reply.headers.contains_key("retry-after"));
    for _ in 0..300 {
        let status = face.call("GET", &op, None).await;
        assert_eq!(status.status, 200, "{}", status.body);
        if status.body["status"] != "InProgress" {
            return status.body;
        }
        assert!(
            status.headers.contains_key("retry-after"),
            "a poll in progress says when to come back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the operation never ended");
}

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
async fn tokens_come_from_azure_ad_and_imds() {
    let mut config = config();
    config.federated.push(FederatedTrust {
        client_id: "wi".into(),
        issuer: "https://issuer".into(),
        subject: "sa".into(),
        ..Default::default()
    });
    let tenant = config.tenant_id.clone();
    let face = start(config).await;
    let form = |extra: &str| {
        format!("grant_type=client_credentials&client_id={extra}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default").into_bytes()
    };
    let path = format!("/{tenant}/oauth2/v2.0/token");
    let ok = face
        .raw(
            "POST",
            &path,
            Some(form("app&client_secret=secret")),
            None,
            &[],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let token: aci::wire::AadToken = serde_json::from_value(ok.body).unwrap();
    assert!(token.expires_in > 0);
    let list = format!(
        "/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01"
    );
    assert_eq!(
        face.raw("GET", &list, None, Some(&token.access_token), &[])
            .await
            .status,
        200
    );

    let wrong = face
        .raw(
            "POST",
            &path,
            Some(form("app&client_secret=nope")),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(wrong.body["error_codes"][0], 7000215);

    let b64 = |v: &Value| {
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.to_string(),
        )
    };
    let jwt = |sub: &str| {
        format!(
            "{}.{}.sig",
            b64(&json!({"alg": "RS256"})),
            b64(&json!({"iss": "https://issuer", "sub": sub, "aud": "api://AzureADTokenExchange"}))
        )
    };
    let assertion = |sub: &str| {
        form(&format!(
            "wi&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={}",
            jwt(sub)
        ))
    };
    assert_eq!(
        face.raw("POST", &path, Some(assertion("sa")), None, &[])
            .await
            .status,
        200
    );
    let refused = face
        .raw("POST", &path, Some(assertion("other")), None, &[])
        .await;
    assert_eq!(refused.body["error_codes"][0], 70021, "{}", refused.body);

    let discovery = face
        .raw(
            "GET",
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
            None,
            None,
            &[],
        )
        .await;
    assert!(
        discovery.body["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with(&path)
    );

    let imds = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F";
    assert_eq!(
        face.raw("GET", imds, None, None, &[]).await.status,
        400,
        "Metadata: true is required"
    );
    let answer = face
        .raw("GET", imds, None, None, &[("metadata", "true")])
        .await;
    let token: aci::wire::ImdsToken = serde_json::from_value(answer.body).unwrap();
    assert_eq!(
        face.raw("GET", &list, None, Some(&token.access_token), &[])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn arm_checks_the_token_api_version_subscription_and_group() {
    let face = start(config()).await;
    let none = face.raw("GET", &group_path("g"), None, None, &[]).await;
    assert_eq!(
        (none.status, none.body["error"]["code"].as_str()),
        (401, Some("AuthenticationFailed"))
    );
    assert!(
        none.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );
    let forged = face
        .raw("GET", &group_path("g"), None, Some("a.b.c"), &[])
        .await;
    assert_eq!(forged.body["error"]["code"], "InvalidAuthenticationToken");
    let no_version = face
        .call("GET", group_path("g").split('?').next().unwrap(), None)
        .await;
    assert_eq!(
        (no_version.status, no_version.body["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );
    let other_sub = face
        .call("GET", &group_path("g").replace(SUB, "nope"), None)
        .await;
    assert_eq!(
        (other_sub.status, other_sub.body["error"]["code"].as_str()),
        (404, Some("SubscriptionNotFound"))
    );
    let missing = face.call("GET", &group_path("g"), None).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    assert!(
        missing
            .headers
            .contains_key("x-ms-ratelimit-remaining-subscription-reads")
    );
    assert!(missing.headers.contains_key("x-ms-request-id"));

    let mut config = config();
    config.resource_groups = vec!["only".into()];
    let face = start(config).await;
    let rg = face.call("GET", &group_path("g"), None).await;
    assert_eq!(
        (rg.status, rg.body["error"]["code"].as_str()),
        (404, Some("ResourceGroupNotFound"))
    );
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
    let mut config = config();
    config.quotas.container_groups = 1;
    config.arm_budget.writes = 3;
    let face = start(config).await;
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

    let mut config = super::tests::config();
    config.quotas.creates_per_5_min = 1;
    let face = start(config).await;
    create(&face, "one").await;
    let limited = face
        .call("PUT", &group_path("two"), Some(group_body(1.0, 1.0)))
        .await;
    assert_eq!(
        (limited.status, limited.body["error"]["code"].as_str()),
        (429, Some("TooManyRequests"))
    );
}
