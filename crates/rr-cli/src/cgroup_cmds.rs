//! The commands built on a container's cgroups: pause, resume, ps, events
//! and update.

use std::io::Read;
use std::time::Duration;

use rr_container::Runtime;
use serde_json::{json, Map, Value};

use crate::args::{Command, ListFormat};
use crate::log::Logger;

/// `update`'s flags, as runc names them.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The container id.
    pub id: String,
    /// A JSON file of linux.resources to apply (`-` for stdin); the other
    /// flags are then ignored.
    #[arg(short = 'r', long = "resources", value_name = "FILE")]
    pub resources: Option<String>,
    /// Block I/O weight (10 to 1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU realtime period in microseconds.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPUs the container may use (e.g. 0-2,4).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (ignored by current kernels; accepted for runc compatibility).
    #[arg(long = "kernel-memory", value_parser = parse_memory, allow_hyphen_values = true)]
    pub kernel_memory: Option<i64>,
    /// Kernel TCP buffer limit (ignored by current kernels).
    #[arg(long = "kernel-memory-tcp", value_parser = parse_memory, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<i64>,
    /// Memory limit (bytes, or with a k, m, g, t suffix; -1: unlimited).
    #[arg(long = "memory", value_parser = parse_memory, allow_hyphen_values = true)]
    pub memory: Option<i64>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", value_parser = parse_memory, allow_hyphen_values = true)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long = "memory-swap", value_parser = parse_memory, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported by update yet).
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported by update yet).
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

/// Parses a memory size: `-1`, or a number with an optional binary suffix
/// `k`, `m`, `g`, `t`, `p` (any case, optionally followed by `b` or `ib`).
pub fn parse_memory(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, shift) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 10),
        Some('m') => (&body[..body.len() - 1], 20),
        Some('g') => (&body[..body.len() - 1], 30),
        Some('t') => (&body[..body.len() - 1], 40),
        Some('p') => (&body[..body.len() - 1], 50),
        _ => (body, 0),
    };
    let num = num.trim();
    let bad = || {
        format!(
            "invalid memory size {s:?} (a number of bytes, optionally with k, m, g, t or p, or -1)"
        )
    };
    if num.is_empty() || num.starts_with('-') || num.starts_with('+') {
        return Err(bad());
    }
    let value = if let Some((int, frac)) = num.split_once('.') {
        let f: f64 = format!("{int}.{frac}").parse().map_err(|_| bad())?;
        let v = f * (1u64 << shift) as f64;
        if !v.is_finite() || v > i64::MAX as f64 {
            return Err(bad());
        }
        v as i64
    } else {
        let n: i64 = num.parse().map_err(|_| bad())?;
        n.checked_mul(1i64 << shift).ok_or_else(bad)?
    };
    Ok(value)
}

/// Parses a duration such as `5s`, `500ms`, `1m30s` (units ns, us, ms, s,
/// m, h); a plain number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (e.g. 5s, 500ms, 1m)");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u_end..];
        total += Duration::try_from_secs_f64(n * unit).map_err(|_| bad())?;
    }
    Ok(total)
}

fn insert(obj: &mut Map<String, Value>, group: &str, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        let g = obj
            .entry(group.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = g {
            m.insert(key.to_string(), v);
        }
    }
}

impl UpdateArgs {
    /// The resources the flags ask for, as linux.resources JSON.
    fn flags_json(&self) -> Value {
        let mut o = Map::new();
        insert(
            &mut o,
            "blockIO",
            "weight",
            self.blkio_weight.map(Value::from),
        );
        insert(&mut o, "cpu", "period", self.cpu_period.map(Value::from));
        insert(&mut o, "cpu", "quota", self.cpu_quota.map(Value::from));
        insert(
            &mut o,
            "cpu",
            "realtimePeriod",
            self.cpu_rt_period.map(Value::from),
        );
        insert(
            &mut o,
            "cpu",
            "realtimeRuntime",
            self.cpu_rt_runtime.map(Value::from),
        );
        insert(&mut o, "cpu", "shares", self.cpu_share.map(Value::from));
        insert(
            &mut o,
            "cpu",
            "cpus",
            self.cpuset_cpus.clone().map(Value::from),
        );
        insert(
            &mut o,
            "cpu",
            "mems",
            self.cpuset_mems.clone().map(Value::from),
        );
        insert(
            &mut o,
            "memory",
            "kernel",
            self.kernel_memory.map(Value::from),
        );
        insert(
            &mut o,
            "memory",
            "kernelTCP",
            self.kernel_memory_tcp.map(Value::from),
        );
        insert(&mut o, "memory", "limit", self.memory.map(Value::from));
        insert(
            &mut o,
            "memory",
            "reservation",
            self.memory_reservation.map(Value::from),
        );
        insert(&mut o, "memory", "swap", self.memory_swap.map(Value::from));
        insert(&mut o, "pids", "limit", self.pids_limit.map(Value::from));
        Value::Object(o)
    }

