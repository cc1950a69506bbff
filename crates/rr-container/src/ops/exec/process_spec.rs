//! The process an `exec` runs: the `--process` file as given, or the
//! container's own process with the command-line flags (args, env, cwd,
//! user, capabilities, ...) applied; pure spec editing, no system calls
//! beyond reading the file.

use std::path::Path;

use oci_spec::runtime::Process;
use rr_state::State;
use serde_json::Value;

use super::ExecOptions;
use crate::error::{Error, Result};

/// The process to run: the process file as given, or the container's own
/// process with the flags applied.
pub(super) fn exec_process(state: &State, opts: &ExecOptions) -> Result<Process> {
    if let Some(path) = &opts.process {
        return process_file(path);
    }
    if opts.args.is_empty() {
        return Err(flag_error("command", "no command given to exec".into()));
    }
    let mut p = state
        .config
        .spec
        .get("process")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}}));
    let obj = p.as_object_mut().ok_or_else(|| {
        flag_error(
            "process",
            "the stored spec's process is not an object".into(),
        )
    })?;
    obj.insert("args".into(), serde_json::json!(opts.args));
    obj.insert("terminal".into(), Value::Bool(opts.tty));
    obj.remove("consoleSize");
    if let Some(cwd) = &opts.cwd {
        obj.insert("cwd".into(), Value::String(cwd.display().to_string()));
    }
    if !opts.env.is_empty() {
        merge_env(obj, &opts.env);
    }
    apply_user_flags(obj, opts)?;
    if !opts.caps.is_empty() {
        add_caps(obj, &opts.caps);
    }
    if opts.no_new_privs {
        obj.insert("noNewPrivileges".into(), Value::Bool(true));
    }
    if let Some(a) = &opts.apparmor {
        obj.insert("apparmorProfile".into(), Value::String(a.clone()));
    }
    if let Some(l) = &opts.process_label {
        obj.insert("selinuxLabel".into(), Value::String(l.clone()));
    }
    serde_json::from_value(p).map_err(|e| flag_error("--cap", e.to_string()))
}

/// An exec flag (or what it applies to) that cannot be used.
fn flag_error(field: &str, message: String) -> Error {
    Error::ConfigInvalid {
        path: "exec flags".into(),
        field: field.into(),
        message,
    }
}

/// `--process`: the file replaces the spec's process entirely.
fn process_file(path: &Path) -> Result<Process> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let parse_err = |e: serde_json::Error| Error::ConfigParse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let mut v: Value = serde_json::from_str(&text).map_err(parse_err)?;
    // runc runs a process file without `user` as root.
    if let Some(obj) = v.as_object_mut() {
        obj.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    crate::spec_catalogue::normalise_keys(&mut v, "process");
    crate::spec_catalogue::alias_process_values(&mut v);
    let p: Process = serde_json::from_value(v).map_err(parse_err)?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::ConfigInvalid {
            path: path.to_path_buf(),
            field: "args".into(),
            message: "the process has no args".into(),
        });
    }
    Ok(p)
}

/// `--env`: each entry replaces any of the same key, else is added.
fn merge_env(obj: &mut serde_json::Map<String, Value>, given: &[String]) {
    let mut env: Vec<String> = obj
        .get("env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    for e in given {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    obj.insert("env".into(), serde_json::json!(env));
}

/// `--user` and `--additional-gids`; a process without a user runs as root.
fn apply_user_flags(obj: &mut serde_json::Map<String, Value>, opts: &ExecOptions) -> Result<()> {
    let user = obj
        .entry("user")
        .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    if let Some(u) = &opts.user {
        let (uid, gid) = parse_user(u).ok_or_else(|| {
            flag_error(
                "--user",
                format!("{u:?} is not uid or uid:gid (numbers only)"),
            )
        })?;
        user["uid"] = serde_json::json!(uid);
        user["gid"] = serde_json::json!(gid.unwrap_or(0));
    }
    if !opts.additional_gids.is_empty() {
        user["additionalGids"] = serde_json::json!(opts.additional_gids);
    }
    Ok(())
}

/// `--cap`: added to the bounding, effective and permitted sets (with the
/// CAP_ prefix the spec uses), each once.
fn add_caps(obj: &mut serde_json::Map<String, Value>, given: &[String]) {
    let caps = obj
        .entry("capabilities")
        .or_insert_with(|| serde_json::json!({}));
    for set in ["bounding", "effective", "permitted"] {
        let list = caps
            .as_object_mut()
            .map(|m| m.entry(set).or_insert_with(|| serde_json::json!([])));
        if let Some(Value::Array(a)) = list {
            for c in given {
                let name = if c.to_ascii_uppercase().starts_with("CAP_") {
                    c.to_ascii_uppercase()
                } else {
                    format!("CAP_{}", c.to_ascii_uppercase())
                };
                if !a.iter().any(|x| x.as_str() == Some(&name)) {
                    a.push(Value::String(name));
                }
            }
        }
    }
}

fn parse_user(s: &str) -> Option<(u32, Option<u32>)> {
    match s.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, Some(g.parse().ok()?))),
        None => Some((s.parse().ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users() {
        assert_eq!(parse_user("1000"), Some((1000, None)));
        assert_eq!(parse_user("1000:100"), Some((1000, Some(100))));
        assert_eq!(parse_user("root"), None);
        assert_eq!(parse_user("1:x"), None);
    }

    #[test]
    fn flags_change_the_spec_process() {
        let mut state = State::default();
        state.config.spec = serde_json::json!({
            "process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin", "A=1"],
                        "user": {"uid": 0, "gid": 0},
                        "capabilities": {"bounding": ["CAP_KILL"]}}
        });
        let opts = ExecOptions {
            args: vec!["id".into()],
            env: vec!["A=2".into(), "B=3".into()],
            cwd: Some("/tmp".into()),
            user: Some("5:6".into()),
            caps: vec!["net_admin".into()],
            ..Default::default()
        };
        let p = exec_process(&state, &opts).expect("process");
        assert_eq!(p.args().clone().unwrap_or_default(), vec!["id".to_string()]);
        let env = p.env().clone().unwrap_or_default();
        assert_eq!(env, vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (5, 6));
        let b = p
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().clone())
            .unwrap_or_default();
        assert_eq!(b.len(), 2);
        assert!(exec_process(
            &state,
            &ExecOptions {
                args: vec!["x".into()],
                user: Some("bob".into()),
                ..Default::default()
            }
        )
        .is_err());
    }
}
