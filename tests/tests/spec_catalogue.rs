//! Fields of the runtime-spec catalogue (crates/rr-container/src/
//! spec_catalogue.rs) whose effect no other file checks, and the refusal
//! of the spec fields rrc's parser would otherwise drop without a word.

use rr_tests::cg::{a_disk, cgroup_paths, read, run_detached, v1_offers};
use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::json;

/// Runs the container to its end and returns its output.
fn run(env: &TestEnv, prefix: &str) -> String {
    let id = unique_id(prefix);
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "run {id}: {}", stderr(&out));
    env.assert_no_leftovers(&id);
    stdout(&out)
}

/// `root.readonly` makes the rootfs read-only (and `false` leaves it
/// writable); `process.oomScoreAdj` is the init's oom_score_adj.
#[test]
fn read_only_root_and_oom_score_adj_are_applied() {
    require_env!();
    let script = "cat /proc/self/oom_score_adj; touch /probe 2>/dev/null && echo rw || echo ro";
    let env = TestEnv::new(&["sh", "-c", script]);
    env.edit_config(|c| {
        c["root"]["readonly"] = json!(true);
        c["process"]["oomScoreAdj"] = json!(123);
    });
    let out = run(&env, "ro");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["123", "ro"],
        "{out}"
    );
    env.edit_config(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["oomScoreAdj"] = json!(456);
    });
    let out = run(&env, "rw");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["456", "rw"],
        "{out}"
    );
}

/// `enableCMT` and `enableMBM` (runtime-spec 1.0 to 1.2): the parser rrc
/// uses reads other names and would drop them, so create refuses them by
/// name, before anything is made.
#[test]
fn fields_the_parser_drops_are_refused_by_name() {
    require_env!();
    for field in ["enableCMT", "enableMBM"] {
        let env = TestEnv::new(&["true"]);
        env.edit_config(|c| c["linux"]["intelRdt"] = json!({ field: true }));
        let id = unique_id("unmodelled");
        let out = env.rrc_bundle("create", &[&id]);
        let err = stderr(&out);
        assert!(!out.status.success(), "create with {field} should fail");
        assert!(err.contains(&format!("linux.intelRdt.{field}")), "{err}");
        assert!(err.contains("enableMonitoring"), "{err}");
        env.assert_no_leftovers(&id);
        let left = env.leftovers(&id);
        assert!(left.is_empty(), "{field}: leftovers {left:?}");
    }
}

/// A key that is no spec field is ignored, as runc ignores it.
#[test]
fn unknown_keys_are_ignored_as_runc_does() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "echo ran"]);
    env.edit_config(|c| {
        c["notASpecField"] = json!({"x": 1});
        c["linux"]["notASpecFieldEither"] = json!(true);
    });
    assert_eq!(run(&env, "unknown").trim(), "ran");
}

/// `linux.resources.memory.checkBeforeUpdate`: an update to a limit below
/// what the container uses is refused before any file is written.
#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    require_env!();
    if !v1_offers("memory/memory.limit_in_bytes") {
        eprintln!("SKIPPED: no cgroup v1 memory hierarchy");
        return;
    }
    let env = TestEnv::new(&["sleep", "1000"]);
    env.edit_config(|c| c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20}));
    let id = unique_id("cbu");
    let _cleanup = run_detached(&env, &id);
    let limit_file = cgroup_paths(&env, &id)["memory"].join("memory.limit_in_bytes");
    let file = env.dir.path().join("update.json");
    std::fs::write(
        &file,
        json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}).to_string(),
    )
    .expect("write update file");
    let out = env.rrc(&["update", "-r", file.to_str().expect("path"), &id]);
    let err = stderr(&out);
    assert!(!out.status.success(), "update below usage should fail");
    assert!(err.contains("checkBeforeUpdate"), "{err}");
    assert_eq!(read(&limit_file).trim(), (64u64 << 20).to_string());
}

