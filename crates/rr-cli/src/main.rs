//! `rrc`: a runc-compatible OCI container runtime. This binary only parses
//! arguments and prints results; the work is done by `rr-container`.

mod args;
mod cgroup_cmds;
mod compat;
mod criu_cmd;
mod log;
mod table;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rr_container::{CreateOptions, Runtime};

use crate::args::{Cli, Command, CreateArgs, ListFormat};
use crate::log::Logger;

fn main() -> ExitCode {
    let args = compat::normalize(std::env::args_os().skip(1).collect());
    let cli = match Cli::try_parse_from(std::iter::once("rrc".into()).chain(args.clone())) {
        Ok(c) => c,
        Err(e) => return log::usage_error(&e, &args),
    };
    let mut logger = match Logger::new(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(l) => l,
        Err(e) => {
            log::stderr_error(cli.log_format, &e);
            return ExitCode::from(1);
        }
    };
    match run(&cli, &mut logger) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            logger.error(&msg);
            // An exec's own failure must not look like the process's exit
            // code: runc uses 255, which engines recognise.
            match cli.command {
                Command::Exec(_) => ExitCode::from(255),
                _ => ExitCode::from(1),
            }
        }
    }
}

fn root_dir(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(r) = &cli.root {
        return Ok(r.clone());
    }
    let root = match cli.rootless.as_deref() {
        Some("true") => rr_container::default_root(true),
        Some("false") => rr_container::default_root(false),
        // SAFETY: geteuid cannot fail.
        _ => rr_container::auto_root(unsafe { libc::geteuid() }),
    };
    root.map_err(|e| e.to_string())
}

fn runtime(cli: &Cli) -> Result<Runtime, String> {
    // create, run and restore make the cgroups, through systemd when
    // asked; the other commands work on what state.json recorded, so a shim
    // configured for systemd can still list, kill, update and delete.
    let mut rt = Runtime::new(&root_dir(cli)?).map_err(|e| e.to_string())?;
    rt.use_systemd_cgroup(cli.systemd_cgroup);
    Ok(rt)
}

/// A runtime whose warnings go to the log.
fn runtime_logging(cli: &Cli, logger: &Logger) -> Result<Runtime, String> {
    let mut rt = runtime(cli)?;
    let mut log = logger.try_clone()?;
    rt.on_warning(move |m| log.warn(m));
    Ok(rt)
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        console_socket: a.console_socket.clone(),
    }
}

fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("writing to stdout: {e}"))
}

fn run(cli: &Cli, logger: &mut Logger) -> Result<u8, String> {
    match &cli.command {
        Command::Spec { bundle, rootless } => {
            let dir = bundle.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                return Err(format!("{}: file exists; remove it first", path.display()));
            }
            let ids = if *rootless {
                // SAFETY: geteuid/getegid cannot fail.
                Some(unsafe { (libc::geteuid(), libc::getegid()) })
            } else {
                None
            };
            let spec = rr_container::default_spec::default_spec(ids);
            let text = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
            std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(0)
        }
        Command::Create(a) => {
            let rt = runtime_logging(cli, logger)?;
            logger.debug(&format!(
                "create {} from bundle {}",
                a.id,
                a.bundle.display()
            ));
            rt.create(&create_options(a)).map_err(|e| e.to_string())?;
            Ok(0)
        }
        Command::Start { id } => {
            runtime(cli)?.start(id).map_err(|e| e.to_string())?;
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
            no_subreaper: _,
        } => {
            let rt = runtime_logging(cli, logger)?;
            let status = rt
                .run(&create_options(create), *detach, *keep)
                .map_err(|e| e.to_string())?;
            Ok(u8::try_from(status.0 & 0xff).unwrap_or(255))
        }
        Command::State { id } => {
            let st = runtime(cli)?.state(id).map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(&st).map_err(|e| e.to_string())?;
            print(&(text + "\n"))?;
            Ok(0)
        }
        Command::List { format, quiet } => {
            let states = runtime(cli)?.list().map_err(|e| e.to_string())?;
            if *quiet {
                let ids: String = states.iter().map(|s| format!("{}\n", s.id)).collect();
                print(&ids)?;
            } else if *format == ListFormat::Json {
                let text = serde_json::to_string(&states).map_err(|e| e.to_string())?;
                print(&(text + "\n"))?;
            } else {
                let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()];
                for s in &states {
                    rows.push(vec![
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.clone(),
                        s.created.clone(),
                        s.owner.clone(),
                    ]);
                }
                print(&table::format_table(&rows))?;
            }
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            let sig = rr_container::signals::parse_signal(signal).map_err(|e| e.to_string())?;
            runtime(cli)?
                .kill(id, sig, *all)
                .map_err(|e| e.to_string())?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            runtime_logging(cli, logger)?
                .delete(id, *force)
                .map_err(|e| e.to_string())?;
            Ok(0)
        }
        Command::Features => {
            let text = serde_json::to_string_pretty(&rr_container::features::features())
                .map_err(|e| e.to_string())?;
            print(&(text + "\n"))?;
            Ok(0)
        }
        Command::Exec(a) => {
            let rt = runtime(cli)?;
            let status = rt
                .exec(&rr_container::ExecOptions {
                    id: a.id.clone(),
                    process: a.process.clone(),
                    args: a.command.clone(),
                    tty: a.tty,
                    console_socket: a.console_socket.clone(),
                    detach: a.detach,
                    cwd: a.cwd.clone(),
                    env: a.env.clone(),
                    user: a.user.clone(),
                    additional_gids: a.additional_gids.clone(),
                    caps: a.cap.clone(),
                    no_new_privs: a.no_new_privs,
                    preserve_fds: a.preserve_fds,
                    pid_file: a.pid_file.clone(),
                    apparmor: a.apparmor.clone(),
                    process_label: a.process_label.clone(),
                    ignore_paused: a.ignore_paused,
                    cgroup: a.cgroup.clone(),
                })
                .map_err(|e| e.to_string())?;
            Ok(u8::try_from(status.0 & 0xff).unwrap_or(255))
        }
        Command::Pause { .. }
        | Command::Resume { .. }
        | Command::Ps { .. }
        | Command::Events { .. }
        | Command::Update(_) => {
            cgroup_cmds::run(&runtime_logging(cli, logger)?, &cli.command, logger)
        }
        Command::Checkpoint(a) => criu_cmd::checkpoint(&runtime(cli)?, cli, a),
        Command::Restore(a) => criu_cmd::restore(&runtime(cli)?, cli, a),
    }
}
