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

    /// Logs an error; it also always reaches stderr.
    pub fn error(&mut self, msg: &str) {
        self.line("error", msg);
        if self.file.is_some() {
            eprintln!("rrc: {msg}");
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
        let time = rr_container::now_rfc3339();
        let text = match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
            }
            LogFormat::Text => format!(
                "time={:?} level={level} msg={}",
                time,
                serde_json::Value::String(msg.to_string())
            ),
        };
        match &mut self.file {
            Some(f) => {
                let _ = writeln!(f, "{text}");
            }
            None if level == "error" && self.format == LogFormat::Text => {
                eprintln!("rrc: {msg}");
            }
            None => eprintln!("{text}"),
        }
    }
}

/// Reports a command line clap refused. Help and version requests are
/// printed as clap formats them (exit 0). Other errors also go to the log
/// file when the arguments name one, found by a plain scan since they did
/// not parse: the containerd shim shows the last JSON error line of that
/// file to its user, and would otherwise show nothing.
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
    let _ = e.print();
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
    if let Some(path) = value("log") {
        let format = match value("log-format") {
            Some("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        if let Ok(mut l) = Logger::new(Some(Path::new(path)), format, false) {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            l.line("error", first.trim_start_matches("error: "));
        }
    }
    std::process::ExitCode::from(2)
}
