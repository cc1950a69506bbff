//! The processes of a container: `ps` and `kill --all`.

use rr_state::{State, Status};

use crate::error::{Error, Result};
use crate::runtime::{wrong_state, Runtime};

impl Runtime {
    /// Every pid in the container's cgroups.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        match crate::cgroups::manager_of(&state)? {
            Some(cg) => Ok(cg.pids()?),
            None => {
                let status = self.status_of(&dir, &state);
                if status == Status::Stopped {
                    Ok(Vec::new())
                } else {
                    Ok(vec![state.init_process_pid])
                }
            }
        }
    }

    /// Runs `ps` with `ps_args` on the host and keeps the header and the
    /// rows of the container's processes.
    pub fn ps_table(&self, id: &str, ps_args: &[String]) -> Result<String> {
        let pids = self.pids(id)?;
        let out = std::process::Command::new("ps")
            .args(ps_args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::Sys {
                call: format!("running ps {}", ps_args.join(" ")),
                source: e,
            })?;
        if !out.status.success() {
            return Err(Error::Init(format!(
                "ps {}: {}",
                ps_args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        filter_ps_output(&String::from_utf8_lossy(&out.stdout), &pids)
            .map_err(|m| Error::Init(format!("ps {}: {m}", ps_args.join(" "))))
    }

    /// Signals every process in the container's cgroups. The cgroups are
    /// frozen meanwhile so that no process forks a child that escapes the
    /// signal.
    pub(crate) fn kill_all(&self, state: &State, signal: libc::c_int) -> Result<()> {
        let Some(cg) = crate::cgroups::manager_of(state)? else {
            return Err(wrong_state(
                &state.id,
                Status::Running,
                "kill --all needs the container's cgroups, and none are recorded",
            ));
        };
        let was_frozen = cg.is_frozen().unwrap_or(false);
        let froze = !was_frozen && cg.freeze().is_ok();
        let result = (|| {
            for pid in cg.pids()? {
                // SAFETY: kill with plain integers.
                if unsafe { libc::kill(pid, signal) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        return Err(Error::Sys {
                            call: format!("kill {pid} signal {signal}"),
                            source: e,
                        });
                    }
                }
            }
            Ok(())
        })();
        if froze {
            cg.thaw()?;
        }
        result
    }
}

/// Keeps the header line of `ps` output and the rows whose PID column is
/// one of `pids`.
pub fn filter_ps_output(text: &str, pids: &[i32]) -> std::result::Result<String, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("no output")?;
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or("no PID column in the header (add pid to the -o fields)")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|f| f.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_matching_rows() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n";
        let out = filter_ps_output(text, &[42]).unwrap();
        assert_eq!(
            out,
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n"
        );
        assert!(filter_ps_output("USER COMMAND\nx y\n", &[1]).is_err());
        assert!(filter_ps_output("", &[1]).is_err());
    }
}
