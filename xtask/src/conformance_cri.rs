//! critest (kubernetes-sigs/cri-tools v1.26.1, CRI v1) against a private
//! containerd 1.6 with two runtime handlers of the runc v2 shim: `runc`
//! (Debian's runc) and `rr` (rrc).
//!
//! critest itself: cri-tools is neither in Debian nor reachable (no GitHub,
//! no Go module proxy on these machines), so `RR_CRITEST` must name a
//! critest binary of tag v1.26.1 built elsewhere; xtask does not build it.
//! Without it the suite reports SKIPPED and the command goes on.
//!
//! Everything lives under `target/conformance/cri/`: containerd's root,
//! state, socket, its config with the CRI plugin on (cgroupfs,
//! restrict_oom_score_adj, registry mirrors for registry.k8s.io and gcr.io
//! pointing at a local Debian docker-registry on 127.0.0.1:5000), a CNI conf
//! dir of its own (bridge `rrcri0` + host-local + portmap), the runtimes'
//! roots, and the registry's storage. The test images are built offline from
//! Debian packages with podman, using private storage: a static pause of our
//! own; Debian's dynamic busybox with hard-linked applets (busybox and the
//! cri-tools test-image-* images); nginx and hostnet-nginx (busybox plus
//! Debian's nginx and the libraries it links, listening on 80 and 12003);
//! httpd (busybox httpd logging Apache's start line); nonewprivs (a
//! setuid-root static program of ours printing its effective uid). containerd, the registry and leftover shims are stopped
//! by pid; mounts under the work dir, the bridge and the iptables chains
//! that appeared during the run are removed at the end.
//!
//! `cargo xtask bench --cri` (bench_cri.rs) reuses the images and [`Env`] to
//! time pod and container start through the same containerd.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::conformance::{Key, Options, Outcome, Report, Status, RRC, RUNC};
use crate::Result;

/// The cri-tools tag that speaks containerd 1.6's CRI v1.
const CRI_TOOLS_TAG: &str = "v1.26.1";

/// The Debian packages the harness needs, with a file showing each is there.
pub(crate) const PACKAGES: &[(&str, &str)] = &[
    ("runc", "/usr/sbin/runc"),
    ("containerd", "/usr/bin/containerd"),
    ("containernetworking-plugins", "/usr/lib/cni/bridge"),
    ("docker-registry", "/usr/bin/docker-registry"),
    ("podman", "/usr/bin/podman"),
    ("gcc", "/usr/bin/gcc"),
    ("iproute2", "/bin/ip"),
    ("iptables", "/usr/sbin/iptables"),
];

/// Where the local docker-registry serving the test images listens.
pub(crate) const REGISTRY: &str = "127.0.0.1:5000";
const BRIDGE: &str = "rrcri0";
/// Seconds one critest run may take (runc's takes about 65 s here).
const CRITEST_TIMEOUT: u64 = 1200;

/// Runs critest once per handler; `None` when the suite cannot be built here.
pub fn run(opts: &Options) -> Result<Option<Report>> {
    let Some(critest) = std::env::var_os("RR_CRITEST").map(PathBuf::from) else {
        println!(
            "conformance cri: SKIPPED: critest (cri-tools {CRI_TOOLS_TAG}) is neither packaged \
             by Debian nor reachable from this machine (no GitHub, no Go module proxy); set \
             RR_CRITEST to a critest binary of that tag built elsewhere"
        );
        return Ok(None);
    };
    if !crate::is_root() {
        return Err("critest drives containerd as root: run it as root".into());
    }
    crate::ensure_packages(PACKAGES)?;
    let work = crate::conformance::out_dir().join("cri");
    let t0 = Instant::now();
    let critest = critest_binary(&critest)?;
    let rrc = match std::env::var_os("RRC_BIN") {
        Some(p) => PathBuf::from(p),
        None => crate::build_rrc(false)?,
    };
    let mut report = Report::new(
        "cri",
        &format!("cri-tools {CRI_TOOLS_TAG} critest, containerd 1.6 from Debian"),
    );
    report
        .seconds
        .push(("build".into(), t0.elapsed().as_secs_f64()));
    let run_dir = work.join("run");
    if !opts.reparse {
        let t = Instant::now();
        let images = build_images(&work)?;
        report
            .seconds
            .push(("images".into(), t.elapsed().as_secs_f64()));
        let mut env = Env::start(&run_dir, &rrc, &images)?;
        for (handler, runtime) in [("rr", RRC), ("runc", RUNC)] {
            let t = Instant::now();
            let outcome = env.critest(&critest, handler, opts);
            report
                .seconds
                .push((format!("{runtime} run"), t.elapsed().as_secs_f64()));
            if let Err(e) = outcome {
                eprintln!("conformance cri: critest under {handler}: {e}");
            }
        }
        env.stop();
    }
    for (handler, runtime) in [("rr", RRC), ("runc", RUNC)] {
        record_junit(&run_dir.join("reports").join(handler), runtime, &mut report)?;
    }
    Ok(Some(report))
}

