//! Decoding and checking CRIU's messages. Pure: no I/O, so it can be fuzzed.

use prost::Message;

use crate::error::{Error, Result};
use crate::{rpc, Features, RequestType, Version};

/// One message from CRIU while it serves a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A notification (an action script point) that must be answered.
    Notify {
        /// The script name (`pre-dump`, `post-restore`, `orphan-pts-master`, ...).
        script: String,
        /// The pid CRIU attached (the restored init for `post-restore`).
        pid: Option<i32>,
    },
    /// The final, successful reply.
    Done(Response),
}

/// A successful final reply, with the parts that matter for its request type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The request this answers.
    pub request: RequestType,
    /// A non-empty `cr_errmsg` on a successful reply (CRIU sends warnings
    /// this way, such as an RLIMIT_NOFILE one); not an error.
    pub warning: Option<String>,
    /// VERSION: the version.
    pub version: Option<Version>,
    /// FEATURE_CHECK: the features.
    pub features: Option<Features>,
    /// RESTORE: the pid of the restored tree's root.
    pub restored_pid: Option<i32>,
    /// DUMP: whether the tree was restored after the dump.
    pub dump_restored: Option<bool>,
    /// PAGE_SERVER: the page server CRIU started.
    pub page_server: Option<PageServerInfo>,
}

/// A page server CRIU started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageServerInfo {
    /// Its pid.
    pub pid: Option<i32>,
    /// The port it listens on.
    pub port: Option<u16>,
}

