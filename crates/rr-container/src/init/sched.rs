//! The process's scheduling attributes (`process.scheduler`,
//! `process.ioPriority`, `process.execCPUAffinity`): checked at create,
//! applied by the init and by `exec` before the seccomp filter goes in
//! (the initial CPU affinity by rrc, before the process joins the
//! container's cgroups).

use oci_spec::runtime::{
    IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Scheduler, Spec,
};

use crate::error::{Error, Result};

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::ConfigInvalid {
        path: "config.json".into(),
        field: field.into(),
        message: message.into(),
    }
}

/// Checks the fields this module applies, and refuses those rrc does not
/// implement, so that none is silently ignored.
pub(crate) fn check(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        if let Some(s) = p.scheduler() {
            sched_attr(s)?;
        }
        if let Some(io) = p.io_priority() {
            ioprio(io.class(), io.priority())?;
        }
        if let Some(a) = p.exec_cpu_affinity() {
            if let Some(list) = a.initial() {
                cpu_set(AFFINITY_INITIAL, list)?;
            }
            if let Some(list) = a.cpu_affinity_final() {
                cpu_set(AFFINITY_FINAL, list)?;
            }
        }
    }
    Ok(())
}

const AFFINITY_INITIAL: &str = "process.execCPUAffinity.initial";
const AFFINITY_FINAL: &str = "process.execCPUAffinity.final";

/// The CPUs of a list such as `0-3,7`; `None` for an empty list, which
/// leaves the affinity as the kernel makes it.
fn cpu_set(field: &str, list: &str) -> Result<Option<libc::cpu_set_t>> {
    let list = list.trim();
    if list.is_empty() {
        return Ok(None);
    }
    let bad = |why: String| invalid(field, format!("{list:?}: {why}"));
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for part in list.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let num = |t: &str| {
            t.parse::<usize>()
                .map_err(|_| bad(format!("{part:?} is not a CPU number or range")))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(bad(format!("range {part:?} is reversed")));
        }
        if hi >= max {
            return Err(bad(format!(
                "CPU {hi} is beyond the {max} the kernel takes"
            )));
        }
        for cpu in lo..=hi {
            // SAFETY: cpu is below the set's size, checked above.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
    }
    Ok(Some(set))
}

fn set_affinity(pid: libc::pid_t, field: &str, list: &str) -> Result<()> {
    let Some(set) = cpu_set(field, list)? else {
        return Ok(());
    };
    // SAFETY: the kernel reads a cpu_set_t of the size given.
    let r = unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(&set), &set) };
    if r != 0 {
        return Err(Error::last_os(format!(
            "{field} {list:?}: sched_setaffinity"
        )));
    }
    Ok(())
}

