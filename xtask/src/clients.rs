//! `cargo xtask clients`: rrc under the real clients from Debian, podman 4.3
//! (with conmon) and containerd 1.6 (with `ctr` and the runc v2 shim), each
//! step checking its result.
//!
//! Everything lives under `target/clients/`: podman's configuration,
//! storage, run and temporary directories, containerd's root, state,
//! socket and its shims' rrc root, and the busybox image. Both programs'
//! own defaults (/etc/containers, /var/lib/containerd, ...) are never used.
//! The rootless podman suite runs as a test user in /tmp/rr-clients-rootless
//! (podman refuses a longer runroot), removed at the end.
//! Outside that directory only transient things appear: rrc's default
//! state root /run/rrc (podman passes no --root, which is the point of
//! testing it), containerd's shim sockets under /run/containerd/s and the
//! stdio fifos of `ctr` under /run/containerd/fifo; each is removed when
//! its container is. containerd is started and stopped here, and every
//! container is removed at the end, whatever happened.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// Debian packages, each with a file that shows it is installed.
const PACKAGES: &[(&str, &str)] = &[
    ("busybox-static", "/bin/busybox"),
    ("podman", "/usr/bin/podman"),
    ("conmon", "/usr/bin/conmon"),
    // podman's pods need a pause binary.
    ("catatonit", "/usr/bin/catatonit"),
    // bookworm's name for the CNI plugin binaries podman depends on.
    ("containernetworking-plugins", "/usr/lib/cni/bridge"),
    ("containerd", "/usr/bin/containerd"),
];

/// A check of the work directory after a step's script.
type PostCheck = fn(&Path) -> std::result::Result<(), String>;

/// One check: a bash script, the exit status it must end with and strings
/// its output (stdout and stderr together) must hold.
struct Step {
    name: &'static str,
    script: String,
    code: i32,
    want: Vec<&'static str>,
    /// A check of files the script left in the work directory.
    post: Option<PostCheck>,
}

fn step(name: &'static str, script: impl Into<String>, code: i32, want: &[&'static str]) -> Step {
    Step {
        name,
        script: script.into(),
        code,
        want: want.to_vec(),
        post: None,
    }
}

struct Env {
    work: PathBuf,
    /// Variables every script gets.
    vars: Vec<(String, String)>,
}

impl Env {
    fn command(&self, script: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "180", "bash", "-c"])
            .arg(format!("set -o pipefail\n{script}"))
            .current_dir(&self.work)
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs a script, returning its exit code and combined output.
    fn sh(&self, script: &str) -> (i32, String) {
        match self.command(script).output() {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                (o.status.code().unwrap_or(-1), text)
            }
            Err(e) => (-1, format!("running bash: {e}")),
        }
    }
}

/// Runs the steps of one suite, printing PASS/FAIL per step and the count.
fn run_suite(env: &Env, suite: &str, steps: &[Step]) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    println!("== {suite}: {} steps", steps.len());
    for s in steps {
        let t = Instant::now();
        let (code, out) = env.sh(&s.script);
        let missing: Vec<&str> = s
            .want
            .iter()
            .copied()
            .filter(|w| !out.contains(w))
            .collect();
        let post = match s.post {
            Some(f) if code == s.code => f(&env.work).err(),
            _ => None,
        };
        let secs = t.elapsed().as_secs_f64();
        if code == s.code && missing.is_empty() && post.is_none() {
            passed += 1;
            println!("PASS {suite}: {} ({secs:.1}s)", s.name);
        } else {
            failed += 1;
            println!("FAIL {suite}: {} ({secs:.1}s)", s.name);
            if code != s.code {
                println!("    exit status {code}, expected {}", s.code);
            }
            if !missing.is_empty() {
                println!("    output lacks {missing:?}");
            }
            if let Some(e) = &post {
                println!("    {e}");
            }
            // The clients print rrc's error (podman as `Error: ...rrc: ...`,
            // ctr from the shim's JSON log): show the output's last lines.
            let lines: Vec<&str> = out.lines().collect();
            for l in &lines[lines.len().saturating_sub(12)..] {
                println!("    | {l}");
            }
        }
        let _ = std::io::stdout().flush();
    }
    println!("{suite}: {passed} passed, {failed} failed");
    (passed, failed)
}

