//! CRIU versions: the VERSION reply, `criu -V` output, and the single number
//! runtimes compare.

use std::fmt;

use crate::error::{Error, Result};
use crate::rpc;

/// A CRIU version.
///
/// [`Version::number`] is what comparisons use: `major*10000 + minor*100 +
/// sublevel`, with a git build counted as newer than the release it was cut
/// from (so features merged after that release are assumed present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u32,
    minor: u32,
    sublevel: u32,
    gitid: Option<String>,
    number: u64,
}

impl Version {
    /// A release version.
    pub const fn new(major: u32, minor: u32, sublevel: u32) -> Self {
        Self {
            major,
            minor,
            sublevel,
            gitid: None,
            number: major as u64 * 10000 + minor as u64 * 100 + sublevel as u64,
        }
    }

    /// The major number.
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The minor number.
    pub fn minor(&self) -> u32 {
        self.minor
    }

    /// The sublevel (third component; 0 when CRIU reports none).
    pub fn sublevel(&self) -> u32 {
        self.sublevel
    }

    /// The git id when CRIU was built from git rather than a release.
    pub fn gitid(&self) -> Option<&str> {
        self.gitid.as_deref()
    }

    /// The comparable version number (see the type's documentation).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Reads CRIU's answer to a VERSION request.
    ///
    /// A git build (gitid present) counts as the next minor release:
    /// `v - v % 100 + 100`.
    pub fn from_rpc(v: &rpc::CriuVersion) -> Result<Self> {
        let field = |name: &'static str, value: i32| {
            u32::try_from(value).map_err(|_| Error::InvalidReply {
                request: crate::RequestType::Version,
                reason: format!("criu_version.{name} is negative ({value})"),
            })
        };
        let major = field("major_number", v.major_number)?;
        let minor = field("minor_number", v.minor_number)?;
        let sublevel = field("sublevel", v.sublevel.unwrap_or(0))?;
        let mut version = Self::new(major, minor, sublevel);
        if let Some(gitid) = &v.gitid {
            version.number = version.number - version.number % 100 + 100;
            version.gitid = Some(gitid.clone());
        }
        Ok(version)
    }

    /// Parses the output of `criu -V`, for a CRIU too old to answer the
    /// VERSION request (before 3.0).
    ///
    /// Release builds print `Version: X.Y[.Z]`. Git builds (their output
    /// contains a `-`) print a `GitID: vX.Y[.Z]-...` line, which counts as
    /// X.Y.(Z+1) with three components and X.(Y+1).0 with two.
    pub fn parse_dash_v(output: &str) -> Result<Self> {
        let bad = |reason: &'static str| Error::VersionParse {
            output: output.chars().take(200).collect(),
            reason,
        };
        if output.contains('-') {
            let line = field_value(output, "GitID:")
                .ok_or_else(|| bad("a git build's output has no GitID: line"))?;
            let tag = line
                .strip_prefix('v')
                .ok_or_else(|| bad("GitID does not start with v"))?;
            let (numbers, _) = tag
                .split_once('-')
                .ok_or_else(|| bad("GitID has no -<commits> suffix"))?;
            let (major, minor, sublevel) =
                components(numbers).ok_or_else(|| bad("GitID is not vX.Y or vX.Y.Z"))?;
            let number = match sublevel {
                Some(s) => Version::new(major, minor, s).number + 1,
                None => Version::new(major, minor, 0).number + 100,
            };
            Ok(Self {
                major,
                minor,
                sublevel: sublevel.unwrap_or(0),
                gitid: Some(line.to_string()),
                number,
            })
        } else {
            let value = field_value(output, "Version:").ok_or_else(|| bad("no Version: line"))?;
            let (major, minor, sublevel) =
                components(value).ok_or_else(|| bad("Version is not X.Y or X.Y.Z"))?;
            Ok(Self::new(major, minor, sublevel.unwrap_or(0)))
        }
    }
}

/// The trimmed rest of the first line that starts with `key`.
fn field_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(str::trim)
}

/// `X.Y` or `X.Y.Z`, each a plain decimal number.
fn components(s: &str) -> Option<(u32, u32, Option<u32>)> {
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let mut parts = s.split('.');
    let major = num(parts.next()?)?;
    let minor = num(parts.next()?)?;
    let sublevel = match parts.next() {
        Some(p) => Some(num(p)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, sublevel))
}

