//! The rootfs and its mounts as runc makes them: recursive mount
//! attributes, a read-only /dev, procfs over a symlink, namespaces left to
//! the runtime, bind sources out of a user namespace's reach, and shared
//! volumes (issue 14).

use std::path::{Path, PathBuf};
use std::process::Command;

use rr_tests::mounts::{add_mount, has_mount_setattr, mount_count, HostMount};
use rr_tests::{messages, require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::json;

macro_rules! require_mount_setattr {
    () => {
        if !has_mount_setattr() {
            eprintln!("SKIPPED: the kernel has no mount_setattr(2)");
            return;
        }
    };
}

/// A host directory holding a tmpfs submount at `sub`: the source of a
/// bind whose recursive options must reach the submount too.
fn volume_with_submount(env: &TestEnv) -> (PathBuf, HostMount) {
    let vol = env.dir.path().join("vol");
    std::fs::create_dir_all(&vol).expect("mkdir vol");
    let sub = HostMount::tmpfs(&vol.join("sub"));
    (vol, sub)
}

/// The mountinfo line of `dest` as the container printed it.
fn mount_line<'a>(out: &'a str, dest: &str) -> Option<&'a str> {
    out.lines()
        .find(|l| l.split(' ').nth(4) == Some(dest) && l.contains(" - "))
}

/// The per-mount options (sixth field) of a mountinfo line.
fn mount_opts(line: &str) -> Vec<&str> {
    line.split(' ').nth(5).unwrap_or("").split(',').collect()
}

const SHOW: &str = "grep -E ' /v(/sub)? ' /proc/self/mountinfo";

/// `rbind,rro`: the bind and the submount it carries are read-only inside.
#[test]
fn rro_makes_the_bind_and_its_submounts_read_only() {
    require_env!();
    require_mount_setattr!();
    let script =
        format!("touch /v/a && echo WROTE-TOP; touch /v/sub/b && echo WROTE-SUB; {SHOW}; true");
    let env = TestEnv::new(&["sh", "-c", &script]);
    let (vol, _sub) = volume_with_submount(&env);
    add_mount(
        &env,
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["rbind", "rro"]}),
    );
    let id = unique_id("rro");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("WROTE"), "a write went through:\n{text}");
    assert!(!vol.join("a").exists() && !vol.join("sub/b").exists());
    for dest in ["/v", "/v/sub"] {
        let line = mount_line(&text, dest).unwrap_or_else(|| panic!("{dest} not in\n{text}"));
        assert!(mount_opts(line).contains(&"ro"), "{dest} not ro: {line}");
    }
    env.assert_no_leftovers(&id);
}

/// The other recursive attributes reach the submount, as mountinfo shows.
#[test]
fn recursive_flags_and_atime_reach_the_submount() {
    require_env!();
    require_mount_setattr!();
    let env = TestEnv::new(&["sh", "-c", SHOW]);
    let (vol, _sub) = volume_with_submount(&env);
    add_mount(
        &env,
        json!({"destination": "/v", "type": "bind", "source": vol,
               "options": ["rbind", "rnosuid", "rnodev", "rnoexec", "rnosymfollow", "rnoatime"]}),
    );
    let id = unique_id("rflags");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for dest in ["/v", "/v/sub"] {
        let line = mount_line(&text, dest).unwrap_or_else(|| panic!("{dest} not in\n{text}"));
        let o = mount_opts(line);
        for want in ["rw", "nosuid", "nodev", "noexec", "nosymfollow", "noatime"] {
            assert!(o.contains(&want), "{dest} lacks {want}: {line}");
        }
    }
    env.assert_no_leftovers(&id);
}