/// Mount points under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v.dedup();
    v
}

fn unmount_all(dir: &Path) {
    for m in mounts_under(dir) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&m)
            .stderr(Stdio::null())
            .status();
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes podman's containers.conf and storage.conf into `dir`: storage,
/// network config and event log all under `dir`, cgroupfs, no network.
/// Root podman also gets its tmp_dir there; rootless podman keeps its own
/// default (under XDG_RUNTIME_DIR), which the test user can write.
fn write_podman_conf(dir: &Path, ulimits: &[&str], with_tmp_dir: bool) -> Result<()> {
    let d = dir.display();
    let ulimits: Vec<String> = ulimits.iter().map(|u| format!("\"{u}\"")).collect();
    let tmp_dir = if with_tmp_dir {
        format!("tmp_dir = \"{d}/tmp\"\n")
    } else {
        String::new()
    };
    write(
        &dir.join("containers.conf"),
        &format!(
            "[containers]\nnetns = \"none\"\n\
             default_ulimits = [{}]\n\
             log_driver = \"k8s-file\"\n\
             [network]\nnetwork_config_dir = \"{d}/net\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n{tmp_dir}",
            ulimits.join(", ")
        ),
    )?;
    write(
        &dir.join("storage.conf"),
        &format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n"),
    )
}

/// podman's private configuration: its own storage and run directories,
/// cgroupfs, file events, no network, and rlimits this machine can set (it
/// lacks CAP_SYS_RESOURCE, so podman's default of 1048576 open files would
/// fail, and the nproc limit must stay under the one conmon gets).
fn podman_setup(dir: &Path) -> Result<Vec<(String, String)>> {
    for d in ["root", "runroot", "tmp", "net"] {
        mkdir(&dir.join(d))?;
    }
    write_podman_conf(dir, &["nofile=1024:1024", "nproc=4096:4096"], true)?;
    Ok(vec![
        (
            "CONTAINERS_CONF".into(),
            dir.join("containers.conf").display().to_string(),
        ),
        (
            "CONTAINERS_STORAGE_CONF".into(),
            dir.join("storage.conf").display().to_string(),
        ),
    ])
}

fn podman_cmd(dir: &Path, rrc: &Path) -> String {
    let d = dir.display();
    format!(
        "podman --root {d}/root --runroot {d}/runroot --tmpdir {d}/tmp \
         --cgroup-manager cgroupfs --events-backend file --runtime {}",
        rrc.display()
    )
}

/// The user rootless podman runs as: the black-box tests' rootless user,
/// made here (with a /etc/subuid range, which useradd gives) if missing.
const ROOTLESS_USER: &str = "rr-rootless-test";

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id")
        .arg(flag)
        .arg(ROOTLESS_USER)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn rootless_user() -> Result<(u32, u32)> {
    if id_of("-u").is_none() {
        let _ = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", ROOTLESS_USER])
            .status();
    }
    let ids = id_of("-u").zip(id_of("-g"));
    let (uid, gid) =
        ids.ok_or_else(|| format!("no user {ROOTLESS_USER}, and useradd could not make one"))?;
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        if !text
            .lines()
            .any(|l| l.starts_with(&format!("{ROOTLESS_USER}:")))
        {
            return Err(format!(
                "{f} has no range for {ROOTLESS_USER}; rootless podman needs one"
            ));
        }
    }
    Ok((uid, gid))
}

