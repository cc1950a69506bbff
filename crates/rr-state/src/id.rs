//! Validated container ids.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Longest accepted id, in bytes. The id is used verbatim as a directory name, and Linux
/// refuses names longer than `NAME_MAX` (255), so a longer id could never be created.
pub const MAX_ID_LEN: usize = 255;

/// A container id that is safe to use as a single path component under the state root:
/// one or more of `[A-Za-z0-9_+.-]`, not `.` or `..`, at most [`MAX_ID_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// Validates `s` as a container id.
    pub fn new(s: &str) -> Result<ContainerId> {
        validate(s).map_err(|reason| Error::InvalidId {
            id: s.to_string(),
            reason,
        })?;
        Ok(ContainerId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The pure validation rule, returning why an id is rejected.
fn validate(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > MAX_ID_LEN {
        return Err("longer than 255 bytes");
    }
    if s == "." || s == ".." {
        return Err("must not be \".\" or \"..\"");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'.' | b'-');
    if !s.bytes().all(allowed) {
        return Err("may contain only letters, digits, '_', '+', '.' and '-'");
    }
    Ok(())
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerId {
    type Err = Error;

    fn from_str(s: &str) -> Result<ContainerId> {
        ContainerId::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_table() {
        let long_ok = "a".repeat(MAX_ID_LEN);
        let too_long = "a".repeat(MAX_ID_LEN + 1);
        let cases: &[(&str, bool)] = &[
            ("abc", true),
            ("A-b_c+d.e", true),
            ("0", true),
            ("...", true),
            (".hidden", true),
            ("a..b", true),
            (&long_ok, true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("/", false),
            ("../x", false),
            ("a b", false),
            ("a\0b", false),
            ("é", false),
            ("容器", false),
            ("a:b", false),
            ("a\n", false),
            (&too_long, false),
        ];
        for (id, ok) in cases {
            let got = ContainerId::new(id);
            assert_eq!(got.is_ok(), *ok, "id {id:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, Error::InvalidId { .. }));
                assert!(e.to_string().contains(&format!("{id:?}")), "{e}");
            }
        }
    }

    #[test]
    fn traits_agree() {
        let id: ContainerId = "web-1".parse().unwrap();
        assert_eq!(id.as_str(), "web-1");
        assert_eq!(id.as_ref(), "web-1");
        assert_eq!(id.to_string(), "web-1");
        assert!("a/b".parse::<ContainerId>().is_err());
    }
}
