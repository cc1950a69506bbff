//! Waiting for OOM kills in a cgroup.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{io_err, Error, Result};
use crate::fsio;

const POLL_SLICE_MS: i32 = 100;

/// What [`OomWatcher::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomWait {
    /// The OOM-kill counter rose; the new value.
    Oom(u64),
    /// Nothing happened before the timeout.
    Timeout,
    /// The cgroup was removed.
    Gone,
}

#[derive(Debug)]
enum Source {
    /// v1: an eventfd registered through `cgroup.event_control`; the
    /// `memory.oom_control` file must stay open while it is registered.
    EventFd { _control: std::fs::File },
    /// v2: inotify on `memory.events`.
    Inotify,
}

/// A handle that wakes up when a process in the cgroup is OOM-killed.
///
/// Its file descriptor ([`AsFd`]) becomes readable on events, so it can be
/// put into a poll loop; [`OomWatcher::wait`] does that for one handle.
#[derive(Debug)]
pub struct OomWatcher {
    fd: OwnedFd,
    source: Source,
    /// The file with the `oom_kill` counter.
    counter: PathBuf,
    dir: PathBuf,
    last: u64,
}

/// Read the `oom_kill` counter from `memory.oom_control` (v1) or
/// `memory.events` (v2) text.
pub fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

fn last_os(path: &Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::last_os_error(),
    }
}

impl OomWatcher {
    /// Watch a v1 memory cgroup directory.
    pub fn v1(dir: &Path) -> Result<OomWatcher> {
        let control_path = dir.join("memory.oom_control");
        let control = std::fs::File::open(&control_path).map_err(io_err(&control_path))?;
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(last_os(&control_path));
        }
        // SAFETY: efd is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(efd) };
        fsio::write(
            &dir.join("cgroup.event_control"),
            &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
        )?;
        let last = parse_oom_kill(&fsio::read(&control_path)?).unwrap_or(0);
        Ok(OomWatcher {
            fd,
            source: Source::EventFd { _control: control },
            counter: control_path,
            dir: dir.to_path_buf(),
            last,
        })
    }

    /// Watch a v2 cgroup directory (works on any file system for tests).
    pub fn v2(dir: &Path) -> Result<OomWatcher> {
        let events = dir.join("memory.events");
        let c = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Paths(format!("{} contains a NUL byte", events.display())))?;
        // SAFETY: plain syscall without pointers; checked below.
        let ifd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if ifd < 0 {
            return Err(last_os(&events));
        }
        // SAFETY: fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(ifd) };
        // SAFETY: `c` is a valid C string; fd is a live inotify descriptor.
        let wd = unsafe {
            libc::inotify_add_watch(
                fd.as_raw_fd(),
                c.as_ptr(),
                libc::IN_MODIFY | libc::IN_DELETE_SELF,
            )
        };
        if wd < 0 {
            return Err(last_os(&events));
        }
        let last = parse_oom_kill(&fsio::read(&events)?).unwrap_or(0);
        Ok(OomWatcher {
            fd,
            source: Source::Inotify,
            counter: events,
            dir: dir.to_path_buf(),
            last,
        })
    }

    /// The current OOM-kill count of the cgroup.
    pub fn count(&self) -> Result<u64> {
        let t = fsio::read(&self.counter)?;
        Ok(parse_oom_kill(&t).unwrap_or(0))
    }

    fn drain(&self) {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a stack buffer of the given length; the fd is
        // non-blocking (inotify) or known readable after poll (eventfd).
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }

    /// Block until an OOM kill, the cgroup's removal, or the timeout
    /// (`None`: wait forever).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<OomWait> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if !self.dir.exists() {
                return Ok(OomWait::Gone);
            }
            // v1 may signal an OOM (under_oom) before the kill is counted,
            // and kernels without the oom_kill line never count: an event
            // then counts as one.
            let now = self.count().unwrap_or(self.last);
            if now > self.last {
                self.last = now;
                return Ok(OomWait::Oom(now));
            }
            // The descriptor is only a wake-up hint: v1 kernels that kill
            // without the OOM killer being disabled may not signal the eventfd,
            // so the counter is re-read at least every POLL_SLICE.
            let ms = match deadline {
                None => POLL_SLICE_MS,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(OomWait::Timeout);
                    }
                    left.as_millis().min(u128::from(POLL_SLICE_MS as u32)) as i32
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io {
                    path: self.counter.clone(),
                    source: e,
                });
            }
            if rc > 0 {
                self.drain();
                if !self.dir.exists() {
                    return Ok(OomWait::Gone);
                }
                if matches!(self.source, Source::EventFd { .. }) {
                    let now = self.count().unwrap_or(self.last);
                    if now <= self.last
                        && parse_oom_kill(&fsio::read(&self.counter).unwrap_or_default()).is_none()
                    {
                        self.last += 1;
                        return Ok(OomWait::Oom(self.last));
                    }
                }
            }
        }
    }
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(
            parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(
            parse_oom_kill("low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0"),
            Some(1)
        );
        assert_eq!(parse_oom_kill("nothing 1"), None);
    }

    #[test]
    fn v2_inotify_on_temp_tree() {
        let d = tempfile::tempdir().unwrap();
        let ev = d.path().join("memory.events");
        std::fs::write(&ev, "oom 0\noom_kill 0\n").unwrap();
        let mut w = OomWatcher::v2(d.path()).unwrap();
        assert_eq!(
            w.wait(Some(Duration::from_millis(50))).unwrap(),
            OomWait::Timeout
        );
        let ev2 = ev.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(&ev2, "oom 0\noom_kill 0\nmax 1\n").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(&ev2, "oom 1\noom_kill 2\n").unwrap();
        });
        assert_eq!(
            w.wait(Some(Duration::from_secs(5))).unwrap(),
            OomWait::Oom(2)
        );
        t.join().unwrap();
        assert_eq!(w.count().unwrap(), 2);
        drop(d);
        assert_eq!(w.wait(Some(Duration::from_secs(1))).unwrap(), OomWait::Gone);
    }
}
