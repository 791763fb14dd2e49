//! Component tests: both signature methods against the mock cloud's own verifier, and each
//! way a signed request can be wrong answered with the service's code.

use crate::client::{ClientConfig, EciClient, EciError, SignatureMethod};
use crate::tests_support::*;
use crate::wire::request::DescribeContainerGroups;
use crate::wire::sign_acs3;

fn code(e: &EciError) -> &str {
    match e {
        EciError::Api { code, .. } => code.as_str(),
        other => panic!("not an API error: {other}"),
    }
}

fn client(endpoint: &str, secret: &str, method: SignatureMethod) -> EciClient {
    let mut config = ClientConfig::new(endpoint, "cn-hangzhou", KEY_ID, secret);
    config.signature = method;
    EciClient::new(config).expect("client")
}

#[tokio::test]
async fn both_methods_are_accepted_and_a_wrong_secret_is_refused_on_both() {
    let cloud = cloud(|_| {}).await;
    for method in [SignatureMethod::Acs3, SignatureMethod::HmacSha1] {
        client(&cloud.endpoint(), SECRET, method)
            .send(&DescribeContainerGroups::default())
            .await
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        let e = client(&cloud.endpoint(), "wrong", method)
            .send(&DescribeContainerGroups::default())
            .await
            .unwrap_err();
        assert_eq!(code(&e), "SignatureDoesNotMatch", "{method:?}: {e}");
    }
}