/// A later option undoes an earlier one: `rro,rrw` leaves it writable,
/// `rnoatime,rstrictatime` gives strict atime.
#[test]
fn later_recursive_option_wins() {
    require_env!();
    require_mount_setattr!();
    let env = TestEnv::new(&["sh", "-c", SHOW]);
    let (vol, _sub) = volume_with_submount(&env);
    add_mount(
        &env,
        json!({"destination": "/v", "type": "bind", "source": vol,
               "options": ["rbind", "rro", "rrw", "rnoatime", "rstrictatime"]}),
    );
    let id = unique_id("rlater");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = mount_line(&text, "/v/sub").unwrap_or_else(|| panic!("no /v/sub in\n{text}"));
    let o = mount_opts(line);
    assert!(o.contains(&"rw"), "{line}");
    assert!(
        !o.contains(&"noatime") && !o.contains(&"relatime"),
        "{line}"
    );
}

/// An option rrc does not implement is refused, naming the mount and the
/// option, before anything is made.
#[test]
fn unknown_mount_option_is_refused_by_name() {
    require_env!();
    let cases = [
        (
            json!({"destination": "/v", "type": "bind", "source": "/tmp", "options": ["rbind", "rfoo"]}),
            "rfoo",
        ),
        (
            json!({"destination": "/v", "type": "bind", "source": "/tmp", "options": ["bind", "noacl"]}),
            "noacl",
        ),
        (
            json!({"destination": "/v", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
            "idmap",
        ),
    ];
    for (m, bad) in cases {
        let env = TestEnv::new(&["true"]);
        add_mount(&env, m.clone());
        let index = mount_count(&env) - 1;
        let id = unique_id("badopt");
        let out = env.rrc_bundle("create", &[&id]);
        assert!(!out.status.success(), "{m} accepted");
        let err = messages(&out);
        for want in [
            format!("mounts[{index}]"),
            "/v".to_string(),
            format!("{bad:?}"),
        ] {
            assert!(err.contains(&want), "{m}: {want} not in: {err}");
        }
        env.assert_no_leftovers(&id);
    }
}

/// A read-only /dev: its submounts and devices are made first, then /dev
/// becomes read-only (runc's order).
#[test]
fn read_only_dev_gets_its_submounts() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "touch /dev/x && echo WROTE; test -c /dev/null && echo NULL-OK; grep -E ' /dev(/pts)? ' /proc/self/mountinfo",
    ]);
    env.edit_config(|c| {
        for m in c["mounts"].as_array_mut().expect("mounts") {
            if m["destination"] == "/dev" {
                m["options"]
                    .as_array_mut()
                    .expect("options")
                    .push(json!("ro"));
            }
        }
    });
    let id = unique_id("rodev");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("WROTE"), "/dev writable:\n{text}");
    assert!(text.contains("NULL-OK"), "no /dev/null:\n{text}");
    let dev = mount_line(&text, "/dev").unwrap_or_else(|| panic!("no /dev in\n{text}"));
    assert!(mount_opts(dev).contains(&"ro"), "{dev}");
    let pts = mount_line(&text, "/dev/pts").unwrap_or_else(|| panic!("no /dev/pts in\n{text}"));
    assert!(mount_opts(pts).contains(&"rw"), "{pts}");
    env.assert_no_leftovers(&id);
}

/// A read-only tmpfs with `tmpcopyup` is filled before it is made read-only.
#[test]
fn read_only_tmpcopyup_is_filled_first() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "cat /etc/marker; touch /etc/x && echo WROTE; true",
    ]);
    std::fs::write(env.bundle.join("rootfs/etc/marker"), "MARKER\n").expect("marker");
    add_mount(
        &env,
        json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
               "options": ["ro", "nosuid", "tmpcopyup"]}),
    );
    let id = unique_id("rocopyup");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("MARKER"), "not copied up:\n{text}");
    assert!(!text.contains("WROTE"), "tmpfs writable:\n{text}");
}

