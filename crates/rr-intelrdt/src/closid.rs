//! closID checks: a group name must be exactly one directory directly under
//! the resctrl root.
//!
//! runc refuses `.` and `..` and any `/` in a name longer than one byte, so
//! a bare `/` makes it use the root group itself; youki accepts `/`, and
//! joining it onto the root escapes it. rr refuses all three.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{io_err, Error, Result};

/// Names resctrl itself uses at the root: a group by those names would
/// write into the info directory or the root group's monitoring data.
const RESERVED: &[&str] = &["info", "mon_groups", "mon_data"];

/// Checks that `clos_id` can name a control group: not empty, not `.` or
/// `..`, no `/` or NUL, at most 255 bytes, and none of the names resctrl
/// uses itself (`info`, `mon_groups`, `mon_data`).
///
/// This is a pure check of the string; [`group_path`] also checks that the
/// resulting path stays inside a given root.
pub fn validate_clos_id(clos_id: &str) -> Result<()> {
    let reason = if clos_id.is_empty() {
        Some("it is empty")
    } else if clos_id == "." || clos_id == ".." {
        Some("'.' and '..' name the resctrl root or its parent, not a group")
    } else if clos_id.contains('/') {
        Some("it contains '/': a closID names one directory directly under the resctrl root")
    } else if clos_id.contains('\0') {
        Some("it contains a NUL byte")
    } else if clos_id.len() > 255 {
        Some("it is longer than 255 bytes")
    } else if RESERVED.contains(&clos_id) {
        Some("resctrl uses this name itself at the root")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidClosId {
            clos_id: clos_id.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The directory of group `clos_id` under `root`, after
/// [`validate_clos_id`]; when it exists it must be a real directory (not a
/// symbolic link) that resolves inside `root`.
pub fn group_path(root: &Path, clos_id: &str) -> Result<PathBuf> {
    validate_clos_id(clos_id)?;
    let path = root.join(clos_id);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Error::InvalidClosId {
                clos_id: clos_id.to_string(),
                reason: "it is a symbolic link, which resctrl never creates",
            })
        }
        Ok(_) => {
            let real_root = fs::canonicalize(root).map_err(io_err(root))?;
            let real = fs::canonicalize(&path).map_err(io_err(&path))?;
            if real.parent() != Some(real_root.as_path()) {
                return Err(Error::InvalidClosId {
                    clos_id: clos_id.to_string(),
                    reason: "it resolves outside the resctrl root",
                });
            }
        }
        Err(_) => {}
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for ok in ["guaranteed_group", "abc-123", "COS1", "a.b", "...", "x y"] {
            assert!(validate_clos_id(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_escapes_and_reserved_names() {
        for bad in [
            "",
            ".",
            "..",
            "/",
            "a/b",
            "../x",
            "/abs",
            "a\0b",
            "info",
            "mon_groups",
            "mon_data",
        ] {
            let e = validate_clos_id(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidClosId { .. }), "{bad:?}");
        }
        assert!(validate_clos_id(&"x".repeat(256)).is_err());
        assert!(validate_clos_id(&"x".repeat(255)).is_ok());
        assert_eq!(
            validate_clos_id("/").unwrap_err().to_string(),
            "invalid closID \"/\": it contains '/': a closID names one directory directly under the resctrl root"
        );
    }
}
