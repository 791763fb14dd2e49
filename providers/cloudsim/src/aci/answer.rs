//! An answer of the face before it becomes an HTTP response: status, headers, JSON body.

use serde::Serialize;

use super::error::AciError;
use aci::wire::headers;

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// `value` as JSON with `status`.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => Self {
                status,
                headers: Vec::new(),
                body,
            },
            Err(e) => AciError::new(500, "InternalServerError", e.to_string()).into(),
        }
    }

    /// No body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The value of header `name` on this answer, if set.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl From<AciError> for Answer {
    fn from(e: AciError) -> Self {
        let mut answer = Self {
            status: e.status,
            headers: Vec::new(),
            body: e.body(),
        };
        if let Some(secs) = e.retry_after {
            answer = answer.header(headers::RETRY_AFTER, secs.to_string());
        }
        answer
    }
}
