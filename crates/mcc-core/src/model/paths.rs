//! Paths inside nodes that mcc owns, and how a path becomes part of a
//! volume's name. A leaf module: names, options and spec all use it, and
//! it uses none of them.

/// Where every node mounts the cluster's meta volume (read-only).
pub const META_MOUNT: &str = "/opt/mcc";

/// Where the node-writable volume is mounted (`MCC_SHARED`).
pub const SHARED_MOUNT: &str = "/opt/mcc/shared";

/// A volume-name-safe form of a path: `/var/lib/x` → `var-lib-x`.
pub fn path_slug(path: &str) -> String {
    path.trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs() {
        assert_eq!(super::path_slug("/var/lib/slurm"), "var-lib-slurm");
        assert_eq!(super::path_slug("/a b/"), "a-b");
    }
}