/// The critest binary named by `RR_CRITEST`: it is used as given, never
/// built here (cri-tools comes from no registry these machines reach).
fn critest_binary(path: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(path).map_err(|e| format!("RR_CRITEST={}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("RR_CRITEST={}: not a file", path.display()));
    }
    Ok(path.to_path_buf())
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<()> {
    fs::write(p, text).map_err(|e| format!("writing {}: {e}", p.display()))
}

/// What the images step leaves: the registry's storage directory.
pub(crate) struct Images {
    storage: PathBuf,
}

/// One image: where it goes, how it is configured, and extra files.
struct ImageSpec {
    /// Repository path and tag in the local registry (the upstream name
    /// without its host; the mirror config maps hosts onto this registry).
    name: &'static str,
    changes: &'static [&'static str],
    /// (path in the image, content, mode)
    files: &'static [(&'static str, &'static str, u32)],
    base: Base,
}

#[derive(Clone, Copy, PartialEq)]
enum Base {
    Pause,
    Busybox,
    /// busybox plus Debian's nginx, its libraries and a config of ours.
    Nginx,
    /// Only the setuid-root static program `/nnp`.
    NoNewPrivs,
}

/// An nginx.conf of ours (Debian's pulls in modules and mime types this
/// image does not carry). The pid file is where critest's PID tests read it.
macro_rules! nginx_conf {
    ($port:literal) => {
        concat!(
            "user www-data;\nworker_processes 1;\npid /var/run/nginx.pid;\n",
            "error_log stderr;\nevents { worker_connections 64; }\n",
            "http {\n  default_type text/html;\n  access_log off;\n  server {\n",
            "    listen ",
            $port,
            ";\n    root /usr/share/nginx/html;\n    index index.html;\n  }\n}\n"
        )
    };
}

const NGINX_INDEX: &str = "<html><body><h1>nginx</h1></body></html>\n";

/// Upstream's hostnet-nginx image, named for this machine's Go GOARCH.
#[cfg(target_arch = "aarch64")]
const HOSTNET_NGINX: &str = "k8s-staging-cri-tools/hostnet-nginx-arm64:latest";
#[cfg(not(target_arch = "aarch64"))]
const HOSTNET_NGINX: &str = "k8s-staging-cri-tools/hostnet-nginx-amd64:latest";

/// Upstream's httpd image logs Apache's start line, which critest's
/// multi-container test looks for; busybox's httpd serves the page.
const HTTPD_FOREGROUND: &str = "#!/bin/sh\n\
echo \"[mpm_event:notice] [pid $$] AH00489: busybox httpd configured -- resuming normal operations\" >&2\n\
echo \"[core:notice] [pid $$] AH00094: Command line: 'httpd -D FOREGROUND'\" >&2\n\
exec httpd -f -p 80 -h /usr/local/apache2/htdocs\n";

/// Prints the effective uid it runs with: installed setuid root, it shows
/// whether the kernel honoured the bit (no_new_privs off) or not.
const NNP_C: &str = r#"#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("Effective uid: %u\n", (unsigned)geteuid());
    return 0;
}
"#;

