//! The command line, with runc's commands and flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// rrc: an OCI container runtime, runc-compatible.
#[derive(Parser, Debug)]
#[command(name = "rrc", version, about, disable_help_subcommand = true)]
pub struct Cli {
    // These go before the command, as in runc: a `global` flag is copied
    // into every subcommand on each run (about 100 KiB of heap and the code
    // that does it). `--criu` is also taken after checkpoint and restore
    // (CriuArgs), where callers pass it.
    /// Root directory for the containers' state.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of log messages.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages too.
    #[arg(long)]
    pub debug: bool,
    /// Create containers' cgroups as transient systemd units (cgroupsPath `slice:prefix:name`).
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (before the command, as in runc).
    #[arg(long, value_name = "MODE")]
    pub rootless: Option<String>,
    /// Path to the criu binary.
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time=... level=... msg=...`
    Text,
    /// One JSON object per line, as containerd reads it.
    Json,
}

/// Output formats of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// An aligned table.
    Table,
    /// A JSON array of states.
    Json,
}

/// Flags shared by `create` and `run`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The container id.
    pub id: String,
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the master end of the container's terminal.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Write the container init's pid to this file.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for a rootfs on a ramdisk).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many fds after stdio (3, 4, ...) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

/// Flags of `exec`, runc's.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Unix socket that receives the master end of the process's terminal.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=value); repeatable.
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// User as uid[:gid] (numbers).
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional gids; repeatable.
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// A process.json to run, instead of the container's process and the flags.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label of the process.
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// AppArmor profile of the process.
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability (CAP_NET_ADMIN or net_admin); repeatable.
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Pass this many fds after stdio (3, 4, ...) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup: `[CONTROLLER[,..]:]PATH`,
    /// relative to the container's cgroup; repeatable on cgroup v1.
    #[arg(long = "cgroup", value_name = "[CONTROLLER:]PATH")]
    pub cgroup: Vec<String>,
    /// The container id.
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The commands.
// Deferred: only the subcommand being run gets its arguments built. Built
// all at once, the ~130 `Arg`s took an 80 KiB stack frame (most of rrc's
// stack) and their heap on every run.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Write a default config.json, ready for a busybox rootfs.
    Spec {
        /// Directory to write config.json into.
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        /// A spec for running as a non-root user.
        #[arg(long = "rootless", id = "spec_rootless")]
        rootless: bool,
    },
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// The container id.
        id: String,
    },
    /// Create and start a container; in the foreground, wait for it.
    Run {
        /// Flags shared with create.
        #[command(flatten)]
        create: CreateArgs,
        /// Do not wait: leave the container running.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container after it exits.
        #[arg(long)]
        keep: bool,
        /// Do not become a subreaper (accepted for compatibility).
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
    },
    /// Print a container's state as JSON.
    State {
        /// The container id.
        id: String,
    },
    /// List containers.
    #[command(alias = "ps-all")]
    List {
        /// table or json.
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Send a signal to a container (default SIGTERM).
    Kill {
        /// Signal every process of the container, not only its init.
        #[arg(short, long)]
        all: bool,
        /// The container id.
        id: String,
        /// Signal name (KILL, SIGKILL) or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        /// Kill the container first if it is running.
        #[arg(short, long)]
        force: bool,
        /// The container id.
        id: String,
    },
    /// Run a process in a created or running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause {
        /// The container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container id.
        id: String,
    },
    /// List the processes of a container.
    Ps {
        /// table (ps output filtered to the container) or json (the pids).
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// The container id.
        id: String,
        /// Options for ps (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print resource statistics and OOM events of a container as JSON.
    Events {
        /// Time between stats events (e.g. 5s, 500ms, 1m).
        #[arg(long, default_value = "5s", value_parser = crate::cgroup_cmds::parse_duration)]
        interval: std::time::Duration,
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// The container id.
        id: String,
    },
    /// Update a container's resource limits.
    Update(Box<crate::cgroup_cmds::UpdateArgs>),
    /// Print what this rrc supports as the runtime-spec features JSON.
    Features,
    /// Checkpoint a running container with CRIU.
    Checkpoint(CheckpointArgs),
    /// Restore a container from a checkpoint made by `checkpoint`.
    Restore(RestoreArgs),
}

/// Flags shared by `checkpoint` and `restore` (runc's names).
#[derive(clap::Args, Debug)]
pub struct CriuArgs {
    /// Path to the criu binary (as `--criu` before the command).
    #[arg(long = "criu", id = "criu_path", value_name = "PATH")]
    pub criu_path: Option<PathBuf>,
    /// Directory of the CRIU images (default: ./checkpoint).
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and logs (default: the image path).
    #[arg(long = "work-path", value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow unix sockets connected outside the container.
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft, full, strict or ignore (default: CRIU's, soft).
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create this namespace but do not restore its properties (network).
    #[arg(long = "empty-ns", value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images against the parent images.
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Use userfaultfd to restore memory pages lazily.
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

/// `checkpoint`'s flags.
#[derive(clap::Args, Debug)]
pub struct CheckpointArgs {
    /// The container id.
    pub id: String,
    /// Flags shared with restore.
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Images of a previous pre-dump, relative to the image path.
    #[arg(long = "parent-path", value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// With --lazy-pages: this fd gets a \0 byte once the pages are served.
    #[arg(long = "status-fd", value_name = "FD", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server.
    #[arg(long = "page-server", value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// Dump the memory only and leave the container running.
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Let CRIU link open but deleted files back into the file system.
    #[arg(long = "link-remap")]
    pub link_remap: bool,
}

/// `restore`'s flags.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The id of the restored container.
    pub id: String,
    /// Flags shared with checkpoint.
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Do not wait: leave the restored container running.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the restored init's pid to this file.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the master end of a restored terminal.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Do not become a subreaper (accepted for compatibility).
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Accepted for compatibility (CRIU restores the mount namespace).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for compatibility.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
}

/// Flags of `update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The container id.
    pub id: String,
    /// New L3 cache schema for the container's resctrl group, e.g. "L3:0=f0;1=ff".
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// New memory bandwidth schema for the container's resctrl group, e.g. "MB:0=20;1=70".
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
}
