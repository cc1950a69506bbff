//! User and group id mappings in the text form of `/proc/<pid>/uid_map`.

use std::fmt::Write as _;

use crate::error::Error;

/// One line of a uid or gid map: `size` ids starting at `container_id`
/// inside the namespace map to ids starting at `host_id` outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    /// First id inside the namespace.
    pub container_id: u32,
    /// First id outside the namespace.
    pub host_id: u32,
    /// Number of ids.
    pub size: u32,
}

/// The text the kernel's `uid_map`/`gid_map` files take: one
/// `"<container> <host> <size>\n"` line per mapping.
pub fn encode_id_map(maps: &[IdMapping]) -> String {
    let mut out = String::new();
    for m in maps {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{} {} {}", m.container_id, m.host_id, m.size);
    }
    out
}

/// Reads the text form of an id map. Each line needs exactly three
/// whitespace-separated u32 fields; the last line may lack its newline; an
/// empty text is an empty map.
pub fn parse_id_map(text: &str) -> Result<Vec<IdMapping>, Error> {
    parse_lines(text).map_err(|(line, text)| Error::InvalidIdMap { line, text })
}

/// Parses id map lines, giving the 1-based number and text of the first bad
/// line on failure.
pub(crate) fn parse_lines(text: &str) -> Result<Vec<IdMapping>, (usize, String)> {
    let mut out = Vec::new();
    for (index, line) in lines(text).enumerate() {
        let mut fields = line.split_ascii_whitespace().map(str::parse::<u32>);
        match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(Ok(container_id)), Some(Ok(host_id)), Some(Ok(size)), None) => {
                out.push(IdMapping {
                    container_id,
                    host_id,
                    size,
                })
            }
            _ => return Err((index + 1, line.to_owned())),
        }
    }
    Ok(out)
}

/// The lines of a newline-terminated list, without treating the final
/// newline as the start of an empty line.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let empty = text.is_empty();
    body.split('\n').filter(move |_| !empty)
}

/// Whether the container may keep `setgroups(2)`: false only when the gid
/// map is exactly the caller's own effective gid mapped to 0, which an
/// unprivileged user can write only after denying setgroups in the new user
/// namespace.
pub fn setgroups_allowed(gid_map: &[IdMapping], egid: u32) -> bool {
    gid_map
        != [IdMapping {
            container_id: 0,
            host_id: egid,
            size: 1,
        }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(container_id: u32, host_id: u32, size: u32) -> IdMapping {
        IdMapping {
            container_id,
            host_id,
            size,
        }
    }

    #[test]
    fn encode_lines() {
        assert_eq!(encode_id_map(&[]), "");
        assert_eq!(
            encode_id_map(&[m(0, 1000, 1), m(1, 100000, 65536)]),
            "0 1000 1\n1 100000 65536\n"
        );
        assert_eq!(
            encode_id_map(&[m(u32::MAX, 0, u32::MAX)]),
            "4294967295 0 4294967295\n"
        );
    }

    #[test]
    fn parse_round_trip_and_lenient_forms() {
        let maps = [m(0, 1000, 1), m(1, 100000, 65536)];
        assert_eq!(parse_id_map(&encode_id_map(&maps)).unwrap(), maps);
        assert_eq!(parse_id_map("").unwrap(), []);
        // Kernel-style column padding and a missing final newline.
        assert_eq!(
            parse_id_map("         0       1000          1").unwrap(),
            [m(0, 1000, 1)]
        );
    }

    #[test]
    fn parse_errors_name_the_line() {
        for (text, line) in [
            ("0 0\n", 1),
            ("0 0 1 2\n", 1),
            ("0 0 1\n\n", 2),
            ("0 0 1\nx 0 1\n", 2),
            ("0 0 -1\n", 1),
            ("0 0 4294967296\n", 1),
            ("\n", 1),
        ] {
            match parse_id_map(text) {
                Err(Error::InvalidIdMap { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let err = parse_id_map("0 0 1\nbad\n").unwrap_err();
        assert!(err.to_string().contains("line 2 \"bad\""), "{err}");
    }

    #[test]
    fn setgroups_rule() {
        assert!(!setgroups_allowed(&[m(0, 1000, 1)], 1000));
        assert!(setgroups_allowed(&[m(0, 1000, 1)], 1001));
        assert!(setgroups_allowed(&[m(0, 1000, 2)], 1000));
        assert!(setgroups_allowed(&[m(1, 1000, 1)], 1000));
        assert!(setgroups_allowed(&[m(0, 1000, 1), m(1, 100000, 10)], 1000));
        assert!(setgroups_allowed(&[], 1000));
    }
}
