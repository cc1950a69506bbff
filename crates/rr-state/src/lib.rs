//! Container state persistence for the `rrc` runtime.
//!
//! The state root layout (`/run/rrc/<id>/`), validated container ids, a per-container
//! lock, `state.json` in runc's format replaced atomically and durably, the exec fifo, and
//! the derivation of a container's status from `/proc`.
#![deny(missing_docs)]

mod container;
mod error;
mod id;
mod lock;
mod root;
mod state;
mod status;
mod sys;
mod time;

pub use container::{
    ContainerDir, StagedState, EXEC_FIFO, FIFO_MODE, STATE_FILE, STATE_FILE_MODE, TEMP_PREFIX,
};
pub use error::{Error, Result};
pub use id::{ContainerId, MAX_ID_LEN};
pub use lock::StateLock;
pub use root::{
    auto_root, default_root, in_user_namespace, is_identity_map, StateRoot, CONTAINER_DIR_MODE,
    DEFAULT_ROOT, ROOT_MODE, TOOL_NAME,
};
pub use state::{IntelRdtRecord, State, StoredConfig};
pub use status::{
    derive_status, parse_proc_stat, process_alive, read_proc_stat, OciState, ProcInfo, Status,
    UnknownStatus, OCI_VERSION,
};
pub use time::{format_rfc3339, now_rfc3339};

/// Compiles the README's example as a doctest so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
