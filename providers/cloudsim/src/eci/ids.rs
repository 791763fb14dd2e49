//! Identifiers the simulated service hands out: request ids, session and metadata tokens.

/// A random version-4 UUID in upper case, as the service writes its `RequestId`s.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
}
