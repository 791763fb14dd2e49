//! Tokens on the wire: Azure AD's OAuth2 v2.0 token endpoint (client credentials with a client
//! secret or a client assertion, e.g. a workload identity's federated token), its answer and
//! its error body, a tenant's OpenID configuration, and the answer of the instance metadata
//! service's managed-identity endpoint (whose numbers are strings on the wire).

use serde::{Deserialize, Deserializer, Serialize};

/// `grant_type` of the client-credentials flow.
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE_JWT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The audience Azure AD expects in a federated token exchanged for an access token.
pub const FEDERATED_TOKEN_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The form of `POST {authority}/{tenant}/oauth2/v2.0/token` (client credentials): either
/// `client_secret`, or `client_assertion` with `client_assertion_type`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client_id: String,
    /// Space-separated; for ARM [`super::ARM_SCOPE`].
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_assertion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_assertion_type: Option<String>,
}

impl TokenRequest {
    /// The form's fields as name/value pairs, in a fixed order, to be form-urlencoded.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("grant_type", self.grant_type.as_str()),
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
        ];
        if let Some(secret) = &self.client_secret {
            pairs.push(("client_secret", secret));
        }
        if let Some(assertion) = &self.client_assertion {
            pairs.push(("client_assertion", assertion));
        }
        if let Some(kind) = &self.client_assertion_type {
            pairs.push(("client_assertion_type", kind));
        }
        pairs
    }

    /// The form read back from decoded name/value pairs; unknown names are ignored.
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut request = Self::default();
        for (name, value) in pairs {
            let value = value.into();
            match name.as_ref() {
                "grant_type" => request.grant_type = value,
                "client_id" => request.client_id = value,
                "scope" => request.scope = value,
                "client_secret" => request.client_secret = Some(value),
                "client_assertion" => request.client_assertion = Some(value),
                "client_assertion_type" => request.client_assertion_type = Some(value),
                _ => {}
            }
        }
        request
    }
}

/// Azure AD's token answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AadToken {
    /// `Bearer`.
    pub token_type: String,
    /// Seconds from now.
    #[serde(deserialize_with = "number_or_string")]
    pub expires_in: u64,
    #[serde(deserialize_with = "number_or_string")]
    pub ext_expires_in: u64,
    pub access_token: String,
}

/// Azure AD's error answer (400/401), e.g. `invalid_client` with an `AADSTS…` description.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AadError {
    /// `invalid_request`, `invalid_client`, `unauthorized_client`, `invalid_scope`…
    pub error: String,
    pub error_description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

/// The parts of a tenant's OpenID configuration a client reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenIdConfiguration {
    pub token_endpoint: String,
    pub authorization_endpoint: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// The managed-identity token of the instance metadata service. Its numbers are strings on
/// the wire (`"expires_in": "86399"`); they are read from strings or numbers, and written as
/// strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImdsToken {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(deserialize_with = "number_or_string", serialize_with = "as_string")]
    pub expires_in: u64,
    /// Unix seconds.
    #[serde(deserialize_with = "number_or_string", serialize_with = "as_string")]
    pub expires_on: u64,
    #[serde(deserialize_with = "number_or_string", serialize_with = "as_string")]
    pub not_before: u64,
    pub resource: String,
    pub token_type: String,
}

fn as_string<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// A non-negative integer written as a JSON number or a string of digits.
fn number_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    match Either::deserialize(deserializer)? {
        Either::Number(n) => Ok(n),
        Either::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("not a number of seconds: {text:?}"))),
    }
}