/// Gives `pid`, the process rrc has just made in the container's
/// namespaces, the `initial` CPU affinity of `process`, before it joins the
/// container's cgroups (the kernel keeps a mask set this way as the
/// process's own request when its cpuset changes).
pub(crate) fn apply_initial_affinity(process: &Process, pid: libc::pid_t) -> Result<()> {
    match process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_ref())
    {
        Some(list) => set_affinity(pid, AFFINITY_INITIAL, list),
        None => Ok(()),
    }
}

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn sched_attr(s: &Scheduler) -> Result<SchedAttr> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            // They need the clamp values of a larger sched_attr, which the
            // spec has no field for.
            LinuxSchedulerFlag::SchedFlagUtilClampMin
            | LinuxSchedulerFlag::SchedFlagUtilClampMax => {
                return Err(invalid(
                    "process.scheduler.flags",
                    format!("{f} needs utilization clamp values, which the spec cannot give"),
                ))
            }
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid(
            "process.scheduler.nice",
            format!("{nice} is out of range (-20 to 19)"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(policy, 1 | 2);
    if realtime && !(1..=99).contains(&priority) || !realtime && priority != 0 {
        return Err(invalid(
            "process.scheduler.priority",
            format!(
                "{priority} is not valid for {}: SCHED_FIFO and SCHED_RR take 1 to 99, the others 0",
                s.policy()
            ),
        ));
    }
    let deadline_fields = [s.runtime(), s.deadline(), s.period()];
    if policy != 6 && deadline_fields.iter().any(|v| v.is_some()) {
        return Err(invalid(
            "process.scheduler",
            "runtime, deadline and period are only for SCHED_DEADLINE",
        ));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// The `ioprio_set` value of a class and level.
fn ioprio(class: IOPriorityClass, priority: i64) -> Result<libc::c_int> {
    if !(0..=7).contains(&priority) {
        return Err(invalid(
            "process.ioPriority.priority",
            format!("{priority} is out of range (0-7)"),
        ));
    }
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    // IOPRIO_PRIO_VALUE: the class above IOPRIO_CLASS_SHIFT (13).
    Ok((class << 13) | priority as libc::c_int)
}

/// Applies the scheduler, final CPU affinity and I/O priority of `process` to the calling
/// process (before its privileges are dropped: real-time policies need
/// CAP_SYS_NICE).
pub(crate) fn apply_process(process: &Process) -> Result<()> {
    if let Some(s) = process.scheduler() {
        let attr = sched_attr(s)?;
        // SAFETY: the kernel reads attr.size bytes of a valid sched_attr.
        let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        if r != 0 {
            return Err(Error::last_os(format!(
                "process.scheduler: sched_setattr {}",
                s.policy()
            )));
        }
    }
    if let Some(list) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_ref())
    {
        set_affinity(0, AFFINITY_FINAL, list)?;
    }
    if let Some(io) = process.io_priority() {
        let value = ioprio(io.class(), io.priority())?;
        const IOPRIO_WHO_PROCESS: libc::c_int = 1;
        // SAFETY: ioprio_set with plain integers, on the calling process.
        let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
        if r != 0 {
            return Err(Error::last_os(format!(
                "process.ioPriority: ioprio_set {} {}",
                io.class(),
                io.priority()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}});
        if let (Some(b), Some(extra)) = (base.as_object_mut(), json.as_object()) {
            for (k, v) in extra {
                if k == "process" {
                    for (pk, pv) in v.as_object().into_iter().flatten() {
                        b["process"][pk] = pv.clone();
                    }
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::from_value(base).expect("spec")
    }

    #[test]
    fn checks_name_the_field() {
        let cases = [
            (
                serde_json::json!({"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 0}}}),
                "process.scheduler.priority",
            ),
            (
                serde_json::json!({"process": {"scheduler": {"policy": "SCHED_OTHER", "nice": 40}}}),
                "process.scheduler.nice",
            ),
            (
                serde_json::json!({"process": {"scheduler": {"policy": "SCHED_BATCH", "runtime": 5}}}),
                "process.scheduler",
            ),
            (
                serde_json::json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}}),
                "process.ioPriority.priority",
            ),
        ];
        for (json, field) in cases {
            let e = check(&spec(json)).expect_err(field);
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
        let ok = spec(serde_json::json!({
            "process": {"scheduler": {"policy": "SCHED_RR", "priority": 5},
                        "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}}));
        check(&ok).expect("valid");
    }

    #[test]
    fn values_for_the_kernel() {
        assert_eq!(
            ioprio(IOPriorityClass::IoprioClassBe, 4).ok(),
            Some((2 << 13) | 4)
        );
        assert_eq!(
            ioprio(IOPriorityClass::IoprioClassIdle, 0).ok(),
            Some(3 << 13)
        );
        let s: Scheduler = serde_json::from_value(serde_json::json!(
            {"policy": "SCHED_DEADLINE", "runtime": 1000, "deadline": 2000, "period": 3000,
             "flags": ["SCHED_RESET_ON_FORK"]}))
        .expect("scheduler");
        let a = sched_attr(&s).expect("valid");
        assert_eq!((a.size, a.policy, a.flags), (48, 6, 1));
        assert_eq!((a.runtime, a.deadline, a.period), (1000, 2000, 3000));
    }

    #[test]
    fn cpu_lists() {
        let set = cpu_set(AFFINITY_FINAL, "0-2,7")
            .expect("valid")
            .expect("set");
        let cpus: Vec<usize> = (0..16)
            // SAFETY: cpu is below the set's size.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect();
        assert_eq!(cpus, [0, 1, 2, 7]);
        assert!(cpu_set(AFFINITY_FINAL, "").expect("empty").is_none());
        for bad in ["3-1", "1,,2", "a", "99999"] {
            let e = cpu_set(AFFINITY_INITIAL, bad).expect_err(bad);
            assert!(e.to_string().contains(AFFINITY_INITIAL), "{e}");
        }
    }
}
