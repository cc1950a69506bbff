//! `linux.memoryPolicy` (runtime-spec 1.3): the NUMA memory policy of the
//! container's processes, set with set_mempolicy(2) right before the
//! process setup of the init and of each exec (it survives execve).

use oci_spec::runtime::Linux;

use crate::error::{Error, Result};
use crate::spec_catalogue::{MEMORY_POLICY_FLAGS, MEMORY_POLICY_MODES};

/// The spec's name of a mode or flag (its serde form), as the catalogue's
/// tables (which `rrc features` lists) know it.
fn spec_name(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Nodes above this are refused (the kernel takes a mask of at most a
/// page of bits; no machine has this many nodes).
const MAX_NODE: usize = 4095;

/// A memory policy as set_mempolicy takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    /// MPOL_* mode with its MPOL_F_* flags.
    pub mode: libc::c_int,
    /// The node mask, 64 nodes a word.
    pub nodes: Vec<libc::c_ulong>,
}

fn invalid(field: &str, message: String) -> Error {
    Error::ConfigInvalid {
        path: "config.json".into(),
        field: field.into(),
        message,
    }
}

/// Parses `0-3,5` into a node mask.
fn parse_nodes(text: &str) -> std::result::Result<Vec<libc::c_ulong>, String> {
    let mut mask: Vec<libc::c_ulong> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_NODE)
                .ok_or_else(|| format!("{s:?} is not a node number (0 to {MAX_NODE})"))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(format!("range {part:?} runs backwards"));
        }
        for n in lo..=hi {
            let word = n / 64;
            if mask.len() <= word {
                mask.resize(word + 1, 0);
            }
            mask[word] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

/// The policy of `linux.memoryPolicy`, checked: nodes where the mode needs
/// them and none where it takes none, and flags that go together.
pub fn from_spec(linux: Option<&Linux>) -> Result<Option<MemPolicy>> {
    let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) else {
        return Ok(None);
    };
    let name = spec_name(&p.mode());
    let Some(&(_, mode, needs_nodes, takes_nodes)) =
        MEMORY_POLICY_MODES.iter().find(|(n, ..)| *n == name)
    else {
        return Err(invalid(
            "linux.memoryPolicy.mode",
            format!("{name} is not supported"),
        ));
    };
    let text = p.nodes().clone().unwrap_or_default();
    let nodes = parse_nodes(&text).map_err(|e| invalid("linux.memoryPolicy.nodes", e))?;
    if nodes.is_empty() && needs_nodes {
        return Err(invalid(
            "linux.memoryPolicy.nodes",
            format!("mode {name} needs nodes"),
        ));
    }
    if !nodes.is_empty() && !takes_nodes {
        return Err(invalid(
            "linux.memoryPolicy.nodes",
            format!("mode {name} takes no nodes"),
        ));
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        let fname = spec_name(f);
        let Some(&(_, bit)) = MEMORY_POLICY_FLAGS.iter().find(|(n, _)| *n == fname) else {
            return Err(invalid(
                "linux.memoryPolicy.flags",
                format!("{fname} is not supported"),
            ));
        };
        flags |= bit;
    }
    if flags & (3 << 14) == 3 << 14 {
        return Err(invalid(
            "linux.memoryPolicy.flags",
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
        ));
    }
    Ok(Some(MemPolicy {
        mode: mode | flags,
        nodes,
    }))
}

/// Sets `policy` for this process and what it execs.
pub fn set(policy: Option<&MemPolicy>) -> Result<()> {
    let Some(p) = policy else {
        return Ok(());
    };
    let (ptr, maxnode) = if p.nodes.is_empty() {
        (std::ptr::null(), 0)
    } else {
        // The kernel reads one bit fewer than maxnode says.
        (p.nodes.as_ptr(), p.nodes.len() * 64 + 1)
    };
    // SAFETY: ptr is null or points to p.nodes, whose maxnode - 1 bits
    // the kernel reads.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, p.mode, ptr, maxnode) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Init(format!(
            "linux.memoryPolicy: set_mempolicy (mode {:#x}): {e}{}",
            p.mode,
            if e.raw_os_error() == Some(libc::EINVAL) {
                " (nodes not online here, or a mode or flag this kernel lacks)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux {
        serde_json::from_str(json).expect("linux")
    }

    #[test]
    fn nodes() {
        assert_eq!(parse_nodes("0-3,5").unwrap(), vec![0b10_1111]);
        assert_eq!(parse_nodes("64").unwrap(), vec![0, 1]);
        assert!(parse_nodes("3-1").is_err());
        assert!(parse_nodes("x").is_err());
        assert!(parse_nodes("99999").is_err());
    }

    #[test]
    fn modes_and_flags() {
        let l = linux(
            r#"{"memoryPolicy":{"mode":"MPOL_INTERLEAVE","nodes":"0","flags":["MPOL_F_STATIC_NODES"]}}"#,
        );
        let p = from_spec(Some(&l)).unwrap().unwrap();
        assert_eq!(p.mode, 3 | 1 << 15);
        let l = linux(r#"{"memoryPolicy":{"mode":"MPOL_BIND"}}"#);
        let e = from_spec(Some(&l)).unwrap_err().to_string();
        assert!(e.contains("linux.memoryPolicy.nodes"), "{e}");
        let l = linux(r#"{"memoryPolicy":{"mode":"MPOL_LOCAL","nodes":"0"}}"#);
        assert!(from_spec(Some(&l)).is_err());
        let l = linux(
            r#"{"memoryPolicy":{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}}"#,
        );
        let e = from_spec(Some(&l)).unwrap_err().to_string();
        assert!(e.contains("linux.memoryPolicy.flags"), "{e}");
    }
}
