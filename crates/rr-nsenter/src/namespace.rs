//! Namespace kinds, the paths list of namespaces to join, and the
//! conversion from an OCI namespace list.

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Error, Malformed};

/// A kind of Linux namespace.
///
/// The declaration order is the order in which runc lists namespace paths
/// (user, ipc, uts, net, pid, mnt, cgroup, time), so sorting by `Ord` gives
/// the wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsKind {
    /// User namespace.
    User,
    /// IPC namespace.
    Ipc,
    /// UTS (hostname) namespace.
    Uts,
    /// Network namespace.
    Net,
    /// PID namespace.
    Pid,
    /// Mount namespace.
    Mount,
    /// Cgroup namespace.
    Cgroup,
    /// Time namespace.
    Time,
}

impl NsKind {
    /// Every kind, in wire order.
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Net,
        NsKind::Pid,
        NsKind::Mount,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The name used in the paths list and under `/proc/<pid>/ns/`.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::Mount => "mnt",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The kind whose [`name`](Self::name) is `s`.
    pub fn from_name(s: &str) -> Option<NsKind> {
        NsKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The `CLONE_NEW*` flag that creates this kind.
    pub fn clone_flag(self) -> u32 {
        let flag = match self {
            NsKind::User => libc::CLONE_NEWUSER,
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Net => libc::CLONE_NEWNET,
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Mount => libc::CLONE_NEWNS,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Time => libc::CLONE_NEWTIME,
        };
        // The flags are positive c_int bit values; the wire carries a u32.
        flag as u32
    }

    /// The kinds whose flags are set in `flags`, in wire order. Bits that
    /// are not namespace flags are ignored.
    pub fn from_clone_flags(flags: u32) -> Vec<NsKind> {
        NsKind::ALL
            .into_iter()
            .filter(|k| flags & k.clone_flag() != 0)
            .collect()
    }

    /// The kind of an OCI namespace type.
    pub fn from_oci(t: LinuxNamespaceType) -> NsKind {
        match t {
            LinuxNamespaceType::User => NsKind::User,
            LinuxNamespaceType::Ipc => NsKind::Ipc,
            LinuxNamespaceType::Uts => NsKind::Uts,
            LinuxNamespaceType::Network => NsKind::Net,
            LinuxNamespaceType::Pid => NsKind::Pid,
            LinuxNamespaceType::Mount => NsKind::Mount,
            LinuxNamespaceType::Cgroup => NsKind::Cgroup,
            LinuxNamespaceType::Time => NsKind::Time,
        }
    }
}

impl std::fmt::Display for NsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A namespace to join: its kind and the path of a namespace file
/// (for example `/proc/1/ns/net` or a bind mount of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsPath {
    /// The namespace kind.
    pub kind: NsKind,
    /// The namespace file.
    pub path: String,
}