/// Rootless podman's world under `dir`, owned by the test user: home,
/// XDG_RUNTIME_DIR, storage, configuration, and copies of rrc and the
/// image (the user cannot be assumed to reach target/). Returns `$PR`,
/// podman run as that user with `--runtime` rrc, and `$RX`, its
/// XDG_RUNTIME_DIR. podman runs rrc as uid 0 of its user namespace.
fn rootless_setup(dir: &Path, rrc: &Path, tar: &Path) -> Result<Vec<(String, String)>> {
    let (uid, gid) = rootless_user()?;
    for d in ["home", "xdg", "root", "runroot", "tmp", "net"] {
        mkdir(&dir.join(d))?;
    }
    write_podman_conf(dir, &["nofile=1024:1024"], false)?;
    let d = dir.display();
    for (from, to) in [(rrc, "rrc"), (tar, "busybox.tar")] {
        std::fs::copy(from, dir.join(to)).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    crate::run(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(dir),
    )?;
    crate::run(Command::new("chmod").arg("700").arg(dir.join("xdg")))?;
    let pr = format!(
        "setpriv --reuid={uid} --regid={gid} --init-groups env -i HOME={d}/home \
         XDG_RUNTIME_DIR={d}/xdg USER={ROOTLESS_USER} PATH=/usr/sbin:/usr/bin:/sbin:/bin \
         CONTAINERS_CONF={d}/containers.conf CONTAINERS_STORAGE_CONF={d}/storage.conf \
         podman --root {d}/root --runroot {d}/runroot --tmpdir {d}/tmp \
         --cgroup-manager cgroupfs --events-backend file --runtime {d}/rrc"
    );
    Ok(vec![("PR".into(), pr), ("RX".into(), format!("{d}/xdg"))])
}

/// The rootless podman suite: `$PR` is podman as the test user.
fn rootless_steps() -> Vec<Step> {
    vec![
        step(
            "rootless run --rm prints the output",
            "$PR run --rm $B sh -c 'echo hello-rootless uid=$(id -u)'",
            0,
            &["hello-rootless uid=0"],
        ),
        step("rootless run: exit code 3 propagates", "$PR run --rm $B sh -c 'exit 3'", 3, &[]),
        step(
            "rootless run -d, exec, stop, rm",
            "$PR run -d --name rl $B sleep 1000 >/dev/null && $PR exec rl sh -c 'echo exec-ok uid=$(id -u)' \
             && $PR stop -t 1 rl >/dev/null && $PR rm rl >/dev/null && echo removed",
            0,
            &["exec-ok uid=0", "removed"],
        ),
        step(
            "rootless: rrc's state under $XDG_RUNTIME_DIR/rrc, none under /run/rrc",
            "$PR run -d --name rs $B sleep 1000 >/dev/null && cid=$($PR inspect rs --format '{{.Id}}') \
             && test -f $RX/rrc/$cid/state.json && echo state-in-xdg; \
             test -e /run/rrc/$cid || echo not-in-run; $PR rm -f -t 0 rs >/dev/null; \
             test -e $RX/rrc/$cid || echo state-removed",
            0,
            &["state-in-xdg", "not-in-run", "state-removed"],
        ),
        // On cgroup v1 podman drops limits it cannot have rootless (it says
        // so); on v2 with delegation they apply. Either way the run works.
        step(
            "rootless run --memory: ignored (cgroup v1) or applied, as with runc",
            "$PR run --rm --memory 64m $B sh -c 'echo mem-ran'",
            0,
            &["mem-ran"],
        ),
    ]
}

/// Removes rootless podman's containers and storage and stops its pause
/// process (it keeps podman's user namespace alive).
fn rootless_cleanup(env: &Env, dir: &Path) {
    env.sh("$PR rm -af -t 0; $PR system reset --force");
    let pid_file = dir.join("tmp").join("pause.pid");
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
}

fn containerd_config(dir: &Path) -> Result<PathBuf> {
    for d in ["root", "state", "rrc-root"] {
        mkdir(&dir.join(d))?;
    }
    let d = dir.display();
    let path = dir.join("config.toml");
    write(
        &path,
        &format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n"
        ),
    )?;
    Ok(path)
}

/// containerd, running until dropped.
struct Containerd {
    child: std::process::Child,
}

