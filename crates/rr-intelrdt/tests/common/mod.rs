//! Fake resctrl trees that reproduce the layouts of real hosts. On a fake
//! tree a write just writes a file; the tests play the kernel's part where
//! it matters (populating a new group, rejecting a write).

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use rr_intelrdt::Resctrl;
use tempfile::TempDir;

pub struct FakeHost {
    _dir: TempDir,
    pub root: PathBuf,
}

impl FakeHost {
    fn new() -> FakeHost {
        FakeHost::new_in(None)
    }

    fn new_in(base: Option<&Path>) -> FakeHost {
        let dir = match base {
            Some(b) => tempfile::tempdir_in(b).expect("tempdir"),
            None => tempfile::tempdir().expect("tempdir"),
        };
        let root = dir.path().join("resctrl");
        fs::create_dir(&root).expect("mkdir root");
        let host = FakeHost { _dir: dir, root };
        host.write("info/last_cmd_status", "ok\n");
        host.write("tasks", "1\n2\n");
        host.write("cpus", "ff\n");
        host.write("mode", "shareable\n");
        host
    }

    pub fn resctrl(&self) -> Resctrl {
        Resctrl::at(&self.root)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir -p");
        }
        fs::write(&p, content).expect("write fake file");
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).expect("read fake file")
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).exists()
    }

    fn cache(&self, name: &str, mask: &str, min_bits: u32, closids: u32, sparse: Option<u32>) {
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

    fn bandwidth(&self, name: &str, gran: u32, min: u32, linear: u32, closids: u32) {
        let d = format!("info/{name}");
        self.write(&format!("{d}/bandwidth_gran"), &format!("{gran}\n"));
        self.write(&format!("{d}/min_bandwidth"), &format!("{min}\n"));
        self.write(&format!("{d}/delay_linear"), &format!("{linear}\n"));
        self.write(&format!("{d}/num_closids"), &format!("{closids}\n"));
    }

    fn monitoring(&self, domains: &[u32]) {
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

    /// The same host mounted with `-o mba_MBps` (the root shows MBps).
    pub fn intel_mbps() -> (FakeHost, Resctrl) {
        let h = FakeHost::intel_mba();
        h.write("schemata", "L3:0=7ff;1=7ff\nMB:0=4294967295;1=4294967295\n");
        let r = h.resctrl().with_mba_mbps(true);
        (h, r)
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
}
