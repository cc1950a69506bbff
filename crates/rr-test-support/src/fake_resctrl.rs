//! Fake resctrl trees that reproduce the layouts of real hosts. On a fake
//! tree a write just writes a file; the tests play the kernel's part where
//! it matters (populating a new group, rejecting a write).

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A fake resctrl mount in a temporary directory, removed on drop.
pub struct FakeHost {
    _dir: TempDir,
    /// The mount point of the fake tree.
    pub root: PathBuf,
}

impl FakeHost {
    /// An empty tree: only the files every resctrl root has.
    pub fn new() -> FakeHost {
        FakeHost::new_in(None)
    }

    /// [`FakeHost::new`] under the directory `base` (the system temporary
    /// directory when `None`).
    pub fn new_in(base: Option<&Path>) -> FakeHost {
        let mut b = tempfile::Builder::new();
        b.prefix("rr-resctrl-");
        let dir = match base {
            Some(base) => b.tempdir_in(base),
            None => b.tempdir(),
        }
        .expect("tempdir");
        let root = dir.path().join("resctrl");
        fs::create_dir(&root).expect("mkdir root");
        let host = FakeHost { _dir: dir, root };
        host.write("info/last_cmd_status", "ok\n");
        host.write("tasks", "1\n2\n");
        host.write("cpus", "ff\n");
        host.write("mode", "shareable\n");
        host
    }

