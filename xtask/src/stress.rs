//! `cargo xtask stress [--count N] [--seed S] [--stage NAME]...`: crash
//! consistency of rrc
//! (the one built from this tree, or `$RRC_BIN`).
//!
//! For every stage of the lifecycle it brings a container to the state the
//! stage starts from, runs the stage's rrc command and SIGKILLs it after a
//! random delay drawn from the measured duration of that command. After
//! each kill `rrc state` and `rrc list` must still answer sensibly (the
//! container or "does not exist", never a parse error), and `rrc delete -f`
//! must leave nothing behind (see `rr_tests::leftovers`).
//!
//! The stages are data ([`STAGES`]): a command that this rrc does not have
//! yet is skipped with the reason, so a new command is one line to add.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rr_tests::leftovers;

use crate::Result;

/// The state a stage needs its container in before its command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    /// No container with the id.
    Absent,
    /// Created, not started.
    Created,
    /// Started (its process sleeps).
    Running,
    /// Started, then paused.
    Paused,
    /// Started, then checkpointed into the images directory.
    Checkpointed,
}

/// One killable rrc command. In `args`, `{id}` is the container id,
/// `{bundle}` a bundle whose process sleeps, `{short}` one whose process
/// exits at once, `{images}` a checkpoint images directory.
struct Stage {
    name: &'static str,
    before: Before,
    args: &'static [&'static str],
}

const fn stage(name: &'static str, before: Before, args: &'static [&'static str]) -> Stage {
    Stage { name, before, args }
}

#[rustfmt::skip]
const STAGES: &[Stage] = &[
    stage("create", Before::Absent, &["create", "-b", "{bundle}", "{id}"]),
    stage("start", Before::Created, &["start", "{id}"]),
    stage("kill", Before::Running, &["kill", "{id}", "KILL"]),
    stage("delete", Before::Running, &["delete", "-f", "{id}"]),
    stage("run", Before::Absent, &["run", "-b", "{short}", "{id}"]),
    stage("run -d", Before::Absent, &["run", "-d", "-b", "{bundle}", "{id}"]),
    stage("exec", Before::Running, &["exec", "{id}", "true"]),
    // A process that outlives its rrc: a leaked one is found by its marker.
    stage("exec -d", Before::Running, &["exec", "-d", "{id}", "sleep", "600"]),
    stage("pause", Before::Running, &["pause", "{id}"]),
    stage("resume", Before::Paused, &["resume", "{id}"]),
    stage("update", Before::Running, &["update", "--pids-limit", "512", "{id}"]),
    stage("ps", Before::Running, &["ps", "{id}"]),
    stage("events --stats", Before::Running, &["events", "--stats", "{id}"]),
    stage("checkpoint", Before::Running, &["checkpoint", "--image-path", "{images}", "{id}"]),
    stage("restore", Before::Checkpointed, &["restore", "-d", "-b", "{bundle}", "--image-path", "{images}", "{id}"]),
];

/// What rrc or clap print for a command this rrc does not have.
const NOT_IMPLEMENTED: &[&str] = &[
    "not supported by this version of rrc yet",
    "unrecognized subcommand",
    "unexpected argument",
];

/// How long a killed process may take to be gone (see [`check_after`]).
const PROCESS_GRACE: Duration = Duration::from_secs(3);

/// How many unkilled runs measure a stage's duration.
const CALIBRATION_RUNS: usize = 3;

struct Options {
    count: usize,
    seed: u64,
    /// `--stage NAME` (repeatable): only these stages; all when empty.
    stages: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        count: 500,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        stages: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        if a == "--stage" {
            let name = it.next().ok_or("--stage needs a stage name")?;
            if !STAGES.iter().any(|s| s.name == name) {
                let names: Vec<&str> = STAGES.iter().map(|s| s.name).collect();
                return Err(format!(
                    "stress: no stage {name:?}; the stages are {}",
                    names.join(", ")
                ));
            }
            o.stages.push(name.clone());
            continue;
        }
        match a.as_str() {
            "--count" => o.count = value("--count")? as usize,
            "--seed" => o.seed = value("--seed")?,
            other => return Err(format!("stress: unknown argument {other:?}")),
        }
    }
    Ok(o)
}

