//! What the spec's namespaces mean for `create`, and what a spec may not ask
//! without the namespaces it leaves out.

use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType;
use rr_state::ContainerDir;

use crate::config::Bundle;
use crate::error::{Error, Result};
use crate::nsenter::namespaces;

/// What the spec's namespaces mean for a create.
pub(super) struct NsPlan {
    pub(super) namespaces: Vec<(LinuxNamespaceType, Option<PathBuf>)>,
    /// No mount namespace: the rootfs is built in rrc's own.
    pub(super) inherited_mount_ns: bool,
    /// Devices are bind mounted instead of made.
    pub(super) in_userns: bool,
    /// A new cgroup namespace, made by the init (see cgjoin).
    pub(super) cgroupns: bool,
    /// The runtime opens the bind sources for the init.
    pub(super) take_sources: bool,
    /// The hostname and domainname are set in the container's own UTS
    /// namespace.
    pub(super) own_uts: bool,
}

impl NsPlan {
    /// Reads the spec's namespaces, refusing what needs one it lacks.
    pub(super) fn new(bundle: &Bundle, dir: &ContainerDir) -> Result<NsPlan> {
        let namespaces = namespaces(&bundle.spec);
        // A namespace the spec does not list is the runtime's: without a
        // mount namespace the rootfs is built in rrc's own (as runc does).
        let inherited_mount_ns = !namespaces
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Mount);
        if inherited_mount_ns {
            check_without_mount_ns(bundle)?;
            crate::unfinished::record_mounts_before(dir.path(), &bundle.rootfs)?;
        }
        // rrc itself in a user namespace (rootless podman) cannot mknod
        // either: devices are bind mounted then too, as runc does.
        let in_userns = rr_state::in_user_namespace()
            || namespaces
                .iter()
                .any(|(t, p)| *t == LinuxNamespaceType::User && p.is_none());
        let cgroupns = namespaces
            .iter()
            .any(|(t, p)| *t == LinuxNamespaceType::Cgroup && p.is_none());
        // The runtime opens the bind sources for a new user namespace (see
        // bind_sources), by host paths: only where the init's mount
        // namespace is a fresh copy of rrc's, in which they mean the same.
        let take_sources = in_userns
            && namespaces
                .iter()
                .any(|(t, p)| *t == LinuxNamespaceType::Mount && p.is_none());
        // A UTS namespace joined by path is the container's too: the names
        // are set inside it, as runc does.
        let own_uts = namespaces
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Uts);
        if !own_uts {
            check_names_without_uts(bundle)?;
        }
        Ok(NsPlan {
            namespaces,
            inherited_mount_ns,
            in_userns,
            cgroupns,
            take_sources,
            own_uts,
        })
    }
}

/// Without a UTS namespace the names would be the host's: refused in
/// runc's words.
fn check_names_without_uts(bundle: &Bundle) -> Result<()> {
    for (field, value) in [
        ("hostname", bundle.spec.hostname()),
        ("domainname", bundle.spec.domainname()),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(Error::ConfigInvalid {
                path: bundle.path.join("config.json"),
                field: field.into(),
                message: format!("unable to set {field} without a private UTS namespace"),
            });
        }
    }
    Ok(())
}

/// What a spec without a mount namespace may not ask: masking and
/// read-only paths would change the runtime's own namespace (runc's words).
fn check_without_mount_ns(bundle: &Bundle) -> Result<()> {
    let linux = bundle.spec.linux().as_ref();
    for (field, set) in [
        (
            "linux.maskedPaths",
            linux.and_then(|l| l.masked_paths().as_ref()),
        ),
        (
            "linux.readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        ),
    ] {
        if set.is_some_and(|v| !v.is_empty()) {
            return Err(Error::ConfigInvalid {
                path: bundle.path.join("config.json"),
                field: field.into(),
                message: "unable to restrict sys entries without a private MNT namespace".into(),
            });
        }
    }
    Ok(())
}