/// Decodes one message CRIU sent while serving `request`.
///
/// Notifications are returned as [`Reply::Notify`]. A final reply must have the
/// request's type (or EMPTY, which CRIU uses for requests it does not know);
/// `success = false` becomes [`Error::Request`] and only `success` decides.
pub fn decode_reply(request: RequestType, bytes: &[u8]) -> Result<Reply> {
    let resp = rpc::CriuResp::decode(bytes).map_err(|source| Error::Decode {
        request,
        len: bytes.len(),
        source,
    })?;
    let got = RequestType::from_wire(resp.r#type);
    let invalid = |reason: &str| Error::InvalidReply {
        request,
        reason: reason.to_string(),
    };

    if got == RequestType::Notify && request != RequestType::Notify {
        let n = resp
            .notify
            .ok_or_else(|| invalid("NOTIFY reply without a notify field"))?;
        let script = n
            .script
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("NOTIFY reply without criu_notify.script"))?;
        return Ok(Reply::Notify { script, pid: n.pid });
    }
    // CRIU answers a request type it does not know with EMPTY + false.
    let unknown_request = got == RequestType::Empty && !resp.success;
    if got != request && !unknown_request {
        return Err(Error::UnexpectedReply { request, got });
    }
    if !resp.success {
        return Err(Error::Request {
            request,
            cr_errno: resp.cr_errno,
            cr_errmsg: resp.cr_errmsg.filter(|m| !m.is_empty()),
            log: None,
        });
    }

    let mut out = Response {
        request,
        warning: resp.cr_errmsg.filter(|m| !m.trim().is_empty()),
        version: None,
        features: None,
        restored_pid: None,
        dump_restored: resp.dump.and_then(|d| d.restored),
        page_server: None,
    };
    match request {
        RequestType::Version => {
            let v = resp
                .version
                .as_ref()
                .ok_or_else(|| invalid("VERSION reply without criu_version"))?;
            out.version = Some(Version::from_rpc(v)?);
        }
        RequestType::FeatureCheck => {
            let f = resp
                .features
                .as_ref()
                .ok_or_else(|| invalid("FEATURE_CHECK reply without criu_features"))?;
            out.features = Some(Features::from_rpc(f));
        }
        RequestType::Restore => {
            let r = resp
                .restore
                .ok_or_else(|| invalid("RESTORE reply without criu_restore_resp"))?;
            if r.pid <= 0 {
                return Err(invalid(&format!(
                    "criu_restore_resp.pid is {}, not a pid",
                    r.pid
                )));
            }
            out.restored_pid = Some(r.pid);
        }
        RequestType::PageServer => {
            if let Some(ps) = resp.ps {
                let port = match ps.port {
                    Some(p) => Some(u16::try_from(p).map_err(|_| {
                        invalid(&format!("criu_page_server_info.port {p} is not a port"))
                    })?),
                    None => None,
                };
                out.page_server = Some(PageServerInfo { pid: ps.pid, port });
            }
        }
        _ => {}
    }
    Ok(Reply::Done(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{CriuReqType, CriuResp};

    fn resp(t: CriuReqType, success: bool) -> CriuResp {
        CriuResp {
            r#type: t as i32,
            success,
            ..Default::default()
        }
    }

    #[test]
    fn version_reply_bytes() {
        let bytes = [
            0x08, 0x0a, 0x10, 0x01, 0x52, 0x06, 0x08, 0x03, 0x10, 0x11, 0x20, 0x01,
        ];
        let Reply::Done(r) = decode_reply(RequestType::Version, &bytes).unwrap() else {
            panic!("not final")
        };
        assert_eq!(r.version, Some(Version::new(3, 17, 1)));
        assert_eq!(r.warning, None);
    }

    #[test]
    fn warning_on_success_is_not_an_error() {
        let mut m = resp(CriuReqType::Dump, true);
        m.cr_errmsg = Some("RLIMIT_NOFILE too low".into());
        let Reply::Done(r) = decode_reply(RequestType::Dump, &m.encode_to_vec()).unwrap() else {
            panic!("not final")
        };
        assert_eq!(r.warning.as_deref(), Some("RLIMIT_NOFILE too low"));
    }

    #[test]
    fn failure_carries_errno_and_message() {
        let mut m = resp(CriuReqType::Restore, false);
        m.cr_errno = Some(13);
        m.cr_errmsg = Some("no images".into());
        match decode_reply(RequestType::Restore, &m.encode_to_vec()) {
            Err(Error::Request {
                request: RequestType::Restore,
                cr_errno: Some(13),
                cr_errmsg: Some(msg),
                ..
            }) => assert_eq!(msg, "no images"),
            other => panic!("{other:?}"),
        }
        // EMPTY + false is how CRIU refuses a request type it does not know.
        let m = resp(CriuReqType::Empty, false);
        assert!(matches!(
            decode_reply(RequestType::Version, &m.encode_to_vec()),
            Err(Error::Request {
                request: RequestType::Version,
                ..
            })
        ));
    }

    #[test]
    fn notify_and_mismatches() {
        let mut m = resp(CriuReqType::Notify, true);
        m.notify = Some(rpc::CriuNotify {
            script: Some("post-restore".into()),
            pid: Some(77),
        });
        assert_eq!(
            decode_reply(RequestType::Restore, &m.encode_to_vec()).unwrap(),
            Reply::Notify {
                script: "post-restore".into(),
                pid: Some(77)
            }
        );
        m.notify = None;
        assert!(matches!(
            decode_reply(RequestType::Restore, &m.encode_to_vec()),
            Err(Error::InvalidReply { .. })
        ));
        let m = resp(CriuReqType::Dump, true);
        assert!(matches!(
            decode_reply(RequestType::Restore, &m.encode_to_vec()),
            Err(Error::UnexpectedReply {
                request: RequestType::Restore,
                got: RequestType::Dump
            })
        ));
    }

    #[test]
    fn missing_payloads_are_invalid() {
        for t in [
            CriuReqType::Version,
            CriuReqType::FeatureCheck,
            CriuReqType::Restore,
        ] {
            let m = resp(t, true);
            let req = RequestType::from_wire(t as i32);
            assert!(
                matches!(
                    decode_reply(req, &m.encode_to_vec()),
                    Err(Error::InvalidReply { .. })
                ),
                "{req}"
            );
        }
        let mut m = resp(CriuReqType::PageServer, true);
        m.ps = Some(rpc::CriuPageServerInfo {
            port: Some(70000),
            ..Default::default()
        });
        assert!(decode_reply(RequestType::PageServer, &m.encode_to_vec()).is_err());
    }

    #[test]
    fn garbage_is_a_decode_error() {
        for g in [&[0xffu8, 0xff, 0xff][..], &[0x08], &[0x0a, 0x05, 0x01]] {
            assert!(
                matches!(
                    decode_reply(RequestType::Dump, g),
                    Err(Error::Decode { .. })
                ),
                "{g:?}"
            );
        }
        // Empty bytes decode, but required fields are missing.
        assert!(decode_reply(RequestType::Dump, &[]).is_err());
    }

    #[test]
    fn features_reply() {
        let mut m = resp(CriuReqType::FeatureCheck, true);
        m.features = Some(rpc::CriuFeatures {
            mem_track: Some(false),
            lazy_pages: Some(true),
            pidfd_store: None,
        });
        let Reply::Done(r) = decode_reply(RequestType::FeatureCheck, &m.encode_to_vec()).unwrap()
        else {
            panic!("not final")
        };
        let f = r.features.unwrap();
        assert!(!f.mem_track && f.lazy_pages && !f.pidfd_store);
    }
}