/// The paths list as it goes on the wire: `kind:path` entries sorted in
/// wire order and joined by commas.
///
/// Fails when a path is empty or contains a comma (the separator cannot be
/// escaped), or when a kind appears twice.
pub fn encode_ns_paths(paths: &[NsPath]) -> Result<String, Error> {
    let mut sorted: Vec<&NsPath> = paths.iter().collect();
    sorted.sort_by_key(|p| p.kind);
    let mut out = String::new();
    let mut previous = None;
    for p in sorted {
        if previous == Some(p.kind) {
            return Err(Error::DuplicateNamespace { kind: p.kind });
        }
        previous = Some(p.kind);
        if p.path.is_empty() {
            return Err(Error::EmptyNsPath { kind: p.kind });
        }
        if p.path.contains(',') {
            return Err(Error::CommaInNsPath {
                kind: p.kind,
                path: p.path.clone(),
            });
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(p.kind.name());
        out.push(':');
        out.push_str(&p.path);
    }
    Ok(out)
}

/// Reads a paths list, keeping the order it has. An empty string is an
/// empty list.
pub(crate) fn parse_ns_paths(text: &str) -> Result<Vec<NsPath>, Malformed> {
    let mut out: Vec<NsPath> = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for entry in text.split(',') {
        let bad = |reason| Malformed::NsPath {
            entry: entry.to_owned(),
            reason,
        };
        let (name, path) = entry.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let kind = NsKind::from_name(name).ok_or_else(|| bad("unknown namespace kind"))?;
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        if out.iter().any(|p| p.kind == kind) {
            return Err(bad("namespace kind repeated"));
        }
        out.push(NsPath {
            kind,
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// Fails on a namespace type listed twice, which the runtime spec forbids
/// and which would make the flags and paths ambiguous.
fn check_unique(namespaces: &[LinuxNamespace]) -> Result<(), Error> {
    let mut seen = [false; NsKind::ALL.len()];
    for ns in namespaces {
        let kind = NsKind::from_oci(ns.typ());
        let slot = kind as usize;
        if let Some(s) = seen.get_mut(slot) {
            if *s {
                return Err(Error::DuplicateNamespace { kind });
            }
            *s = true;
        }
    }
    Ok(())
}

/// The `CLONE_NEW*` flags of the namespaces to create: those in the list
/// that have no path. Fails on a namespace type listed twice.
pub fn clone_flags_to_create(namespaces: &[LinuxNamespace]) -> Result<u32, Error> {
    check_unique(namespaces)?;
    Ok(namespaces
        .iter()
        .filter(|ns| ns.path().is_none())
        .fold(0, |flags, ns| {
            flags | NsKind::from_oci(ns.typ()).clone_flag()
        }))
}

/// The namespaces to join: those in the list that have a path, in wire
/// order. Fails on a namespace type listed twice or on a path that is not
/// UTF-8, empty or contains a comma (it could not be sent).
pub fn ns_paths_to_join(namespaces: &[LinuxNamespace]) -> Result<Vec<NsPath>, Error> {
    check_unique(namespaces)?;
    let mut out = Vec::new();
    for ns in namespaces {
        let Some(path) = ns.path() else { continue };
        let kind = NsKind::from_oci(ns.typ());
        let path = path.to_str().ok_or_else(|| Error::NonUtf8NsPath {
            kind,
            path: path.clone(),
        })?;
        out.push(NsPath {
            kind,
            path: path.to_owned(),
        });
    }
    out.sort_by_key(|p| p.kind);
    // Validate now, with the OCI error, rather than at encode time.
    encode_ns_paths(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(t);
        match path {
            Some(p) => b.path(p).build(),
            None => b.build(),
        }
        .unwrap()
    }

    fn p(kind: NsKind, path: &str) -> NsPath {
        NsPath {
            kind,
            path: path.into(),
        }
    }

    #[test]
    fn names_round_trip_and_order() {
        let names: Vec<_> = NsKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            ["user", "ipc", "uts", "net", "pid", "mnt", "cgroup", "time"]
        );
        for k in NsKind::ALL {
            assert_eq!(NsKind::from_name(k.name()), Some(k));
        }
        assert_eq!(NsKind::from_name("network"), None);
        assert_eq!(NsKind::from_name("mount"), None);
        let mut shuffled = NsKind::ALL;
        shuffled.reverse();
        shuffled.sort();
        assert_eq!(shuffled, NsKind::ALL);
    }

    #[test]
    fn clone_flag_values() {
        assert_eq!(NsKind::User.clone_flag(), 0x1000_0000);
        assert_eq!(NsKind::Ipc.clone_flag(), 0x0800_0000);
        assert_eq!(NsKind::Uts.clone_flag(), 0x0400_0000);
        assert_eq!(NsKind::Net.clone_flag(), 0x4000_0000);
        assert_eq!(NsKind::Pid.clone_flag(), 0x2000_0000);
        assert_eq!(NsKind::Mount.clone_flag(), 0x0002_0000);
        assert_eq!(NsKind::Cgroup.clone_flag(), 0x0200_0000);
        assert_eq!(NsKind::Time.clone_flag(), 0x80);
        let all = NsKind::ALL.iter().fold(0, |f, k| f | k.clone_flag());
        assert_eq!(NsKind::from_clone_flags(all | 0x1), NsKind::ALL.to_vec());
        assert_eq!(
            NsKind::from_clone_flags(0x4000_0000 | 0x80),
            [NsKind::Net, NsKind::Time]
        );
    }

    #[test]
    fn from_oci_maps_every_type() {
        use LinuxNamespaceType as T;
        let pairs = [
            (T::User, NsKind::User),
            (T::Ipc, NsKind::Ipc),
            (T::Uts, NsKind::Uts),
            (T::Network, NsKind::Net),
            (T::Pid, NsKind::Pid),
            (T::Mount, NsKind::Mount),
            (T::Cgroup, NsKind::Cgroup),
            (T::Time, NsKind::Time),
        ];
        for (t, k) in pairs {
            assert_eq!(NsKind::from_oci(t), k);
            // oci-spec's discriminants are the clone flags; they must agree.
            assert_eq!(t as u32, k.clone_flag(), "{k}");
        }
    }

    #[test]
    fn ns_paths_sorted_in_runc_order() {
        let paths = [
            p(NsKind::Time, "/t"),
            p(NsKind::Mount, "/m"),
            p(NsKind::Pid, "/p"),
            p(NsKind::Cgroup, "/c"),
            p(NsKind::User, "/u"),
            p(NsKind::Net, "/n"),
            p(NsKind::Uts, "/h"),
            p(NsKind::Ipc, "/i"),
        ];
        assert_eq!(
            encode_ns_paths(&paths).unwrap(),
            "user:/u,ipc:/i,uts:/h,net:/n,pid:/p,mnt:/m,cgroup:/c,time:/t"
        );
        assert_eq!(encode_ns_paths(&[]).unwrap(), "");
    }

    #[test]
    fn ns_paths_refuse_comma_duplicate_and_empty() {
        let err = encode_ns_paths(&[p(NsKind::Net, "/a,b")]).unwrap_err();
        assert!(
            matches!(&err, Error::CommaInNsPath { kind: NsKind::Net, path } if path == "/a,b"),
            "{err}"
        );
        assert!(err.to_string().contains("net"), "{err}");
        let err = encode_ns_paths(&[p(NsKind::Pid, "/a"), p(NsKind::Pid, "/b")]).unwrap_err();
        assert!(matches!(
            err,
            Error::DuplicateNamespace { kind: NsKind::Pid }
        ));
        let err = encode_ns_paths(&[p(NsKind::Uts, "")]).unwrap_err();
        assert!(matches!(err, Error::EmptyNsPath { kind: NsKind::Uts }));
    }

    #[test]
    fn parse_ns_paths_keeps_order_and_colons() {
        let got = parse_ns_paths("pid:/a:b,user:/u").unwrap();
        assert_eq!(got, [p(NsKind::Pid, "/a:b"), p(NsKind::User, "/u")]);
        assert_eq!(parse_ns_paths("").unwrap(), []);
        for bad in ["pid", "network:/x", "pid:", "pid:/a,pid:/b", "pid:/a,"] {
            assert!(
                matches!(parse_ns_paths(bad), Err(Malformed::NsPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn clone_flags_only_for_namespaces_without_path() {
        use LinuxNamespaceType as T;
        let list = [
            ns(T::Pid, None),
            ns(T::Network, Some("/proc/1/ns/net")),
            ns(T::Mount, None),
            ns(T::User, Some("/proc/1/ns/user")),
            ns(T::Time, None),
        ];
        let flags = clone_flags_to_create(&list).unwrap();
        assert_eq!(
            flags,
            (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWTIME) as u32
        );
        let join = ns_paths_to_join(&list).unwrap();
        assert_eq!(
            join,
            [
                p(NsKind::User, "/proc/1/ns/user"),
                p(NsKind::Net, "/proc/1/ns/net")
            ]
        );
        assert_eq!(clone_flags_to_create(&[]).unwrap(), 0);
        assert_eq!(ns_paths_to_join(&[]).unwrap(), []);
    }

    #[test]
    fn default_oci_namespaces() {
        let list = oci_spec::runtime::get_default_namespaces();
        let flags = clone_flags_to_create(&list).unwrap();
        let expected = list
            .iter()
            .fold(0, |f, n| f | NsKind::from_oci(n.typ()).clone_flag());
        assert_eq!(flags, expected);
        assert_ne!(flags & libc::CLONE_NEWNS as u32, 0);
        assert!(ns_paths_to_join(&list).unwrap().is_empty());
    }

    #[test]
    fn oci_list_errors() {
        use LinuxNamespaceType as T;
        let dup = [ns(T::Pid, None), ns(T::Pid, Some("/x"))];
        assert!(matches!(
            clone_flags_to_create(&dup),
            Err(Error::DuplicateNamespace { kind: NsKind::Pid })
        ));
        assert!(matches!(
            ns_paths_to_join(&dup),
            Err(Error::DuplicateNamespace { kind: NsKind::Pid })
        ));
        let comma = [ns(T::Ipc, Some("/a,b"))];
        assert!(matches!(
            ns_paths_to_join(&comma),
            Err(Error::CommaInNsPath { .. })
        ));
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"/bad\xff");
        let bad = [LinuxNamespaceBuilder::default()
            .typ(T::Uts)
            .path(raw)
            .build()
            .unwrap()];
        assert!(matches!(
            ns_paths_to_join(&bad),
            Err(Error::NonUtf8NsPath {
                kind: NsKind::Uts,
                ..
            })
        ));
    }
}