const IMAGES: &[ImageSpec] = &[
    ImageSpec {
        name: "pause:3.6",
        changes: &["ENTRYPOINT [\"/pause\"]"],
        files: &[],
        base: Base::Pause,
    },
    ImageSpec {
        name: "e2e-test-images/busybox:1.29-2",
        changes: &["CMD [\"sh\"]"],
        files: &[],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "e2e-test-images/nginx:1.14-2",
        changes: &["CMD [\"nginx\", \"-g\", \"daemon off;\"]"],
        files: &[
            ("/etc/nginx/nginx.conf", nginx_conf!(80), 0o644),
            ("/usr/share/nginx/html/index.html", NGINX_INDEX, 0o644),
        ],
        base: Base::Nginx,
    },
    ImageSpec {
        name: HOSTNET_NGINX,
        changes: &["CMD [\"nginx\", \"-g\", \"daemon off;\"]"],
        files: &[
            ("/etc/nginx/nginx.conf", nginx_conf!(12003), 0o644),
            ("/usr/share/nginx/html/index.html", NGINX_INDEX, 0o644),
        ],
        base: Base::Nginx,
    },
    ImageSpec {
        name: "e2e-test-images/httpd:2.4.39-4",
        changes: &["CMD [\"httpd-foreground\"]"],
        files: &[
            ("/usr/local/bin/httpd-foreground", HTTPD_FOREGROUND, 0o755),
            (
                "/usr/local/apache2/htdocs/index.html",
                "<html><body><h1>It works!</h1></body></html>\n",
                0o644,
            ),
        ],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "e2e-test-images/nonewprivs:1.3",
        changes: &["ENTRYPOINT [\"/nnp\"]"],
        files: &[],
        base: Base::NoNewPrivs,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-latest:latest",
        changes: &["CMD [\"sh\"]"],
        files: &[("/test-latest", "latest\n", 0o644)],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-tag:test",
        changes: &["CMD [\"sh\"]"],
        files: &[("/test-tag", "test\n", 0o644)],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-tag:all",
        changes: &["CMD [\"sh\"]"],
        files: &[("/test-all", "all\n", 0o644)],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-1:latest",
        changes: &["CMD [\"sh\"]"],
        files: &[("/test-1", "1\n", 0o644)],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-2:latest",
        changes: &["CMD [\"sh\"]"],
        files: &[("/test-2", "2\n", 0o644)],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-3:latest",
        changes: &["CMD [\"sh\"]"],
        files: &[("/test-3", "3\n", 0o644)],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-tags:1",
        changes: &["CMD [\"sh\"]"],
        files: &[("/test-tags", "tags\n", 0o644)],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-user-uid:latest",
        changes: &["CMD [\"sh\"]", "USER 1002"],
        files: &[],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-user-username:latest",
        changes: &["CMD [\"sh\"]", "USER www-data"],
        files: &[],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-user-uid-group:latest",
        changes: &["CMD [\"sh\"]", "USER 1003:users"],
        files: &[],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-user-username-group:latest",
        changes: &["CMD [\"sh\"]", "USER www-data:users"],
        files: &[],
        base: Base::Busybox,
    },
    ImageSpec {
        name: "k8s-staging-cri-tools/test-image-predefined-group:latest",
        changes: &["CMD [\"sh\"]", "USER 1000"],
        files: &[],
        base: Base::Busybox,
    },
];

/// Tags pushed as copies of another tag (same digest).
const SAME_IMAGE_TAGS: &[(&str, &str)] = &[
    (
        "k8s-staging-cri-tools/test-image-tags:1",
        "k8s-staging-cri-tools/test-image-tags:2",
    ),
    (
        "k8s-staging-cri-tools/test-image-tags:1",
        "k8s-staging-cri-tools/test-image-tags:3",
    ),
];

/// A pause of our own: sleeps until SIGINT/SIGTERM and reaps children.
const PAUSE_C: &str = r#"#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"#;

/// `pgrep NAME`: Debian's busybox has none; critest's PID namespace tests
/// call it.
const PGREP: &str = "#!/bin/sh\nfor d in /proc/[0-9]*; do\n  c=$(cat \"$d/comm\" 2>/dev/null) || continue\n  [ \"$c\" = \"$1\" ] && echo \"${d#/proc/}\"\ndone\nexit 0\n";

/// `ipcs`: lists System V shared memory segments from /proc, as critest's IPC
/// namespace test reads them.
const IPCS: &str = "#!/bin/sh\necho '------ Shared Memory Segments --------'\necho 'key        shmid      owner      perms      bytes      nattch     status'\ntail -n +2 /proc/sysvipc/shm 2>/dev/null | while read key shmid perms size rest; do\n  printf '0x%08x %-10s %-10s %-10s %-10s\\n' \"$key\" \"$shmid\" root \"$perms\" \"$size\"\ndone\n";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\ndefault-user:x:1000:1000::/home/default-user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nusers:x:100:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\nnogroup:x:65534:\n";

