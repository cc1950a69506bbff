//! `cargo xtask bench --cri`: latency as Kubernetes sees it. Pods and
//! containers are started through containerd 1.6's CRI plugin with the
//! `rr` and `runc` handlers of the runc v2 shim, the same private containerd
//! the critest conformance run uses (conformance_cri.rs), and the CRI calls
//! are timed directly with our own client (cri_client.rs).
//!
//! Per pod, alternating handlers (the order flips every round): the time of
//! RunPodSandbox (shim start, CNI bridge setup, pause container created and
//! started), then of CreateContainer + StartContainer of one busybox `sleep`
//! container, which is checked to be running, then stopped and removed with
//! its pod. Everything containerd and the shim do is the same for both
//! handlers; what differs is the runtime binary they call.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use crate::cri_client::{pb, Cri};
use crate::Result;

/// Pods per handler when `--cri-pods` is not given.
const DEFAULT_PODS: usize = 20;

/// Whether to measure through containerd.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Mode {
    /// When containerd and its tools are installed (SKIPPED otherwise).
    Auto,
    /// Always; missing packages are installed (`--cri`).
    On,
    /// Never (`--no-cri`).
    Off,
}

/// bench's CRI options.
#[derive(Debug)]
pub(crate) struct CriOptions {
    pub(crate) mode: Mode,
    pub(crate) pods: usize,
    /// Only the CRI rows (`--cri-only`).
    pub(crate) only: bool,
}

impl Default for CriOptions {
    fn default() -> Self {
        CriOptions {
            mode: Mode::Auto,
            pods: DEFAULT_PODS,
            only: false,
        }
    }
}

