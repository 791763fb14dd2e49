//! STS over HTTP: web identity keys issued, used for ECS, Logs and GetCallerIdentity, refused
//! without their session token, expired; tokens refused for their issuer, expiry or form.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::tests::{Keys, call_as, cloud_with, http, signed_head};

fn jwt(claims: Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.sig", part(&json!({"alg": "RS256"})), part(&claims))
}

async fn sts(cloud: &super::EcsCloud, form: &str, keys: Option<&Keys>) -> (u16, String) {
    let head = match keys {
        Some(k) => signed_head(cloud, k, "sts", None, form),
        None => vec![
            ("host".to_string(), cloud.addr().to_string()),
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
        ],
    };
    http(cloud, &head, form).await
}

fn element(xml: &str, name: &str) -> String {
    fargate::wire::sts::element(xml, name).unwrap_or_default()
}

#[tokio::test]
async fn web_identity_keys_sign_calls_until_they_expire() {
    let cloud = cloud_with(|c| c.sts.issuers = vec!["https://issuer.example".into()]).await;
    let exp = jiff::Timestamp::now().as_second() + 600;
    let token = jwt(
        json!({"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:sa", "aud": "sts.amazonaws.com", "exp": exp}),
    );
    let form = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fvk&RoleSessionName=vk-1&WebIdentityToken={token}"
    );
    let (status, xml) = sts(&cloud, &form, None).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(
        element(&xml, "Arn"),
        "arn:aws:sts::123456789012:assumed-role/vk/vk-1"
    );
    let temp = Keys {
        id: element(&xml, "AccessKeyId"),
        secret: element(&xml, "SecretAccessKey"),
        token: Some(element(&xml, "SessionToken")),
    };
    assert!(temp.id.starts_with("ASIA"));
    let (status, answer) = call_as(&cloud, &temp, "ecs", "ListTasks", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    let (status, me) = sts(
        &cloud,
        "Action=GetCallerIdentity&Version=2011-06-15",
        Some(&temp),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        element(&me, "Arn"),
        "arn:aws:sts::123456789012:assumed-role/vk/vk-1"
    );
    let no_token = Keys {
        token: None,
        ..temp.clone()
    };
    let (_, refused) = call_as(&cloud, &no_token, "logs", "DescribeLogGroups", json!({})).await;
    assert_eq!(refused["__type"], "UnrecognizedClientException");

    let other = jwt(json!({"iss": "https://elsewhere", "sub": "x", "exp": exp}));
    let (status, xml) = sts(&cloud, &form.replace(&token, &other), None).await;
    assert_eq!(
        (status, element(&xml, "Code")),
        (400, "InvalidIdentityToken".into()),
        "{xml}"
    );
    let old = jwt(json!({"iss": "https://issuer.example", "sub": "x", "exp": 1000}));
    let (_, xml) = sts(&cloud, &form.replace(&token, &old), None).await;
    assert_eq!(element(&xml, "Code"), "ExpiredTokenException");
    let (_, xml) = sts(&cloud, &form.replace(&token, "not-a-jwt"), None).await;
    assert_eq!(element(&xml, "Code"), "InvalidIdentityToken");
    let (_, xml) = sts(&cloud, &form.replace("role%2Fvk", "user%2Fvk"), None).await;
    assert_eq!(element(&xml, "Code"), "ValidationError");
    let (status, xml) = sts(&cloud, "Action=GetCallerIdentity&Version=2011-06-15", None).await;
    assert_eq!(
        (status, element(&xml, "Code")),
        (403, "MissingAuthenticationToken".into())
    );

    // Keys that live no time at all.
    let cloud = cloud_with(|c| c.sts.lifetime_secs = Some(0)).await;
    let (_, xml) = sts(&cloud, &form, None).await;
    let temp = Keys {
        id: element(&xml, "AccessKeyId"),
        secret: element(&xml, "SecretAccessKey"),
        token: Some(element(&xml, "SessionToken")),
    };
    let (status, expired) = call_as(&cloud, &temp, "ecs", "ListTasks", json!({})).await;
    assert_eq!(
        (status, expired["__type"].clone()),
        (400, json!("ExpiredTokenException"))
    );
}