/// A hand-made ACS3 request: the headers signed, then some of them or the body changed.
struct Acs3 {
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Acs3 {
    fn new(host: &str, secret: &str, key_id: &str, query: &[(&str, &str)], body: &str) -> Self {
        let payload = sign_acs3::hashed_payload(body.as_bytes());
        let mut headers: Vec<(String, String)> = [
            ("host", host.to_string()),
            ("x-acs-action", "DescribeContainerGroups".into()),
            ("x-acs-version", "2018-08-08".into()),
            ("x-acs-date", now()),
            ("x-acs-signature-nonce", crate::client::random_uuid()),
            ("x-acs-content-sha256", payload.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let signed =
            sign_acs3::canonical_request("POST", query.iter().copied(), &headers, &payload);
        headers.push((
            "authorization".into(),
            sign_acs3::authorization(key_id, secret, &signed),
        ));
        Acs3 {
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers,
            body: body.into(),
        }
    }

    fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.headers.retain(|(k, _)| k != name);
        self.headers.push((name.into(), value.into()));
        self
    }

    async fn send(&self, addr: std::net::SocketAddr) -> (u16, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut send, conn) = hyper::client::conn::http1::handshake::<
            _,
            http_body_util::Full<bytes::Bytes>,
        >(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("handshake");
        tokio::spawn(conn);
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.query)
            .finish();
        let mut req = hyper::Request::post(format!("/?{query}"))
            .header("content-type", "application/x-www-form-urlencoded");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(
                self.body.clone(),
            )))
            .expect("request");
        let res = send.send_request(req).await.expect("answer");
        let status = res.status().as_u16();
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[tokio::test]
async fn every_acs3_mistake_has_the_services_code() {
    let cloud = cloud(|_| {}).await;
    let addr = cloud.addr();
    let host = addr.to_string();
    let query = [("RegionId", "cn-hangzhou"), ("Limit", "5")];
    let good = || Acs3::new(&host, SECRET, KEY_ID, &query, "Status=Running");
    let expect = |(status, body): (u16, String), want: u16, code: &str| {
        assert_eq!(status, want, "{body}");
        assert!(body.contains(&format!("\"Code\":\"{code}\"")), "{body}");
    };

    // As signed: accepted, parameters from the query and the form body alike.
    let ok = good();
    let (status, body) = ok.send(addr).await;
    assert_eq!(status, 200, "{body}");
    // Replayed: the nonce was used.
    expect(ok.send(addr).await, 400, "SignatureNonceUsed");

    // The body changed in transit: its hash is not the signed one.
    let mut tampered = good();
    tampered.body = "Status=Pending".into();
    expect(tampered.send(addr).await, 400, "SignatureDoesNotMatch");
    // The claimed body hash changed too: the signature no longer covers it.
    let mut tampered = good();
    tampered.body = "Status=Pending".into();
    let hash = sign_acs3::hashed_payload(b"Status=Pending");
    tampered.set("x-acs-content-sha256", &hash);
    expect(tampered.send(addr).await, 400, "SignatureDoesNotMatch");
    // A query parameter added or changed.
    let mut tampered = good();
    tampered.query[1].1 = "50".into();
    expect(tampered.send(addr).await, 400, "SignatureDoesNotMatch");
    // Another action than the one signed.
    let mut tampered = good();
    tampered.set("x-acs-action", "DeleteContainerGroup");
    expect(tampered.send(addr).await, 400, "SignatureDoesNotMatch");

    // An x-acs- header that is not among SignedHeaders.
    let mut unsigned = good();
    unsigned.set("x-acs-extra", "1");
    expect(unsigned.send(addr).await, 400, "IncompleteSignature");
    // The Authorization header without its Signature part.
    let mut incomplete = good();
    incomplete.set(
        "authorization",
        "ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host",
    );
    expect(incomplete.send(addr).await, 400, "IncompleteSignature");
    let mut incomplete = good();
    incomplete
        .headers
        .retain(|(k, _)| k != "x-acs-signature-nonce");
    expect(incomplete.send(addr).await, 400, "IncompleteSignature");
    let mut missing = good();
    missing.headers.retain(|(k, _)| k != "x-acs-action");
    expect(missing.send(addr).await, 400, "MissingParameter");

    // RPC signature 1.0: a common parameter left out is named in the code.
    let (status, body) = Acs3 {
        query: vec![
            ("Action".into(), "DescribeContainerGroups".into()),
            ("Version".into(), "2018-08-08".into()),
            ("AccessKeyId".into(), KEY_ID.into()),
            ("Signature".into(), "x".into()),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("SignatureNonce".into(), "n".into()),
        ],
        headers: vec![("host".into(), host.clone())],
        body: String::new(),
    }
    .send(addr)
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"Code\":\"MissingTimestamp\""), "{body}");

    // Unknown key, wrong secret.
    let stranger = Acs3::new(&host, SECRET, "nobody", &query, "");
    expect(
        stranger.send(addr).await,
        404,
        "InvalidAccessKeyId.NotFound",
    );
    let wrong = Acs3::new(&host, "wrong", KEY_ID, &query, "");
    expect(wrong.send(addr).await, 400, "SignatureDoesNotMatch");

    // A stale or malformed x-acs-date, once correctly signed.
    for (date, code) in [
        ("2016-02-23T12:46:24Z", "InvalidTimeStamp.Expired"),
        ("yesterday", "InvalidTimeStamp.Format"),
    ] {
        let mut req = Acs3::new(&host, SECRET, KEY_ID, &query, "");
        let payload = sign_acs3::hashed_payload(b"");
        req.headers.retain(|(k, _)| k != "authorization");
        req.set("x-acs-date", date);
        let signed = sign_acs3::canonical_request("POST", query, &req.headers, &payload);
        req.set(
            "authorization",
            &sign_acs3::authorization(KEY_ID, SECRET, &signed),
        );
        expect(req.send(addr).await, 400, code);
    }
}

#[tokio::test]
async fn sts_keys_sign_acs3_with_their_token() {
    let cloud = cloud(|_| {}).await;
    let addr = cloud.addr();
    let host = addr.to_string();
    let keys = cloud.sts().issue(3600);
    let query = [("RegionId", "cn-hangzhou")];
    let signed_with = |token: Option<&str>| {
        let mut req = Acs3::new(
            &host,
            &keys.access_key_secret,
            &keys.access_key_id,
            &query,
            "",
        );
        if let Some(token) = token {
            let payload = sign_acs3::hashed_payload(b"");
            req.headers.retain(|(k, _)| k != "authorization");
            req.set("x-acs-security-token", token);
            let signed = sign_acs3::canonical_request("POST", query, &req.headers, &payload);
            req.set(
                "authorization",
                &sign_acs3::authorization(&keys.access_key_id, &keys.access_key_secret, &signed),
            );
        }
        req
    };
    let (status, body) = signed_with(Some(&keys.security_token)).send(addr).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = signed_with(None).send(addr).await;
    assert!(body.contains("MissingSecurityToken"), "{body}");
    let (_, body) = signed_with(Some("not-the-token")).send(addr).await;
    assert!(
        body.contains("InvalidSecurityToken.MismatchWithAccessKey"),
        "{body}"
    );
}