/// Builds and pushes the images once (a stamp in the registry storage).
pub(crate) fn build_images(work: &Path) -> Result<Images> {
    let storage = work.join("registry-storage");
    // Bump the version when the image set changes: the next run rebuilds.
    let stamp = storage.join("rr-images-v2");
    let images = Images {
        storage: storage.clone(),
    };
    if stamp.is_file() {
        return Ok(images);
    }
    let build = work.join("image-build");
    let _ = fs::remove_dir_all(&build);
    let _ = fs::remove_dir_all(&storage);
    mkdir(&build)?;
    mkdir(&storage)?;
    let pause_root = build.join("pause-root");
    mkdir(&pause_root)?;
    write(&build.join("pause.c"), PAUSE_C)?;
    crate::run(
        Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(pause_root.join("pause"))
            .arg(build.join("pause.c")),
    )?;
    let nnp_root = nonewprivs_rootfs(&build)?;
    let busybox_root = busybox_rootfs(&build)?;
    let nginx_root = nginx_rootfs(&build, &busybox_root)?;
    let registry = Registry::start(&build, &storage)?;
    // podman refuses a runroot longer than 50 characters.
    let runroot = PathBuf::from(format!("/run/rr-conformance-{}", std::process::id()));
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(build.join("podman-root"))
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(args)
            .stdin(Stdio::null());
        c
    };
    let mut result = Ok(());
    for spec in IMAGES {
        let root = match spec.base {
            Base::Pause => pause_root.clone(),
            Base::NoNewPrivs => nnp_root.clone(),
            Base::Busybox | Base::Nginx => {
                let from = if spec.base == Base::Nginx {
                    &nginx_root
                } else {
                    &busybox_root
                };
                let r = build.join(format!("root-{}", spec.name.replace(['/', ':'], "_")));
                let _ = fs::remove_dir_all(&r);
                // -a keeps busybox's hard links.
                crate::run(Command::new("cp").arg("-a").arg(from).arg(&r))?;
                for (path, text, mode) in spec.files {
                    write_file(&r.join(path.trim_start_matches('/')), text, *mode)?;
                }
                r
            }
        };
        let tar = build.join("layer.tar");
        crate::run(
            Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        )?;
        let local = format!("localhost/rr-conformance/{}", spec.name);
        let mut import = podman(&["import"]);
        for ch in spec.changes {
            import.args(["--change", ch]);
        }
        import.arg(&tar).arg(&local).stdout(Stdio::null());
        result = crate::run(&mut import).and_then(|_| {
            crate::run(
                podman(&["push", "--tls-verify=false", "--quiet", &local])
                    .arg(format!("docker://{REGISTRY}/{}", spec.name)),
            )
        });
        if result.is_err() {
            break;
        }
    }
    for (from, to) in SAME_IMAGE_TAGS {
        if result.is_err() {
            break;
        }
        let local = format!("localhost/rr-conformance/{from}");
        result = crate::run(
            podman(&["push", "--tls-verify=false", "--quiet", &local])
                .arg(format!("docker://{REGISTRY}/{to}")),
        );
    }
    drop(registry);
    let _ = crate::run(podman(&["rmi", "--all", "--force"]).stdout(Stdio::null()));
    let _ = fs::remove_dir_all(&runroot);
    result?;
    write(&stamp, "built\n")?;
    Ok(images)
}

/// Debian's dynamic busybox (busybox-static runs applets in-process, so
/// `sh -c ls` never execs, which critest's masked-paths test relies on),
/// with its libraries, applet links, pgrep, ipcs, passwd and group.
fn busybox_rootfs(build: &Path) -> Result<PathBuf> {
    // Downloaded, never installed: installing busybox would replace the
    // busybox-static the project's tests copy into their root filesystems.
    let deb = download_deb(build, "busybox")?;
    let root = build.join("busybox-root");
    let _ = fs::remove_dir_all(&root);
    mkdir(&root)?;
    crate::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    let bb = root.join("bin/busybox");
    for d in [
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "var/www",
        "home/default-user",
    ] {
        mkdir(&root.join(d))?;
    }
    copy_libs(&bb, &root)?;
    let list = Command::new(&bb)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("{} --list-full: {e}", bb.display()))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = root.join(applet);
        if link.exists() || applet == "bin/busybox" {
            continue;
        }
        if let Some(parent) = link.parent() {
            mkdir(parent)?;
        }
        // Hard links, as upstream's busybox image has: a masked path (a
        // bind of /dev/null) over a symlink would land on /bin/busybox and
        // take every applet with it, `sh` included.
        fs::hard_link(&bb, &link)
            .map_err(|e| format!("linking {} to {}: {e}", link.display(), bb.display()))?;
    }
    for (path, text, mode) in [
        ("bin/pgrep", PGREP, 0o755),
        ("bin/ipcs", IPCS, 0o755),
        ("etc/passwd", PASSWD, 0o644),
        ("etc/group", GROUP, 0o644),
    ] {
        write_file(&root.join(path), text, mode)?;
    }
    Ok(root)
}

