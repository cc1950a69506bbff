//! Log lines in runc's formats: text (`time=".." level=.. msg=".."`) or
//! one JSON object per line (`{"level":..,"msg":..,"time":..}`), which the
//! containerd shim reads back to show the last error.

use std::io::Write;
use std::path::Path;

use crate::args::LogFormat;

/// Where log lines go.
pub struct Logger {
    file: Option<std::fs::File>,
    format: LogFormat,
    debug: bool,
}

impl Logger {
    /// Opens the log file (appending) if one is given.
    pub fn new(path: Option<&Path>, format: LogFormat, debug: bool) -> Result<Logger, String> {
        let file = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("opening log file {}: {e}", p.display()))?,
            ),
            None => None,
        };
        Ok(Logger {
            file,
            format,
            debug,
        })
    }

    /// Logs an error. Without a log file the formatted line goes to stderr;
    /// with one, stderr also gets the bare message, as runc does.
    pub fn error(&mut self, msg: &str) {
        self.line("error", msg);
        if self.file.is_some() {
            eprintln!("{msg}");
        }
    }

    /// Logs a warning.
    pub fn warn(&mut self, msg: &str) {
        self.line("warning", msg);
    }

    /// A second logger writing to the same place.
    pub fn try_clone(&self) -> Result<Logger, String> {
        let file = match &self.file {
            Some(f) => Some(
                f.try_clone()
                    .map_err(|e| format!("duplicating the log file: {e}"))?,
            ),
            None => None,
        };
        Ok(Logger {
            file,
            format: self.format,
            debug: self.debug,
        })
    }

    /// Logs a debug message when `--debug` is set.
    pub fn debug(&mut self, msg: &str) {
        if self.debug {
            self.line("debug", msg);
        }
    }

    fn line(&mut self, level: &str, msg: &str) {
        let text = format_line(self.format, level, msg);
        match &mut self.file {
            Some(f) => {
                let _ = writeln!(f, "{text}");
            }
            None => eprintln!("{text}"),
        }
    }
}

/// One log line in `format`, without the newline. The text format is
/// logrus's (which runc uses): a value is quoted only when it holds a
/// character outside `[A-Za-z0-9-._/@^+]`, and then Go-style.
pub fn format_line(format: LogFormat, level: &str, msg: &str) -> String {
    let time = rr_container::now_rfc3339();
    match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!(
            "time={} level={} msg={}",
            logfmt_value(&time),
            logfmt_value(level),
            logfmt_value(msg)
        ),
    }
}

/// Writes an error to stderr in `format` when there is no logger yet.
pub fn stderr_error(format: LogFormat, msg: &str) {
    eprintln!("{}", format_line(format, "error", msg));
}

fn logfmt_value(v: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._/@^+".contains(c);
    if v.chars().all(plain) {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reports a command line clap refused. Help and version requests are
/// printed as clap formats them (exit 0). Other errors are logged as any
/// error is, to the log file when the arguments name one (found by a plain
/// scan since they did not parse): the containerd shim shows the last JSON
/// error line of that file to its user, and would otherwise show nothing.
pub fn usage_error(e: &clap::Error, args: &[std::ffi::OsString]) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            std::process::ExitCode::from(2)
        } else {
            std::process::ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    // clap's message is the first paragraph; the usage help follows.
    let text = text.trim_start();
    let (head, usage) = text.split_once("\n\n").unwrap_or((text, ""));
    let msg = head
        .trim_start_matches("error: ")
        .split('\n')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    // As runc: the error is a log line, the usage help goes to stdout.
    print!("{usage}");
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let value = |name: &str| -> Option<&str> {
        let eq = format!("--{name}=");
        args.iter().enumerate().find_map(|(i, a)| {
            if *a == format!("--{name}") {
                args.get(i + 1).copied()
            } else {
                a.strip_prefix(&eq)
            }
        })
    };
    let format = match value("log-format") {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    match value("log").map(|p| Logger::new(Some(Path::new(p)), format, false)) {
        Some(Ok(mut l)) => l.error(&msg),
        _ => stderr_error(format, &msg),
    }
    std::process::ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_as_logrus() {
        assert_eq!(logfmt_value("error"), "error");
        assert_eq!(logfmt_value("a/b-c.d_e@f^g+h"), "a/b-c.d_e@f^g+h");
        assert_eq!(logfmt_value("a b"), "\"a b\"");
        assert_eq!(logfmt_value("say \"x\"\n"), "\"say \\\"x\\\"\\n\"");
        assert_eq!(logfmt_value("nul\0"), "\"nul\\x00\"");
        assert_eq!(
            logfmt_value("2026-12-06T01:59:07Z"),
            "\"2026-12-06T01:59:07Z\""
        );
    }

    #[test]
    fn text_line_has_time_level_msg() {
        let l = format_line(LogFormat::Text, "error", "container does not exist");
        assert!(l.starts_with("time=\""), "{l}");
        assert!(
            l.ends_with("\" level=error msg=\"container does not exist\""),
            "{l}"
        );
    }
}
