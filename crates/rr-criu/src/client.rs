//! The CRIU client: probing and typed requests over `criu swrk`.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, NotifyError, Result};
use crate::reply::{decode_reply, PageServerInfo, Reply, Response};
use crate::transport::{Captured, Session};
use crate::{rpc, CriuOpts, Features, Notify, RequestType, Version};

/// What a probe found: CRIU's version and its optional features.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// The version.
    pub version: Version,
    /// The supported optional features.
    pub features: Features,
}

/// The result of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpOutcome {
    /// CRIU's `cr_errmsg` on success (a warning).
    pub warning: Option<String>,
    /// Whether CRIU reports the tree as restored after the dump.
    pub restored: bool,
}

/// The result of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOutcome {
    /// The pid of the restored tree's root.
    pub pid: i32,
    /// CRIU's `cr_errmsg` on success (a warning).
    pub warning: Option<String>,
}

#[derive(Debug)]
enum Cached {
    Full(Probe),
    /// VERSION answered, FEATURE_CHECK did not.
    VersionOnly {
        version: Version,
        reason: String,
    },
}

/// How to start the CRIU process of one request.
#[derive(Default)]
struct Spawn<'a, 'b> {
    stdio: Option<[BorrowedFd<'a>; 3]>,
    join: &'b [BorrowedFd<'a>],
    pid_file: Option<&'b Path>,
}

/// A CRIU binary, driven through its RPC service (`criu swrk`).
///
/// Each request runs in its own CRIU process, which is always reaped. The
/// probe (version and features) runs once and is cached.
#[derive(Debug)]
pub struct Criu {
    path: PathBuf,
    probe: OnceLock<Cached>,
}

impl Default for Criu {
    /// `criu`, found through `PATH`.
    fn default() -> Self {
        Self::new("criu")
    }
}

