//! STS on the wire: a query API (`POST /` with a form body `Action=...&Version=2011-06-15`)
//! answering XML. AssumeRoleWithWebIdentity is sent unsigned (the web identity token is the
//! proof); GetCallerIdentity is signed. Errors are an `ErrorResponse` document.
//!
//! The XML here is small and flat, so it is written and read by hand: [`escape`] on the way
//! out, [`element`] (the text of the first element of a name, entities undone) on the way in.

pub const VERSION: &str = "2011-06-15";
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";
pub const GET_CALLER_IDENTITY: &str = "GetCallerIdentity";

/// Error codes STS answers, with their statuses.
pub mod codes {
    pub type Code = (&'static str, u16);
    pub const INVALID_IDENTITY_TOKEN: Code = ("InvalidIdentityToken", 400);
    pub const EXPIRED_TOKEN: Code = ("ExpiredTokenException", 400);
    pub const IDP_REJECTED_CLAIM: Code = ("IDPRejectedClaim", 403);
    pub const VALIDATION_ERROR: Code = ("ValidationError", 400);
    pub const MISSING_PARAMETER: Code = ("MissingParameter", 400);
    pub const INVALID_ACTION: Code = ("InvalidAction", 400);
    pub const INVALID_CLIENT_TOKEN_ID: Code = ("InvalidClientTokenId", 403);
    pub const SIGNATURE_DOES_NOT_MATCH: Code = ("SignatureDoesNotMatch", 403);
    pub const EXPIRED_SECURITY_TOKEN: Code = ("ExpiredToken", 403);
    pub const MISSING_AUTHENTICATION_TOKEN: Code = ("MissingAuthenticationToken", 403);
    pub const THROTTLING: Code = ("Throttling", 400);
}

/// AssumeRoleWithWebIdentity's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssumeRoleWithWebIdentity {
    pub role_arn: String,
    pub role_session_name: String,
    pub web_identity_token: String,
    /// 900 to 43 200; absent: 3 600.
    pub duration_seconds: Option<u32>,
}

impl AssumeRoleWithWebIdentity {
    /// The form fields of the call, `Action` and `Version` included.
    pub fn to_form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("Action", ASSUME_ROLE_WITH_WEB_IDENTITY.to_string()),
            ("Version", VERSION.to_string()),
            ("RoleArn", self.role_arn.clone()),
            ("RoleSessionName", self.role_session_name.clone()),
            ("WebIdentityToken", self.web_identity_token.clone()),
        ];
        if let Some(d) = self.duration_seconds {
            form.push(("DurationSeconds", d.to_string()));
        }
        form
    }
}

/// Temporary keys; `expiration` is ISO 8601 (`2026-12-03T20:00:00Z`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssumeRoleWithWebIdentityResult {
    pub credentials: Credentials,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
    pub subject: String,
    pub audience: String,
    pub provider: String,
}

impl AssumeRoleWithWebIdentityResult {
    pub fn to_xml(&self, request_id: &str) -> String {
        let c = &self.credentials;
        format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"{NAMESPACE}\">\n\
             <AssumeRoleWithWebIdentityResult>\n\
             <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>\n\
             <Audience>{}</Audience>\n\
             <AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser>\n\
             <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\n\
             <Provider>{}</Provider>\n\
             </AssumeRoleWithWebIdentityResult>\n\
             <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\n\
             </AssumeRoleWithWebIdentityResponse>\n",
            escape(&self.subject),
            escape(&self.audience),
            escape(&self.assumed_role_arn),
            escape(&self.assumed_role_id),
            escape(&c.access_key_id),
            escape(&c.secret_access_key),
            escape(&c.session_token),
            escape(&c.expiration),
            escape(&self.provider),
            escape(request_id),
        )
    }

    /// `None` when the document lacks the keys.
    pub fn from_xml(xml: &str) -> Option<Self> {
        let get = |name: &str| element(xml, name).unwrap_or_default();
        Some(Self {
            credentials: Credentials {
                access_key_id: element(xml, "AccessKeyId")?,
                secret_access_key: element(xml, "SecretAccessKey")?,
                session_token: element(xml, "SessionToken")?,
                expiration: element(xml, "Expiration")?,
            },
            assumed_role_arn: get("Arn"),
            assumed_role_id: get("AssumedRoleId"),
            subject: get("SubjectFromWebIdentityToken"),
            audience: get("Audience"),
            provider: get("Provider"),
        })
    }
}

/// GetCallerIdentity's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerIdentity {
    pub user_id: String,
    pub account: String,
    pub arn: String,
}

impl CallerIdentity {
    pub fn to_xml(&self, request_id: &str) -> String {
        format!(
            "<GetCallerIdentityResponse xmlns=\"{NAMESPACE}\">\n\
             <GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>\
             </GetCallerIdentityResult>\n\
             <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\n\
             </GetCallerIdentityResponse>\n",
            escape(&self.arn),
            escape(&self.user_id),
            escape(&self.account),
            escape(request_id),
        )
    }

    pub fn from_xml(xml: &str) -> Option<Self> {
        Some(Self {
            user_id: element(xml, "UserId")?,
            account: element(xml, "Account")?,
            arn: element(xml, "Arn")?,
        })
    }
}

/// An STS error: `Sender` (the caller's fault) or `Receiver`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XmlError {
    pub sender: bool,
    pub code: String,
    pub message: String,
}

impl XmlError {
    pub fn to_xml(&self, request_id: &str) -> String {
        format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\">\n\
             <Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error>\n\
             <RequestId>{}</RequestId>\n\
             </ErrorResponse>\n",
            if self.sender { "Sender" } else { "Receiver" },
            escape(&self.code),
            escape(&self.message),
            escape(request_id),
        )
    }

    pub fn from_xml(xml: &str) -> Option<Self> {
        Some(Self {
            sender: element(xml, "Type").as_deref() != Some("Receiver"),
            code: element(xml, "Code")?,
            message: element(xml, "Message").unwrap_or_default(),
        })
    }
}

/// Text made safe inside an XML element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first `<name>...</name>` (no attributes on it), entities undone.
pub fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(xml[start..start + len].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_through_xml() {
        let result = AssumeRoleWithWebIdentityResult {
            credentials: Credentials {
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: "s/e+c<r>e&t".into(),
                session_token: "tok".into(),
                expiration: "2026-12-03T20:00:00Z".into(),
            },
            assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
            assumed_role_id: "AROA:s".into(),
            subject: "system:serviceaccount:ns:sa".into(),
            audience: "sts.amazonaws.com".into(),
            provider: "https://issuer".into(),
        };
        assert_eq!(
            AssumeRoleWithWebIdentityResult::from_xml(&result.to_xml("rid")),
            Some(result)
        );
        let me = CallerIdentity {
            user_id: "AIDA".into(),
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/u".into(),
        };
        assert_eq!(CallerIdentity::from_xml(&me.to_xml("rid")), Some(me));
        let e = XmlError {
            sender: true,
            code: "InvalidIdentityToken".into(),
            message: "bad <token>".into(),
        };
        assert_eq!(XmlError::from_xml(&e.to_xml("rid")), Some(e));
        assert_eq!(element("<a>x</a>", "b"), None);
    }
}