/// `SCHED_FLAG_RESET_ON_FORK` and `SCHED_FLAG_DL_OVERRUN` are the spec's
/// names (oci-spec spells them otherwise): a config with them runs, for
/// the init and for `exec --process`, and reset-on-fork is applied: the
/// shell has the spec's nice value, what it forks has 0 again.
#[test]
fn scheduler_flags_by_their_spec_names() {
    require_env!();
    // busybox runs `cut` inside the shell; a pipeline forks.
    let script = "cut -d' ' -f19 /proc/$$/stat; cat /proc/self/stat | cut -d' ' -f19";
    let env = TestEnv::new(&["sh", "-c", script]);
    let sched = json!({"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    env.edit_config(|c| c["process"]["scheduler"] = sched.clone());
    let out = run(&env, "resetfork");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["-5", "0"],
        "{out}"
    );

    env.edit_config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = unique_id("resetfork");
    let _cleanup = run_detached(&env, &id);
    let process = env.dir.path().join("process.json");
    let spec = json!({
        "args": ["sh", "-c", script], "cwd": "/", "env": ["PATH=/bin"],
        "scheduler": sched,
    });
    std::fs::write(&process, spec.to_string()).expect("write process.json");
    let out = env.rrc(&["exec", "--process", process.to_str().expect("path"), &id]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["-5", "0"],
        "{text}"
    );

    // Parsed (not refused as an unknown variant) by create; the kernel
    // decides whether it takes the flag for this policy.
    env.edit_config(|c| {
        c["process"]["args"] = json!(["true"]);
        c["process"]["scheduler"] =
            json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_DL_OVERRUN"]});
    });
    let id = unique_id("dloverrun");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(
        !stderr(&out).contains("unknown variant"),
        "{}",
        stderr(&out)
    );
    let _ = env.rrc(&["delete", "-f", &id]);
    env.assert_no_leftovers(&id);
}

/// The cgroup v1 limits no other test reads back: each one the kernel
/// offers is set, and its file on the host shows it.
#[test]
fn v1_limits_without_another_test_show_on_the_host() {
    require_env!();
    if !v1_offers("memory/memory.oom_control") || !v1_offers("cpu/cpu.cfs_quota_us") {
        eprintln!("SKIPPED: no cgroup v1 memory and cpu hierarchies");
        return;
    }
    let burst = v1_offers("cpu/cpu.cfs_burst_us");
    let idle = v1_offers("cpu/cpu.idle");
    let disk = a_disk().filter(|_| v1_offers("blkio/blkio.throttle.write_iops_device"));
    let env = TestEnv::new(&["sleep", "1000"]);
    env.edit_config(|c| {
        let r = &mut c["linux"]["resources"];
        r["memory"] = json!({"limit": 64 << 20, "disableOOMKiller": true, "useHierarchy": true});
        r["cpu"] = json!({"quota": 50000, "period": 100000});
        if burst {
            r["cpu"]["burst"] = json!(5000);
        }
        if idle {
            r["cpu"]["idle"] = json!(1);
        }
        if let Some((maj, min)) = disk {
            let dev = |rate: u64| json!([{"major": maj, "minor": min, "rate": rate}]);
            r["blockIO"] = json!({
                "throttleWriteBpsDevice": dev(2097152),
                "throttleReadIOPSDevice": dev(300),
                "throttleWriteIOPSDevice": dev(200),
            });
        }
    });
    let id = unique_id("cgextra");
    let _cleanup = run_detached(&env, &id);
    let paths = cgroup_paths(&env, &id);
    let host = |c: &str, f: &str| read(&paths[c].join(f));
    let oom = host("memory", "memory.oom_control");
    assert!(oom.lines().any(|l| l == "oom_kill_disable 1"), "{oom}");
    assert_eq!(host("memory", "memory.use_hierarchy").trim(), "1");
    if burst {
        assert_eq!(host("cpu", "cpu.cfs_burst_us").trim(), "5000");
    }
    if idle {
        assert_eq!(host("cpu", "cpu.idle").trim(), "1");
    }
    if let Some((maj, min)) = disk {
        for (file, rate) in [
            ("blkio.throttle.write_bps_device", 2097152),
            ("blkio.throttle.read_iops_device", 300),
            ("blkio.throttle.write_iops_device", 200),
        ] {
            assert_eq!(
                host("blkio", file).trim(),
                format!("{maj}:{min} {rate}"),
                "{file}"
            );
        }
    } else {
        eprintln!("SKIPPED part: no disk or no blkio throttle files");
    }
}

/// SCHED_DEADLINE with `runtime`, `deadline` and `period`: the init has
/// them, as `chrt -p` (util-linux, sched_getattr) reads them from the host.
#[test]
fn deadline_scheduler_parameters_are_applied() {
    require_env!();
    if !std::path::Path::new("/usr/bin/chrt").exists() {
        eprintln!("SKIPPED: no /usr/bin/chrt (util-linux)");
        return;
    }
    let env = TestEnv::new(&["sleep", "1000"]);
    env.edit_config(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE",
            "runtime": 10_000_000, "deadline": 20_000_000, "period": 30_000_000});
    });
    let id = unique_id("deadline");
    let _cleanup = run_detached(&env, &id);
    let pid = env.state(&id)["pid"].as_i64().expect("pid").to_string();
    let out = std::process::Command::new("/usr/bin/chrt")
        .args(["-p", &pid])
        .output()
        .expect("run chrt");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("SCHED_DEADLINE"), "{text}");
    assert!(text.contains("10000000/20000000/30000000"), "{text}");
}

