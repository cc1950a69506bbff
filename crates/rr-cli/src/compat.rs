//! Command-line habits of runc's callers that clap does not take as is.
//!
//! runc parses flags with Go's conventions, where `-name` means the same as
//! `--name`, and callers rely on it: containerd's go-runc passes
//! `-no-subreaper` to `restore`. Such arguments are rewritten to the
//! double-dash form when `name` is one of rrc's long flags.

use std::collections::HashSet;
use std::ffi::OsString;

use clap::CommandFactory;

use crate::args::Cli;

fn long_names() -> HashSet<String> {
    fn walk(cmd: &clap::Command, out: &mut HashSet<String>) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                out.insert(l.to_string());
            }
        }
        for s in cmd.get_subcommands() {
            walk(s, out);
        }
    }
    let mut out = HashSet::new();
    let mut cmd = Cli::command();
    // The subcommands' arguments are deferred (args.rs): build them all.
    cmd.build();
    walk(&cmd, &mut out);
    out
}

/// Whether `a` may be a Go-style `-name` flag: one dash and two or more
/// characters after it.
fn single_dash_long(a: &OsString) -> bool {
    a.to_str()
        .and_then(|s| s.strip_prefix('-'))
        .is_some_and(|rest| !rest.starts_with('-') && rest.len() >= 2)
}

/// `args` (without the program name) with single-dash long flags made
/// double-dash. Arguments after `--` are left alone; so are ones of two
/// characters or fewer (short flags such as `-d`, numbers such as `-1`)
/// and ones that name no long flag (`ps` options such as `-ef`).
pub fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    // Building the whole command tree costs time and memory; the usual
    // command line (double-dash flags only) has nothing to rewrite.
    if !args
        .iter()
        .take_while(|a| a.as_os_str() != "--")
        .any(single_dash_long)
    {
        return args;
    }
    let names = long_names();
    let mut seen_terminator = false;
    args.into_iter()
        .map(|a| {
            if seen_terminator {
                return a;
            }
            let Some(s) = a.to_str() else { return a };
            if s == "--" {
                seen_terminator = true;
                return a;
            }
            let Some(rest) = s.strip_prefix('-') else {
                return a;
            };
            if rest.starts_with('-') || rest.len() < 2 {
                return a;
            }
            let name = rest.split('=').next().unwrap_or(rest);
            if names.contains(name) {
                OsString::from(format!("-{s}"))
            } else {
                a
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: &[&str]) -> Vec<String> {
        normalize(v.iter().map(OsString::from).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn go_style_long_flags_become_double_dash() {
        assert_eq!(
            n(&["restore", "-no-subreaper", "-d", "--bundle", "b", "id"]),
            ["restore", "--no-subreaper", "-d", "--bundle", "b", "id"]
        );
        assert_eq!(
            n(&["-log-format=json", "state", "x"])[0],
            "--log-format=json"
        );
    }

    #[test]
    fn short_flags_ps_options_and_values_stay() {
        assert_eq!(n(&["ps", "x", "-ef"]), ["ps", "x", "-ef"]);
        assert_eq!(n(&["kill", "x", "-9"]), ["kill", "x", "-9"]);
        assert_eq!(n(&["ps", "x", "--", "-pid"]), ["ps", "x", "--", "-pid"]);
    }
}
