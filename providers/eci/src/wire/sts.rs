//! The temporary-key answers on the wire: STS `AssumeRoleWithOIDC` (RPC, version 2015-04-01) and
//! the ECS instance metadata service's role credentials (IMDSv2 style token first). Both print
//! without their secret and token.

use serde::{Deserialize, Serialize};

pub const STS_VERSION: &str = "2015-04-01";
pub const ASSUME_ROLE_WITH_OIDC: &str = "AssumeRoleWithOIDC";
pub const METADATA_TOKEN_PATH: &str = "/latest/api/token";
pub const METADATA_TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
pub const METADATA_TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
pub const METADATA_ROLES_PATH: &str = "/latest/meta-data/ram/security-credentials/";
/// The ECS instance metadata service.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200";

/// `Credentials` of an AssumeRole* answer (its Debug hides the secret and the token).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StsCredentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    /// `2015-04-09T11:52:19Z`
    pub expiration: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AssumedRoleUser {
    pub arn: String,
    pub assumed_role_id: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OidcTokenInfo {
    pub subject: String,
    pub issuer: String,
    pub client_ids: String,
    pub expiration_time: String,
    pub issuance_time: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumeRoleWithOidcResponse {
    #[serde(default)]
    pub request_id: String,
    pub credentials: StsCredentials,
    #[serde(default)]
    pub assumed_role_user: AssumedRoleUser,
    #[serde(rename = "OIDCTokenInfo", default)]
    pub oidc_token_info: OidcTokenInfo,
}

/// The metadata service's answer for a role (its Debug hides the secret and the token).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetadataRoleCredentials {
    /// `Success`
    pub code: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    pub expiration: String,
    #[serde(default)]
    pub last_updated: String,
}

impl std::fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<hidden>")
            .field("security_token", &"<hidden>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl std::fmt::Debug for MetadataRoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataRoleCredentials")
            .field("code", &self.code)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<hidden>")
            .field("security_token", &"<hidden>")
            .field("expiration", &self.expiration)
            .field("last_updated", &self.last_updated)
            .finish()
    }
}
