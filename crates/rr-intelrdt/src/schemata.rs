//! The schemata text: parsing every resource line form, and printing the
//! canonical form that is written to the kernel.
//!
//! Pure code: nothing here touches the file system.
//!
//! The parser is a little more lenient than the kernel about blanks (the
//! kernel itself pads resource names when it prints a schemata file, and
//! rejects a space before a domain id when it reads one): what rr writes is
//! always [`Schemata`]'s `Display` output, which has no blanks, no empty lines
//! and a trailing newline, so leniency here never reaches the kernel.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

/// How the values of a resource are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueFormat {
    /// A cache capacity bit mask in hexadecimal (`L3`, `L3CODE`, `L3DATA`,
    /// `L2`, `L2CODE`, `L2DATA`).
    Bitmask,
    /// A decimal bandwidth value (`MB`, `SMBA`).
    Bandwidth,
    /// A resource this crate does not know; its values are kept as text.
    Unknown,
}

impl ValueFormat {
    /// The format of the resource called `name` (as it appears in a
    /// schemata line, e.g. `L3DATA`).
    pub fn of(name: &str) -> ValueFormat {
        match name {
            "L3" | "L3CODE" | "L3DATA" | "L2" | "L2CODE" | "L2DATA" => ValueFormat::Bitmask,
            "MB" | "SMBA" => ValueFormat::Bandwidth,
            _ => ValueFormat::Unknown,
        }
    }
}

/// The value given to one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// A cache capacity bit mask.
    Cbm(u64),
    /// A bandwidth value: a percentage, MBps in `mba_MBps` mode, or AMD's
    /// bandwidth units, depending on the host.
    Bandwidth(u32),
    /// The value of a resource this crate does not know, trimmed.
    Raw(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Cbm(m) => write!(f, "{m:x}"),
            Value::Bandwidth(b) => write!(f, "{b}"),
            Value::Raw(s) => f.write_str(s),
        }
    }
}

/// One `ID=VALUE` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The domain (cache) id.
    pub id: u32,
    /// Its value.
    pub value: Value,
}

/// One `RESOURCE:ID=VALUE;...` line. Two lines are equal when their
/// resource and entries are, wherever they came from.
#[derive(Debug, Clone, Eq)]
pub struct Line {
    /// The resource name, e.g. `L3`, `L3CODE`, `MB`.
    pub resource: String,
    /// The entries in the order they were written.
    pub domains: Vec<Domain>,
    /// The 1-based line number in the parsed text (0 when built in code).
    pub line: usize,
}

impl PartialEq for Line {
    fn eq(&self, other: &Line) -> bool {
        self.resource == other.resource && self.domains == other.domains
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.resource)?;
        for (i, d) in self.domains.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{}={}", d.id, d.value)?;
        }
        Ok(())
    }
}

/// A parsed schemata: the lines of a `schemata` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schemata {
    lines: Vec<Line>,
}

impl Schemata {
    /// Parses a schemata text: one `RESOURCE:ID=VALUE;ID=VALUE...` line per
    /// resource. Blank lines are skipped, blanks around names and values are
    /// ignored, and a trailing `;` is allowed. Cache masks are hexadecimal
    /// (an `0x` prefix is accepted), bandwidths decimal. The same resource
    /// and domain may appear only once, as in the kernel.
    ///
    /// Errors name the 1-based line and the field that is wrong.
    pub fn parse(text: &str) -> Result<Schemata> {
        let mut out = Schemata::default();
        let mut seen: BTreeMap<(String, u32), usize> = BTreeMap::new();
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let line = parse_line(trimmed, line_no)?;
            for d in &line.domains {
                let key = (line.resource.clone(), d.id);
                if let Some(first) = seen.get(&key) {
                    return Err(Error::DuplicateDomain {
                        line: line_no,
                        resource: line.resource.clone(),
                        domain: d.id,
                        first_line: *first,
                    });
                }
                seen.insert(key, line_no);
            }
            out.lines.push(line);
        }
        Ok(out)
    }

    /// The lines, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// True when there is no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The value set for `resource`'s domain `id`, if any.
    pub fn get(&self, resource: &str, id: u32) -> Option<&Value> {
        self.lines
            .iter()
            .filter(|l| l.resource == resource)
            .flat_map(|l| l.domains.iter())
            .find(|d| d.id == id)
            .map(|d| &d.value)
    }

    /// The domain ids listed for `resource`, in order; `None` when no line
    /// names it.
    pub fn domain_ids(&self, resource: &str) -> Option<Vec<u32>> {
        let mut found = false;
        let mut ids = Vec::new();
        for l in self.lines.iter().filter(|l| l.resource == resource) {
            found = true;
            ids.extend(l.domains.iter().map(|d| d.id));
        }
        found.then_some(ids)
    }

    /// The resource names, in first-appearance order, without repeats.
    pub fn resources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for l in &self.lines {
            if !out.contains(&l.resource.as_str()) {
                out.push(&l.resource);
            }
        }
        out
    }

    /// Adds `other`'s settings on top of these: a domain `other` also sets
    /// takes `other`'s value, in place; the rest of `other` is appended.
    /// This is how a later OCI field overrides an earlier one.
    pub fn merge_from(&mut self, other: &Schemata) {
        for ol in &other.lines {
            let mut rest = Vec::new();
            for d in &ol.domains {
                let slot = self
                    .lines
                    .iter_mut()
                    .filter(|l| l.resource == ol.resource)
                    .flat_map(|l| l.domains.iter_mut())
                    .find(|x| x.id == d.id);
                match slot {
                    Some(x) => x.value = d.value.clone(),
                    None => rest.push(d.clone()),
                }
            }
            if !rest.is_empty() {
                self.lines.push(Line {
                    resource: ol.resource.clone(),
                    domains: rest,
                    line: ol.line,
                });
            }
        }
    }

    /// Removes every line of `resource`.
    pub fn remove_resource(&mut self, resource: &str) {
        self.lines.retain(|l| l.resource != resource);
    }
}