/// Seccomp argument conditions (`index`, `value`, `valueTwo`, `op`): a
/// rule that fails kill(2) when the signal has bit 4 set
/// (SCMP_CMP_MASKED_EQ: sig & 0x10 == 0x10) fails `kill -CONT` (18) with
/// the profile's errno and lets `kill -0` through.
#[test]
fn seccomp_argument_conditions_are_applied() {
    require_env!();
    let script = "kill -0 $$; echo zero=$?; kill -CONT $$; echo cont=$?";
    let env = TestEnv::new(&["sh", "-c", script]);
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28,
                "args": [{"index": 1, "value": 16, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]}]
        });
    });
    let id = unique_id("scargs");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["zero=0", "cont=1"],
        "{text}"
    );
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
}

/// `cpu.realtimeRuntime` and `realtimePeriod` (cgroup v1 only): in a
/// cgroup right below the root, which has the real-time budget to give.
#[test]
fn realtime_limits_show_on_the_host() {
    require_env!();
    if !v1_offers("cpu/cpu.rt_runtime_us") {
        eprintln!("SKIPPED: no cgroup v1 cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED)");
        return;
    }
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = unique_id("rtlimits");
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        c["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 1000, "realtimePeriod": 200000});
    });
    let _cleanup = run_detached(&env, &id);
    let cpu = &cgroup_paths(&env, &id)["cpu"];
    assert_eq!(read(&cpu.join("cpu.rt_runtime_us")).trim(), "1000");
    assert_eq!(read(&cpu.join("cpu.rt_period_us")).trim(), "200000");
}

