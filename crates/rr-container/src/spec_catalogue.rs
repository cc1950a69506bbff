//! Every field of the runtime-spec config (config.json and its `linux`
//! section, runtime-spec 1.3) that `rrc` can be given, with what rrc does
//! with it. This is the one place that says which fields rrc ignores on
//! purpose, and why.
//!
//! Pure data and pure logic: the tests (in `spec_catalogue/tests.rs`: the
//! walk of the runtime-spec JSON schema, the named tests, the parser's
//! round trip) tie each entry to the code; `config` uses it to refuse the
//! fields the parser would drop, to read keys in another case as runc does
//! and to give oci-spec its own names for two spec values; and
//! `rrc features` lists only what it says is applied.

use std::collections::BTreeSet;

use serde_json::Value;

/// What rrc does with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// An object or array of objects: its own fields are listed one by one.
    Group,
    /// Applied on every host; the named tests (`file::function` in
    /// tests/tests, or `crates/...rs::function` for a crate-level test)
    /// check its effect.
    Applied(&'static [&'static str]),
    /// Applied where the host has what it needs (`probe`); elsewhere create
    /// fails with an error naming the field.
    IfHost {
        /// What the host must have.
        probe: &'static str,
        /// Tests that check the effect (or the refusal) where it is known.
        tests: &'static [&'static str],
    },
    /// Refused at create with this error text (which names the field).
    Refused(&'static str),
    /// Ignored on purpose, for this reason; a section listed so covers
    /// every field below it.
    Ignored(&'static str),
}

/// One field: its JSON path (`[]` an array item, `{}` the value of a map
/// entry) and what rrc does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// JSON path, e.g. `linux.resources.memory.swappiness`.
    pub path: &'static str,
    /// What rrc does with it.
    pub how: How,
}

const fn f(path: &'static str, how: How) -> Field {
    Field { path, how }
}

const G: How = How::Group;

const fn a(tests: &'static [&'static str]) -> How {
    How::Applied(tests)
}

