//! The crate's one error type.
//!
//! Every message names the file, the schemata line, the resource, the domain
//! id or the rule that is at fault, so that a user can fix the configuration
//! without reading the kernel source.

use std::path::PathBuf;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a named path failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A capability file under `info/` holds something that is not what the
    /// kernel writes there.
    #[error("{path}: cannot parse {value:?} as {expected}")]
    BadInfoFile {
        /// The file that was read.
        path: PathBuf,
        /// Its (trimmed) content.
        value: String,
        /// What the file was expected to hold.
        expected: &'static str,
    },

    // ---- schemata syntax -------------------------------------------------
    /// A schemata line has no `:` between the resource name and its domains.
    #[error("schemata line {line} ({text:?}): no ':' after the resource name (expected RESOURCE:ID=VALUE;ID=VALUE...)")]
    MissingColon {
        /// 1-based line number in the text that was parsed.
        line: usize,
        /// The offending line.
        text: String,
    },

    /// The resource name of a schemata line is empty or has characters that
    /// no resctrl resource name has.
    #[error("schemata line {line}: resource name {name:?} is empty or has characters other than letters, digits and '_'")]
    BadResourceName {
        /// 1-based line number.
        line: usize,
        /// The name as written.
        name: String,
    },

    /// A schemata line names a resource but gives no `ID=VALUE` entry.
    #[error("schemata line {line}: resource {resource} has no ID=VALUE entries (the kernel rejects an empty value)")]
    NoDomains {
        /// 1-based line number.
        line: usize,
        /// The resource named by the line.
        resource: String,
    },

    /// An entry of a schemata line has no `=`.
    #[error("schemata line {line}: {resource} entry {entry:?} has no '=' (expected ID=VALUE)")]
    MissingEquals {
        /// 1-based line number.
        line: usize,
        /// The resource named by the line.
        resource: String,
        /// The entry as written.
        entry: String,
    },

    /// The domain (cache) id of an entry is not a decimal number.
    #[error("schemata line {line}: {resource} domain id {id:?} is not a decimal number")]
    BadDomainId {
        /// 1-based line number.
        line: usize,
        /// The resource named by the line.
        resource: String,
        /// The id as written.
        id: String,
    },

    /// An entry has nothing after its `=`.
    #[error("schemata line {line}: {resource} domain {domain} has an empty value")]
    EmptyValue {
        /// 1-based line number.
        line: usize,
        /// The resource named by the line.
        resource: String,
        /// The domain id of the entry.
        domain: u32,
    },

    /// A cache resource's value is not a hexadecimal bit mask.
    #[error("schemata line {line}: {resource} domain {domain} value {value:?} is not a hexadecimal cache bit mask")]
    BadCbm {
        /// 1-based line number.
        line: usize,
        /// The resource named by the line.
        resource: String,
        /// The domain id of the entry.
        domain: u32,
        /// The value as written.
        value: String,
    },

    /// A bandwidth resource's value is not a decimal number.
    #[error("schemata line {line}: {resource} domain {domain} value {value:?} is not a decimal bandwidth value")]
    BadBandwidth {
        /// 1-based line number.
        line: usize,
        /// The resource named by the line.
        resource: String,
        /// The domain id of the entry.
        domain: u32,
        /// The value as written.
        value: String,
    },

    /// The same resource and domain are set twice in one schemata text, which
    /// the kernel rejects ("Duplicate domain").
    #[error("schemata line {line}: {resource} domain {domain} is already set on line {first_line} (the kernel rejects a domain given twice in one write)")]
    DuplicateDomain {
        /// 1-based line number of the second setting.
        line: usize,
        /// The resource.
        resource: String,
        /// The domain id.
        domain: u32,
        /// 1-based line number of the first setting.
        first_line: usize,
    },

    // ---- validation against the host ---------------------------------------
    /// The schemata names a resource this host does not have.
    #[error("resource {resource}: this host has no such resource (it has: {available}){hint}")]
    UnknownResource {
        /// The resource asked for.
        resource: String,
        /// The allocation resources the host has, comma separated.
        available: String,
        /// Extra advice (for example about code/data prioritization), empty or
        /// starting with "; ".
        hint: String,
    },

    /// A domain (cache) id that the root group's schemata does not list.
    #[error("{resource} domain {domain}: no such cache/domain id on this host (the root group's schemata lists {known})")]
    UnknownDomain {
        /// The resource.
        resource: String,
        /// The domain id asked for.
        domain: u32,
        /// The ids the root group lists, comma separated.
        known: String,
    },

    /// The root group's schemata has no line for a resource the host has, so
    /// its domain ids are unknown.
    #[error("{resource}: the root group's schemata has no {resource} line, so its domain ids cannot be checked")]
    RootSchemataMissing {
        /// The resource.
        resource: String,
    },

    /// A cache bit mask sets bits outside the host's `cbm_mask`.
    #[error("{resource} domain {domain}: mask {mask:x} sets bits outside the host's cbm_mask {cbm_mask:x}")]
    CbmOutsideMask {
        /// The resource.
        resource: String,
        /// The domain id.
        domain: u32,
        /// The mask asked for.
        mask: u64,
        /// The host's `info/<resource>/cbm_mask`.
        cbm_mask: u64,
    },

    /// A cache bit mask is not one contiguous run of set bits and the host
    /// does not support sparse masks.
    #[error("{resource} domain {domain}: mask {mask:x} is not contiguous (its set bits must form one run, and this host does not support sparse masks)")]
    CbmNotContiguous {
        /// The resource.
        resource: String,
        /// The domain id.
        domain: u32,
        /// The mask asked for.
        mask: u64,
    },

    /// A cache bit mask has fewer set bits than `min_cbm_bits`.
    #[error("{resource} domain {domain}: mask {mask:x} has a run of {bits} set bit(s), the host needs at least min_cbm_bits = {min_cbm_bits}")]
    CbmTooFewBits {
        /// The resource.
        resource: String,
        /// The domain id.
        domain: u32,
        /// The mask asked for.
        mask: u64,
        /// The length of its lowest run of set bits (what the kernel counts).
        bits: u32,
        /// The host's `info/<resource>/min_cbm_bits`.
        min_cbm_bits: u32,
    },

    /// A bandwidth value is outside what the host accepts.
    #[error("{resource} domain {domain}: bandwidth {value} is outside [{min}, {max}] ({unit})")]
    BandwidthOutOfRange {
        /// The resource.
        resource: String,
        /// The domain id.
        domain: u32,
        /// The value asked for.
        value: u32,
        /// The smallest accepted value (`min_bandwidth`).
        min: u32,
        /// The largest accepted value.
        max: u32,
        /// What the value means on this host.
        unit: &'static str,
    },

    /// A bandwidth percentage is not a multiple of `bandwidth_gran`.
    #[error("{resource} domain {domain}: bandwidth {value} is not a multiple of bandwidth_gran {gran} (the kernel would silently round it up to {rounded})")]
    BandwidthNotMultiple {
        /// The resource.
        resource: String,
        /// The domain id.
        domain: u32,
        /// The value asked for.
        value: u32,
        /// The host's `info/<resource>/bandwidth_gran`.
        gran: u32,
        /// The value the kernel would program instead.
        rounded: u32,
    },

    /// Creating one more control group would need more CLOSes than the
    /// hardware has.
    #[error("no free CLOS: {in_use} control group(s), the root group included, already use all {num_closids} closids that {resource} has (info/{resource}/num_closids)")]
    ClosIdsExhausted {
        /// The resource with the fewest closids.
        resource: String,
        /// Its `num_closids`.
        num_closids: u32,
        /// Control groups that exist now.
        in_use: usize,
    },

    /// The host has no allocation resource, so no control group can be made.
    #[error("this host's resctrl has no allocation resource (no L3, L2, MB or SMBA under info/): control groups cannot be created")]
    AllocationUnsupported,

    /// Monitoring was asked for but the host has none.
    #[error("monitoring was requested but this host has no RDT monitoring (no info/L3_MON)")]
    MonitoringUnsupported,

    // ---- closID and groups ------------------------------------------------------
    /// A closID (or container id used as a group name) that is not a safe
    /// single directory name under the resctrl root.
    #[error("invalid closID {clos_id:?}: {reason}")]
    InvalidClosId {
        /// The rejected id.
        clos_id: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// A closID given without schemata names a group that does not exist.
    #[error("closID {clos_id:?}: {path} does not exist; a closID given without schemata must name a group that is already set up")]
    GroupMissing {
        /// The closID.
        clos_id: String,
        /// The directory that was looked for.
        path: PathBuf,
    },

    /// An existing group's schemata differs from the one asked for.
    #[error("group {group}: its schemata has {resource} domain {domain} = {existing}, the configuration asks for {asked}")]
    SchemataMismatch {
        /// The group directory name.
        group: String,
        /// The resource.
        resource: String,
        /// The domain id.
        domain: u32,
        /// The value in the group now ("nothing" when it has none).
        existing: String,
        /// The value asked for.
        asked: String,
    },

    /// The kernel refused a write; `last_cmd_status` quotes its reason.
    #[error("{path}: the kernel rejected {written:?}: {source}{}", last_cmd_suffix(.last_cmd_status))]
    KernelRejected {
        /// The file written.
        path: PathBuf,
        /// What was written.
        written: String,
        /// The write error.
        #[source]
        source: std::io::Error,
        /// The text of `info/last_cmd_status`, when it could be read.
        last_cmd_status: Option<String>,
    },

    // ---- OCI configuration ------------------------------------------------------
    /// A field of `linux.intelRdt` is not of the form the runtime spec requires.
    #[error("linux.intelRdt.{field}: {reason}")]
    OciField {
        /// The JSON name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A file under `mon_data` holds something other than a counter.
    #[error("{path}: cannot parse monitoring value {value:?}")]
    BadCounter {
        /// The file read.
        path: PathBuf,
        /// Its content.
        value: String,
    },
}

fn last_cmd_suffix(status: &Option<String>) -> String {
    match status {
        Some(s) => format!("; info/last_cmd_status: {s}"),
        None => String::new(),
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