/// Writes `text` to `p` (parents made) with permission bits `mode`.
fn write_file(p: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = p.parent() {
        mkdir(parent)?;
    }
    // Never through a busybox hard link: that would overwrite busybox.
    let _ = fs::remove_file(p);
    write(p, text)?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {mode:o} {}: {e}", p.display()))
}

/// Copies the shared libraries `ldd` names for `bin` (the host's, from the
/// same Debian release) into `root` at the same paths.
fn copy_libs(bin: &Path, root: &Path) -> Result<()> {
    let ldd = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(|e| format!("ldd {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&ldd.stdout);
    if let Some(missing) = text.lines().find(|l| l.contains("not found")) {
        return Err(format!("ldd {}: {}", bin.display(), missing.trim()));
    }
    for line in text.lines() {
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(p) = path {
            let dest = root.join(p.trim_start_matches('/'));
            if dest.exists() {
                continue;
            }
            if let Some(parent) = dest.parent() {
                mkdir(parent)?;
            }
            crate::run(Command::new("cp").arg("-L").arg(p).arg(&dest))?;
        }
    }
    Ok(())
}

/// The .deb of Debian package `pkg`, downloaded (never installed) into a
/// directory of its own under `build`.
fn download_deb(build: &Path, pkg: &str) -> Result<PathBuf> {
    let dl = build.join(format!("deb-{pkg}"));
    mkdir(&dl)?;
    crate::run(
        Command::new("apt-get")
            .args(["download", "-qq", pkg])
            .current_dir(&dl),
    )?;
    fs::read_dir(&dl)
        .map_err(|e| format!("reading {}: {e}", dl.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {pkg} gave no .deb"))
}

/// The busybox root plus Debian's nginx binary and its libraries, with the
/// directories its compiled-in paths need (the config is per image).
fn nginx_rootfs(build: &Path, busybox_root: &Path) -> Result<PathBuf> {
    let deb = download_deb(build, "nginx")?;
    let unpacked = build.join("nginx-deb");
    let _ = fs::remove_dir_all(&unpacked);
    mkdir(&unpacked)?;
    crate::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let root = build.join("nginx-root");
    let _ = fs::remove_dir_all(&root);
    crate::run(Command::new("cp").arg("-a").arg(busybox_root).arg(&root))?;
    let bin = root.join("usr/sbin/nginx");
    mkdir(&root.join("usr/sbin"))?;
    crate::run(
        Command::new("cp")
            .arg(unpacked.join("usr/sbin/nginx"))
            .arg(&bin),
    )?;
    copy_libs(&bin, &root)?;
    for d in ["var/run", "var/lib/nginx", "var/log/nginx", "etc/nginx"] {
        mkdir(&root.join(d))?;
    }
    Ok(root)
}

/// A root holding only `/nnp`: static, owned by root, setuid.
fn nonewprivs_rootfs(build: &Path) -> Result<PathBuf> {
    let root = build.join("nnp-root");
    mkdir(&root)?;
    write(&build.join("nnp.c"), NNP_C)?;
    let bin = root.join("nnp");
    crate::run(
        Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&bin)
            .arg(build.join("nnp.c")),
    )?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o4755))
        .map_err(|e| format!("chmod 4755 {}: {e}", bin.display()))?;
    Ok(root)
}

/// Debian's docker-registry on 127.0.0.1:5000, running until dropped.
struct Registry {
    child: Child,
}

impl Registry {
    fn start(dir: &Path, storage: &Path) -> Result<Registry> {
        let config = dir.join("registry.yml");
        write(
            &config,
            &format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {REGISTRY}\n",
                storage.display()
            ),
        )?;
        let log = fs::File::create(dir.join("registry.log"))
            .map_err(|e| format!("creating registry.log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting docker-registry: {e}"))?;
        let r = Registry { child };
        wait_for(
            || std::net::TcpStream::connect(REGISTRY).is_ok(),
            "docker-registry listening on 127.0.0.1:5000",
        )?;
        Ok(r)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

fn wait_for(mut ready: impl FnMut() -> bool, what: &str) -> Result<()> {
    let t = Instant::now();
    while !ready() {
        if t.elapsed() > Duration::from_secs(30) {
            return Err(format!("no {what} within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// SIGTERM, then SIGKILL after 10 s, of a child we started.
fn stop_child(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The private containerd, its registry, and what must be undone after.
pub(crate) struct Env {
    dir: PathBuf,
    containerd: Option<Child>,
    registry: Option<Registry>,
    chains_before: Vec<(String, String)>,
    /// containerd's `k8s.io` cgroup parents that existed before the run.
    cgroups_before: Vec<PathBuf>,
    rrc: PathBuf,
    /// The runc v2 shim puts its sockets under /run/containerd/s whatever
    /// containerd's own state dir is; removed afterwards when it was not
    /// there before.
    shim_dirs_existed: bool,
}

/// Where the runc v2 shim keeps its sockets, and its parent.
const SHIM_DIRS: [&str; 2] = ["/run/containerd/s", "/run/containerd"];

impl Env {
    /// Starts the registry and containerd with its config under `dir`
    /// (emptied first); `rrc` is the `rr` handler's runtime binary.
    pub(crate) fn start(dir: &Path, rrc: &Path, images: &Images) -> Result<Env> {
        let chains_before = iptables_chains();
        let _ = fs::remove_dir_all(dir);
        mkdir(dir)?;
        let mut env = Env {
            dir: dir.to_path_buf(),
            containerd: None,
            registry: None,
            chains_before,
            cgroups_before: k8s_cgroup_parents(),
            rrc: rrc.to_path_buf(),
            shim_dirs_existed: Path::new(SHIM_DIRS[1]).exists(),
        };
        env.registry = Some(Registry::start(dir, &images.storage)?);
        let config = containerd_config(dir, rrc)?;
        let log = fs::File::create(dir.join("containerd.log"))
            .map_err(|e| format!("creating containerd.log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting containerd: {e}"))?;
        env.containerd = Some(child);
        let sock = dir.join("containerd.sock");
        wait_for(|| sock.exists(), "containerd socket")?;
        Ok(env)
    }

    fn critest(&mut self, critest: &Path, handler: &str, opts: &Options) -> Result<()> {
        let reports = self.dir.join("reports").join(handler);
        mkdir(&reports)?;
        let endpoint = format!("unix://{}", self.dir.join("containerd.sock").display());
        let log = fs::File::create(self.dir.join(format!("critest-{handler}.log")))
            .map_err(|e| format!("creating critest log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut c = Command::new("timeout");
        c.args(["--kill-after=10", &CRITEST_TIMEOUT.to_string()])
            .arg(critest)
            .arg(format!("--runtime-endpoint={endpoint}"))
            .arg(format!("--image-endpoint={endpoint}"))
            .arg(format!("--runtime-handler={handler}"))
            .arg(format!("--report-dir={}", reports.display()))
            .arg(format!("--report-prefix={handler}"))
            // ginkgo v2 writes JUnit only when asked this way.
            .arg(format!(
                "--ginkgo.junit-report={}",
                reports.join("junit.xml").display()
            ))
            .arg("--ginkgo.no-color")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        if !opts.only.is_empty() {
            c.arg(format!("--ginkgo.focus={}", opts.only.join("|")));
        }
        let status = c.status().map_err(|e| format!("running critest: {e}"))?;
        // critest exits 1 when any test fails; the report says which.
        if status.code() == Some(124) {
            return Err(format!("timed out after {CRITEST_TIMEOUT} s"));
        }
        Ok(())
    }

    /// containerd's gRPC socket (CRI v1).
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// Stops containerd and the registry, then removes what they left.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.containerd.take() {
            stop_child(&mut c);
        }
        self.registry = None;
        kill_shims(&self.dir.join("containerd.sock"));
        for root in ["runc-root", "rr-root"] {
            let bin = if root == "runc-root" {
                PathBuf::from("/usr/sbin/runc")
            } else {
                self.rrc.clone()
            };
            force_delete_all(&bin, &self.dir.join(root).join("k8s.io"));
        }
        crate::conformance_rt::detach_mounts_under(&self.dir);
        let _ = Command::new("ip")
            .args(["link", "del", BRIDGE])
            .stderr(Stdio::null())
            .status();
        remove_new_chains(&self.chains_before);
        for dir in k8s_cgroup_parents() {
            if !self.cgroups_before.contains(&dir) {
                remove_cgroup_tree(&dir);
            }
        }
        if !self.shim_dirs_existed {
            // remove_dir only takes empty directories: a shim still holding
            // a socket there keeps it.
            for d in SHIM_DIRS {
                let _ = fs::remove_dir(d);
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.containerd.is_some() {
            self.stop();
        }
    }
}

fn containerd_config(dir: &Path, rrc: &Path) -> Result<PathBuf> {
    let d = dir.display();
    for sub in ["root", "state", "runc-root", "rr-root", "cni", "certs.d"] {
        mkdir(&dir.join(sub))?;
    }
    for host in ["registry.k8s.io", "gcr.io"] {
        let h = dir.join("certs.d").join(host);
        mkdir(&h)?;
        write(
            &h.join("hosts.toml"),
            &format!(
                "server = \"https://{host}\"\n[host.\"http://{REGISTRY}\"]\n  \
                 capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )?;
    }
    write(
        &dir.join("cni").join("10-rrcri.conflist"),
        &format!(
            "{{\"cniVersion\": \"0.4.0\", \"name\": \"rrcri\", \"plugins\": [\
             {{\"type\": \"bridge\", \"bridge\": \"{BRIDGE}\", \"isGateway\": true, \
             \"ipMasq\": false, \"hairpinMode\": true, \"ipam\": {{\"type\": \"host-local\", \
             \"ranges\": [[{{\"subnet\": \"10.231.0.0/24\"}}]], \"routes\": [{{\"dst\": \"0.0.0.0/0\"}}]}}}}, \
             {{\"type\": \"portmap\", \"capabilities\": {{\"portMappings\": true}}}}]}}\n"
        ),
    )?;
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let runtime = |name: &str, bin: &Path, root: &str| {
        format!(
            "[{cri}.containerd.runtimes.{name}]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.{name}.options]\n  BinaryName = \"{}\"\n  \
             Root = \"{d}/{root}\"\n  SystemdCgroup = false\n",
            bin.display()
        )
    };
    let text = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
         [grpc]\n  address = \"{d}/containerd.sock\"\n\
         [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
         [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n\
         [{cri}]\n  sandbox_image = \"registry.k8s.io/pause:3.6\"\n  \
         restrict_oom_score_adj = true\n\
         [{cri}.containerd]\n  default_runtime_name = \"runc\"\n\
         {}{}\
         [{cri}.cni]\n  bin_dir = \"/usr/lib/cni\"\n  conf_dir = \"{d}/cni\"\n\
         [{cri}.registry]\n  config_path = \"{d}/certs.d\"\n",
        runtime("runc", Path::new("/usr/sbin/runc"), "runc-root"),
        runtime("rr", rrc, "rr-root"),
    );
    let path = dir.join("config.toml");
    write(&path, &text)?;
    Ok(path)
}

/// Kills (by pid) the runc v2 shims that our containerd started: their
/// command line names its socket.
fn kill_shims(sock: &Path) {
    let needle = sock.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("containerd-shim") && text.contains(&needle) {
            let _ = Command::new("kill").args(["-9", &name]).status();
        }
    }
}

fn force_delete_all(bin: &Path, root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let _ = Command::new("timeout")
            .arg("30")
            .arg(bin)
            .arg("--root")
            .arg(root)
            .args(["delete", "-f"])
            .arg(e.file_name())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The `k8s.io` cgroups (containerd's parent for pod cgroups with the
/// cgroupfs driver) in every mounted hierarchy now.
fn k8s_cgroup_parents() -> Vec<PathBuf> {
    let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mounts
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|mnt| Path::new(mnt).join("k8s.io"))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes a cgroup and its descendants, deepest first. rmdir fails on a
/// cgroup that still has processes, which then stays.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// (table, chain) of every iptables chain now.
fn iptables_chains() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for table in ["nat", "filter"] {
        let out = Command::new("iptables")
            .args(["-t", table, "-S"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for line in out.lines() {
            if let Some(chain) = line.strip_prefix("-N ") {
                v.push((table.to_string(), chain.trim().to_string()));
            }
        }
    }
    v
}

/// Removes the chains that appeared during the run (CNI's portmap and
/// bridge plugins make them), with the rules that jump to them.
fn remove_new_chains(before: &[(String, String)]) {
    let new: Vec<(String, String)> = iptables_chains()
        .into_iter()
        .filter(|c| !before.contains(c))
        .collect();
    for (table, chain) in &new {
        let rules = Command::new("iptables")
            .args(["-t", table, "-S"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for rule in rules.lines() {
            if rule.starts_with("-A ") && rule.split_whitespace().any(|w| w == chain) {
                // iptables -S quotes comments the way a shell reads them.
                let _ = Command::new("sh")
                    .arg("-c")
                    .arg(format!("iptables -t {table} -D {}", &rule[3..]))
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    for (table, chain) in &new {
        let _ = Command::new("iptables")
            .args(["-t", table, "-F", chain])
            .status();
        let _ = Command::new("iptables")
            .args(["-t", table, "-X", chain])
            .status();
    }
}

/// Records every testcase of the JUnit files in `dir`.
fn record_junit(dir: &Path, runtime: &str, report: &mut Report) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut order = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "xml") {
            continue;
        }
        let text =
            fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        for case in parse_junit(&text) {
            order += 1;
            report.record(
                runtime,
                Key {
                    group: case.name.clone(),
                    item: String::new(),
                },
                order,
                Outcome {
                    status: case.status,
                    detail: case.detail,
                },
            );
        }
        report.group_ran(runtime, "critest");
    }
    Ok(())
}

/// One `<testcase>` of a JUnit report.
#[derive(Debug, PartialEq)]
struct Case {
    name: String,
    status: Status,
    detail: String,
}

fn parse_junit(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<testcase") {
        rest = &rest[start..];
        let head_end = rest.find('>').unwrap_or(rest.len());
        let head = &rest[..head_end];
        let self_closing = head.ends_with('/');
        let body_end = if self_closing {
            head_end
        } else {
            rest.find("</testcase>").unwrap_or(rest.len())
        };
        let body = &rest[head_end.min(body_end)..body_end];
        let name = attr(head, "name").unwrap_or_default();
        let (status, detail) = if body.contains("<failure") || body.contains("<error") {
            let tag = if body.contains("<failure") {
                "<failure"
            } else {
                "<error"
            };
            let f = &body[body.find(tag).unwrap_or(0)..];
            let msg = attr(&f[..f.find('>').unwrap_or(f.len())], "message").unwrap_or_default();
            (Status::Fail, msg)
        } else if body.contains("<skipped") {
            (Status::Skip, String::new())
        } else {
            (Status::Pass, String::new())
        };
        if !name.is_empty() {
            cases.push(Case {
                name,
                status,
                detail,
            });
        }
        rest = &rest[body_end.max(1)..];
    }
    cases
}

/// An attribute's value, XML entities decoded.
fn attr(head: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = head.find(&key)? + key.len();
    let end = head[i..].find('"')? + i;
    Some(
        head[i..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&apos;", "'")
            .replace("&#xA;", " ")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_critest_pulls_are_built() {
        // Names and ports as critest v1.26.1 uses them.
        for name in [
            "pause:3.6",
            "e2e-test-images/busybox:1.29-2",
            "e2e-test-images/nginx:1.14-2",
            "e2e-test-images/httpd:2.4.39-4",
            "e2e-test-images/nonewprivs:1.3",
            "k8s-staging-cri-tools/hostnet-nginx-amd64:latest",
        ] {
            assert!(IMAGES.iter().any(|i| i.name == name), "{name} not built");
        }
        let conf = |name: &str| {
            let spec = IMAGES.iter().find(|i| i.name == name).unwrap();
            spec.files
                .iter()
                .find(|f| f.0 == "/etc/nginx/nginx.conf")
                .unwrap()
                .1
        };
        assert!(conf("e2e-test-images/nginx:1.14-2").contains("listen 80;"));
        assert!(conf(HOSTNET_NGINX).contains("listen 12003;"));
        assert!(HTTPD_FOREGROUND.contains("Command line: 'httpd -D FOREGROUND'"));
    }

    #[test]
    fn junit_cases() {
        let xml = r#"<testsuites><testsuite name="x">
<testcase name="[k8s.io] A &quot;b&quot; works" classname="c" time="1"></testcase>
<testcase name="fails" time="1"><failure message="boom &amp; bust" type="f">long</failure></testcase>
<testcase name="skipped" time="0"><skipped message="s"></skipped></testcase>
<testcase name="selfclosed" time="0"/>
</testsuite></testsuites>"#;
        let c = parse_junit(xml);
        let got: Vec<(&str, Status, &str)> = c
            .iter()
            .map(|c| (c.name.as_str(), c.status, c.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("[k8s.io] A \"b\" works", Status::Pass, ""),
                ("fails", Status::Fail, "boom & bust"),
                ("skipped", Status::Skip, ""),
                ("selfclosed", Status::Pass, ""),
            ]
        );
    }
}
