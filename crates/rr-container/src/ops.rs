//! The commands, as run by `rrc` on the host: one file per command (or per
//! pair, like `state`/`list`), each adding its methods to
//! [`Runtime`](crate::Runtime). What runs inside the container after the
//! fork is under `init/`.

pub(crate) mod checkpoint;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod events;
pub(crate) mod exec;
pub mod features;
pub(crate) mod kill;
pub(crate) mod pause;
pub mod ps;
pub(crate) mod restore;
pub(crate) mod run;
pub mod spec;
pub(crate) mod start;
pub(crate) mod state;
pub(crate) mod update;
