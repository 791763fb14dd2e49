//! Downward API `fieldRef`s, as the kubelet resolves them (`podFieldSelectorRuntimeValue` for
//! environment variables, `fieldpath.ExtractFieldPathAsString` for volume files).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectFieldSelector, Pod};

use super::{Ctx, ResolveError};

/// The value of a `fieldRef` in an environment variable.
pub(super) fn env_value(ctx: &Ctx<'_>, fs: &ObjectFieldSelector) -> Result<String, ResolveError> {
    check_api_version(fs)?;
    let pod = ctx.pod;
    let value = match fs.field_path.as_str() {
        "spec.nodeName" => ctx.node_name.to_string(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| {
                non_empty(s.service_account_name.as_deref())
                    .or_else(|| non_empty(s.service_account.as_deref()))
            })
            .unwrap_or_default()
            .to_string(),
        "status.hostIP" | "status.hostIPs" => ctx.node_ip.to_string(),
        "status.podIP" => pod_ips(pod).into_iter().next().unwrap_or_default(),
        "status.podIPs" => pod_ips(pod).join(","),
        path => return metadata_value(pod, &ctx.namespace, path),
    };
    Ok(value)
}

/// The content of a downward API volume file: only `metadata.*` fields are allowed there.
pub(super) fn volume_value(
    pod: &Pod,
    namespace: &str,
    fs: &ObjectFieldSelector,
) -> Result<String, ResolveError> {
    check_api_version(fs)?;
    metadata_value(pod, namespace, &fs.field_path)
}

fn check_api_version(fs: &ObjectFieldSelector) -> Result<(), ResolveError> {
    match fs.api_version.as_deref() {
        None | Some("") | Some("v1") => Ok(()),
        Some(v) => Err(ResolveError::Invalid(format!(
            "fieldRef {:?}: unsupported pod version {v:?}",
            fs.field_path
        ))),
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// The pod's IPs, primary first (status.podIPs, falling back to status.podIP).
fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<String> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.clone())
        .filter(|ip| !ip.is_empty())
        .collect();
    if let Some(primary) = non_empty(status.pod_ip.as_deref())
        && ips.first().map(String::as_str) != Some(primary)
    {
        ips.retain(|ip| ip != primary);
        ips.insert(0, primary.to_string());
    }
    ips
}

/// `fieldpath.ExtractFieldPathAsString` for a pod.
fn metadata_value(pod: &Pod, namespace: &str, path: &str) -> Result<String, ResolveError> {
    let meta = &pod.metadata;
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    if let Some((base, key)) = split_subscript(path) {
        let map = match base {
            "metadata.labels" => labels,
            "metadata.annotations" => annotations,
            _ => {
                return Err(ResolveError::Invalid(format!(
                    "fieldPath {path:?} does not support subscript"
                )));
            }
        };
        let checked = if base == "metadata.annotations" {
            key.to_ascii_lowercase()
        } else {
            key.to_string()
        };
        if !is_qualified_name(&checked) {
            return Err(ResolveError::Invalid(format!(
                "invalid key subscript in {path}: {key:?} is not a valid label or annotation key"
            )));
        }
        return Ok(map.get(key).cloned().unwrap_or_default());
    }
    match path {
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(namespace.to_string()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        "metadata.labels" => Ok(format_map(labels)),
        "metadata.annotations" => Ok(format_map(annotations)),
        _ => Err(ResolveError::Invalid(format!(
            "unsupported fieldPath: {path}"
        ))),
    }
}

/// `metadata.labels['key']` -> `("metadata.labels", "key")`, like `SplitMaybeSubscriptedPath`.
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (base, key) = inner.split_once("['")?;
    if base.is_empty() {
        return None;
    }
    Some((base, key))
}

/// A label/annotation key: optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters, alphanumeric at both ends with `-`, `_`, `.` inside.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    name_ok && prefix_ok
}

/// `fieldpath.FormatMap`: `key="value"` lines sorted by key, values quoted like Go's `%q`,
/// no trailing newline.
pub(super) fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`: `"` and `\` escaped, printable characters kept, the rest escaped as
/// `\n`, `\xNN`, `\uNNNN` or `\UNNNNNNNN`. Go decides "printable" with Unicode tables; this
/// keeps every character except controls, non-ASCII spaces, line/paragraph separators and the
/// common format characters, which covers what real labels and annotations contain.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    let u = c as u32;
    !(c.is_control()
        || c.is_whitespace()
        || matches!(u,
            0xa0 | 0xad | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f
            | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xf0000..=0x10ffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_map_like_the_kubelet() {
        let map = BTreeMap::from([
            ("b".to_string(), "two".to_string()),
            ("a".to_string(), "one".to_string()),
            ("app.kubernetes.io/name".to_string(), "x\"y\\z".to_string()),
        ]);
        assert_eq!(
            format_map(&map),
            "a=\"one\"\napp.kubernetes.io/name=\"x\\\"y\\\\z\"\nb=\"two\""
        );
        assert_eq!(format_map(&BTreeMap::new()), "");
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote(""), "\"\"");
        assert_eq!(go_quote("a\nb\tc\rd"), "\"a\\nb\\tc\\rd\"");
        assert_eq!(go_quote("\u{0}\u{1b}\u{7f}"), "\"\\x00\\x1b\\x7f\"");
        assert_eq!(go_quote("\u{7}\u{8}\u{b}\u{c}"), "\"\\a\\b\\v\\f\"");
        assert_eq!(go_quote("héllo 日本 🦀"), "\"héllo 日本 🦀\"");
        assert_eq!(
            go_quote("\u{a0}\u{2028}\u{feff}\u{85}"),
            "\"\\u00a0\\u2028\\ufeff\\u0085\""
        );
        assert_eq!(go_quote("\u{f0000}"), "\"\\U000f0000\"");
        assert_eq!(go_quote("{\"k\": 1}"), "\"{\\\"k\\\": 1}\"");
    }

    #[test]
    fn subscripts() {
        assert_eq!(
            split_subscript("metadata.labels['app']"),
            Some(("metadata.labels", "app"))
        );
        assert_eq!(
            split_subscript("metadata.labels['a/b']"),
            Some(("metadata.labels", "a/b"))
        );
        assert_eq!(split_subscript("metadata.labels"), None);
        assert_eq!(split_subscript("['x']"), None);
        assert_eq!(split_subscript("metadata.labels[app]"), None);
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "app",
            "app.kubernetes.io/name",
            "a",
            "A_b-c.d",
            "example.com/x",
            "9",
        ] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a/b/c",
            "/a",
            "Example.com/x",
            "a b",
            &"x".repeat(64),
            "é",
        ] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
    }
}