    /// The path of `rel` in the tree.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `content` to `rel`, making its directories.
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir -p");
        }
        fs::write(&p, content).expect("write fake file");
    }

    /// The content of `rel`; panics naming the file when it cannot be read.
    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel))
            .unwrap_or_else(|e| panic!("{}: {e}", self.root.join(rel).display()))
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).exists()
    }

    /// The names of the directories at the root (groups and resctrl's own).
    pub fn dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.root)
            .expect("read root")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A cache resource `info/<name>`: its mask, minimum bits, CLOS count
    /// and, when given, `sparse_masks`.
    pub fn cache(&self, name: &str, mask: &str, min_bits: u32, closids: u32, sparse: Option<u32>) {
        let d = format!("info/{name}");
        self.write(&format!("{d}/cbm_mask"), &format!("{mask}\n"));
        self.write(&format!("{d}/min_cbm_bits"), &format!("{min_bits}\n"));
        self.write(&format!("{d}/num_closids"), &format!("{closids}\n"));
        self.write(&format!("{d}/shareable_bits"), "0\n");
        self.write(
            &format!("{d}/bit_usage"),
            "0=SSSSSSSSSSSSSSSS;1=SSSSSSSSSSSSSSSS\n",
        );
        if let Some(s) = sparse {
            self.write(&format!("{d}/sparse_masks"), &format!("{s}\n"));
        }
    }

    /// A bandwidth resource `info/<name>`.
    pub fn bandwidth(&self, name: &str, gran: u32, min: u32, linear: u32, closids: u32) {
        let d = format!("info/{name}");
        self.write(&format!("{d}/bandwidth_gran"), &format!("{gran}\n"));
        self.write(&format!("{d}/min_bandwidth"), &format!("{min}\n"));
        self.write(&format!("{d}/delay_linear"), &format!("{linear}\n"));
        self.write(&format!("{d}/num_closids"), &format!("{closids}\n"));
    }

    /// L3 monitoring, with counters in the root group for `domains`.
    pub fn monitoring(&self, domains: &[u32]) {
        self.write(
            "info/L3_MON/mon_features",
            "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n",
        );
        self.write("info/L3_MON/num_rmids", "176\n");
        self.write("info/L3_MON/max_threshold_occupancy", "270336\n");
        fs::create_dir_all(self.root.join("mon_groups")).expect("mon_groups");
        for d in domains {
            let m = format!("mon_data/mon_L3_{d:02}");
            self.write(&format!("{m}/llc_occupancy"), "1048576\n");
            self.write(&format!("{m}/mbm_total_bytes"), "123456789\n");
            self.write(&format!("{m}/mbm_local_bytes"), "100000000\n");
        }
    }

    /// Two-socket Intel Xeon (Skylake-SP class) mounted with `-o cdp`:
    /// 20-bit CBM, L3CODE/L3DATA with half the CLOSes, MBA, monitoring.
    /// The kernel pads resource names to the longest one.
    pub fn intel_cdp() -> FakeHost {
        let h = FakeHost::new();
        h.cache("L3CODE", "fffff", 1, 8, Some(0));
        h.cache("L3DATA", "fffff", 1, 8, Some(0));
        h.bandwidth("MB", 10, 10, 1, 8);
        h.write("info/MB/thread_throttle_mode", "max\n");
        h.monitoring(&[0, 1]);
        h.write(
            "schemata",
            "L3DATA:0=fffff;1=fffff\nL3CODE:0=fffff;1=fffff\n    MB:0=100;1=100\n",
        );
        h
    }

    /// Two-socket Intel with an 11-bit CBM and MBA (gran 10, min 10), no
    /// CDP, on an older kernel without `sparse_masks`.
    pub fn intel_mba() -> FakeHost {
        FakeHost::intel_mba_build(FakeHost::new())
    }

    /// [`FakeHost::intel_mba`] under the directory `base`.
    pub fn intel_mba_in(base: &Path) -> FakeHost {
        FakeHost::intel_mba_build(FakeHost::new_in(Some(base)))
    }

    fn intel_mba_build(h: FakeHost) -> FakeHost {
        h.cache("L3", "7ff", 1, 16, None);
        h.bandwidth("MB", 10, 10, 1, 8);
        h.monitoring(&[0, 1]);
        h.write("schemata", "L3:0=7ff;1=7ff\nMB:0=100;1=100\n");
        h
    }

    /// AMD EPYC (Zen 4): four L3 domains, a 16-bit mask that may be sparse
    /// and may be empty, MB and SMBA in AMD units of 1/8 GB/s up to 2048.
    pub fn amd() -> FakeHost {
        let h = FakeHost::new();
        h.cache("L3", "ffff", 0, 16, Some(1));
        h.bandwidth("MB", 1, 0, 0, 16);
        h.bandwidth("SMBA", 1, 0, 0, 16);
        h.monitoring(&[0, 1, 2, 3]);
        h.write(
            "schemata",
            "  L3:0=ffff;1=ffff;2=ffff;3=ffff\n  MB:0=2048;1=2048;2=2048;3=2048\nSMBA:0=2048;1=2048;2=2048;3=2048\n",
        );
        h
    }

    /// A host with monitoring only: no allocation resource, an empty root
    /// schemata.
    pub fn monitoring_only() -> FakeHost {
        let h = FakeHost::new();
        h.monitoring(&[0]);
        h.write("schemata", "");
        h
    }

    /// What the kernel does when a control group directory is made: it
    /// shows the group's files.
    pub fn kernel_populates_group(&self, group: &Path, domains: &[u32]) {
        fs::create_dir_all(group.join("mon_groups")).expect("mon_groups");
        fs::write(group.join("tasks"), "").expect("tasks");
        for d in domains {
            let m = group.join(format!("mon_data/mon_L3_{d:02}"));
            fs::create_dir_all(&m).expect("mon_data");
            fs::write(m.join("llc_occupancy"), format!("{}\n", 4096 * (d + 1))).expect("w");
            fs::write(m.join("mbm_total_bytes"), "Unavailable\n").expect("w");
            fs::write(m.join("mbm_local_bytes"), format!("{}\n", 1000 + d)).expect("w");
        }
    }

    /// A group set up beforehand by an administrator, as the kernel shows it.
    pub fn admin_group(&self, name: &str, schemata: &str) {
        self.write(&format!("{name}/schemata"), schemata);
        self.write(&format!("{name}/tasks"), "");
        fs::create_dir_all(self.root.join(name).join("mon_groups")).expect("mon_groups");
    }
}

impl Default for FakeHost {
    fn default() -> FakeHost {
        FakeHost::new()
    }
}
