//! The ECS instance metadata face, in its hardened (IMDSv2-only) mode: `PUT
//! /latest/api/token` with `X-aliyun-ecs-metadata-token-ttl-seconds` (1 to 21600) hands out a
//! session token; `GET /latest/meta-data/ram/security-credentials/` lists the instance's RAM
//! role and `.../<role>` answers its temporary keys (issued by [`Sts`], so the ECI face
//! accepts them), both only with a valid `X-aliyun-ecs-metadata-token`.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;

use super::sts::Sts;
use eci::wire::sts::{
    METADATA_ROLES_PATH, METADATA_TOKEN_HEADER, METADATA_TOKEN_PATH, METADATA_TOKEN_TTL_HEADER,
    MetadataRoleCredentials,
};

/// Session tokens handed out, with their expiry.
#[derive(Default)]
pub struct MetadataTokens {
    tokens: Mutex<HashMap<String, Timestamp>>,
}

/// Is this path the metadata face's?
pub fn is_metadata(path: &str) -> bool {
    path.starts_with("/latest/")
}

/// An answer: status, content type, body.
pub struct MetadataAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn text(status: u16, body: impl Into<String>) -> MetadataAnswer {
    MetadataAnswer {
        status,
        content_type: "text/plain",
        body: body.into(),
    }
}

impl MetadataTokens {
    fn issue(&self, ttl_secs: i64) -> String {
        let token = super::ids::request_id();
        let expires = Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(ttl_secs))
            .unwrap_or(Timestamp::MAX);
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Timestamp::now();
        tokens.retain(|_, at| *at > now);
        tokens.insert(token.clone(), expires);
        token
    }

    fn valid(&self, token: &str) -> bool {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.get(token).is_some_and(|at| *at > Timestamp::now())
    }

    /// Answer one request; `header` reads a request header.
    pub fn handle(
        &self,
        sts: &Sts,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<String>,
    ) -> MetadataAnswer {
        if path == METADATA_TOKEN_PATH {
            if method != "PUT" {
                return text(405, "Method Not Allowed");
            }
            let ttl = header(METADATA_TOKEN_TTL_HEADER).and_then(|t| t.trim().parse::<i64>().ok());
            return match ttl {
                Some(ttl @ 1..=21_600) => {
                    sts.count_metadata(true);
                    text(200, self.issue(ttl))
                }
                _ => text(
                    400,
                    "Bad Request: X-aliyun-ecs-metadata-token-ttl-seconds must be 1 to 21600",
                ),
            };
        }
        if method != "GET" {
            return text(405, "Method Not Allowed");
        }
        if !header(METADATA_TOKEN_HEADER).is_some_and(|t| self.valid(&t)) {
            return text(401, "Unauthorized");
        }
        let Some(role) = sts.config().metadata_role.clone() else {
            return text(404, "Not Found");
        };
        match path.strip_prefix(METADATA_ROLES_PATH) {
            Some("") => text(200, role),
            Some(asked) if asked == role => {
                sts.count_metadata(false);
                let c = sts.issue(21_600);
                let answer = MetadataRoleCredentials {
                    code: "Success".into(),
                    access_key_id: c.access_key_id,
                    access_key_secret: c.access_key_secret,
                    security_token: c.security_token,
                    expiration: c.expiration,
                    last_updated: Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                };
                MetadataAnswer {
                    status: 200,
                    content_type: "application/json",
                    body: serde_json::to_string(&answer).unwrap_or_default(),
                }
            }
            _ => text(404, "Not Found"),
        }
    }
}