impl CriOptions {
    /// Takes `arg` (and its value from `rest`) when it is a CRI option.
    pub(crate) fn parse_arg<'a>(
        &mut self,
        arg: &str,
        rest: &mut impl Iterator<Item = &'a String>,
    ) -> Result<bool> {
        match arg {
            "--cri" => self.mode = Mode::On,
            "--no-cri" => self.mode = Mode::Off,
            "--cri-only" => {
                self.mode = Mode::On;
                self.only = true;
            }
            "--cri-pods" => {
                self.pods = rest
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--cri-pods needs a positive number")?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `--cri-only`: the CRI rows alone, their JSON, and failure as an error.
pub(crate) fn standalone(
    opts: &CriOptions,
    rrc: &Path,
    out_dir: &Path,
    unix_time: u64,
) -> Result<()> {
    let Some(cri) = measure(opts, rrc) else {
        return Ok(());
    };
    cri.print_rows();
    cri.write_json(out_dir, unix_time)?;
    cri.check()
}

/// The handlers compared, the first against the second.
const HANDLERS: [&str; 2] = ["rr", "runc"];

/// Images the conformance harness builds and serves from its local registry.
const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
const PAUSE: &str = "registry.k8s.io/pause:3.6";

/// Samples (ms) of one handler.
#[derive(Default)]
pub(crate) struct Series {
    /// RunPodSandbox.
    pod: Vec<f64>,
    /// CreateContainer + StartContainer.
    ctr: Vec<f64>,
    create: Vec<f64>,
    start: Vec<f64>,
    /// StopContainer + RemoveContainer + StopPodSandbox + RemovePodSandbox.
    teardown: Vec<f64>,
}

/// The outcome of the CRI part of the bench.
pub(crate) enum CriRows {
    /// containerd could not be set up here; why.
    Skipped(String),
    /// Set up, but a call failed while measuring; why.
    Failed(String),
    Measured {
        containerd: String,
        pods: usize,
        series: Vec<Series>,
    },
}

/// Sets up containerd (packages, images, config) and times `opts.pods`
/// pods per handler with `rrc` as the `rr` handler's binary; None when
/// `--no-cri`. Never fails: what went wrong is in the returned rows.
pub(crate) fn measure(opts: &CriOptions, rrc: &Path) -> Option<CriRows> {
    let missing: Vec<&str> = crate::conformance_cri::PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    match opts.mode {
        Mode::Off => None,
        Mode::Auto if !missing.is_empty() => Some(CriRows::Skipped(format!(
            "not installed: {} (`--cri` installs them)",
            missing.join(" ")
        ))),
        _ => Some(measure_now(rrc, opts.pods)),
    }
}

fn measure_now(rrc: &Path, pods: usize) -> CriRows {
    if !crate::is_root() {
        return CriRows::Skipped("containerd's CRI needs root".into());
    }
    if let Err(e) = crate::ensure_packages(crate::conformance_cri::PACKAGES) {
        return CriRows::Skipped(format!("installing containerd and its tools: {e}"));
    }
    if std::net::TcpStream::connect(crate::conformance_cri::REGISTRY).is_ok() {
        return CriRows::Skipped(format!(
            "{} is in use (another conformance or bench run?)",
            crate::conformance_cri::REGISTRY
        ));
    }
    let work = crate::conformance::out_dir().join("cri");
    let images = match crate::conformance_cri::build_images(&work) {
        Ok(i) => i,
        Err(e) => return CriRows::Skipped(format!("building the test images: {e}")),
    };
    // Shims daemonize; as a subreaper (the bench is one) they would become
    // our zombies. Under kubelet they go to init, as here.
    set_subreaper(false);
    eprintln!("bench: CRI through containerd, {pods} pods per handler, alternating");
    let rows = with_containerd(rrc, &work.join("bench-run"), &images, pods);
    set_subreaper(true);
    rows
}

fn set_subreaper(on: bool) {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            libc::c_ulong::from(on),
            0,
            0,
            0,
        )
    };
}

fn with_containerd(
    rrc: &Path,
    dir: &Path,
    images: &crate::conformance_cri::Images,
    pods: usize,
) -> CriRows {
    let mut env = match crate::conformance_cri::Env::start(dir, rrc, images) {
        Ok(env) => env,
        Err(e) => return CriRows::Skipped(format!("starting containerd: {e}")),
    };
    let cri = match connect(&env.socket()) {
        Ok(c) => c,
        Err(e) => {
            env.stop();
            return CriRows::Skipped(e);
        }
    };
    let failed =
        |e: String| CriRows::Failed(format!("{e} (containerd log: {})", log(dir).display()));
    let rows = match pull_images(&cri) {
        Err(e) => CriRows::Skipped(e),
        Ok(containerd) => match warm_up(&cri).and_then(|()| run_pods(&cri, pods)) {
            Ok(series) => CriRows::Measured {
                containerd,
                pods,
                series,
            },
            Err(e) => failed(e),
        },
    };
    drop(cri);
    env.stop();
    rows
}

fn log(dir: &Path) -> PathBuf {
    dir.join("containerd.log")
}

/// Connects and waits until the CRI plugin answers Version (it serves a
/// moment after the socket appears).
fn connect(sock: &Path) -> Result<Cri> {
    let t = Instant::now();
    loop {
        let r = Cri::connect(sock).and_then(|c| c.version().map(|_| c));
        match r {
            Ok(c) => return Ok(c),
            Err(e) if t.elapsed().as_secs() >= 30 => {
                return Err(format!("containerd's CRI did not answer within 30 s: {e}"))
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

/// Pulls the images from the local registry; returns containerd's version.
fn pull_images(cri: &Cri) -> Result<String> {
    let v = cri.version()?;
    for image in [PAUSE, BUSYBOX] {
        cri.pull_image(image)?;
    }
    Ok(format!("{} {}", v.runtime_name, v.runtime_version))
}

/// One untimed pod per handler: the first shim start, page cache.
fn warm_up(cri: &Cri) -> Result<()> {
    for handler in HANDLERS {
        one_pod(cri, handler, "warm", &mut Series::default())
            .map_err(|e| format!("warm-up pod with handler {handler}: {e}"))?;
    }
    Ok(())
}

fn run_pods(cri: &Cri, pods: usize) -> Result<Vec<Series>> {
    let mut series: Vec<Series> = HANDLERS.iter().map(|_| Series::default()).collect();
    for i in 0..pods {
        for k in 0..HANDLERS.len() {
            let j = (i + k) % HANDLERS.len();
            one_pod(cri, HANDLERS[j], &i.to_string(), &mut series[j])
                .map_err(|e| format!("pod {i} with handler {}: {e}", HANDLERS[j]))?;
        }
    }
    Ok(series)
}

fn sandbox_config(handler: &str, tag: &str) -> pb::PodSandboxConfig {
    let name = format!("bench-{handler}-{tag}");
    pb::PodSandboxConfig {
        metadata: Some(pb::PodSandboxMetadata {
            name: name.clone(),
            uid: format!("rr-bench-{}-{name}", std::process::id()),
            namespace: "rr-bench".into(),
            attempt: 0,
        }),
        hostname: name,
        linux: Some(pb::LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(pb::LinuxSandboxSecurityContext {
                namespace_options: Some(pb::NamespaceOption::default()),
            }),
        }),
        ..Default::default()
    }
}

/// A busybox `sleep` with its own PID namespace, as kubelet asks by default.
fn container_config() -> pb::ContainerConfig {
    pb::ContainerConfig {
        metadata: Some(pb::ContainerMetadata {
            name: "sleep".into(),
            attempt: 0,
        }),
        image: Some(pb::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "3600".into()],
        linux: Some(pb::LinuxContainerConfig {
            security_context: Some(pb::LinuxContainerSecurityContext {
                namespace_options: Some(pb::NamespaceOption {
                    pid: pb::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
            }),
        }),
        ..Default::default()
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// One timed pod with one container; the pod is stopped and removed
/// whatever happens after it started.
fn one_pod(cri: &Cri, handler: &str, tag: &str, s: &mut Series) -> Result<()> {
    let sandbox = sandbox_config(handler, tag);
    let t = Instant::now();
    let pod = cri.run_pod_sandbox(&sandbox, handler)?;
    let pod_ms = ms_since(t);
    let result = timed_container(cri, &pod, &sandbox);
    let t = Instant::now();
    let stopped = cri.stop_pod_sandbox(&pod);
    let removed = cri.remove_pod_sandbox(&pod);
    let (create_ms, start_ms, ctr_teardown_ms) = result?;
    stopped?;
    removed?;
    s.pod.push(pod_ms);
    s.create.push(create_ms);
    s.start.push(start_ms);
    s.ctr.push(create_ms + start_ms);
    s.teardown.push(ctr_teardown_ms + ms_since(t));
    Ok(())
}

/// Creates and starts the container (timed), checks that it runs, then
/// stops and removes it: (create ms, start ms, stop+remove ms).
fn timed_container(
    cri: &Cri,
    pod: &str,
    sandbox: &pb::PodSandboxConfig,
) -> Result<(f64, f64, f64)> {
    let t = Instant::now();
    let id = cri.create_container(pod, &container_config(), sandbox)?;
    let create_ms = ms_since(t);
    let t = Instant::now();
    let started = cri.start_container(&id);
    let start_ms = ms_since(t);
    let running = started.and_then(|()| match cri.container_state(&id)? {
        pb::ContainerState::ContainerRunning => Ok(()),
        other => Err(format!("container {id} is {other:?} right after start")),
    });
    let t = Instant::now();
    let stopped = cri.stop_container(&id, 0);
    let removed = cri.remove_container(&id);
    let teardown_ms = ms_since(t);
    running?;
    stopped?;
    removed?;
    Ok((create_ms, start_ms, teardown_ms))
}

impl CriRows {
    /// Rows for bench's latency table (same columns; the ratio column holds
    /// each handler's median over the runc handler's), then a note line.
    pub(crate) fn print_rows(&self) {
        let (containerd, pods, series) = match self {
            CriRows::Skipped(why) => {
                println!("{:<10} SKIPPED: {why}", "cri");
                return;
            }
            CriRows::Failed(why) => {
                println!("{:<10} FAILED: {why}", "cri");
                return;
            }
            CriRows::Measured {
                containerd,
                pods,
                series,
            } => (containerd, pods, series),
        };
        let runc = HANDLERS.iter().position(|h| *h == "runc");
        type Pick = fn(&Series) -> &Vec<f64>;
        let ops: [(&str, Pick); 2] = [("cri-pod", |s| &s.pod), ("cri-ctr", |s| &s.ctr)];
        for (op, pick) in ops {
            for (j, handler) in HANDLERS.iter().enumerate() {
                let st = crate::bench::stats(pick(&series[j]));
                let num = |k: &str| st[k].as_f64().unwrap_or(0.0);
                let ratio = runc
                    .and_then(|r| crate::bench::median(pick(&series[r])))
                    .map_or("-".into(), |r| format!("{:.2}x", num("median_ms") / r));
                println!(
                    "{op:<10} {handler:<6} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {ratio:>8} {:>8}",
                    num("median_ms"),
                    num("p10_ms"),
                    num("p90_ms"),
                    num("mad_ms"),
                    "-"
                );
            }
        }
        println!(
            "(cri-*: CRI calls through {containerd} and the runc v2 shim, {pods} pods per \
             handler alternating; pod = RunPodSandbox, ctr = CreateContainer+StartContainer; \
             their ratio column is against the runc handler)"
        );
    }

    /// The JSON of the CRI part.
    pub(crate) fn json(&self) -> Value {
        match self {
            CriRows::Skipped(why) => json!({"skipped": why}),
            CriRows::Failed(why) => json!({"failed": why}),
            CriRows::Measured {
                containerd,
                pods,
                series,
            } => {
                let mut handlers = serde_json::Map::new();
                for (j, h) in HANDLERS.iter().enumerate() {
                    let s = &series[j];
                    handlers.insert(
                        (*h).into(),
                        json!({
                            "run_pod_sandbox": crate::bench::stats(&s.pod),
                            "create_start_container": crate::bench::stats(&s.ctr),
                            "create_container": crate::bench::stats(&s.create),
                            "start_container": crate::bench::stats(&s.start),
                            "teardown": crate::bench::stats(&s.teardown),
                            "samples_ms": {"run_pod_sandbox": s.pod, "create_start_container": s.ctr},
                        }),
                    );
                }
                let ratio = |pick: fn(&Series) -> &Vec<f64>| {
                    let m = |j: usize| crate::bench::median(pick(&series[j]));
                    m(0).zip(m(1)).map(|(a, b)| a / b)
                };
                json!({
                    "containerd": containerd,
                    "shim": "io.containerd.runc.v2",
                    "pods_per_handler": pods,
                    "workload": "RunPodSandbox (pause, CNI bridge); CreateContainer+StartContainer of busybox `sleep 3600`",
                    "handlers": handlers,
                    "rr_over_runc_median": {
                        "run_pod_sandbox": ratio(|s| &s.pod),
                        "create_start_container": ratio(|s| &s.ctr),
                    },
                })
            }
        }
    }

    /// Ok unless a CRI call failed while measuring.
    pub(crate) fn check(&self) -> Result<()> {
        match self {
            CriRows::Failed(why) => Err(format!("bench --cri: {why}")),
            _ => Ok(()),
        }
    }

    /// Writes `cri-<time>.json` and `cri-latest.json` into `out_dir`.
    pub(crate) fn write_json(&self, out_dir: &Path, unix_time: u64) -> Result<()> {
        std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
        let text = serde_json::to_string_pretty(&self.json()).map_err(|e| e.to_string())?;
        for name in [format!("cri-{unix_time}.json"), "cri-latest.json".into()] {
            let p = out_dir.join(name);
            std::fs::write(&p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(CriOptions, Vec<String>)> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut o = CriOptions::default();
        let mut other = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if !o.parse_arg(a, &mut it)? {
                other.push(a.clone());
            }
        }
        Ok((o, other))
    }

    #[test]
    fn options() {
        let (o, rest) = parse(&["--runs", "3"]).unwrap();
        assert_eq!((o.mode, o.pods, o.only), (Mode::Auto, DEFAULT_PODS, false));
        assert_eq!(rest, ["--runs", "3"]);
        let (o, _) = parse(&["--cri-pods", "5", "--cri"]).unwrap();
        assert_eq!((o.mode, o.pods, o.only), (Mode::On, 5, false));
        let (o, _) = parse(&["--cri-only"]).unwrap();
        assert_eq!((o.mode, o.only), (Mode::On, true));
        let (o, _) = parse(&["--no-cri"]).unwrap();
        assert_eq!(o.mode, Mode::Off);
        assert!(parse(&["--cri-pods", "0"]).is_err());
        assert!(parse(&["--cri-pods"]).is_err());
    }

    #[test]
    fn rows_ratio_against_runc() {
        let series = |pod: &[f64], ctr: &[f64]| Series {
            pod: pod.to_vec(),
            ctr: ctr.to_vec(),
            ..Default::default()
        };
        let rows = CriRows::Measured {
            containerd: "containerd 1.6".into(),
            pods: 3,
            series: vec![
                series(&[8.0, 9.0, 10.0], &[1.0, 2.0, 3.0]),
                series(&[10.0, 10.0, 12.0], &[4.0, 4.0, 4.0]),
            ],
        };
        let j = rows.json();
        assert_eq!(j["rr_over_runc_median"]["run_pod_sandbox"], 0.9);
        assert_eq!(j["rr_over_runc_median"]["create_start_container"], 0.5);
        assert_eq!(j["handlers"]["runc"]["run_pod_sandbox"]["median_ms"], 10.0);
        assert!(rows.check().is_ok());
        assert!(CriRows::Failed("x".into()).check().is_err());
        assert!(CriRows::Skipped("x".into()).check().is_ok());
    }
}