/// procfs over a symlink: refused in runc's words, which tools match on.
#[test]
fn proc_over_a_symlink_says_runcs_words() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let rootfs = env.bundle.join("rootfs");
    std::fs::remove_dir(rootfs.join("proc")).expect("rmdir");
    std::os::unix::fs::symlink("/tmp", rootfs.join("proc")).expect("symlink");
    let id = unique_id("proclink");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(!out.status.success());
    let err = messages(&out);
    assert!(
        err.contains("filesystem \"proc\" must be mounted on ordinary directory"),
        "{err}"
    );
    env.assert_no_leftovers(&id);
}

/// Runs `script` under `sh` in a new private mount namespace, so that what
/// a container without its own mount namespace does stays off the host.
fn in_private_mount_ns(script: &str) -> std::process::Output {
    rr_tests::run_to_exit({
        let mut c = Command::new("timeout");
        c.args([
            "120",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
        ]);
        c
    })
}

fn without_mount_ns(env: &TestEnv) {
    env.edit_config(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "mount");
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
        c["root"]["readonly"] = json!(false);
    });
}

/// No mount namespace in the spec: the container is in the runtime's (as
/// runc runs it), its root is still the rootfs, and what was mounted for
/// it is gone with it.
#[test]
fn mount_namespace_not_listed_is_inherited() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/mnt > /inner; test -x /bin/busybox && echo > /in-rootfs",
    ]);
    without_mount_ns(&env);
    let rrc = rr_tests::rrc_bin();
    let (root, bundle) = (env.root.display(), env.bundle.display());
    let id = unique_id("inherit-mnt");
    let script = format!(
        "readlink /proc/self/ns/mnt; \
         {rrc} --root {root} create -b {bundle} {id} || exit 1; \
         echo mounted=$(grep -c '{bundle}/' /proc/self/mountinfo); \
         {rrc} --root {root} start {id} || exit 1; \
         for i in $(seq 100); do test -e {bundle}/rootfs/in-rootfs && break; sleep 0.1; done; \
         {rrc} --root {root} delete -f {id} || exit 1; \
         echo left=$(grep -c '{bundle}/' /proc/self/mountinfo)",
        rrc = rrc.display()
    );
    let out = in_private_mount_ns(&script);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let outer = text.lines().next().unwrap_or("").to_string();
    let inner = std::fs::read_to_string(env.bundle.join("rootfs/inner")).expect("inner ns");
    assert_eq!(
        inner.trim(),
        outer.trim(),
        "not the runtime's mount namespace"
    );
    assert!(
        env.bundle.join("rootfs/in-rootfs").exists(),
        "root not the rootfs"
    );
    assert!(!text.contains("mounted=0"), "nothing mounted:\n{text}");
    assert!(text.contains("left=0"), "mounts left behind:\n{text}");
}

/// Without a mount namespace, a create that fails half-way (its last mount
/// has no source) takes back what it had mounted in the runtime's.
#[test]
fn failed_create_without_mount_namespace_leaves_no_mount() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    without_mount_ns(&env);
    add_mount(
        &env,
        json!({"destination": "/x", "type": "bind", "source": env.dir.path().join("missing"),
               "options": ["bind"]}),
    );
    let rrc = rr_tests::rrc_bin();
    let (root, bundle) = (env.root.display(), env.bundle.display());
    let id = unique_id("inherit-fail");
    let script = format!(
        "{rrc} --root {root} create -b {bundle} {id} && echo CREATED; \
         echo left=$(grep -c '{bundle}/' /proc/self/mountinfo); \
         test -e {root}/{id} && echo STATE-LEFT; true",
        rrc = rrc.display()
    );
    let out = in_private_mount_ns(&script);
    let text = stdout(&out);
    assert!(!text.contains("CREATED"), "{text}");
    assert!(stderr(&out).contains("mounts["), "{}", stderr(&out));
    assert!(text.contains("left=0"), "mounts left behind:\n{text}");
    assert!(!text.contains("STATE-LEFT"), "{text}");
}

