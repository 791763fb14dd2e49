//! Where AWS workloads get their keys, so the provider's credential sources meet the real
//! protocols: IMDSv2 (a session token by `PUT /latest/api/token`, then the instance profile's
//! keys under `/latest/meta-data/iam/security-credentials/`) and the EKS Pod Identity agent
//! (`GET /v1/credentials` with the projected token as `Authorization`). The keys are issued
//! by the face's STS, so ECS and CloudWatch Logs accept their signatures.

use hyper::{HeaderMap, Method};
use jiff::Timestamp;

use super::api::Answer;
use super::face::Face;

/// The audience EKS Pod Identity's projected tokens carry.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";

const TOKEN_PATH: &str = "/latest/api/token";
const ROLES_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const POD_IDENTITY_PATH: &str = "/v1/credentials";

fn text(status: u16, body: impl Into<String>) -> Answer {
    Answer {
        status,
        content_type: "text/plain",
        body: body.into(),
        request_id: String::new(),
    }
}

fn keys_json(face: &Face, role: &str, session: &str, now: Timestamp) -> String {
    let config = face.config();
    let (c, _, _) = face.sts.issue(role, session, &config.account_id, now, 3600);
    serde_json::json!({
        "Code": "Success",
        "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "Type": "AWS-HMAC",
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "Token": c.session_token,
        "Expiration": c.expiration,
        "AccountId": config.account_id,
    })
    .to_string()
}

/// The answer when `path` is one of the identity endpoints; `None` for the APIs.
pub fn answer(face: &Face, method: &Method, path: &str, headers: &HeaderMap) -> Option<Answer> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = Timestamp::now();
    if path == TOKEN_PATH {
        if method != Method::PUT {
            return Some(text(405, "IMDSv2 session tokens are asked for with PUT"));
        }
        let Some(ttl) = header("x-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|t| (1..=21600).contains(t))
        else {
            return Some(text(
                400,
                "x-aws-ec2-metadata-token-ttl-seconds: 1 to 21600",
            ));
        };
        let token = uuid::Uuid::new_v4().simple().to_string();
        face.imds_sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), now.as_second() + ttl);
        return Some(text(200, token));
    }
    if let Some(rest) = path.strip_prefix(ROLES_PATH) {
        // IMDSv2 only: no session token, no answer (as with HttpTokens=required).
        let valid = header("x-aws-ec2-metadata-token").is_some_and(|t| {
            face.imds_sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(t)
                .is_some_and(|exp| *exp > now.as_second())
        });
        if !valid {
            return Some(text(401, ""));
        }
        let role = face.config().instance_role.clone();
        return Some(match rest {
            "" => text(200, role),
            r if r == role => Answer {
                status: 200,
                content_type: "application/json",
                body: keys_json(face, &role, "i-0123456789abcdef0", now),
                request_id: String::new(),
            },
            _ => text(404, ""),
        });
    }
    if path == POD_IDENTITY_PATH {
        let Some(token) = header("authorization") else {
            return Some(text(
                400,
                "Authorization (the projected service account token) is missing",
            ));
        };
        return Some(
            match face
                .sts
                .pod_identity_token_ok(token, POD_IDENTITY_AUDIENCE, now)
            {
                Ok(subject) => {
                    let session: String = subject
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                        .take(64)
                        .collect();
                    Answer {
                        status: 200,
                        content_type: "application/json",
                        body: keys_json(face, &face.config().pod_identity_role, &session, now),
                        request_id: String::new(),
                    }
                }
                Err(why) => text(
                    401,
                    format!("the service account token is not accepted: {why}"),
                ),
            },
        );
    }
    None
}
