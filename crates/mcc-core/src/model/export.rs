//! The folder every host of a cluster shares (`--shared-from`), described
//! once: a path every host has (`file:///PATH`, a folder mounted at the
//! same place on each) or an NFS export (`nfs://SERVER/PATH`) that each
//! host's engine mounts itself. Either becomes options of the engine's
//! `local` volume driver, for the export's root and for each volume's
//! folder `mcc-volumes/<volume>` below it, so that both kinds go through
//! the same steps. Pure: the provider makes the folders and the volumes.

use std::collections::HashMap;

/// The folder under the export that holds the clusters' volumes.
pub const EXPORT_SUBDIR: &str = "mcc-volumes";

/// The NFS version asked for when the URL names none.
const NFS_DEFAULT_VERSION: &str = "nfsvers=4";

/// A shared folder; see the module's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Export {
    /// A folder every host has at `path`.
    File { path: String },
    /// `server:path` over NFS, mounted with `options` (besides `addr=`).
    Nfs {
        server: String,
        path: String,
        options: Vec<String>,
    },
}

impl Export {
    /// `--shared-from URL` checked: `file:///PATH` or
    /// `nfs://SERVER/PATH[?OPTION,…]`.
    pub fn parse(url: &str) -> Result<Export, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if !plain_path(path) || path == "/" {
                return Err(format!(
                    "--shared-from {url}: the path must be absolute and plain (letters, digits, \
                     '.', '_', '-'; no '..', no trailing '/'), e.g. file:///srv/mcc"
                ));
            }
            return Ok(Export::File { path: path.into() });
        }
        if let Some(rest) = url.strip_prefix("nfs://") {
            return parse_nfs(url, rest);
        }
        Err(format!(
            "--shared-from {url}: give file:///PATH (a folder every host has at that path, \
             e.g. file:///srv/mcc) or nfs://SERVER/PATH (an NFS export each host's engine \
             mounts, e.g. nfs://10.0.0.5/srv/mcc)"
        ))
    }

    /// The export as a volume's `mcc.export` label (and a cluster's record)
    /// keeps it: the path of a `file://` export (as clusters made before
    /// NFS exports keep it), the URL of an NFS one.
    pub fn label(&self) -> String {
        match self {
            Export::File { path } => path.clone(),
            Export::Nfs { .. } => self.to_string(),
        }
    }

    /// The export a label names (see [`Export::label`]).
    pub fn from_label(label: &str) -> Result<Export, String> {
        if label.starts_with('/') {
            Export::parse(&format!("file://{label}"))
        } else {
            Export::parse(label)
        }
        .map_err(|e| format!("label mcc.export={label}: {e}"))
    }

    /// The `local` driver's options that mount the export's root.
    pub fn root_options(&self) -> HashMap<String, String> {
        self.options_for(None)
    }

    /// The `local` driver's options that mount the folder of `volume`
    /// (`<export>/mcc-volumes/<volume>`).
    pub fn volume_options(&self, volume: &str) -> HashMap<String, String> {
        self.options_for(Some(volume))
    }

    /// Where `volume` keeps its data, as a person finds it: a path of every
    /// host, or `server:/path`.
    pub fn volume_location(&self, volume: &str) -> String {
        match self {
            Export::File { path } => format!("{}/{EXPORT_SUBDIR}/{volume}", path),
            Export::Nfs { server, path, .. } => {
                format!(
                    "{server}:{}",
                    join(path, &format!("{EXPORT_SUBDIR}/{volume}"))
                )
            }
        }
    }

    fn options_for(&self, volume: Option<&str>) -> HashMap<String, String> {
        let below = |root: &str| match volume {
            None => root.to_string(),
            Some(v) => join(root, &format!("{EXPORT_SUBDIR}/{v}")),
        };
        let opts = |pairs: [(&str, String); 3]| {
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<HashMap<_, _>>()
        };
        match self {
            Export::File { path } => opts([
                ("type", "none".into()),
                ("o", "bind".into()),
                ("device", below(path)),
            ]),
            Export::Nfs {
                server,
                path,
                options,
            } => {
                let mut o = vec![format!("addr={server}"), "rw".to_string()];
                if !options
                    .iter()
                    .any(|x| x.starts_with("nfsvers=") || x.starts_with("vers="))
                {
                    o.push(NFS_DEFAULT_VERSION.into());
                }
                o.extend(options.iter().cloned());
                opts([
                    ("type", "nfs".into()),
                    ("o", o.join(",")),
                    ("device", format!(":{}", below(path))),
                ])
            }
        }
    }
}