impl fmt::Display for Schemata {
    /// The canonical text: one line per [`Line`], no blanks, each line
    /// ended by `\n` (the kernel requires the trailing newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Schemata {
    type Err = Error;
    fn from_str(s: &str) -> Result<Schemata> {
        Schemata::parse(s)
    }
}

fn valid_resource_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_line(text: &str, line: usize) -> Result<Line> {
    let Some((name, rest)) = text.split_once(':') else {
        return Err(Error::MissingColon {
            line,
            text: text.to_string(),
        });
    };
    let resource = name.trim();
    if !valid_resource_name(resource) {
        return Err(Error::BadResourceName {
            line,
            name: resource.to_string(),
        });
    }
    let resource = resource.to_string();
    let format = ValueFormat::of(&resource);
    let entries: Vec<&str> = rest.split(';').collect();
    let last = entries.len().saturating_sub(1);
    let mut domains = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry.trim();
        // The kernel stops at an empty remainder, so only a trailing ';' is
        // harmless; an empty entry in the middle is a mistake.
        if entry.is_empty() && i == last {
            continue;
        }
        let Some((id, value)) = entry.split_once('=') else {
            return Err(Error::MissingEquals {
                line,
                resource,
                entry: entry.to_string(),
            });
        };
        let id_text = id.trim();
        let id = parse_decimal_u32(id_text).ok_or_else(|| Error::BadDomainId {
            line,
            resource: resource.clone(),
            id: id_text.to_string(),
        })?;
        let value = value.trim();
        if value.is_empty() {
            return Err(Error::EmptyValue {
                line,
                resource,
                domain: id,
            });
        }
        let value = match format {
            ValueFormat::Bitmask => {
                Value::Cbm(parse_hex_u64(value).ok_or_else(|| Error::BadCbm {
                    line,
                    resource: resource.clone(),
                    domain: id,
                    value: value.to_string(),
                })?)
            }
            ValueFormat::Bandwidth => {
                Value::Bandwidth(parse_decimal_u32(value).ok_or_else(|| Error::BadBandwidth {
                    line,
                    resource: resource.clone(),
                    domain: id,
                    value: value.to_string(),
                })?)
            }
            ValueFormat::Unknown => Value::Raw(value.to_string()),
        };
        domains.push(Domain { id, value });
    }
    if domains.is_empty() {
        return Err(Error::NoDomains { line, resource });
    }
    Ok(Line {
        resource,
        domains,
        line,
    })
}

