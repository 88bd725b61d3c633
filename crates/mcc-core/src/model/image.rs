//! Validation of image references (`[registry[:port]/]path[:tag][@digest]`).

/// Checks an image reference the way the engine parses one, so a typo is
/// reported before anything is created. Returns a message naming the value.
pub fn validate_image_ref(image: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "image '{image}' is not a valid image reference: {why}; write e.g. 'debian:bookworm' \
             or 'registry.example:5000/team/node:1.0'"
        ))
    };
    if image.is_empty() {
        return bad("it is empty");
    }
    if image.chars().any(char::is_whitespace) {
        return bad("it contains whitespace");
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((algo, hex)) = d.split_once(':') else {
            return bad("the digest after '@' has no 'algorithm:' part");
        };
        if algo.is_empty()
            || !algo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            || hex.len() < 32
            || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return bad("the digest after '@' is malformed");
        }
    }
    // A tag is after the last ':' that comes after the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        if tag.is_empty() {
            return bad("the tag after ':' is empty (omit the ':' to use 'latest')");
        }
        let first_ok = tag.as_bytes()[0].is_ascii_alphanumeric() || tag.as_bytes()[0] == b'_';
        if tag.len() > 128
            || !first_ok
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return bad(&format!("the tag '{tag}' is not valid"));
        }
    }
    if name.is_empty() {
        return bad("the name is empty");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with '.', ':' or "localhost" is a registry host.
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        let host = parts.remove(0);
        let (h, port) = match host.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            return bad(&format!("the registry '{host}' is not a host name"));
        }
        if let Some(p) = port {
            if p.parse::<u16>().is_err() {
                return bad(&format!("the registry port '{p}' is not a number"));
            }
        }
    }
    for part in &parts {
        if !path_component_ok(part) {
            return bad(&format!(
                "'{part}' must be lower-case letters and digits, separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

/// Whether a failed pull says the image does not exist (or its name is
/// not one the registry takes), as opposed to a registry that cannot be
/// reached or failed: the first is the user's bad input, the second is
/// not, and the name may be right. Docker 20.10 answers most of these
/// with a 500 and the registry's words, so the words decide:
/// `NAME_UNKNOWN`, `MANIFEST_UNKNOWN`, `NAME_INVALID`, `TAG_INVALID` of
/// the distribution spec, and the engine's and Docker Hub's own.
pub fn pull_says_no_such_image(status: Option<u16>, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    // a network or TLS failure names the registry, never the image
    let unreachable = [
        "dial tcp",
        "no such host",
        "connection refused",
        "i/o timeout",
        "tls:",
        "x509:",
        "timeout exceeded",
        "toomanyrequests",
        "unauthorized: authentication required",
    ];
    if unreachable.iter().any(|w| m.contains(w)) {
        return false;
    }
    let missing = [
        "name unknown",
        "manifest unknown",
        "not found",
        "repository does not exist",
        "pull access denied",
        "invalid reference format",
        "invalid repository name",
        "name invalid",
        "tag invalid",
    ];
    matches!(status, Some(400 | 404)) || missing.iter().any(|w| m.contains(w))
}

fn path_component_ok(part: &str) -> bool {
    let b = part.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: '.', '_', '__' or any number of '-'
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_references() {
        for good in [
            "busybox",
            "debian:bookworm",
            "mcc-test/busybox:latest",
            "library/ubuntu:22.04",
            "ghcr.io/org/team/node:v1.2_3",
            "localhost:5000/node",
            "localhost/node",
            "my__name/x-y--z:1",
            "debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "debian:12@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(validate_image_ref(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn only_a_registry_that_says_no_such_image_makes_a_pull_bad_input() {
        for (status, missing) in [
            (Some(500), "manifest unknown"),
            (Some(500), "name unknown"),
            (
                Some(404),
                "manifest for x:1 not found: manifest unknown: manifest unknown",
            ),
            (
                Some(404),
                "pull access denied for nosuch, repository does not exist or may require \
                 'docker login': denied: requested access to the resource is denied",
            ),
            (Some(400), "invalid reference format"),
        ] {
            assert!(pull_says_no_such_image(status, missing), "{missing}");
        }
        for reachable_not in [
            "Get \"http://localhost:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
            "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on \
             10.255.255.53:53: no such host",
            "toomanyrequests: You have reached your pull rate limit",
            "Get \"https://r.example/v2/\": x509: certificate signed by unknown authority",
        ] {
            assert!(
                !pull_says_no_such_image(Some(500), reachable_not),
                "{reachable_not}"
            );
        }
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "ubuntu:",
            "Ubuntu",
            "deb ian",
            "-x",
            "x-",
            "a//b",
            "x:tag:more",
            "x:.tag",
            "x@sha256",
            "x@sha256:zz",
            "host:port/x",
            "a___b",
            "images:alpine/3.4",
        ] {
            let err = validate_image_ref(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }
}
