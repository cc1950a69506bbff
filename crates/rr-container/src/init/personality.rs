//! `linux.personality`: the execution domain (LINUX, LINUX32) and flags
//! the container's processes run with, set with personality(2) right
//! before the process setup of the init and of each exec (it survives
//! execve).

use oci_spec::runtime::{Linux, LinuxPersonalityDomain};

use crate::error::{Error, Result};

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// The flags of linux/personality.h, by the names the spec uses.
const FLAGS: &[(&str, libc::c_ulong)] = &[
    ("UNAME26", 0x002_0000),
    ("ADDR_NO_RANDOMIZE", 0x004_0000),
    ("FDPIC_FUNCPTRS", 0x008_0000),
    ("MMAP_PAGE_ZERO", 0x010_0000),
    ("ADDR_COMPAT_LAYOUT", 0x020_0000),
    ("READ_IMPLIES_EXEC", 0x040_0000),
    ("ADDR_LIMIT_32BIT", 0x080_0000),
    ("SHORT_INODE", 0x100_0000),
    ("WHOLE_SECONDS", 0x200_0000),
    ("STICKY_TIMEOUTS", 0x400_0000),
    ("ADDR_LIMIT_3GB", 0x800_0000),
];

/// The persona of `linux.personality`, or an error naming the flag that
/// is not known.
pub fn from_spec(linux: Option<&Linux>) -> Result<Option<libc::c_ulong>> {
    let Some(p) = linux.and_then(|l| l.personality().as_ref()) else {
        return Ok(None);
    };
    let mut persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    for (i, name) in p.flags().iter().flatten().enumerate() {
        let (_, bit) =
            FLAGS
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| Error::ConfigInvalid {
                    path: "config.json".into(),
                    field: format!("linux.personality.flags[{i}]"),
                    message: format!("unknown personality flag {name:?}"),
                })?;
        persona |= bit;
    }
    Ok(Some(persona))
}

/// Sets `persona` for this process and what it execs.
pub fn set(persona: Option<libc::c_ulong>) -> Result<()> {
    let Some(persona) = persona else {
        return Ok(());
    };
    // SAFETY: personality takes an integer only.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(Error::last_os(format!(
            "personality({persona:#x}) (linux.personality)"
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
    fn domain_and_flags() {
        let l = linux(r#"{"personality":{"domain":"LINUX32","flags":["ADDR_NO_RANDOMIZE"]}}"#);
        assert_eq!(from_spec(Some(&l)).unwrap(), Some(0x4_0008));
        let l = linux(r#"{"personality":{"domain":"LINUX"}}"#);
        assert_eq!(from_spec(Some(&l)).unwrap(), Some(0));
        assert_eq!(from_spec(Some(&linux("{}"))).unwrap(), None);
        let l = linux(r#"{"personality":{"domain":"LINUX","flags":["BOGUS"]}}"#);
        let e = from_spec(Some(&l)).unwrap_err().to_string();
        assert!(
            e.contains("linux.personality.flags[0]") && e.contains("BOGUS"),
            "{e}"
        );
    }
}