/// Without a mount namespace, masked and read-only paths would change the
/// runtime's namespace: refused in runc's words.
#[test]
fn masked_paths_need_a_mount_namespace() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    without_mount_ns(&env);
    env.edit_config(|c| c["linux"]["maskedPaths"] = json!(["/proc/kcore"]));
    let id = unique_id("mask-nomnt");
    let out = env.rrc_bundle("create", &[&id]);
    assert!(!out.status.success());
    let err = messages(&out);
    assert!(
        err.contains("linux.maskedPaths")
            && err.contains("unable to restrict sys entries without a private MNT namespace"),
        "{err}"
    );
    env.assert_no_leftovers(&id);
}

/// A process holding a new UTS namespace, killed when dropped.
struct UtsHolder(std::process::Child);

impl Drop for UtsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `hostname` with a UTS namespace joined by path: set inside that
/// namespace (runc does; runtime-tools linux_ns_path).
#[test]
fn hostname_is_set_in_a_joined_uts_namespace() {
    require_env!();
    let holder = UtsHolder(
        Command::new("unshare")
            .args(["-u", "sleep", "120"])
            .spawn()
            .expect("spawn unshare"),
    );
    let ns = format!("/proc/{}/ns/uts", holder.0.id());
    let host_ns = std::fs::read_link("/proc/self/ns/uts").expect("own uts");
    // unshare execs sleep once its namespace exists.
    let mut ready = false;
    for _ in 0..200 {
        if std::fs::read_link(&ns).is_ok_and(|l| l != host_ns) {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ready, "unshare -u did not make its namespace");
    let env = TestEnv::new(&["hostname"]);
    env.edit_config(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().expect("namespaces") {
            if n["type"] == "uts" {
                n["path"] = json!(ns);
            }
        }
        c["hostname"] = json!("joined-uts");
    });
    let id = unique_id("uts-path");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "joined-uts");
    let inside = Command::new("nsenter")
        .args(["-t", &holder.0.id().to_string(), "-u", "hostname"])
        .output()
        .expect("nsenter");
    assert_eq!(String::from_utf8_lossy(&inside.stdout).trim(), "joined-uts");
    env.assert_no_leftovers(&id);
}

/// No UTS namespace at all: the host's name is never changed; runc's words.
#[test]
fn hostname_without_uts_namespace_is_refused() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .retain(|n| n["type"] != "uts");
        c["hostname"] = json!("not-the-host");
    });
    let id = unique_id("no-uts");
    let out = env.rrc_bundle("create", &[&id]);
    assert!(!out.status.success());
    let err = messages(&out);
    assert!(
        err.contains("unable to set hostname without a private UTS namespace"),
        "{err}"
    );
    env.assert_no_leftovers(&id);
}

/// --no-pivot leaves the host's /proc in the container's mount namespace,
/// out of sight; a nested user namespace could then mount a fresh, unmasked
/// procfs. The host's full procfs and sysfs mounts are detached first.
#[test]
fn no_pivot_nested_userns_cannot_mount_proc() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "unshare -U true || echo NO-USERNS; \
         unshare -U -m -p -f --mount-proc true && echo ESCAPE-OK || echo ESCAPE-FAILED",
    ]);
    let id = unique_id("nopivot-proc");
    let b = env.bundle.display().to_string();
    let out = env.rrc(&["run", "--no-pivot", "-b", &b, &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    if text.contains("NO-USERNS") {
        eprintln!("SKIPPED: no user namespaces inside a container here");
        return;
    }
    assert!(
        text.contains("ESCAPE-FAILED"),
        "fresh /proc mounted:\n{text}\n{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
}

/// Waits up to 10 s for `cond`.
fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn is_mount_point(p: &Path) -> bool {
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*p.to_string_lossy()))
}

