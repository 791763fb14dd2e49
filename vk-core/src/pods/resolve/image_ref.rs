//! The image reference check the kubelet makes before it asks a runtime to pull: the grammar of
//! a reference (`[domain[:port]/]path[:tag][@algorithm:hex]`, path components in lower case
//! with `.`, `_`, `__` or dashes between alphanumerics, tags of up to 128 word characters, a
//! name of at most 255). A reference that does not parse can never be pulled; the kubelet shows
//! `InvalidImageName` and so does vk, instead of handing the cloud a name it refuses later.

/// The reason a container shows for an image reference that does not parse.
pub const INVALID_IMAGE_NAME: &str = "InvalidImageName";

/// Ok if `image` is a well-formed reference; else why not.
pub fn check(image: &str) -> Result<(), String> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(format!("invalid tag {tag:?}"));
        }
    }
    if name.is_empty() {
        return Err("no repository name".into());
    }
    if name.len() > 255 {
        return Err(format!(
            "repository name longer than 255 characters ({})",
            name.len()
        ));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let is_domain = parts.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    if is_domain {
        check_domain(first)?;
        parts.remove(0);
    }
    for part in parts {
        if !path_component(part) {
            return Err(format!(
                "repository path component {part:?} (lower-case letters and digits, separated \
                 by '.', '_', '__' or '-')"
            ));
        }
    }
    Ok(())
}

fn path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators between alphanumerics: one '.', one or two '_', or any run of '-'.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || domain.starts_with('[') => (host, Some(port)),
        _ => (domain, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("invalid registry port {port:?}"));
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    let ipv6 = host.starts_with('[') && host.ends_with(']');
    if !ipv6 && !host.split('.').all(label_ok) {
        return Err(format!("invalid registry host {host:?}"));
    }
    Ok(())
}

fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("invalid digest {digest:?} (algorithm:hex)"));
    };
    let algorithm_ok = algorithm
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && algorithm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-'));
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !algorithm_ok || !hex_ok {
        return Err(format!("invalid digest {digest:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn references_users_write_parse() {
        for image in [
            "busybox",
            "busybox:1.36",
            "library/busybox:1.36",
            "docker.io/library/golang:1.24",
            "gcr.io/kaniko-project/executor:debug",
            "jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21",
            "registry.example.com:5000/team/app__x:v1",
            "localhost/app",
            "127.0.0.1:5000/a/b-c.d",
            "registry.invalid:99999/busybox:1.36",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "a/b:tag@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check(image), Ok(()), "{image}");
        }
    }

    #[test]
    fn broken_references_are_named() {
        for image in [
            "BusyBox:1.36",
            "busybox:1.36:extra",
            "busybox@sha256:xyz",
            "-busybox",
            "busybox:",
            "localhost/../../etc/passwd",
            "bÿsybox:1.36",
            "a//b",
            "a..b",
            "reg.io:port/x",
        ] {
            assert!(check(image).is_err(), "{image} passed");
        }
        let long = format!("registry.example.com/{}:1", "a".repeat(400));
        assert!(check(&long).unwrap_err().contains("255"));
    }
}