/// Resources of controllers a host may lack (hugetlb, net_cls, rdma, the
/// blkio weights, gone from 6.18): applied where the host has them, and
/// elsewhere create fails naming the controller or the field, leaving
/// nothing behind.
#[test]
fn resources_of_missing_controllers_are_applied_or_refused_by_name() {
    require_env!();
    let disk = a_disk().unwrap_or((8, 0));
    let cases = [
        (
            "hugepageLimits",
            json!([{"pageSize": "2MB", "limit": 2097152}]),
            "hugetlb",
            "hugetlb.2MB.limit_in_bytes",
            "2097152",
        ),
        (
            "network",
            json!({"classID": 1048577}),
            "net_cls",
            "net_cls.classid",
            "1048577",
        ),
        (
            "blockIO",
            json!({"weightDevice": [{"major": disk.0, "minor": disk.1, "weight": 300}]}),
            "blkio",
            "blkio.weight_device",
            "300",
        ),
    ];
    for (field, value, controller, file, want) in cases {
        let env = TestEnv::new(&["sleep", "1000"]);
        env.edit_config(|c| c["linux"]["resources"][field] = value.clone());
        let id = unique_id("missingctl");
        let out = env.rrc_bundle("create", &[&id]);
        if out.status.success() {
            let _cleanup = rr_tests::cg::Cleanup(&env, id.clone());
            match cgroup_paths(&env, &id).get(controller) {
                Some(dir) if dir.join(file).exists() => {
                    let text = read(&dir.join(file));
                    assert!(text.contains(want), "{field}: {file}: {text}");
                }
                _ => eprintln!("SKIPPED part: {field} applied through another file"),
            }
            continue;
        }
        let err = stderr(&out);
        // The v2 controller of blkio is io.
        let v2_name = if controller == "blkio" {
            "io"
        } else {
            controller
        };
        let named = err.contains(&format!("controller {controller}"))
            || err.contains(&format!("controller {v2_name}"))
            || err.contains(&format!("linux.resources.{field}"));
        assert!(named, "{field}: {err}");
        env.assert_no_leftovers(&id);
        eprintln!("{field}: refused here: {}", err.trim());
    }
}

/// A value the kernel refuses (a blockIO throttle for a device that does
/// not exist: ENODEV on v1 and v2) fails create with the spec field named
/// first, before the cgroup file and converted value, and leaves nothing.
#[test]
fn kernel_refused_resource_names_its_spec_field() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    env.edit_config(|c| {
        c["linux"]["resources"]["blockIO"] =
            json!({"throttleReadBpsDevice": [{"major": 4000, "minor": 77, "rate": 5}]})
    });
    let id = unique_id("refusedfield");
    let out = env.rrc_bundle("create", &[&id]);
    let err = stderr(&out);
    if err.contains("is not available") {
        eprintln!("SKIPPED: no blkio/io controller here: {}", err.trim());
        env.assert_no_leftovers(&id);
        return;
    }
    if out.status.success() {
        let _cleanup = rr_tests::cg::Cleanup(&env, id.clone());
        panic!("create accepted a throttle for device 4000:77");
    }
    // The log line escapes the quotes around the value, which is v1's
    // "4000:77 5" or v2's "4000:77 rbps=5".
    assert!(
        err.contains("linux.resources.blockIO.throttleReadBpsDevice: writing ")
            && (err.contains("4000:77 5") || err.contains("4000:77 rbps=5")),
        "{err}"
    );
    env.assert_no_leftovers(&id);
}

/// `linux.seccomp.defaultErrnoRet`: with every syscall allowed but
/// sethostname, `hostname` fails with that errno (ENOSPC), not EPERM.
#[test]
fn default_errno_ret_is_returned() {
    require_env!();
    let header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
    let Ok(text) = std::fs::read_to_string(header) else {
        eprintln!("SKIPPED: no {header} (x86_64 linux-libc-dev)");
        return;
    };
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#define __NR_"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "sethostname")
        .collect();
    assert!(names.len() > 300, "{header}: {} names", names.len());
    let env = TestEnv::new(&["sh", "-c", "hostname other; echo rc=$?"]);
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 28,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
        });
    });
    let id = unique_id("deferrno");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "rc=1", "{}", stdout(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
}

/// runc's Go decoder matches keys without case, so `"readOnly"` and
/// `"hostName"` set the read-only rootfs and the hostname there (checked
/// side by side with runc 1.1.5); rrc reads them the same way instead of
/// dropping them.
#[test]
fn keys_in_another_case_are_read_as_runc_reads_them() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "hostname; touch /probe 2>/dev/null && echo rw || echo ro",
    ]);
    env.edit_config(|c| {
        let root = c["root"]["path"].clone();
        c["root"] = json!({"path": root, "readOnly": true});
        if let Some(o) = c.as_object_mut() {
            o.remove("hostname");
        }
        c["hostName"] = json!("mixedcase");
    });
    let out = run(&env, "anycase");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["mixedcase", "ro"],
        "{out}"
    );
}