/// Only ASCII digits: `str::parse` would also take a leading `+`, which the
/// kernel does not.
pub(crate) fn parse_decimal_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn parse_hex_u64(s: &str) -> Option<u64> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_output_with_padded_names() {
        let text = "L3DATA:0=fffff;1=fffff\nL3CODE:0=fffff;1=fffff\n    MB:0=100;1=100\n";
        let s = Schemata::parse(text).unwrap();
        assert_eq!(s.lines().len(), 3);
        assert_eq!(s.get("L3CODE", 1), Some(&Value::Cbm(0xfffff)));
        assert_eq!(s.get("MB", 0), Some(&Value::Bandwidth(100)));
        assert_eq!(s.domain_ids("MB"), Some(vec![0, 1]));
        assert_eq!(s.domain_ids("L2"), None);
        assert_eq!(s.resources(), vec!["L3DATA", "L3CODE", "MB"]);
    }

    #[test]
    fn canonical_output() {
        let s = Schemata::parse("  L3 : 0 = 0x00ff0 ; 1=3ff;\n\nMB:0=50").unwrap();
        assert_eq!(s.to_string(), "L3:0=ff0;1=3ff\nMB:0=50\n");
        // Printing and parsing again is stable.
        assert_eq!(Schemata::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn unknown_resources_keep_raw_values() {
        let s = Schemata::parse("FOO:0=abc;3=x y").unwrap();
        assert_eq!(s.get("FOO", 3), Some(&Value::Raw("x y".into())));
        assert_eq!(s.to_string(), "FOO:0=abc;3=x y\n");
    }

    #[test]
    fn errors_point_at_line_and_field() {
        let e = Schemata::parse("L3:0=ff\nL3:1=fffg").unwrap_err();
        assert!(
            matches!(e, Error::BadCbm { line: 2, domain: 1, ref value, .. } if value == "fffg")
        );
        assert_eq!(
            e.to_string(),
            "schemata line 2: L3 domain 1 value \"fffg\" is not a hexadecimal cache bit mask"
        );
        let e = Schemata::parse("MB:0=-5").unwrap_err();
        assert!(matches!(
            e,
            Error::BadBandwidth {
                line: 1,
                domain: 0,
                ..
            }
        ));
        let e = Schemata::parse("MB:0=+5").unwrap_err();
        assert!(matches!(e, Error::BadBandwidth { .. }));
        let e = Schemata::parse("L3 0=ff").unwrap_err();
        assert!(matches!(e, Error::MissingColon { line: 1, .. }));
        let e = Schemata::parse(":0=ff").unwrap_err();
        assert!(matches!(e, Error::BadResourceName { line: 1, .. }));
        let e = Schemata::parse("L 3:0=ff").unwrap_err();
        assert!(matches!(e, Error::BadResourceName { .. }));
        let e = Schemata::parse("L3:").unwrap_err();
        assert!(matches!(e, Error::NoDomains { line: 1, .. }));
        let e = Schemata::parse("L3:0=ff;;1=ff").unwrap_err();
        assert!(matches!(e, Error::MissingEquals { ref entry, .. } if entry.is_empty()));
        let e = Schemata::parse("L3:0ff").unwrap_err();
        assert!(matches!(e, Error::MissingEquals { ref entry, .. } if entry == "0ff"));
        let e = Schemata::parse("L3:x=ff").unwrap_err();
        assert!(matches!(e, Error::BadDomainId { ref id, .. } if id == "x"));
        let e = Schemata::parse("L3:0=").unwrap_err();
        assert!(matches!(e, Error::EmptyValue { domain: 0, .. }));
        let e = Schemata::parse("L3:0=0x").unwrap_err();
        assert!(matches!(e, Error::BadCbm { .. }));
        let e = Schemata::parse("L3:0=11111111111111111").unwrap_err();
        assert!(matches!(e, Error::BadCbm { .. }), "a mask over 64 bits");
    }

    #[test]
    fn duplicate_domain_is_rejected_across_lines() {
        let e = Schemata::parse("L3:0=ff\nMB:0=10\nL3:1=f;0=f").unwrap_err();
        assert!(matches!(
            e,
            Error::DuplicateDomain { line: 3, domain: 0, first_line: 1, ref resource } if resource == "L3"
        ));
        // Different domains of one resource on two lines are fine.
        assert!(Schemata::parse("L3:0=ff\nL3:1=ff").is_ok());
    }

    #[test]
    fn merge_overrides_in_place_and_appends() {
        let mut a = Schemata::parse("L3:0=ff;1=ff\nMB:0=50").unwrap();
        let b = Schemata::parse("L3:1=f0;2=f\nSMBA:0=20").unwrap();
        a.merge_from(&b);
        assert_eq!(a.to_string(), "L3:0=ff;1=f0\nMB:0=50\nL3:2=f\nSMBA:0=20\n");
        a.remove_resource("L3");
        assert_eq!(a.to_string(), "MB:0=50\nSMBA:0=20\n");
    }
}