    fn resources(&self, logger: &mut Logger) -> Result<oci_spec::runtime::LinuxResources, String> {
        let (text, name) = match self.resources.as_deref() {
            Some("-") => {
                let mut t = String::new();
                std::io::stdin()
                    .read_to_string(&mut t)
                    .map_err(|e| format!("reading resources from stdin: {e}"))?;
                (t, "stdin".to_string())
            }
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
                path.to_string(),
            ),
            None => {
                let v = self.flags_json();
                return serde_json::from_value(v).map_err(|e| format!("update flags: {e}"));
            }
        };
        if self.flags_json().as_object().is_some_and(|o| !o.is_empty()) {
            logger.warn("update: -r is given, so the resource flags are ignored");
        }
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{name}: line {}, column {}: {e} (expected a linux.resources object)",
                e.line(),
                e.column()
            )
        })
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string(v).map_err(|e| format!("encoding JSON: {e}"))?;
    crate::print(&(text + "\n"))
}

/// Runs one of the cgroup commands.
pub fn run(rt: &Runtime, cmd: &Command, logger: &mut Logger) -> Result<u8, String> {
    match cmd {
        Command::Pause { id } => rt.pause(id).map_err(|e| e.to_string())?,
        Command::Resume { id } => rt.resume(id).map_err(|e| e.to_string())?,
        Command::Ps {
            format,
            id,
            ps_args,
        } => {
            if *format == ListFormat::Json {
                let pids = rt.pids(id).map_err(|e| e.to_string())?;
                print_json(&json!(pids))?;
            } else {
                let args = if ps_args.is_empty() {
                    vec!["-ef".to_string()]
                } else {
                    ps_args.clone()
                };
                let text = rt.ps_table(id, &args).map_err(|e| e.to_string())?;
                crate::print(&text)?;
            }
        }
        Command::Events {
            interval,
            stats,
            id,
        } => {
            if *stats {
                let v = rt.stats_event(id).map_err(|e| e.to_string())?;
                print_json(&v)?;
            } else {
                rt.events(id, *interval, |v| {
                    print_json(v).map_err(rr_container::Error::Init)
                })
                .map_err(|e| e.to_string())?;
            }
        }
        Command::Update(a) => {
            if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
                rt.update_intel_rdt(
                    &a.id,
                    a.l3_cache_schema.as_deref(),
                    a.mem_bw_schema.as_deref(),
                )
                .map_err(|e| e.to_string())?;
                let no_cgroup_change = a.resources.is_none()
                    && a.flags_json().as_object().is_none_or(|o| o.is_empty());
                if no_cgroup_change {
                    return Ok(0);
                }
            }
            let res = a.resources(logger)?;
            rt.update(&a.id, &res).map_err(|e| e.to_string())?;
        }
        _ => return Err("internal: not a cgroup command".into()),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("-1"), Ok(-1));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("64m"), Ok(64 << 20));
        assert_eq!(parse_memory("64M"), Ok(64 << 20));
        assert_eq!(parse_memory("2g"), Ok(2 << 30));
        assert_eq!(parse_memory("4kb"), Ok(4096));
        assert_eq!(parse_memory("1.5k"), Ok(1536));
        assert_eq!(parse_memory("1GiB"), Ok(1 << 30));
        for bad in ["", "-2", "m", "12x", "-5m", "99999999999p"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        for bad in ["", "s", "5x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_become_resources() {
        let a = UpdateArgs {
            id: "x".into(),
            resources: None,
            blkio_weight: Some(300),
            cpu_period: None,
            cpu_quota: Some(-1),
            cpu_rt_period: None,
            cpu_rt_runtime: None,
            cpu_share: Some(512),
            cpuset_cpus: Some("0".into()),
            cpuset_mems: None,
            kernel_memory: None,
            kernel_memory_tcp: None,
            memory: Some(64 << 20),
            memory_reservation: None,
            memory_swap: None,
            pids_limit: Some(20),
            l3_cache_schema: None,
            mem_bw_schema: None,
        };
        assert_eq!(
            a.flags_json(),
            json!({"blockIO": {"weight": 300}, "cpu": {"quota": -1, "shares": 512, "cpus": "0"},
                   "memory": {"limit": 67108864}, "pids": {"limit": 20}})
        );
    }
}