impl std::fmt::Display for Export {
    /// The URL `--shared-from` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Export::File { path } => write!(f, "file://{path}"),
            Export::Nfs {
                server,
                path,
                options,
            } => {
                write!(f, "nfs://{server}{path}")?;
                if !options.is_empty() {
                    write!(f, "?{}", options.join(","))?;
                }
                Ok(())
            }
        }
    }
}

/// `root` and a relative `below` joined with one '/'.
fn join(root: &str, below: &str) -> String {
    format!("{}/{below}", root.trim_end_matches('/'))
}

/// An absolute path of plain components: letters, digits, '.', '_', '-';
/// no empty component, no '.' or '..', no trailing '/' (but "/" itself).
fn plain_path(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && !path.ends_with('/')
            && path
                .split('/')
                .skip(1)
                .all(|c| !c.is_empty() && c != "." && c != "..")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)))
}

fn parse_nfs(url: &str, rest: &str) -> Result<Export, String> {
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (server, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if server.contains(':') {
        return Err(format!(
            "--shared-from {url}: give the server without a port (an NFS port goes in the \
             options: nfs://SERVER/PATH?port=N)"
        ));
    }
    if !(is_ipv4(server) || is_host_name(server)) {
        return Err(format!(
            "--shared-from {url}: the server '{server}' must be a host name or an IPv4 \
             address, e.g. nfs://nas.example.org/srv/mcc or nfs://10.0.0.5/srv/mcc"
        ));
    }
    if !plain_path(path) {
        return Err(format!(
            "--shared-from {url}: the export's path must be absolute and plain (letters, \
             digits, '.', '_', '-'; no '..', no trailing '/'), e.g. nfs://{server}/srv/mcc"
        ));
    }
    let options = match query {
        None => Vec::new(),
        Some(q) => nfs_options(url, q)?,
    };
    Ok(Export::Nfs {
        server: server.to_ascii_lowercase(),
        path: path.to_string(),
        options,
    })
}

/// The mount options after '?': `OPTION[=VALUE],…`, plain words; never
/// `addr` (mcc sets it from the server).
fn nfs_options(url: &str, query: &str) -> Result<Vec<String>, String> {
    let mut options = Vec::new();
    for o in query.split(',') {
        let plain = !o.is_empty()
            && o.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._=-".contains(&b))
            && o.matches('=').count() <= 1
            && !o.starts_with('=');
        if !plain {
            return Err(format!(
                "--shared-from {url}: the mount option '{o}' must be a plain word or \
                 word=value (letters, digits, '.', '_', '-'), options separated by ',', e.g. \
                 ?nfsvers=4.1,soft"
            ));
        }
        let key = o.split('=').next().unwrap_or_default();
        if key == "addr" {
            return Err(format!(
                "--shared-from {url}: leave out addr=, mcc sets it from the server's name"
            ));
        }
        options.push(o.to_string());
    }
    Ok(options)
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) && {
                // no leading zero: 010 is octal to some resolvers
                p.parse::<u16>().is_ok_and(|n| n <= 255) && (p.len() == 1 || !p.starts_with('0'))
            }
        })
}

