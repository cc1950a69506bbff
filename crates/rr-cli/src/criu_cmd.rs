//! `checkpoint` and `restore`: flags to options.

use std::path::{Path, PathBuf};

use rr_container::{CheckpointOptions, Criu, RestoreOptions, Runtime};

use crate::args::{CheckpointArgs, Cli, CriuArgs, RestoreArgs};

/// `--criu` after the command wins over one before it, as the later flag.
fn criu(cli: &Cli, a: &CriuArgs) -> Criu {
    let path = a.criu_path.as_ref().or(cli.criu.as_ref());
    Criu::new(path.cloned().unwrap_or_else(|| PathBuf::from("criu")))
}

/// runc's default image path is `checkpoint` in the current directory;
/// relative paths are made absolute here so nothing later depends on the cwd.
fn absolute(p: Option<&Path>, default: &str) -> Result<PathBuf, String> {
    let p = p.map_or_else(|| PathBuf::from(default), Path::to_path_buf);
    if p.is_absolute() {
        return Ok(p);
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .map_err(|e| format!("current directory: {e}"))
}

pub fn checkpoint(rt: &Runtime, cli: &Cli, a: &CheckpointArgs) -> Result<u8, String> {
    let opts = CheckpointOptions {
        image_path: absolute(a.criu.image_path.as_deref(), "checkpoint")?,
        work_path: a
            .criu
            .work_path
            .as_deref()
            .map(|p| absolute(Some(p), "."))
            .transpose()?,
        parent_path: a.parent_path.clone(),
        leave_running: a.leave_running,
        tcp_established: a.criu.tcp_established,
        ext_unix_sk: a.criu.ext_unix_sk,
        shell_job: a.criu.shell_job,
        lazy_pages: a.criu.lazy_pages,
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
        page_server: a.page_server.clone(),
        file_locks: a.criu.file_locks,
        pre_dump: a.pre_dump,
        manage_cgroups_mode: a.criu.manage_cgroups_mode.clone(),
        empty_ns: a.criu.empty_ns.clone(),
        auto_dedup: a.criu.auto_dedup,
        link_remap: a.link_remap,
    };
    rt.checkpoint(&a.id, &criu(cli, &a.criu), &opts)
        .map_err(|e| e.to_string())?;
    Ok(0)
}

pub fn restore(rt: &Runtime, cli: &Cli, a: &RestoreArgs) -> Result<u8, String> {
    let opts = RestoreOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        image_path: absolute(a.criu.image_path.as_deref(), "checkpoint")?,
        work_path: a
            .criu
            .work_path
            .as_deref()
            .map(|p| absolute(Some(p), "."))
            .transpose()?,
        tcp_established: a.criu.tcp_established,
        ext_unix_sk: a.criu.ext_unix_sk,
        shell_job: a.criu.shell_job,
        file_locks: a.criu.file_locks,
        manage_cgroups_mode: a.criu.manage_cgroups_mode.clone(),
        empty_ns: a.criu.empty_ns.clone(),
        auto_dedup: a.criu.auto_dedup,
        lazy_pages: a.criu.lazy_pages,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        detach: a.detach,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
    };
    let status = rt
        .restore(&criu(cli, &a.criu), &opts)
        .map_err(|e| e.to_string())?;
    Ok(u8::try_from(status.0 & 0xff).unwrap_or(255))
}