/// `rshared` volume with `rootfsPropagation: rshared`: the volume is a peer
/// of the host's mount, so a mount made inside reaches the host and one
/// made on the host reaches the container (critest "mount with 'rshared'").
#[test]
fn rshared_volume_propagates_both_ways() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "grep ' /v ' /proc/self/mountinfo; mount -t tmpfs tmpfs /v/in && echo MOUNTED; \
         for i in $(seq 100); do test -e /v/out/marker && echo SAW-HOST && break; sleep 0.1; done",
    ]);
    let vol = env.dir.path().join("shared-vol");
    let _vol = HostMount::tmpfs(&vol);
    let ok = Command::new("mount")
        .arg("--make-shared")
        .arg(&vol)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mount --make-shared");
    std::fs::create_dir(vol.join("in")).expect("mkdir in");
    std::fs::create_dir(vol.join("out")).expect("mkdir out");
    add_mount(
        &env,
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["rbind", "rshared"]}),
    );
    env.edit_config(|c| {
        c["linux"]["rootfsPropagation"] = json!("rshared");
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .expect("caps")
                .push(json!("CAP_SYS_ADMIN"));
        }
    });
    let id = unique_id("rshared");
    let b = env.bundle.display().to_string();
    let child = env
        .rrc_cmd(&["run", "-b", &b, &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rrc run");
    let reached_host = wait_until(|| is_mount_point(&vol.join("in")));
    let _in = HostMount(vol.join("in"));
    let _out = HostMount::tmpfs(&vol.join("out"));
    std::fs::write(vol.join("out/marker"), "").expect("marker");
    let out = child.wait_with_output().expect("rrc run");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("MOUNTED"), "{text}");
    assert!(
        reached_host,
        "the container's mount did not reach the host:\n{text}"
    );
    assert!(
        text.contains("SAW-HOST"),
        "the host's mount did not reach the container:\n{text}"
    );
    let line = mount_line(&text, "/v").unwrap_or("");
    assert!(!line.contains("master:"), "the volume is a slave: {line}");
}

/// User namespace, bind sources in a host directory only root may search
/// (0700): the runtime takes them before the init enters its user
/// namespace, as runc does.
#[test]
fn userns_bind_sources_in_a_private_host_dir() {
    require_env!();
    let userns = Command::new("unshare")
        .args(["-U", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !userns {
        eprintln!("SKIPPED: no user namespaces here");
        return;
    }
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "cat /v/f /f1; touch /v/x 2>/dev/null && echo WROTE; true",
    ]);
    let private = env.dir.path().join("private");
    std::fs::create_dir_all(private.join("src")).expect("mkdir");
    std::fs::write(private.join("src/f"), "IN-DIR\n").expect("write");
    std::fs::write(private.join("file1"), "A-FILE\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    add_mount(
        &env,
        json!({"destination": "/v", "type": "bind", "source": private.join("src"),
               "options": ["rbind", "ro"]}),
    );
    add_mount(
        &env,
        json!({"destination": "/f1", "type": "bind", "source": private.join("file1"),
               "options": ["bind"]}),
    );
    env.edit_config(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
        c["root"]["readonly"] = json!(false);
    });
    let rootfs = env.bundle.join("rootfs");
    let _ = Command::new("chown")
        .arg("-R")
        .arg("100000:100000")
        .arg(&rootfs)
        .status();
    let id = unique_id("userns-private-src");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("IN-DIR") && text.contains("A-FILE"), "{text}");
    assert!(!text.contains("WROTE"), "ro bind writable:\n{text}");
    env.assert_no_leftovers(&id);
}

/// Filesystem data on a bind mount (the runtime-tools suite gives binds
/// `mode=755,size=1k`) is ignored as runc ignores it, with a warning that
/// names it.
#[test]
fn filesystem_data_on_a_bind_is_ignored_with_a_warning() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    add_mount(
        &env,
        json!({"destination": "/v", "type": "bind", "source": "/tmp",
               "options": ["bind", "nosuid", "mode=755", "size=1k"]}),
    );
    let id = unique_id("bind-data");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = messages(&out);
    for want in ["mode=755", "size=1k", "/v", "ignored"] {
        assert!(err.contains(want), "{want} not in: {err}");
    }
}