const fn host(probe: &'static str, tests: &'static [&'static str]) -> How {
    How::IfHost { probe, tests }
}

/// Objects whose keys are names chosen by the user, not spec fields.
pub const MAPS: &[&str] = &[
    "annotations",
    "linux.sysctl",
    "linux.resources.unified",
    "linux.resources.rdma",
    "linux.netDevices",
];

/// The hook lists rrc runs (also the `hooks` of `rrc features`).
pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// `linux.namespaces[].type` values rrc creates or joins.
pub const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// `linux.memoryPolicy.mode` values with their set_mempolicy(2) number,
/// whether the mode needs nodes and whether it takes any.
pub const MEMORY_POLICY_MODES: &[(&str, libc::c_int, bool, bool)] = &[
    ("MPOL_DEFAULT", 0, false, false),
    ("MPOL_PREFERRED", 1, false, true),
    ("MPOL_BIND", 2, true, true),
    ("MPOL_INTERLEAVE", 3, true, true),
    ("MPOL_LOCAL", 4, false, false),
    ("MPOL_PREFERRED_MANY", 5, true, true),
    ("MPOL_WEIGHTED_INTERLEAVE", 6, true, true),
];

/// `linux.memoryPolicy.flags` values with their mode bit.
pub const MEMORY_POLICY_FLAGS: &[(&str, libc::c_int)] = &[
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// The seccomp actions of the runtime-spec 1.3 schema (`defaultAction`
/// and each rule's `action`).
const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// The values the runtime-spec 1.3 schema allows for its enumerated
/// fields (a test checks that the parser takes each one).
pub const SPEC_ENUMS: &[(&str, &[&str])] = &[
    (
        "process.ioPriority.class",
        &["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"],
    ),
    (
        "process.scheduler.policy",
        &[
            "SCHED_OTHER",
            "SCHED_FIFO",
            "SCHED_RR",
            "SCHED_BATCH",
            "SCHED_ISO",
            "SCHED_IDLE",
            "SCHED_DEADLINE",
        ],
    ),
    (
        "process.scheduler.flags",
        &[
            "SCHED_FLAG_RESET_ON_FORK",
            "SCHED_FLAG_RECLAIM",
            "SCHED_FLAG_DL_OVERRUN",
            "SCHED_FLAG_KEEP_POLICY",
            "SCHED_FLAG_KEEP_PARAMS",
            "SCHED_FLAG_UTIL_CLAMP_MIN",
            "SCHED_FLAG_UTIL_CLAMP_MAX",
        ],
    ),
    ("linux.personality.domain", &["LINUX", "LINUX32"]),
    (
        "linux.namespaces[].type",
        &[
            "mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time",
        ],
    ),
    (
        "linux.seccomp.architectures",
        &[
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_LOONGARCH64",
            "SCMP_ARCH_M68K",
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_SH",
            "SCMP_ARCH_SHEB",
            "SCMP_ARCH_PARISC",
            "SCMP_ARCH_PARISC64",
            "SCMP_ARCH_RISCV64",
        ],
    ),
    ("linux.seccomp.defaultAction", SECCOMP_ACTIONS),
    ("linux.seccomp.syscalls[].action", SECCOMP_ACTIONS),
    (
        "linux.seccomp.flags",
        &[
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ],
    ),
    (
        "linux.seccomp.syscalls[].args[].op",
        &[
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ],
    ),
    (
        "linux.memoryPolicy.mode",
        &[
            "MPOL_DEFAULT",
            "MPOL_BIND",
            "MPOL_INTERLEAVE",
            "MPOL_WEIGHTED_INTERLEAVE",
            "MPOL_PREFERRED",
            "MPOL_PREFERRED_MANY",
            "MPOL_LOCAL",
        ],
    ),
    (
        "linux.memoryPolicy.flags",
        &[
            "MPOL_F_NUMA_BALANCING",
            "MPOL_F_RELATIVE_NODES",
            "MPOL_F_STATIC_NODES",
        ],
    ),
];

/// The spec's values for the enumerated field `path` (empty for a path
/// [`SPEC_ENUMS`] does not hold).
pub fn spec_enum(path: &str) -> &'static [&'static str] {
    SPEC_ENUMS
        .iter()
        .find(|(p, _)| *p == path)
        .map_or(&[], |(_, values)| values)
}

/// Spec values that oci-spec 0.10 knows under another name (its enum of
/// scheduler flags misspells two): (field, the spec's name, oci-spec's).
/// Without the rewrite the parser refuses a valid config.
pub const VALUE_ALIASES: &[(&str, &str, &str)] = &[
    (
        "process.scheduler.flags",
        "SCHED_FLAG_RESET_ON_FORK",
        "SCHED_RESET_ON_FORK",
    ),
    (
        "process.scheduler.flags",
        "SCHED_FLAG_DL_OVERRUN",
        "SCHED_FLAG_D_L_OVERRUN",
    ),
];

/// Rewrites, in a `process` object, the spec names of [`VALUE_ALIASES`]
/// to those the parser takes. Returns whether it changed anything.
pub fn alias_process_values(process: &mut Value) -> bool {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let mut changed = false;
    for flag in flags {
        for (_, spec, parser) in VALUE_ALIASES {
            if flag.as_str() == Some(spec) {
                *flag = Value::String((*parser).into());
                changed = true;
            }
        }
    }
    changed
}

/// Fields of the runtime-spec that oci-spec 0.10 does not read: serde
/// drops them while parsing, so `config` refuses them by looking at the
/// raw JSON (see [`unmodelled_fields`]). The round-trip test in
/// `spec_catalogue/tests.rs` finds them: it fails for any field oci-spec
/// drops that is not listed here or in an ignored section.
///
/// `enableCMT` and `enableMBM` (deprecated by 1.3 for `enableMonitoring`):
/// oci-spec reads them as `enableCmt` and `enableMbm`, names no config
/// uses.
pub const UNMODELLED: &[(&str, &str)] = &[
    ("linux.intelRdt.enableCMT", CMT_MBM),
    ("linux.intelRdt.enableMBM", CMT_MBM),
];

const CMT_MBM: &str = "not supported by rrc (its parser would drop it): use linux.intelRdt.enableMonitoring, which replaces it since runtime-spec 1.3";

const HOOK_TESTS: &[&str] = &[
    "confinement::hooks_run_in_order_with_the_state_they_should_see",
    "confinement::failing_create_hooks_fail_create_and_failing_poststart_only_warns",
];
const HOOK_PATH: &[&str] = &[
    "confinement::failing_create_hooks_fail_create_and_failing_poststart_only_warns",
    "confinement::hook_paths_must_be_absolute",
];
const HOOK_ENV: &[&str] =
    &["compat_process::hooks_get_the_bundle_as_cwd_and_the_container_hooks_its_env_and_filter"];
const HOOK_TIMEOUT: &[&str] = &[
    "malformed::hanging_hooks_time_out",
    "confinement::hanging_hook_is_killed_at_its_timeout_and_create_fails",
];

macro_rules! hook {
    ($name:literal) => {
        [
            f(concat!("hooks.", $name), a(HOOK_TESTS)),
            f(concat!("hooks.", $name, "[].path"), a(HOOK_PATH)),
            f(concat!("hooks.", $name, "[].args"), a(HOOK_TESTS)),
            f(concat!("hooks.", $name, "[].env"), a(HOOK_ENV)),
            f(concat!("hooks.", $name, "[].timeout"), a(HOOK_TIMEOUT)),
        ]
    };
}

const IDMAP: &[&str] = &[
    "lifecycle::user_namespace_with_mappings",
    "malformed::uid_map_overlapping_itself",
    "rootless::non_root_user_runs_the_rootless_spec",
];
const MOUNT_IDMAP: &[&str] = &[
    "spec_features::idmapped_bind_maps_owners_both_ways",
    "spec_features::ridmap_reaches_submounts_idmap_does_not",
    "spec_features::idmapped_mount_errors_name_the_field",
];
const IDMAP_PROBE: &str = "open_tree + mount_setattr(MOUNT_ATTR_IDMAP) on the source's file system (init::idmapped::supported)";

const V1_V2: &[&str] = &[
    "cgroups::every_controller_limit_shows_on_the_host_inside_and_in_stats",
    "cgroups_v2::limits_show_on_the_host_inside_and_in_stats",
];
const PLAN: &[&str] = &[
    "crates/rr-cgroups/src/plan.rs::v1_full",
    "crates/rr-cgroups/src/plan.rs::v2_full",
];
const SWAPPINESS: &[&str] = &[
    "cgroups::every_controller_limit_shows_on_the_host_inside_and_in_stats",
    "cgroups::bad_resources_fail_create_and_leave_no_cgroup",
];
const BLKIO_WEIGHT: &[&str] = &[
    "cgroups::bad_resources_fail_create_and_leave_no_cgroup",
    "crates/rr-cgroups/src/plan.rs::v1_full",
    "crates/rr-cgroups/src/plan.rs::v2_full",
];
const CONTROLLER: &str = "the controller's interface file in the container's cgroup (v1: the hierarchy is mounted; v2: the controller is enabled); otherwise \"cgroup controller ... is not available (needed to write ...)\"";
const V1_ONLY_PROBE: &str = "a cgroup v1 hierarchy for the controller; on cgroup v2 create fails with \"... is not supported on cgroup v2\" naming the field";
const BLKIO: &[&str] = &[
    "cgroups::every_controller_limit_shows_on_the_host_inside_and_in_stats",
    "crates/rr-cgroups/src/plan.rs::v1_full",
    "crates/rr-cgroups/src/plan.rs::v2_full",
];
const REALTIME: &[&str] = &[
    "spec_catalogue::realtime_limits_show_on_the_host",
    "crates/rr-cgroups/src/plan.rs::v1_full",
];
const MISSING_CTL: &[&str] = &[
    "spec_catalogue::resources_of_missing_controllers_are_applied_or_refused_by_name",
    "crates/rr-cgroups/src/plan.rs::v1_full",
    "crates/rr-cgroups/src/plan.rs::v2_full",
];
const V1_EXTRA: &[&str] = &[
    "spec_catalogue::v1_limits_without_another_test_show_on_the_host",
    "crates/rr-cgroups/src/plan.rs::v1_full",
    "crates/rr-cgroups/src/plan.rs::v2_full",
];
const SECCOMP: &[&str] = &[
    "confinement::default_like_profile_runs_busybox_and_denies_what_it_leaves_out",
    "confinement::custom_errno_ret_is_returned",
    "confinement::exec_runs_under_the_containers_filter",
];
const SECCOMP_ARGS: &[&str] = &[
    "spec_catalogue::seccomp_argument_conditions_are_applied",
    "crates/rr-seccomp/src/bpf.rs::conditions_then_fallback",
    "crates/rr-seccomp/src/lib.rs::translation_rules",
];
const NOTIFY: &[&str] = &[
    "seccomp_notify::seccomp_notify_agent_answers_for_the_init",
    "seccomp_notify::seccomp_notify_agent_answers_for_exec",
    "seccomp_notify::seccomp_notify_errors_name_the_field",
    "seccomp_notify::seccomp_notify_agent_emulates_mkdir",
    "seccomp_notify::seccomp_notify_unanswered_syscall_is_killable",
    "seccomp_notify::seccomp_notify_refused_socket_fails_the_create",
];
const NOTIFY_PROBE: &str =
    "seccomp user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux 5.0)";
const RDT: &[&str] = &[
    "intelrdt::cdp_host_group_gets_merged_schemata_and_the_init",
    "intelrdt::mba_host_bandwidth_rules",
    "intelrdt::no_resctrl_on_the_host",
];
const RDT_PROBE: &str = "resctrl mounted with the resources the schemata name; without it create fails naming linux.intelRdt";
const LSM: &[&str] = &["confinement::lsm_requests_fail_clearly_when_the_host_has_none"];
const SCHED: &[&str] = &[
    "compat_process::scheduler_io_priority_and_personality_are_applied_for_run_and_exec",
    "crates/rr-container/src/init/sched.rs::values_for_the_kernel",
];
const DEADLINE: &[&str] = &[
    "spec_catalogue::deadline_scheduler_parameters_are_applied",
    "crates/rr-container/src/init/sched.rs::checks_name_the_field",
];
const SCHED_FLAGS: &[&str] = &[
    "spec_catalogue::scheduler_flags_by_their_spec_names",
    "crates/rr-container/src/init/sched.rs::checks_name_the_field",
];
const AFFINITY: &[&str] = &[
    "spec_features::exec_cpu_affinity_for_init_and_exec",
    "spec_features::exec_cpu_affinity_errors_name_the_field",
];
const MEMPOLICY: &[&str] = &[
    "spec_features::memory_policy_for_init_and_exec",
    "spec_features::memory_policy_errors_name_the_field",
];
const NETDEV: &[&str] = &[
    "spec_features::net_device_moves_in_renamed_and_back_on_delete",
    "spec_features::net_device_errors_name_the_field",
    "spec_features::net_device_back_after_failed_create",
];
const PERSONALITY: &[&str] = &[
    "spec_features::personality_linux32_for_init_and_exec",
    "spec_features::personality_unknown_flag_is_refused",
];
const TIME: &[&str] = &[
    "spec_features::time_offsets_shift_the_clocks_inside",
    "spec_features::time_offsets_errors_name_the_field",
];
const CAPS: &[&str] = &[
    "lifecycle::capabilities_are_limited_to_the_spec",
    "compat_process::capabilities_are_the_specs_after_a_filter_installed_with_cap_sys_admin",
];
const USER: &[&str] = &["lifecycle::user_env_cwd_and_groups"];
const NS: &[&str] = &[
    "lifecycle::container_is_isolated",
    "lifecycle::joins_namespaces_by_path",
    "bad_input::unknown_namespace_type",
    "bad_input::namespace_path_that_does_not_exist",
];
const DEVICES: &[&str] = &[
    "lifecycle::spec_devices_are_created",
    "malformed::device_paths_outside_dev",
];
const DEVICE_RULES: &[&str] = &[
    "compat_cgroups::spec_deny_rule_for_a_listed_device_is_enforced",
    "compat_cgroups::unknown_access_letter_is_left_out_as_runc_does",
];

const PLATFORM: &str = "the section of another platform: a Linux runtime has nothing to apply from it (runc ignores it too)";

/// The catalogue (the fields of each hook list are in `HOOK_FIELDS`).
/// Paths are in schema order within each section; one entry a line, as a
/// table reads best.
#[rustfmt::skip]
pub const FIELDS: &[Field] = &[
    f("ociVersion", a(&["malformed::unknown_oci_version_major"])),
    f("hooks", G),
    f("annotations", How::Ignored("opaque metadata by the spec: rrc only copies it, unread, into the state that hooks and `rrc state` show")),
    f("hostname", a(&["lifecycle::container_is_isolated", "compat_mounts::hostname_is_set_in_a_joined_uts_namespace", "compat_mounts::hostname_without_uts_namespace_is_refused"])),
    f("domainname", a(&["lifecycle::container_is_isolated"])),
    f("mounts", G),
    f("mounts[].destination", a(&["lifecycle::mounts_from_the_spec", "bad_input::mount_destination_with_dotdot", "malformed::mount_destination_symlink_escaping_rootfs_lands_inside"])),
    f("mounts[].source", a(&["lifecycle::mounts_from_the_spec", "bad_input::bind_mount_source_missing"])),
    f("mounts[].type", a(&["lifecycle::mounts_from_the_spec"])),
    f("mounts[].options", a(&["compat_mounts::rro_makes_the_bind_and_its_submounts_read_only", "compat_mounts::recursive_flags_and_atime_reach_the_submount", "compat_mounts::unknown_mount_option_is_refused_by_name", "compat_mounts::filesystem_data_on_a_bind_is_ignored_with_a_warning"])),
    f("mounts[].uidMappings", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("mounts[].uidMappings[].containerID", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("mounts[].uidMappings[].hostID", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("mounts[].uidMappings[].size", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("mounts[].gidMappings", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("mounts[].gidMappings[].containerID", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("mounts[].gidMappings[].hostID", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("mounts[].gidMappings[].size", host(IDMAP_PROBE, MOUNT_IDMAP)),
    f("root", G),
    f("root.path", a(&["bad_input::missing_rootfs", "malformed::rootfs_symlink_to_host_root", "malformed::rootfs_missing"])),
    f("root.readonly", a(&["spec_catalogue::read_only_root_and_oom_score_adj_are_applied"])),
    f("process", G),
    f("process.terminal", a(&["terminal::console_socket_receives_the_master", "terminal::terminal_without_console_socket"])),
    f("process.consoleSize", G),
    f("process.consoleSize.height", a(&["terminal::console_socket_receives_the_master"])),
    f("process.consoleSize.width", a(&["terminal::console_socket_receives_the_master"])),
    f("process.user", G),
    f("process.user.uid", a(USER)),
    f("process.user.gid", a(USER)),
    f("process.user.umask", a(&["compat_process::the_umask_is_the_specs_or_0022_whatever_rrc_had"])),
    f("process.user.additionalGids", a(USER)),
    f("process.user.username", How::Ignored("Windows only by the spec (the user name of a Windows container); uid and gid say who runs on Linux, as in runc")),
    f("process.args", a(&["lifecycle::run_echo_hello_prints_and_cleans_up", "bad_input::missing_and_empty_args"])),
    f("process.commandLine", How::Ignored("Windows only by the spec (the command line of a Windows process); `args` is what runs on Linux, as in runc")),
    f("process.env", a(&["lifecycle::user_env_cwd_and_groups", "malformed::one_megabyte_environment"])),
    f("process.cwd", a(&["lifecycle::user_env_cwd_and_groups", "compat_process::a_cwd_only_root_can_enter_works_without_cap_dac_override"])),
    f("process.capabilities", G),
    f("process.capabilities.bounding", a(CAPS)),
    f("process.capabilities.effective", a(CAPS)),
    f("process.capabilities.inheritable", a(CAPS)),
    f("process.capabilities.permitted", a(CAPS)),
    f("process.capabilities.ambient", a(CAPS)),
    f("process.rlimits", G),
    f("process.rlimits[].type", a(&["exhaustion::low_open_file_limit"])),
    f("process.rlimits[].hard", a(&["exhaustion::low_open_file_limit"])),
    f("process.rlimits[].soft", a(&["exhaustion::low_open_file_limit"])),
    f("process.noNewPrivileges", a(&["compat_process::a_profile_allowing_only_execve_runs_the_process_and_exec", "compat_process::capabilities_are_the_specs_after_a_filter_installed_with_cap_sys_admin"])),
    f("process.apparmorProfile", host("AppArmor enabled on the host; otherwise create fails naming the field", LSM)),
    f("process.oomScoreAdj", a(&["spec_catalogue::read_only_root_and_oom_score_adj_are_applied"])),
    f("process.selinuxLabel", host("SELinux enabled on the host; otherwise create fails naming the field", LSM)),
    f("process.ioPriority", G),
    f("process.ioPriority.class", a(SCHED)),
    f("process.ioPriority.priority", a(SCHED)),
    f("process.scheduler", G),
    f("process.scheduler.policy", a(SCHED)),
    f("process.scheduler.nice", a(SCHED)),
    f("process.scheduler.priority", a(SCHED)),
    f("process.scheduler.flags", a(SCHED_FLAGS)),
    f("process.scheduler.runtime", a(DEADLINE)),
    f("process.scheduler.deadline", a(DEADLINE)),
    f("process.scheduler.period", a(DEADLINE)),
    f("process.execCPUAffinity", G),
    f("process.execCPUAffinity.initial", a(AFFINITY)),
    f("process.execCPUAffinity.final", a(AFFINITY)),
    f("linux", G),
    f("linux.uidMappings", a(IDMAP)),
    f("linux.uidMappings[].containerID", a(IDMAP)),
    f("linux.uidMappings[].hostID", a(IDMAP)),
    f("linux.uidMappings[].size", a(IDMAP)),
    f("linux.gidMappings", a(IDMAP)),
    f("linux.gidMappings[].containerID", a(IDMAP)),
    f("linux.gidMappings[].hostID", a(IDMAP)),
    f("linux.gidMappings[].size", a(IDMAP)),
    f("linux.sysctl", a(&["confinement::namespaced_sysctls_are_written_others_refused"])),
    f("linux.resources", G),
    f("linux.resources.devices", G),
    f("linux.resources.devices[].allow", a(DEVICE_RULES)),
    f("linux.resources.devices[].type", a(DEVICE_RULES)),
    f("linux.resources.devices[].major", a(DEVICE_RULES)),
    f("linux.resources.devices[].minor", a(DEVICE_RULES)),
    f("linux.resources.devices[].access", a(DEVICE_RULES)),
    f("linux.resources.memory", G),
    f("linux.resources.memory.limit", host(CONTROLLER, V1_V2)),
    f("linux.resources.memory.reservation", host(CONTROLLER, V1_V2)),
    f("linux.resources.memory.swap", host(CONTROLLER, V1_V2)),
    f("linux.resources.memory.kernel", How::Ignored("kernel memory limits were removed from Linux (5.16 on v1, never on v2); create warns \"kernel memory limits were removed from Linux; ignored\", as runc does")),
    f("linux.resources.memory.kernelTCP", How::Ignored("kernel TCP memory limits are not supported; create warns naming the field and goes on, as runc does")),
    f("linux.resources.memory.swappiness", host(V1_ONLY_PROBE, SWAPPINESS)),
    f("linux.resources.memory.disableOOMKiller", host(V1_ONLY_PROBE, V1_EXTRA)),
    f("linux.resources.memory.useHierarchy", host("a cgroup v1 memory hierarchy; on v2 (always hierarchical) `false` is warned about and ignored", V1_EXTRA)),
    f("linux.resources.memory.checkBeforeUpdate", a(&["spec_catalogue::check_before_update_refuses_a_limit_below_usage"])),
    f("linux.resources.cpu", G),
    f("linux.resources.cpu.shares", host(CONTROLLER, V1_V2)),
    f("linux.resources.cpu.quota", host(CONTROLLER, V1_V2)),
    f("linux.resources.cpu.burst", host("cpu.cfs_burst_us (v1) or cpu.max.burst (v2), Linux 5.14", V1_EXTRA)),
    f("linux.resources.cpu.period", host(CONTROLLER, V1_V2)),
    f("linux.resources.cpu.realtimeRuntime", host(V1_ONLY_PROBE, REALTIME)),
    f("linux.resources.cpu.realtimePeriod", host(V1_ONLY_PROBE, REALTIME)),
    f("linux.resources.cpu.cpus", host(CONTROLLER, V1_V2)),
    f("linux.resources.cpu.mems", host(CONTROLLER, V1_V2)),
    f("linux.resources.cpu.idle", host("cpu.idle (Linux 5.15)", V1_EXTRA)),
    f("linux.resources.pids", G),
    f("linux.resources.pids.limit", host(CONTROLLER, &["cgroups::pids_limit_stops_a_fork_bomb_at_the_limit", "cgroups_v2::pids_limit_stops_a_fork_bomb_at_the_limit"])),
    f("linux.resources.blockIO", G),
    f("linux.resources.blockIO.weight", host("blkio.weight or blkio.bfq.weight (v1), io.bfq.weight or io.weight (v2)", BLKIO_WEIGHT)),
    f("linux.resources.blockIO.leafWeight", host(V1_ONLY_PROBE, PLAN)),
    f("linux.resources.blockIO.weightDevice", G),
    f("linux.resources.blockIO.weightDevice[].major", host(CONTROLLER, MISSING_CTL)),
    f("linux.resources.blockIO.weightDevice[].minor", host(CONTROLLER, MISSING_CTL)),
    f("linux.resources.blockIO.weightDevice[].weight", host(CONTROLLER, MISSING_CTL)),
    f("linux.resources.blockIO.weightDevice[].leafWeight", host(V1_ONLY_PROBE, PLAN)),
    f("linux.resources.blockIO.throttleReadBpsDevice", G),
    f("linux.resources.blockIO.throttleReadBpsDevice[].major", host(CONTROLLER, BLKIO)),
    f("linux.resources.blockIO.throttleReadBpsDevice[].minor", host(CONTROLLER, BLKIO)),
    f("linux.resources.blockIO.throttleReadBpsDevice[].rate", host(CONTROLLER, BLKIO)),
    f("linux.resources.blockIO.throttleWriteBpsDevice", G),
    f("linux.resources.blockIO.throttleWriteBpsDevice[].major", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleWriteBpsDevice[].minor", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleWriteBpsDevice[].rate", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleReadIOPSDevice", G),
    f("linux.resources.blockIO.throttleReadIOPSDevice[].major", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleReadIOPSDevice[].minor", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleReadIOPSDevice[].rate", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleWriteIOPSDevice", G),
    f("linux.resources.blockIO.throttleWriteIOPSDevice[].major", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleWriteIOPSDevice[].minor", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.blockIO.throttleWriteIOPSDevice[].rate", host(CONTROLLER, V1_EXTRA)),
    f("linux.resources.hugepageLimits", G),
    f("linux.resources.hugepageLimits[].pageSize", host(CONTROLLER, MISSING_CTL)),
    f("linux.resources.hugepageLimits[].limit", host(CONTROLLER, MISSING_CTL)),
    f("linux.resources.network", G),
    f("linux.resources.network.classID", host(V1_ONLY_PROBE, MISSING_CTL)),
    f("linux.resources.network.priorities", G),
    f("linux.resources.network.priorities[].name", host(V1_ONLY_PROBE, &["crates/rr-cgroups/src/plan.rs::v1_full"])),
    f("linux.resources.network.priorities[].priority", host(V1_ONLY_PROBE, &["crates/rr-cgroups/src/plan.rs::v1_full"])),
    f("linux.resources.rdma", G),
    f("linux.resources.rdma{}.hcaHandles", host(CONTROLLER, PLAN)),
    f("linux.resources.rdma{}.hcaObjects", host(CONTROLLER, PLAN)),
    f("linux.resources.unified", host("cgroup v2 (unified or hybrid); on v1 create fails naming the field", &["cgroups_v2::limits_show_on_the_host_inside_and_in_stats"])),
    f("linux.cgroupsPath", a(&["cgroups::absolute_cgroups_path_is_used_and_removed", "compat_cli::exec_cgroup_runs_in_a_sub_cgroup"])),
    f("linux.namespaces", G),
    f("linux.namespaces[].type", a(NS)),
    f("linux.namespaces[].path", a(NS)),
    f("linux.devices", G),
    f("linux.devices[].path", a(DEVICES)),
    f("linux.devices[].type", a(DEVICES)),
    f("linux.devices[].major", a(DEVICES)),
    f("linux.devices[].minor", a(DEVICES)),
    f("linux.devices[].fileMode", a(DEVICES)),
    f("linux.devices[].uid", a(DEVICES)),
    f("linux.devices[].gid", a(DEVICES)),
    f("linux.netDevices", G),
    f("linux.netDevices{}.name", a(NETDEV)),
    f("linux.seccomp", G),
    f("linux.seccomp.defaultAction", a(SECCOMP)),
    f("linux.seccomp.defaultErrnoRet", a(&["spec_catalogue::default_errno_ret_is_returned", "crates/rr-seccomp/src/lib.rs::translation_rules"])),
    f("linux.seccomp.architectures", a(&["compat_process::a_profile_without_the_native_architecture_still_filters_it", "confinement::bad_seccomp_profiles_fail_create_cleanly"])),
    f("linux.seccomp.flags", a(&["seccomp_notify::seccomp_notify_agent_answers_for_exec", "crates/rr-seccomp/src/lib.rs::translation_rules"])),
    f("linux.seccomp.listenerPath", host(NOTIFY_PROBE, NOTIFY)),
    f("linux.seccomp.listenerMetadata", host(NOTIFY_PROBE, NOTIFY)),
    f("linux.seccomp.syscalls", G),
    f("linux.seccomp.syscalls[].names", a(SECCOMP)),
    f("linux.seccomp.syscalls[].action", a(SECCOMP)),
    f("linux.seccomp.syscalls[].errnoRet", a(&["confinement::custom_errno_ret_is_returned"])),
    f("linux.seccomp.syscalls[].args", G),
    f("linux.seccomp.syscalls[].args[].index", a(SECCOMP_ARGS)),
    f("linux.seccomp.syscalls[].args[].value", a(SECCOMP_ARGS)),
    f("linux.seccomp.syscalls[].args[].valueTwo", a(SECCOMP_ARGS)),
    f("linux.seccomp.syscalls[].args[].op", a(SECCOMP_ARGS)),
    f("linux.rootfsPropagation", a(&["compat_mounts::rshared_volume_propagates_both_ways"])),
    f("linux.maskedPaths", a(&["lifecycle::masked_and_readonly_paths", "compat_mounts::masked_paths_need_a_mount_namespace"])),
    f("linux.readonlyPaths", a(&["lifecycle::masked_and_readonly_paths"])),
    f("linux.mountLabel", How::Refused("SELinux mount labels are not supported by rrc yet")),
    f("linux.intelRdt", G),
    f("linux.intelRdt.closID", host(RDT_PROBE, &["intelrdt::closid_group_set_up_beforehand_is_joined_and_kept", "intelrdt::closid_group_rr_made_goes_with_its_last_container"])),
    f("linux.intelRdt.schemata", host(RDT_PROBE, &["intelrdt::update_schemata", "crates/rr-intelrdt/src/oci.rs::later_fields_override_per_domain"])),
    f("linux.intelRdt.l3CacheSchema", host(RDT_PROBE, RDT)),
    f("linux.intelRdt.memBwSchema", host(RDT_PROBE, RDT)),
    f("linux.intelRdt.enableCMT", How::Refused(CMT_MBM)),
    f("linux.intelRdt.enableMBM", How::Refused(CMT_MBM)),
    f("linux.intelRdt.enableMonitoring", host(RDT_PROBE, &["intelrdt::monitoring_only_host_uses_a_monitoring_group_under_the_root", "intelrdt::monitoring_needs_l3_mon"])),
    f("linux.memoryPolicy", G),
    f("linux.memoryPolicy.mode", a(MEMPOLICY)),
    f("linux.memoryPolicy.nodes", a(MEMPOLICY)),
    f("linux.memoryPolicy.flags", a(MEMPOLICY)),
    f("linux.personality", G),
    f("linux.personality.domain", a(PERSONALITY)),
    f("linux.personality.flags", a(PERSONALITY)),
    f("linux.timeOffsets", G),
    f("linux.timeOffsets.monotonic", G),
    f("linux.timeOffsets.monotonic.secs", a(TIME)),
    f("linux.timeOffsets.monotonic.nanosecs", a(TIME)),
    f("linux.timeOffsets.boottime", G),
    f("linux.timeOffsets.boottime.secs", a(TIME)),
    f("linux.timeOffsets.boottime.nanosecs", a(TIME)),
    f("solaris", How::Ignored(PLATFORM)),
    f("windows", How::Ignored(PLATFORM)),
    f("vm", How::Ignored("for runtimes that start a virtual machine (Kata and the like); rrc runs containers on the host's kernel, as runc does")),
    f("zos", How::Ignored(PLATFORM)),
    f("freebsd", How::Ignored("the section of another platform (runtime-spec 1.3); oci-spec 0.10 does not model it, so it is dropped while parsing, and a Linux runtime has nothing to apply from it (runc ignores it)")),
];

const HOOK_FIELDS: [[Field; 5]; 6] = [
    hook!("prestart"),
    hook!("createRuntime"),
    hook!("createContainer"),
    hook!("startContainer"),
    hook!("poststart"),
    hook!("poststop"),
];

/// Every entry of the catalogue, hooks included.
pub fn fields() -> impl Iterator<Item = &'static Field> {
    FIELDS.iter().chain(HOOK_FIELDS.iter().flatten())
}

/// The entry of `path`, if it has one of its own.
pub fn lookup(path: &str) -> Option<&'static Field> {
    fields().find(|e| e.path == path)
}

/// The entry that decides for `path`: its own, or that of an ignored
/// section above it.
pub fn entry_for(path: &str) -> Option<&'static Field> {
    lookup(path).or_else(|| {
        fields().find(|e| {
            matches!(e.how, How::Ignored(_))
                && path.len() > e.path.len()
                && path.starts_with(e.path)
                && matches!(path.as_bytes()[e.path.len()], b'.' | b'[' | b'{')
        })
    })
}

/// The enumerated values of a field that rrc applies, for `rrc features`.
pub fn values(path: &str) -> &'static [&'static str] {
    match path {
        "linux.namespaces[].type" => NAMESPACES,
        _ => &[],
    }
}

/// Every field path present in a config (`[]` for array items, `{}` for
/// map values). Null values count as absent, as they do for the parser.
pub fn json_paths(config: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(config, "", &mut out);
    out
}

fn walk(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            let is_map = MAPS.contains(&path);
            for (k, child) in map {
                if child.is_null() {
                    continue;
                }
                if is_map {
                    walk(child, &format!("{path}{{}}"), out);
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(p.clone());
                walk(child, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// The fields of [`UNMODELLED`] present in a raw config, with the error
/// for each: the parser would drop them without a word, so `config`
/// refuses them.
pub fn unmodelled_fields(config: &Value) -> Vec<(&'static str, &'static str)> {
    let present = json_paths(config);
    UNMODELLED
        .iter()
        .copied()
        .filter(|(p, _)| present.contains(*p))
        .collect()
}

/// The catalogued fields directly below `path` (an object).
fn children(path: &str) -> impl Iterator<Item = &'static str> + '_ {
    fields().filter_map(move |e| {
        let rest = if path.is_empty() {
            e.path
        } else {
            e.path.strip_prefix(path)?.strip_prefix('.')?
        };
        (!rest.contains(['.', '[', '{'])).then_some(rest)
    })
}

/// Renames, in a raw config (or in the object at `base`, e.g. `process`
/// for a process file), keys that differ from a spec field only in ASCII
/// case to the field's name: runc's Go decoder matches keys that way, so
/// `"readOnly"` makes runc's rootfs read-only, where serde would drop it.
/// A key whose exact name is also present is left (the exact one wins, as
/// in Go), and so is one that would become a field of [`UNMODELLED`] (the
/// parser reads `enableCmt` under that name). Returns the renames, as
/// (old path, new path).
pub fn normalise_keys(config: &mut Value, base: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    normalise(config, base, &mut out);
    out
}

fn normalise(v: &mut Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            if matches!(entry_for(path).map(|e| e.how), Some(How::Ignored(_))) && !path.is_empty() {
                return;
            }
            let is_map = MAPS.contains(&path);
            if !is_map {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let Some(name) = children(path).find(|c| *c != k && c.eq_ignore_ascii_case(&k))
                    else {
                        continue;
                    };
                    let new_path = join(path, name);
                    if map.contains_key(name) || UNMODELLED.iter().any(|(u, _)| *u == new_path) {
                        continue;
                    }
                    if let Some(val) = map.remove(&k) {
                        map.insert(name.to_owned(), val);
                        out.push((join(path, &k), new_path));
                    }
                }
            }
            for (k, child) in map.iter_mut() {
                let p = if is_map {
                    format!("{path}{{}}")
                } else {
                    join(path, k)
                };
                normalise(child, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                normalise(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests;