/// xorshift64*: enough randomness for delays, reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

struct World {
    rrc: PathBuf,
    root: PathBuf,
    bundle: PathBuf,
    short: PathBuf,
    images: PathBuf,
    /// `--criu` for checkpoint and restore (the CRIU 4.2.1 that `cargo
    /// xtask test` builds; Debian's 3.17.1 fails on this kernel).
    criu: Option<PathBuf>,
    /// Leftovers already counted: a leaked process is still there at the
    /// next checks and must not count again.
    reported: std::cell::RefCell<std::collections::HashSet<String>>,
}

impl World {
    fn cmd(&self, args: &[&str], id: &str) -> Command {
        let mut c = Command::new(&self.rrc);
        c.arg("--root").arg(&self.root);
        if let (Some(criu), Some(&"checkpoint" | &"restore")) = (&self.criu, args.first()) {
            c.arg("--criu").arg(criu);
        }
        for a in args {
            let a = match *a {
                "{id}" => id.to_string(),
                "{bundle}" => self.bundle.display().to_string(),
                "{short}" => self.short.display().to_string(),
                "{images}" => self.images.display().to_string(),
                other => other.to_string(),
            };
            c.arg(a);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Runs rrc to the end. Its stdio are pipes (see [`pipes`]): a
    /// container init inherits them and may hold them open for as long as
    /// it lives, so they are read once rrc has exited, without waiting for
    /// their end.
    fn rrc(&self, args: &[&str], id: &str) -> Result<Output> {
        let mut c = self.cmd(args, id);
        let (out, err) = pipes(&mut c)?;
        let mut child = c.spawn().map_err(|e| format!("running rrc: {e}"))?;
        // The Command holds our copies of the write ends.
        drop(c);
        let status = child.wait().map_err(|e| format!("waiting for rrc: {e}"))?;
        Ok(Output {
            status,
            stdout: drain(out),
            stderr: drain(err),
        })
    }

    /// Runs an rrc command that must succeed.
    fn must(&self, args: &[&str], id: &str) -> Result<()> {
        let out = self.rrc(args, id)?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "rrc {} {id}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }

    /// Brings container `id` (absent) to `before`.
    fn prepare(&self, before: Before, id: &str) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.images);
        let create = ["create", "-b", "{bundle}", "{id}"];
        match before {
            Before::Absent => Ok(()),
            Before::Created => self.must(&create, id),
            Before::Running => {
                self.must(&create, id)?;
                self.must(&["start", "{id}"], id)
            }
            Before::Paused => {
                self.prepare(Before::Running, id)?;
                self.must(&["pause", "{id}"], id)
            }
            Before::Checkpointed => {
                self.prepare(Before::Running, id)?;
                self.must(&["checkpoint", "--image-path", "{images}", "{id}"], id)?;
                // A checkpoint leaves a stopped container whose id restore reuses.
                let _ = self.rrc(&["delete", "-f", "{id}"], id);
                Ok(())
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    kills: usize,
    finished_first: usize,
    passed: usize,
    leftovers: usize,
    corrupt: usize,
    delete_failed: usize,
    median_us: u64,
    /// The delays are drawn from 0..window_us: it starts at 1.2 times the
    /// measured duration and shrinks when commands finish before their
    /// kill (spawning under load takes longer than when measured).
    window_us: u64,
    skipped: Option<String>,
}

pub fn stress(args: &[String]) -> Result<()> {
    let opts = parse_args(args)?;
    if !crate::is_root() {
        return Err("stress creates namespaces and mounts: run it as root".into());
    }
    crate::ensure_packages(&[("busybox-static", "/bin/busybox")])?;
    // RRC_BIN stresses a given binary (a release build, another branch's).
    let rrc = match std::env::var_os("RRC_BIN") {
        Some(p) => PathBuf::from(p),
        None => crate::build_rrc(false)?,
    };
    let work = crate::target_dir().join("stress");
    // A run that was itself killed can leave a restore's rootfs bind in its
    // state root; removing the tree through it would fail half-way.
    detach_mounts_under(&work);
    let _ = std::fs::remove_dir_all(&work);
    let world = World {
        rrc,
        root: work.join("state"),
        bundle: work.join("bundle"),
        short: work.join("short"),
        images: work.join("images"),
        criu: Some(crate::criu_build::ensure_criu(
            &crate::target_dir().join("tools"),
        )?),
        reported: Default::default(),
    };
    make_bundle(&world, &world.bundle, &["sleep", "3600"])?;
    make_bundle(&world, &world.short, &["true"])?;
    println!(
        "stress: seed {} (rerun with --seed {}), {} kills",
        opts.seed, opts.seed, opts.count
    );
    let started = Instant::now();
    let mut rng = Rng(opts.seed);
    let mut serial = 0usize;
    let mut next_id = |name: &str| {
        serial += 1;
        let tag: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        format!("stress-{}-{tag}-{serial}", std::process::id())
    };

    // Calibration: an unkilled run of each stage, timed.
    let mut tallies: Vec<Tally> = STAGES.iter().map(|_| Tally::default()).collect();
    for (stage, tally) in STAGES.iter().zip(tallies.iter_mut()) {
        if !opts.stages.is_empty() && !opts.stages.iter().any(|n| n == stage.name) {
            tally.skipped = Some("not asked for (--stage)".into());
            continue;
        }
        let mut times = Vec::new();
        for _ in 0..CALIBRATION_RUNS {
            let id = next_id(stage.name);
            let outcome = calibrate(&world, stage, &id);
            let _ = world.rrc(&["delete", "-f", "{id}"], &id);
            match outcome {
                Ok(t) => times.push(t),
                Err(reason) => {
                    tally.skipped = Some(reason);
                    break;
                }
            }
        }
        times.sort();
        tally.median_us = times.get(times.len() / 2).copied().unwrap_or(0);
        tally.window_us = tally.median_us * 6 / 5 + 1;
        match &tally.skipped {
            Some(r) => println!("stress: {:<15} skipped: {r}", stage.name),
            None => println!(
                "stress: {:<15} takes {} us unkilled",
                stage.name, tally.median_us
            ),
        }
    }
    let active: Vec<usize> = (0..STAGES.len())
        .filter(|i| tallies[*i].skipped.is_none())
        .collect();
    if active.is_empty() {
        return Err("stress: no stage can run".into());
    }

    // Round-robin over the stages until each has its share of kills. A
    // command that finished before its kill does not count; after too many
    // of those the stage gives up rather than loop forever.
    let mut setup_errors = Vec::new();
    let share = opts.count.div_ceil(active.len());
    let mut total_kills = 0;
    'outer: loop {
        let mut progressed = false;
        for &i in &active {
            if total_kills >= opts.count {
                break 'outer;
            }
            let t = &mut tallies[i];
            if t.kills >= share || t.finished_first > share * 4 {
                continue;
            }
            progressed = true;
            let stage = &STAGES[i];
            let id = next_id(stage.name);
            if let Err(e) = world.prepare(stage.before, &id) {
                setup_errors.push(format!("{}: {e}", stage.name));
                let _ = world.rrc(&["delete", "-f", "{id}"], &id);
                if setup_errors.len() > 10 {
                    break 'outer;
                }
                continue;
            }
            let delay = rng.below(t.window_us);
            match kill_during(&world, stage, &id, delay)? {
                true => {
                    t.kills += 1;
                    total_kills += 1;
                    t.window_us = (t.window_us * 51 / 50).min(t.median_us * 2 + 1);
                }
                false => {
                    t.finished_first += 1;
                    t.window_us = (t.window_us * 9 / 10).max(100);
                }
            }
            let problems = check_after(&world, &id)?;
            if problems.is_empty() {
                t.passed += 1;
            } else {
                for p in &problems {
                    println!("stress: {} {id} (killed after {delay} us): {p}", stage.name);
                    match p.split(':').next() {
                        Some("corrupt") => t.corrupt += 1,
                        Some("delete") => t.delete_failed += 1,
                        _ => t.leftovers += 1,
                    }
                }
                // Do not let one leftover spoil the checks that follow.
                let _ = world.rrc(&["delete", "-f", "{id}"], &id);
            }
        }
        if !progressed {
            break;
        }
    }

    let elapsed = started.elapsed();
    println!();
    println!(
        "{:<15} {:>6} {:>8} {:>10} {:>8} {:>9}",
        "stage", "kills", "too late", "leftovers", "corrupt", "delete-f"
    );
    let (mut passed, mut failed) = (0, 0);
    for (stage, t) in STAGES.iter().zip(&tallies) {
        if t.skipped.is_some() {
            println!("{:<15} skipped", stage.name);
            continue;
        }
        println!(
            "{:<15} {:>6} {:>8} {:>10} {:>8} {:>9}",
            stage.name, t.kills, t.finished_first, t.leftovers, t.corrupt, t.delete_failed
        );
        passed += t.passed;
        failed += t.kills + t.finished_first - t.passed;
    }
    for e in &setup_errors {
        println!("setup error: {e}");
    }
    failed += setup_errors.len();
    println!(
        "{total_kills} kills in {:.1}s (seed {})",
        elapsed.as_secs_f64(),
        opts.seed
    );
    println!("{passed} passed, {failed} failed");
    let _ = std::fs::remove_dir_all(&work);
    if failed > 0 {
        return Err(format!("stress: {failed} failed"));
    }
    if total_kills < opts.count {
        return Err(format!(
            "stress: only {total_kills} of {} kills landed inside a command",
            opts.count
        ));
    }
    Ok(())
}

fn make_bundle(world: &World, dir: &Path, args: &[&str]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    rr_tests::make_busybox_rootfs(&dir.join("rootfs"))
        .map_err(|e| format!("making the busybox rootfs: {e}"))?;
    crate::run(Command::new(&world.rrc).args(["spec", "-b"]).arg(dir))?;
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    v["process"]["terminal"] = false.into();
    // CRIU restores into the rootfs, as in tests/tests/checkpoint.rs.
    v["root"]["readonly"] = false.into();
    v["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
    if let Some(env) = v["process"]["env"].as_array_mut() {
        env.push(marker().into());
    }
    std::fs::write(&path, v.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

/// In the environment of every container of this run (see
/// [`leftovers::Scope::env_marker`]).
fn marker() -> String {
    format!("RR_STRESS_RUN={}", std::process::id())
}

/// One unkilled run of a stage: its duration in microseconds, or why the
/// stage cannot run with this rrc.
fn calibrate(world: &World, stage: &Stage, id: &str) -> std::result::Result<u64, String> {
    world.prepare(stage.before, id)?;
    let t = Instant::now();
    let out = world.rrc(stage.args, id)?;
    let us = t.elapsed().as_micros() as u64;
    if out.status.success() {
        return Ok(us);
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let first = err.lines().next().unwrap_or("").to_string();
    if NOT_IMPLEMENTED.iter().any(|m| err.contains(m)) {
        return Err(format!("this rrc has no `{}`: {first}", stage.args[0]));
    }
    Err(format!("fails even unkilled: {first}"))
}

/// Runs the stage's command and SIGKILLs it `delay_us` after the spawn.
/// True when the kill found it still running.
fn kill_during(world: &World, stage: &Stage, id: &str, delay_us: u64) -> Result<bool> {
    let mut c = world.cmd(stage.args, id);
    let _pipes = pipes(&mut c)?;
    let mut child = c.spawn().map_err(|e| format!("spawning rrc: {e}"))?;
    drop(c);
    std::thread::sleep(Duration::from_micros(delay_us));
    let running = child
        .try_wait()
        .map_err(|e| format!("waiting for rrc: {e}"))?
        .is_none();
    if running {
        // Child::kill sends SIGKILL.
        let _ = child.kill();
    }
    let _ = child.wait();
    Ok(running)
}

/// The checks after a kill; each problem starts with "corrupt:",
/// "delete:" or "leftover:".
fn check_after(world: &World, id: &str) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let out = world.rrc(&["state", "{id}"], id)?;
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() {
        match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            Ok(v) if v["id"] == id => {}
            _ => problems.push(format!(
                "corrupt: rrc state printed {:?}",
                String::from_utf8_lossy(&out.stdout)
            )),
        }
    } else if !err.contains("does not exist") {
        problems.push(format!("corrupt: rrc state failed: {err}"));
    }
    let out = world.rrc(&["list", "--format", "json"], id)?;
    let listed = serde_json::from_slice::<serde_json::Value>(&out.stdout);
    if !out.status.success() || listed.is_err() {
        problems.push(format!(
            "corrupt: rrc list: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let pids: Vec<(i32, u64)> = leftovers::recorded_init(&world.root, id)
        .into_iter()
        .collect();
    let out = world.rrc(&["delete", "-f", "{id}"], id)?;
    if !out.status.success() {
        problems.push(format!(
            "delete: rrc delete -f: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let scope = leftovers::Scope {
        id: id.to_string(),
        root: world.root.clone(),
        bundle: world.bundle.clone(),
        pids,
        env_marker: Some(marker()),
        executables: world.criu.iter().cloned().collect(),
    };
    let find = || {
        let mut left = leftovers::find(&scope);
        left.extend(leftovers::find(&leftovers::Scope {
            bundle: world.short.clone(),
            ..scope.clone()
        }));
        left.sort();
        left.dedup();
        // Counted once: a leak that stays is not this kill's.
        left.retain(|l| !world.reported.borrow().contains(l));
        left
    };
    // A process that got its SIGKILL (CRIU from PR_SET_PDEATHSIG, a fork
    // of rrc at the end of its socket) may take a moment to be gone; one
    // still there after PROCESS_GRACE is a leak.
    let mut left = find();
    let deadline = Instant::now() + PROCESS_GRACE;
    while !left.is_empty()
        && left
            .iter()
            .all(|l| l.starts_with("process by id:") || l.contains(" process: "))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        left = find();
    }
    world.reported.borrow_mut().extend(left.iter().cloned());
    problems.extend(left.into_iter().map(|l| format!("leftover: {l}")));
    Ok(problems)
}

/// Gives `c` pipes as stdin (already at end of file), stdout and stderr,
/// and returns the read ends of the last two. Pipes, not /dev/null or
/// files: the container inherits rrc's stdio, and CRIU can dump a pipe
/// but not a host file, whose mount the container does not see ("Can't
/// lookup mount=24 for fd=0 path=/dev/null").
fn pipes(c: &mut Command) -> Result<(std::io::PipeReader, std::io::PipeReader)> {
    let p = |what: &str| std::io::pipe().map_err(|e| format!("pipe for rrc's {what}: {e}"));
    let (stdin, _) = p("stdin")?;
    let (out_r, out_w) = p("stdout")?;
    let (err_r, err_w) = p("stderr")?;
    c.stdin(stdin).stdout(out_w).stderr(err_w);
    Ok((out_r, err_r))
}

/// What is in the pipe now, without waiting for writers that may live on
/// (a container holding rrc's stdio).
fn drain(mut r: std::io::PipeReader) -> Vec<u8> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a pipe fd owned by r.
    unsafe {
        let fl = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(r.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut v = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = r.read(&mut buf) {
        v.extend_from_slice(&buf[..n]);
    }
    v
}

/// Detaches every mount at or below `dir`, deepest first.
fn detach_mounts_under(dir: &Path) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in mounts {
        if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
            // SAFETY: c is a valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