/// A DNS name: labels of letters, digits and '-', not starting or ending
/// with '-', separated by '.'; not all digits (that would be an address).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_file_export_binds_its_folders() {
        let e = Export::parse("file:///srv/mcc").unwrap();
        assert_eq!(e.label(), "/srv/mcc");
        assert_eq!(Export::from_label("/srv/mcc").unwrap(), e);
        assert_eq!(
            e.root_options(),
            map(&[("type", "none"), ("o", "bind"), ("device", "/srv/mcc")])
        );
        assert_eq!(
            e.volume_options("lab-home"),
            map(&[
                ("type", "none"),
                ("o", "bind"),
                ("device", "/srv/mcc/mcc-volumes/lab-home")
            ])
        );
        assert_eq!(
            e.volume_location("lab-home"),
            "/srv/mcc/mcc-volumes/lab-home"
        );
        assert_eq!(e.to_string(), "file:///srv/mcc");
    }

    #[test]
    fn an_nfs_export_mounts_its_folders_over_nfs() {
        let e = Export::parse("nfs://NAS.example.org/srv/mcc").unwrap();
        assert_eq!(e.label(), "nfs://nas.example.org/srv/mcc");
        assert_eq!(Export::from_label(&e.label()).unwrap(), e);
        assert_eq!(
            e.root_options(),
            map(&[
                ("type", "nfs"),
                ("o", "addr=nas.example.org,rw,nfsvers=4"),
                ("device", ":/srv/mcc")
            ])
        );
        assert_eq!(
            e.volume_options("lab-home"),
            map(&[
                ("type", "nfs"),
                ("o", "addr=nas.example.org,rw,nfsvers=4"),
                ("device", ":/srv/mcc/mcc-volumes/lab-home")
            ])
        );
        assert_eq!(
            e.volume_location("lab-home"),
            "nas.example.org:/srv/mcc/mcc-volumes/lab-home"
        );
        // the server's root (NFSv4's pseudo root), an IPv4 address, options
        let e = Export::parse("nfs://10.0.0.5/?nfsvers=4.1,soft,port=2049").unwrap();
        assert_eq!(e.label(), "nfs://10.0.0.5/?nfsvers=4.1,soft,port=2049");
        assert_eq!(Export::from_label(&e.label()).unwrap(), e);
        assert_eq!(
            e.volume_options("v"),
            map(&[
                ("type", "nfs"),
                ("o", "addr=10.0.0.5,rw,nfsvers=4.1,soft,port=2049"),
                ("device", ":/mcc-volumes/v")
            ])
        );
        assert_eq!(e.root_options()["device"], ":/");
        let e = Export::parse("nfs://10.0.0.5/x").unwrap();
        assert_eq!(e.root_options()["o"], "addr=10.0.0.5,rw,nfsvers=4");
    }

    #[test]
    fn bad_exports_are_refused_naming_the_value_and_the_fix() {
        for (bad, says) in [
            ("/srv/mcc", "file:///PATH"),
            ("smb://srv/x", "nfs://SERVER/PATH"),
            ("file://srv", "absolute"),
            ("file:///", "absolute"),
            ("file:///srv/../etc", "no '..'"),
            ("file:///srv/", "trailing"),
            ("file:///srv//x", "plain"),
            ("file:///srv/a b", "plain"),
            ("file:///srv/$(x)", "plain"),
            ("nfs://", "host name or an IPv4"),
            ("nfs:///srv", "host name or an IPv4"),
            ("nfs://nas", "absolute"),
            ("nfs://nas:2049/srv", "?port=N"),
            ("nfs://[::1]/srv", "port"),
            ("nfs://na_s/srv", "host name"),
            ("nfs://-nas/srv", "host name"),
            ("nfs://300.1.1.1/srv", "host name or an IPv4"),
            ("nfs://1.2.3/srv", "host name or an IPv4"),
            ("nfs://010.0.0.1/srv", "host name or an IPv4"),
            ("nfs://nas/srv/../etc", "no '..'"),
            ("nfs://nas/srv/", "trailing"),
            ("nfs://nas/srv;rm", "plain"),
            ("nfs://nas/srv?addr=1.2.3.4", "leave out addr="),
            ("nfs://nas/srv?soft,,hard", "''"),
            ("nfs://nas/srv?a b", "'a b'"),
            ("nfs://nas/srv?x=1=2", "word=value"),
        ] {
            let e = Export::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(Export::from_label("nfs://nas").is_err());
        assert!(Export::from_label("relative").is_err());
    }
}