impl fmt::Display for Version {
    /// `X.Y` when the sublevel is 0 (as CRIU prints it), else `X.Y.Z`; a git
    /// build adds its id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.sublevel != 0 {
            write!(f, ".{}", self.sublevel)?;
        }
        if let Some(g) = &self.gitid {
            write!(f, " (git {g})")?;
        }
        Ok(())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.number.cmp(&other.number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn release_numbers() {
        assert_eq!(Version::new(3, 17, 1).number(), 31701);
        assert_eq!(Version::new(4, 2, 1).number(), 40201);
        assert_eq!(Version::new(3, 15, 0).to_string(), "3.15");
        assert_eq!(Version::new(3, 17, 1).to_string(), "3.17.1");
        assert!(Version::new(3, 14, 9) < Version::new(3, 15, 0));
    }

    #[test]
    fn rpc_release_and_git() {
        let mut v = rpc::CriuVersion {
            major_number: 3,
            minor_number: 17,
            sublevel: Some(1),
            ..Default::default()
        };
        let release = Version::from_rpc(&v).unwrap();
        assert_eq!(release.number(), 31701);
        assert_eq!(release.gitid(), None);
        v.gitid = Some("v3.17.1-12-gdeadbee".into());
        let git = Version::from_rpc(&v).unwrap();
        assert_eq!(git.number(), 31800);
        assert_eq!(git.gitid(), Some("v3.17.1-12-gdeadbee"));
        v.major_number = -1;
        assert!(matches!(
            Version::from_rpc(&v),
            Err(Error::InvalidReply { .. })
        ));
    }

    #[test]
    fn decodes_verified_criu_3_17_1_reply() {
        // CRIU 3.17.1's real answer to VERSION (REFERENCE section 5).
        let bytes = [
            0x08, 0x0a, 0x10, 0x01, 0x52, 0x06, 0x08, 0x03, 0x10, 0x11, 0x20, 0x01,
        ];
        let resp = rpc::CriuResp::decode(&bytes[..]).unwrap();
        assert_eq!(resp.r#type, rpc::CriuReqType::Version as i32);
        assert!(resp.success);
        let v = Version::from_rpc(resp.version.as_ref().unwrap()).unwrap();
        assert_eq!((v.major(), v.minor(), v.sublevel()), (3, 17, 1));
        assert_eq!(v.number(), 31701);
        // And it encodes back to the same bytes.
        assert_eq!(resp.encode_to_vec(), bytes);
    }

    #[test]
    fn dash_v_release() {
        let v = Version::parse_dash_v("Version: 3.17.1\n").unwrap();
        assert_eq!(v.number(), 31701);
        assert_eq!(v.gitid(), None);
        let v = Version::parse_dash_v("Version: 2.12\n").unwrap();
        assert_eq!(v.number(), 21200);
        assert_eq!(v.to_string(), "2.12");
    }

    #[test]
    fn dash_v_git_three_and_two_components() {
        let v = Version::parse_dash_v("Version: 3.17.1\nGitID: v3.17.1-34-g0123abc\n").unwrap();
        assert_eq!(v.number(), 31702);
        assert_eq!(v.gitid(), Some("v3.17.1-34-g0123abc"));
        let v = Version::parse_dash_v("Version: 2.12\nGitID: v2.12-7-gfeed\n").unwrap();
        assert_eq!(v.number(), 21300);
        assert_eq!((v.major(), v.minor(), v.sublevel()), (2, 12, 0));
    }

    #[test]
    fn dash_v_garbage() {
        for bad in [
            "",
            "criu: command not found",
            "Version: three",
            "Version: 3",
            "Version: 3.17.1.2",
            "Version: 3..1",
            "Version: -3.1",
            "Version: 3.17.1-rc\n",
            "GitID: 3.17.1-5-gabc",
            "GitID: v3.17.1",
            "GitID: vx.y-1",
            "Version: 99999999999.1",
        ] {
            let err = Version::parse_dash_v(bad).unwrap_err();
            assert!(matches!(err, Error::VersionParse { .. }), "{bad:?}: {err}");
        }
    }
}
