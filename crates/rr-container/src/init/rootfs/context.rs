//! What the rootfs setup needs to know beyond the spec, shared by the
//! steps of init/rootfs.rs and its parts in init/rootfs/.

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::Result;

/// What the rootfs setup needs to know beyond the spec.
pub struct RootfsContext<'a> {
    /// The spec being run.
    pub spec: &'a Spec,
    /// Absolute rootfs path on the host.
    pub rootfs: &'a Path,
    /// Bundle directory, for relative bind sources.
    pub bundle: &'a Path,
    /// Whether the init runs in a new user namespace (devices are then bind
    /// mounted, as mknod is not allowed there).
    pub in_userns: bool,
    /// Whether a cgroup namespace was created.
    pub cgroupns: bool,
    /// `--no-pivot`: chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The spec lists no mount namespace: the init works in the runtime's
    /// own, which it must leave as it found it but for the mounts under
    /// the rootfs, and enters the rootfs with chroot as pivot_root would
    /// change the root of every process there.
    pub inherited_mount_ns: bool,
    /// Bind sources the runtime opened for an init in a new user
    /// namespace, by mount index.
    pub bind_sources: &'a [crate::init::bind_sources::BindSource],
    /// Called once the mounts are done, right before pivot_root (the
    /// createRuntime and createContainer hooks).
    pub before_pivot: Option<&'a dyn Fn() -> Result<()>>,
}