impl Criu {
    /// A client for the CRIU binary at `path` (a bare name is looked up in `PATH`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            probe: OnceLock::new(),
        }
    }

    /// The binary this client runs.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// CRIU's version and features, asked of one CRIU process (VERSION with
    /// `keep_open`, then FEATURE_CHECK) on the first call and cached.
    ///
    /// A CRIU without the VERSION request (before 3.0) is asked `criu -V`
    /// instead. Fails with [`Error::FeatureCheck`] when the version is known
    /// but the feature check failed (see [`Criu::version`] for the version alone).
    pub fn probe(&self) -> Result<&Probe> {
        match self.cached()? {
            Cached::Full(p) => Ok(p),
            Cached::VersionOnly { version, reason } => Err(Error::FeatureCheck {
                path: self.path.clone(),
                version: version.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// CRIU's version (probing as [`Criu::probe`] does, but succeeding even
    /// when only the feature check failed).
    pub fn version(&self) -> Result<&Version> {
        match self.cached()? {
            Cached::Full(p) => Ok(&p.version),
            Cached::VersionOnly { version, .. } => Ok(version),
        }
    }

    /// CRIU's optional features (see [`Criu::probe`]).
    pub fn features(&self) -> Result<&Features> {
        self.probe().map(|p| &p.features)
    }

    /// Fails with "CRIU X found, Y or newer needed for `needed_for`" when
    /// CRIU is older than `min`.
    pub fn require_version(&self, min: &Version, needed_for: &str) -> Result<&Version> {
        let found = self.version()?;
        if found.number() < min.number() {
            return Err(Error::VersionTooOld {
                found: found.clone(),
                needed: min.clone(),
                needed_for: needed_for.to_string(),
            });
        }
        Ok(found)
    }

    fn cached(&self) -> Result<&Cached> {
        if let Some(c) = self.probe.get() {
            return Ok(c);
        }
        let fresh = self.run_probe()?;
        // Another thread may have won the race; either answer is the same.
        let _ = self.probe.set(fresh);
        self.probe.get().ok_or_else(|| Error::InvalidReply {
            request: RequestType::Version,
            reason: "probe result was not stored".into(),
        })
    }

    fn run_probe(&self) -> Result<Cached> {
        let session = Session::spawn(&self.path, None, &[], false)?;
        let version_req = rpc::CriuReq {
            r#type: RequestType::Version.wire(),
            keep_open: Some(true),
            ..Default::default()
        };
        session.send(&version_req)?;
        let answered = match session.recv()? {
            Some((bytes, _fds)) => match decode_reply(RequestType::Version, &bytes) {
                Ok(Reply::Done(Response {
                    version: Some(v), ..
                })) => Some(v),
                // CRIU before 3.0 refuses the request type, or drops the connection.
                Err(Error::Request { .. }) => None,
                Ok(_) => {
                    return Err(Error::UnexpectedReply {
                        request: RequestType::Version,
                        got: RequestType::Notify,
                    })
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let (version, session) = match answered {
            Some(v) => (v, session),
            None => {
                session.abandon();
                let v = self.dash_v()?;
                (v, Session::spawn(&self.path, None, &[], false)?)
            }
        };
        let features_req = rpc::CriuReq {
            r#type: RequestType::FeatureCheck.wire(),
            features: Some(Features::query()),
            ..Default::default()
        };
        let captured = session.captured();
        Ok(match feature_check(session, &features_req) {
            Ok(features) => Cached::Full(Probe { version, features }),
            Err(e) => Cached::VersionOnly {
                version,
                reason: with_output(e.to_string(), captured.as_ref()),
            },
        })
    }

    fn dash_v(&self) -> Result<Version> {
        let out = Command::new(&self.path)
            .arg("-V")
            .output()
            .map_err(|source| Error::Spawn {
                path: self.path.clone(),
                source,
            })?;
        Version::parse_dash_v(&String::from_utf8_lossy(&out.stdout))
    }

    /// Runs `criu check` through RPC: does this kernel support what CRIU needs?
    pub fn check(&self) -> Result<()> {
        let req = rpc::CriuReq {
            r#type: RequestType::Check.wire(),
            ..Default::default()
        };
        self.transact(
            RequestType::Check,
            req,
            Spawn::default(),
            None,
            &mut crate::AcceptAll,
        )
        .map(drop)
    }

    /// Checkpoints the tree rooted at `opts.pid(..)` into the images directory.
    pub fn dump(&self, opts: &CriuOpts<'_>, notify: &mut dyn Notify) -> Result<DumpOutcome> {
        let r = self.request(RequestType::Dump, opts, notify)?;
        Ok(DumpOutcome {
            warning: r.warning,
            restored: r.dump_restored.unwrap_or(false),
        })
    }

    /// Dumps memory only (the tree keeps running), as the parent of a later
    /// dump (`parent_img`) with `track_mem`.
    pub fn pre_dump(&self, opts: &CriuOpts<'_>, notify: &mut dyn Notify) -> Result<Option<String>> {
        self.request(RequestType::PreDump, opts, notify)
            .map(|r| r.warning)
    }

    /// Restores a tree from the images directory.
    pub fn restore(&self, opts: &CriuOpts<'_>, notify: &mut dyn Notify) -> Result<RestoreOutcome> {
        let r = self.request(RequestType::Restore, opts, notify)?;
        let pid = r.restored_pid.ok_or_else(|| Error::InvalidReply {
            request: RequestType::Restore,
            reason: "no restored pid".into(),
        })?;
        Ok(RestoreOutcome {
            pid,
            warning: r.warning,
        })
    }

    /// Starts a page server (address and port from `opts.page_server(..)`)
    /// that receives the pages of a dump on another host.
    pub fn page_server(&self, opts: &CriuOpts<'_>) -> Result<PageServerInfo> {
        let r = self.request(RequestType::PageServer, opts, &mut crate::AcceptAll)?;
        Ok(r.page_server.unwrap_or(PageServerInfo {
            pid: None,
            port: None,
        }))
    }

    fn request(
        &self,
        kind: RequestType,
        opts: &CriuOpts<'_>,
        notify: &mut dyn Notify,
    ) -> Result<Response> {
        let req = rpc::CriuReq {
            r#type: kind.wire(),
            opts: Some(opts.to_rpc()?),
            ..Default::default()
        };
        let log = opts.log_path();
        self.transact(
            kind,
            req,
            Spawn {
                stdio: opts.stdio(),
                join: opts.cgroups_to_join(),
                pid_file: opts.pid_file_path(),
            },
            log.as_deref(),
            notify,
        )
    }

    /// Sends `req` to a fresh CRIU and serves its notifications until the
    /// final reply; checks CRIU's exit status.
    fn transact(
        &self,
        kind: RequestType,
        req: rpc::CriuReq,
        spawn: Spawn<'_, '_>,
        log: Option<&Path>,
        notify: &mut dyn Notify,
    ) -> Result<Response> {
        let session = Session::spawn(
            &self.path,
            spawn.stdio,
            spawn.join,
            spawn.pid_file.is_some(),
        )?;
        let captured = session.captured();
        let result = serve(kind, &req, session, spawn.pid_file, log, notify);
        // CRIU has exited: its log is complete and what it printed goes
        // after it.
        if let (Some(out), Some(log)) = (&captured, log) {
            out.append_to(log);
        }
        result
    }
}

/// Sends `req` on `session` and serves CRIU's notifications until the
/// final reply; checks CRIU's exit status.
fn serve(
    kind: RequestType,
    req: &rpc::CriuReq,
    session: Session,
    pid_file: Option<&Path>,
    log: Option<&Path>,
    notify: &mut dyn Notify,
) -> Result<Response> {
    if let Some(p) = pid_file {
        session.write_pid_file(p)?;
    }
    session.send(req).map_err(|e| e.with_log(log))?;
    let mut refused: Option<(String, NotifyError)> = None;
    let rejected = |refused: Option<(String, NotifyError)>, other: Error| match refused {
        Some((script, source)) => Error::NotifyRejected {
            request: kind,
            script,
            source,
            log: log.map(Path::to_path_buf),
        },
        None => other.with_log(log),
    };
    loop {
        let Some((bytes, fds)) = session.recv()? else {
            let status = session.abandon();
            let closed = Error::ConnectionClosed {
                request: kind,
                status,
                log: None,
            };
            return Err(rejected(refused, closed));
        };
        match decode_reply(kind, &bytes) {
            Ok(Reply::Notify { script, pid }) => {
                let fd = fds.into_iter().next();
                let ok = match notify.notify(&script, pid, fd) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert((script, e));
                        false
                    }
                };
                let answer = rpc::CriuReq {
                    r#type: RequestType::Notify.wire(),
                    notify_success: Some(ok),
                    ..Default::default()
                };
                if let Err(e) = session.send(&answer) {
                    return Err(rejected(refused, e));
                }
            }
            Ok(Reply::Done(resp)) if kind == RequestType::PreDump => {
                // After a pre-dump CRIU waits for the next pre-dump or
                // the final dump of a series; one request per session
                // ends it here, and its exit on the closed socket is
                // not a failure.
                let _ = session.abandon();
                return Ok(resp);
            }
            Ok(Reply::Done(resp)) => {
                let status = session.finish()?;
                if !status.success() {
                    return Err(Error::CriuExit {
                        request: kind,
                        status,
                        log: log.map(Path::to_path_buf),
                    });
                }
                return Ok(resp);
            }
            Err(e @ Error::Request { .. }) => return Err(rejected(refused, e)),
            Err(e) => return Err(e.with_log(log)),
        }
    }
}

/// `reason` and the last line CRIU printed, if any: a probe has no log
/// file, and its output is never passed through raw.
fn with_output(reason: String, captured: Option<&Captured>) -> String {
    let lines = captured.map(Captured::lines).unwrap_or_default();
    let last = lines
        .iter()
        .rev()
        .find(|l| l.contains("Error"))
        .or(lines.last());
    match last {
        Some(l) => format!("{reason}; CRIU printed: {}", truncate(l, 300)),
        None => reason,
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Sends FEATURE_CHECK on `session` and checks how CRIU ends.
fn feature_check(session: Session, req: &rpc::CriuReq) -> Result<Features> {
    session.send(req)?;
    let Some((bytes, _)) = session.recv()? else {
        let status = session.abandon();
        return Err(Error::ConnectionClosed {
            request: RequestType::FeatureCheck,
            status,
            log: None,
        });
    };
    let reply = decode_reply(RequestType::FeatureCheck, &bytes)?;
    let status = session.finish()?;
    match reply {
        Reply::Done(Response {
            features: Some(f), ..
        }) if status.success() => Ok(f),
        Reply::Done(_) if !status.success() => Err(Error::CriuExit {
            request: RequestType::FeatureCheck,
            status,
            log: None,
        }),
        _ => Err(Error::UnexpectedReply {
            request: RequestType::FeatureCheck,
            got: RequestType::Notify,
        }),
    }
}
