//! The ACI face over plain HTTP, driven with a hyper client as any ARM client drives it (the
//! helpers of every test of the face): Azure AD and IMDS tokens, the bearer, api-version,
//! subscription and resource group checks.

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
async fn injected_faults_answer_like_arm() {
    let face = start(config()).await;
    let set = |faults: Value| {
        face.raw(
            "POST",
            "/admin/faults",
            Some(faults.to_string().into_bytes()),
            None,
            &[],
        )
    };
    assert_eq!(set(json!({"throttle_calls": 1})).await.status, 200);
    let throttled = face.call("GET", &group_path("g"), None).await;
    assert_eq!(throttled.status, 429);
    assert!(throttled.headers.contains_key("retry-after"));
    assert_eq!(face.call("GET", &group_path("g"), None).await.status, 404);
    set(json!({"error_rate": 1.0})).await;
    let failed = face.call("GET", &group_path("g"), None).await;
    assert!([500, 503].contains(&failed.status), "{}", failed.status);
    let code = failed.body["error"]["code"].as_str().unwrap();
    assert!(["InternalServerError", "ServiceUnavailable"].contains(&code));
    set(json!({})).await;
    let bad = set(json!({"nope": 1})).await;
    assert_eq!(bad.status, 400);
}