impl Containerd {
    fn start(config: &Path, dir: &Path) -> Result<Containerd> {
        let log = std::fs::File::create(dir.join("containerd.log"))
            .map_err(|e| format!("{}: {e}", dir.join("containerd.log").display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting containerd: {e}"))?;
        let sock = dir.join("containerd.sock");
        let t = Instant::now();
        while !sock.exists() {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "containerd did not create {} within 30 s (see {})",
                    sock.display(),
                    dir.join("containerd.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Containerd { child })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SIGTERM lets containerd close its sockets; the shims of deleted
        // tasks are gone already.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A busybox root filesystem as a tar file, made from busybox-static.
fn busybox_tar(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    rr_tests::make_busybox_rootfs(&rootfs).map_err(|e| format!("busybox rootfs: {e}"))?;
    let tar = dir.join("busybox.tar");
    crate::run(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )?;
    Ok(tar)
}

/// The podman suite's steps. `$P` is podman with its private flags and
/// `--runtime rrc`, `$B` the image, `$W` the work directory.
fn podman_steps() -> Vec<Step> {
    // The count is written whole (mv), so a reader never sees the file
    // between its truncation and the write.
    let counter = "'i=0; trap \"exit 0\" TERM; while true; do i=$((i+1)); echo $i > /tmp/cnt.new; mv /tmp/cnt.new /tmp/cnt; sleep 0.1; done'";
    vec![
        step("run --rm prints the output", "$P run --rm $B echo hello-rr", 0, &["hello-rr"]),
        step("run: exit code 3 propagates", "$P run --rm $B sh -c 'exit 3'", 3, &[]),
        step(
            "run: user, env, hostname",
            "$P run --rm --user 65534:65534 -e FOO=bar-env --hostname rr-host $B sh -c 'echo uid=$(id -u) gid=$(id -g); echo $FOO; hostname'",
            0,
            &["uid=65534 gid=65534", "bar-env", "rr-host"],
        ),
        step(
            "run --read-only: / is read-only, /tmp writable",
            "$P run --rm --read-only $B sh -c 'touch /x 2>&1; touch /tmp/y && echo tmp-writable'",
            0,
            &["Read-only file system", "tmp-writable"],
        ),
        step(
            "run --cap-drop all: no capabilities",
            "$P run --rm --cap-drop all $B sh -c 'grep -E \"^Cap(Eff|Prm|Bnd)\" /proc/self/status; chown 1 /tmp 2>&1; true'",
            0,
            &["CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "Operation not permitted"],
        ),
        step(
            "run -v dir:/v:ro: readable, not writable",
            "mkdir -p vol && echo vol-data > vol/f && $P run --rm -v $W/vol:/v:ro $B sh -c 'cat /v/f; touch /v/g 2>&1'",
            1,
            &["vol-data", "Read-only file system"],
        ),
        step(
            "run -d, with the default rrc root (podman passes no --root)",
            "id=$($P run -d --name web $B sh -c 'trap \"echo got-TERM; exit 0\" TERM; echo started; while true; do sleep 0.2; done') && test -f /run/rrc/$id/state.json && echo state-in-default-root",
            0,
            &["state-in-default-root"],
        ),
        step("ps lists it", "$P ps --format '{{.Names}} {{.Status}}'", 0, &["web Up"]),
        step("exec: output", "$P exec web echo in-exec", 0, &["in-exec"]),
        step("exec: exit code 7", "$P exec web sh -c 'exit 7'", 7, &[]),
        step("exec -t: a terminal", "$P exec -t web tty", 0, &["/dev/pts/"]),
        step("logs", "$P logs web", 0, &["started"]),
        step(
            "stop: the process sees SIGTERM and exits 0",
            "$P stop -t 20 web >/dev/null && echo exit=$($P inspect web --format '{{.State.ExitCode}}') && $P logs web",
            0,
            &["exit=0", "got-TERM"],
        ),
        step(
            "rm",
            "$P rm web && ! $P container exists web && echo removed",
            0,
            &["removed"],
        ),
        step(
            "--memory 64m --pids-limit 20 --cpus 0.5 seen inside",
            "$P run --rm --memory 64m --pids-limit 20 --cpus 0.5 $B sh -c '\
             cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); \
             echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max)'",
            0,
            &["67108864", "pids=20", "quota=50000"],
        ),
        step(
            "--pids-limit 20 enforced: fork fails at the limit",
            "$P run --rm --pids-limit 20 $B sh -c 'for i in $(seq 1 40); do sleep 3 & done'; echo code=$?",
            0,
            &["can't fork", "code=2"],
        ),
        step(
            "--memory 64m enforced: a hog is OOM-killed",
            "$P run --name hog --memory 64m --memory-swap 64m $B sh -c 'x=$(head -c 300000000 /dev/zero | tr \"\\0\" a); echo survived'; echo code=$?; $P rm -f hog >/dev/null",
            0,
            &["code=137"],
        ),
        step("run -t: a terminal", "$P run --rm -t $B tty", 0, &["/dev/pts/0"]),
        step(
            "run -it with piped input",
            "printf 'echo piped-$((6*7))\\nexit 5\\n' | $P run --rm -i -t $B sh 2>/dev/null",
            5,
            &["piped-42"],
        ),
        step(
            "pause/unpause: a counter stops and goes on",
            format!(
                "$P run -d --name cnt $B sh -c {counter} >/dev/null && sleep 1 && \
                 pid=$($P inspect cnt --format '{{{{.State.Pid}}}}') && $P pause cnt >/dev/null && \
                 $P ps -a --format '{{{{.Names}}}} {{{{.Status}}}}' --filter name=cnt && \
                 a=$(cat /proc/$pid/root/tmp/cnt) && sleep 1 && b=$(cat /proc/$pid/root/tmp/cnt) && \
                 test \"$a\" = \"$b\" && echo stopped-at-$a && $P unpause cnt >/dev/null && sleep 1 && \
                 c=$(cat /proc/$pid/root/tmp/cnt) && test \"$c\" -gt \"$b\" && echo goes-on"
            ),
            0,
            &["cnt Paused", "stopped-at-", "goes-on"],
        ),
        step(
            "kill -s USR1 reaches the process",
            "$P run -d --name sig $B sh -c 'trap \"echo got-USR1\" USR1; trap \"exit 0\" TERM; while true; do sleep 0.2; done' >/dev/null && sleep 0.5 && $P kill -s USR1 sig >/dev/null && sleep 1 && $P logs sig",
            0,
            &["got-USR1"],
        ),
        step(
            "restart: a new process, running",
            "a=$($P inspect sig --format '{{.State.Pid}}') && $P restart -t 20 sig >/dev/null && b=$($P inspect sig --format '{{.State.Pid}} {{.State.Status}}') && echo \"$a -> $b\" && test \"$a\" != \"${b% *}\" && echo restarted",
            0,
            &["running", "restarted"],
        ),
        step(
            "joining another container's net, pid and ipc namespaces",
            "pid=$($P inspect cnt --format '{{.State.Pid}}') && want=$(for n in net pid ipc; do printf '%s ' $(readlink /proc/$pid/ns/$n); done) && \
             got=$($P run --rm --net container:cnt --pid container:cnt --ipc container:cnt $B sh -c 'for n in net pid ipc; do printf \"%s \" $(readlink /proc/self/ns/$n); done; echo; ps') && echo \"$got\" && \
             test \"$want\" = \"$(echo \"$got\" | head -n1)\" && echo same-namespaces",
            0,
            &["same-namespaces", "while true"],
        ),
        step(
            "a pod: shared uts and net",
            "$P pod create --name pod1 >/dev/null && $P run -d --pod pod1 --name podc $B sleep 1000 >/dev/null && \
             $P pod ps --format '{{.Name}} {{.Status}} {{.NumberOfContainers}}' && $P run --rm --pod pod1 $B hostname && \
             a=$($P inspect podc --format '{{.State.Pid}}') && b=$($P inspect $($P pod inspect pod1 --format '{{.InfraContainerID}}') --format '{{.State.Pid}}') && \
             test \"$(readlink /proc/$a/ns/net)\" = \"$(readlink /proc/$b/ns/net)\" && echo same-net && $P pod rm -f -t 0 pod1 >/dev/null && echo pod-removed",
            0,
            &["pod1 Running 2", "same-net", "pod-removed"],
        ),
        step(
            "rm -f of a running container leaves no state",
            "id=$($P run -d --name rmf $B sleep 1000) && $P rm -f -t 0 rmf >/dev/null && ! $P container exists rmf && test ! -e /run/rrc/$id && echo removed-clean",
            0,
            &["removed-clean"],
        ),
        step(
            "container checkpoint / restore (CRIU 4.x)",
            "a=$($P exec cnt cat /tmp/cnt) && $P container checkpoint cnt >/dev/null && \
             echo status=$($P inspect cnt --format '{{.State.Status}}') && $P container restore cnt >/dev/null && sleep 1 && \
             b=$($P exec cnt cat /tmp/cnt) && echo \"$a -> $b\" && test \"$b\" -gt \"$a\" && echo restored-and-counting",
            0,
            &["status=exited", "restored-and-counting"],
        ),
        step(
            "checkpoint --export / restore --import",
            "a=$($P exec cnt cat /tmp/cnt) && $P container checkpoint cnt --export $W/cnt.tar.gz >/dev/null && \
             $P rm -f cnt >/dev/null && $P container restore --import $W/cnt.tar.gz >/dev/null && sleep 1 && \
             b=$($P exec cnt cat /tmp/cnt) && echo \"$a -> $b\" && test \"$b\" -gt \"$a\" && echo imported-and-counting",
            0,
            &["imported-and-counting"],
        ),
    ]
}

/// The containerd suite's steps. `$C` is ctr on the private socket, `$R`
/// the runtime flags (runc v2 shim, rrc as its runc binary and root), `$I`
/// the image.
fn containerd_steps() -> Vec<Step> {
    let loop_sh = "'trap \"exit 0\" TERM; while true; do sleep 0.2; done'";
    vec![
        step("run: output", "$C run --rm $R $I c-out echo hello-rr", 0, &["hello-rr"]),
        step("run: exit code 3", "$C run --rm $R $I c-exit sh -c 'exit 3'", 3, &[]),
        step(
            "run -d: a detached task",
            format!("$C run -d $R $I c-d sh -c {loop_sh} && sleep 0.5 && $C task ls"),
            0,
            &["RUNNING"],
        ),
        step("task exec: output", "$C task exec --exec-id e1 c-d echo in-exec", 0, &["in-exec"]),
        step("task exec: exit code 7", "$C task exec --exec-id e2 c-d sh -c 'exit 7'", 7, &[]),
        step(
            "task exec -t: a terminal",
            "script -qec \"$C task exec -t --exec-id e3 c-d tty\" /dev/null",
            0,
            &["/dev/pts/"],
        ),
        step(
            "task ps: the task's processes",
            "pid=$($C task ls | awk '$1==\"c-d\"{print $2}') && $C task ps c-d > task-ps.txt && grep -q \"^$pid \" task-ps.txt && echo init-listed",
            0,
            &["init-listed"],
        ),
        step(
            "task pause / resume",
            "$C task pause c-d && $C task ls | grep c-d && $C task resume c-d && $C task ls | grep c-d",
            0,
            &["PAUSED", "RUNNING"],
        ),
        step(
            "task kill TERM, task delete",
            "$C task kill -s TERM c-d && sleep 1 && $C task ls | grep c-d; $C task delete c-d && $C container rm c-d && echo deleted",
            0,
            &["STOPPED", "deleted"],
        ),
        step(
            "task kill KILL",
            "$C run -d $R $I c-k sleep 1000 && sleep 0.5 && $C task kill -s KILL c-k && sleep 1 && $C task delete c-k 2>&1; $C container rm c-k",
            0,
            &["exit code 137"],
        ),
        step(
            "--memory-limit seen inside",
            "$C run --rm $R --memory-limit 67108864 --mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro $I c-mem sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'",
            0,
            &["67108864"],
        ),
        step(
            "--memory-limit enforced: a hog is OOM-killed",
            "$C run --rm $R --memory-limit 67108864 $I c-hog sh -c 'x=$(head -c 300000000 /dev/zero | tr \"\\0\" a); echo survived'",
            137,
            &[],
        ),
        step(
            "run -t: a terminal",
            "script -qec \"$C run --rm -t $R $I c-t tty\" /dev/null",
            0,
            &["/dev/pts/0"],
        ),
        step(
            "run -t: an interactive terminal",
            "printf 'echo typed-$((6*7))\\nexit 4\\n' | script -qec \"$C run --rm -t $R $I c-it sh\" /dev/null",
            4,
            &["typed-42"],
        ),
        step(
            "--with-ns: joining another task's namespaces",
            "$C run -d $R $I c-ns sleep 1000 && sleep 0.5 && pid=$($C task ls | awk '$1==\"c-ns\"{print $2}') && \
             $C run --rm $R --with-ns pid:/proc/$pid/ns/pid --with-ns network:/proc/$pid/ns/net --with-ns ipc:/proc/$pid/ns/ipc $I c-join sh -c 'ps; readlink /proc/self/ns/net' && readlink /proc/$pid/ns/net; \
             $C task kill -s KILL c-ns; sleep 1; $C task delete c-ns >/dev/null 2>&1; $C container rm c-ns",
            0,
            &["sleep 1000"],
        ),
        step(
            "an rrc error reaches ctr through the shim's JSON log",
            "$C run --rm $R $I c-bad /no/such/binary; echo code=$?",
            0,
            &["/no/such/binary", "code=1"],
        ),
        Step {
            post: Some(check_features_json),
            ..step(
                "rrc features: the runtime-spec features document",
                "$RRC features > features.json && echo features-written",
                0,
                &["features-written"],
            )
        },
    ]
}

/// `rrc features` wrote JSON of the runtime-spec's shape.
fn check_features_json(work: &Path) -> std::result::Result<(), String> {
    let text = std::fs::read_to_string(work.join("features.json")).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    for key in [
        "ociVersionMin",
        "ociVersionMax",
        "hooks",
        "mountOptions",
        "linux",
    ] {
        if v.get(key).is_none() {
            return Err(format!("rrc features lacks {key}"));
        }
    }
    let ns = v["linux"]["namespaces"]
        .as_array()
        .ok_or("rrc features: linux.namespaces is not a list")?;
    if !ns.iter().any(|n| n == "pid") {
        return Err("rrc features: linux.namespaces lacks pid".into());
    }
    Ok(())
}

fn podman_remove_all(env: &Env) {
    env.sh("$P pod rm -af -t 0; $P rm -af -t 0");
}

fn podman_cleanup(env: &Env) {
    podman_remove_all(env);
    env.sh("$P system reset --force");
}

fn containerd_cleanup(env: &Env) {
    env.sh(
        "for t in $($C task ls -q 2>/dev/null); do $C task kill -s KILL $t; done; sleep 1; \
         for t in $($C task ls -q 2>/dev/null); do $C task delete -f $t; done; \
         for c in $($C container ls -q 2>/dev/null); do $C container rm $c; done",
    );
}

/// `cargo xtask clients [podman|podman-rootless|containerd]...`
pub fn main(args: &[String]) -> ExitCode {
    match clients(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask clients: {e}");
            ExitCode::FAILURE
        }
    }
}

fn clients(args: &[String]) -> Result<bool> {
    for a in args {
        if !["podman", "podman-rootless", "containerd"].contains(&a.as_str()) {
            return Err(format!(
                "unknown suite {a:?} (podman, podman-rootless, containerd)"
            ));
        }
    }
    let want = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    if !crate::is_root() {
        return Err("podman and containerd run containers as root here: run as root".into());
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        return Err("needs Debian's podman, conmon and containerd (apt-get not found)".into());
    }
    let started = Instant::now();
    let run_containerd = Path::new("/run/containerd");
    let had_run_containerd = run_containerd.exists();
    crate::ensure_packages(PACKAGES)?;
    let rrc = crate::build_rrc(false)?;
    let target = crate::target_dir();
    // podman needs `criu` in PATH; CRIU 4.2.1, as `cargo xtask test` uses.
    let criu = crate::criu_build::ensure_criu(&target.join("tools"))?;

    let work = target.join("clients");
    let pdir = work.join("podman");
    let cdir = work.join("containerd");
    // A run that was killed may have left podman's overlay mounts.
    if pdir.join("containers.conf").exists() {
        let p = podman_cmd(&pdir, &rrc);
        let _ = Command::new("bash")
            .arg("-c")
            .arg(format!("{p} rm -af -t 0; {p} system reset --force"))
            .env("CONTAINERS_CONF", pdir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", pdir.join("storage.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    unmount_all(&work);
    let _ = std::fs::remove_dir_all(&work);
    let bin = work.join("bin");
    mkdir(&bin)?;
    std::os::unix::fs::symlink(&criu, bin.join("criu"))
        .map_err(|e| format!("{}: {e}", bin.join("criu").display()))?;
    let tar = busybox_tar(&work)?;

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    );
    let mut vars = podman_setup(&pdir)?;
    vars.extend([
        ("PATH".to_string(), path),
        ("W".into(), work.display().to_string()),
        ("RRC".into(), rrc.display().to_string()),
        ("P".into(), podman_cmd(&pdir, &rrc)),
        ("B".into(), "localhost/rr-busybox:latest".into()),
        (
            "C".into(),
            format!("ctr -a {}/containerd.sock -n rr", cdir.display()),
        ),
        (
            "R".into(),
            format!(
                "--runtime io.containerd.runc.v2 --runc-binary {} --runc-root {}/rrc-root",
                rrc.display(),
                cdir.display()
            ),
        ),
        ("I".into(), "localhost/rr-busybox:latest".into()),
    ]);
    let env = Env {
        work: work.clone(),
        vars,
    };

    let (mut passed, mut failed) = (0, 0);
    // The image: imported into podman, then saved as an OCI archive for
    // containerd.
    let (code, out) = env.sh(&format!("$P import {} $B", tar.display()));
    if code != 0 {
        podman_cleanup(&env);
        unmount_all(&work);
        return Err(format!("podman import failed: {out}"));
    }
    let config = containerd_config(&cdir)?;
    let (code, out) = env.sh(&format!(
        "$P save --format oci-archive -o {d}/busybox-oci.tar $B",
        d = cdir.display()
    ));
    if code != 0 {
        podman_cleanup(&env);
        unmount_all(&work);
        return Err(format!("podman save failed: {out}"));
    }
    if want("podman") {
        let (p, f) = run_suite(&env, "podman", &podman_steps());
        passed += p;
        failed += f;
        podman_remove_all(&env);
    }
    if want("podman-rootless") {
        // Not under target/: podman refuses a runroot path longer than 50
        // characters.
        let rdir = std::env::temp_dir().join("rr-clients-rootless");
        unmount_all(&rdir);
        let _ = std::fs::remove_dir_all(&rdir);
        let result = rootless_setup(&rdir, &rrc, &tar).and_then(|vars| {
            let mut vars_all = env.vars.clone();
            vars_all.extend(vars);
            let renv = Env {
                work: work.clone(),
                vars: vars_all,
            };
            let (code, out) = renv.sh(&format!("$PR import {}/busybox.tar $B", rdir.display()));
            let counts = if code == 0 {
                Ok(run_suite(&renv, "podman-rootless", &rootless_steps()))
            } else {
                Err(format!("rootless podman import failed: {out}"))
            };
            rootless_cleanup(&renv, &rdir);
            counts
        });
        unmount_all(&rdir);
        let _ = std::fs::remove_dir_all(&rdir);
        match result {
            Ok((p, f)) => {
                passed += p;
                failed += f;
            }
            Err(e) => {
                println!("FAIL podman-rootless: {e}");
                failed += 1;
            }
        }
    }
    if want("containerd") {
        let result = (|| -> Result<(usize, usize)> {
            let _containerd = Containerd::start(&config, &cdir)?;
            let (code, out) = env.sh(&format!(
                "$C images import --base-name localhost/rr-busybox {}/busybox-oci.tar",
                cdir.display()
            ));
            if code != 0 {
                return Err(format!("ctr images import failed: {out}"));
            }
            let (p, f) = run_suite(&env, "containerd", &containerd_steps());
            containerd_cleanup(&env);
            Ok((p, f))
        })();
        let (p, f) = match result {
            Ok(r) => r,
            Err(e) => {
                podman_cleanup(&env);
                unmount_all(&work);
                return Err(e);
            }
        };
        passed += p;
        failed += f;
    }
    podman_cleanup(&env);
    unmount_all(&work);
    if !had_run_containerd {
        // ctr and the shims leave their (by now empty) fifo and socket
        // directories; remove_dir only removes empty ones.
        for d in ["fifo", "s", "runc"] {
            let _ = std::fs::remove_dir(run_containerd.join(d));
        }
        let _ = std::fs::remove_dir(run_containerd);
    }
    println!("clients: {:.0} s in all", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
