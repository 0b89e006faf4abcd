//! The jail's `/proc` shows the run, not the host: values from the run's limits, host files
//! covered, the run's own clocks, neutral mount sources, and a sweep of every readable file
//! for host secrets. Checked from inside with real python3 and node.

mod common;

use std::path::Path;

use common::*;
use livexec_sandbox::{Command, Limits};

fn with_limits(mut cmd: Command, f: impl FnOnce(&mut Limits)) -> Command {
    let mut l = small();
    f(&mut l);
    cmd.limits(l);
    cmd
}

fn host(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// CPUs in this process's affinity mask (what a run inherits).
fn host_cpus() -> u32 {
    let status = host("/proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned();
    list.split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<u32>().unwrap() - a.parse::<u32>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// The source (device) of the host mount that `/usr` lives on.
fn host_usr_source() -> String {
    let info = host("/proc/self/mountinfo");
    let mut best = (0, String::new());
    for line in info.lines() {
        let (left, right) = line.split_once(" - ").unwrap();
        let point = left.split(' ').nth(4).unwrap();
        let source = right.split(' ').nth(1).unwrap();
        if Path::new("/usr").starts_with(point) && point.len() >= best.0 {
            best = (point.len(), source.to_owned());
        }
    }
    best.1
}

#[test]
fn meminfo_shows_the_memory_limit() {
    let code = r#"
m = dict(l.split(":", 1) for l in open("/proc/meminfo"))
print(*(m[k].split()[0] for k in ["MemTotal", "MemFree", "MemAvailable", "SwapTotal"]))
"#;
    let mib128 = run(&with_limits(py(code), |l| l.memory_bytes = 128 << 20));
    assert_eq!(ok(&mib128), "131072 131072 131072 0");
    let mib200 = run(&with_limits(py(code), |l| l.memory_bytes = 200 << 20));
    assert_eq!(ok(&mib200), "204800 204800 204800 0");
    let host_total = host("/proc/meminfo");
    assert!(!host_total.starts_with("MemTotal:         131072 kB"));
}

#[test]
fn python_counts_the_cpus_of_the_quota() {
    let code = r#"
import os
procs = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
print(os.cpu_count(), os.sysconf("SC_NPROCESSORS_CONF"), procs, len(os.sched_getaffinity(0)))
"#;
    let cpus = host_cpus();
    for (millicores, want) in [(500, 1), (1000, 1), (1500, 2.min(cpus)), (64_000, cpus)] {
        let o = run(&with_limits(py(code), |l| l.cpu_millicores = millicores));
        // The affinity mask stays the host's: the run may be scheduled on any CPU, the quota
        // caps how much time it gets (os.sched_getaffinity, os.process_cpu_count, Node's
        // os.availableParallelism and the JVM follow the mask).
        assert_eq!(
            ok(&o),
            format!("{want} {want} {want} {cpus}"),
            "{millicores} millicores"
        );
    }
}

#[test]
fn node_sees_the_limits_too() {
    let code = r#"
const os = require("os");
console.log(os.cpus().length, os.totalmem(), os.freemem() <= os.totalmem(), os.uptime() < 5);
"#;
    let o = run(&with_limits(js(code), |l| {
        l.cpu_millicores = 500;
        l.memory_bytes = 256 << 20;
    }));
    assert_eq!(ok(&o), format!("1 {} true true", 256u64 << 20));
    if host_cpus() >= 2 {
        let o = run(&with_limits(js(code), |l| {
            l.cpu_millicores = 2000;
            l.memory_bytes = 256 << 20;
        }));
        assert_eq!(ok(&o), format!("2 {} true true", 256u64 << 20));
    }
}

#[test]
fn host_files_are_covered_read_only_and_sys_is_the_runs() {
    let o = run(&py(r#"
import errno, os
for f in ["cmdline", "kallsyms", "diskstats", "partitions", "interrupts", "keys", "zoneinfo"]:
    print(f, repr(open("/proc/" + f).read()))
for d in ["pressure", "fs", "irq"]:
    print(d, os.listdir("/proc/" + d))
for p in ["/proc/meminfo", "/proc/cmdline", "/proc/sys/kernel/threads-max", "/proc/sys/vm/overcommit_memory"]:
    try:
        open(p, "w").write("1")
        print(p, "WRITTEN")
    except OSError as e:
        print(p, errno.errorcode[e.errno])
files = []
for dirpath, _, names in os.walk("/proc/sys"):
    files += [os.path.join(dirpath, n)[len("/proc/sys/"):] for n in names]
print(sorted(files))
r = "/proc/sys/kernel/random/"
print(open(r + "uuid").read() != open(r + "uuid").read(), open("/proc/sys/kernel/threads-max").read().strip())
"#));
    let s = ok(&o);
    let mut l = s.lines();
    for f in [
        "cmdline",
        "kallsyms",
        "diskstats",
        "partitions",
        "interrupts",
        "keys",
        "zoneinfo",
    ] {
        assert_eq!(l.next().unwrap(), format!("{f} ''"));
    }
    for d in ["pressure", "fs", "irq"] {
        assert_eq!(l.next().unwrap(), format!("{d} []"));
    }
    for _ in 0..4 {
        let line = l.next().unwrap();
        assert!(line.ends_with(" EROFS"), "{line}");
    }
    let mut want = vec![
        "kernel/osrelease",
        "kernel/pid_max",
        "kernel/random/boot_id",
        "kernel/random/uuid",
        "kernel/threads-max",
        "vm/max_map_count",
        "vm/overcommit_memory",
    ];
    if Path::new("/proc/sys/crypto/fips_enabled").exists() {
        want.insert(0, "crypto/fips_enabled");
    }
    let want: Vec<String> = want.iter().map(|p| format!("'{p}'")).collect();
    assert_eq!(l.next().unwrap(), format!("[{}]", want.join(", ")));
    // A live uuid; threads-max is the run's pids limit (the host's derives from its RAM).
    assert_eq!(l.next().unwrap(), format!("True {}", small().pids));
}

#[test]
fn clocks_boot_id_and_uptime_are_the_runs() {
    let code = r#"
import os, time
st = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
btime = next(l.split()[1] for l in open("/proc/stat") if l.startswith("btime"))
print(open("/proc/sys/kernel/random/boot_id").read().strip())
print(open("/proc/uptime").read().strip(), open("/proc/loadavg").read().strip())
print(time.clock_gettime(time.CLOCK_BOOTTIME), time.monotonic(), int(st[19]) / os.sysconf("SC_CLK_TCK"), btime)
"#;
    assert!(
        sandbox().proc_isolation().own_clocks,
        "this kernel has no time namespaces (/proc/self/ns/time): the run's clocks are the host's"
    );
    let boot = |s: &str| s.split(' ').next().unwrap().parse::<f64>().unwrap();
    let host_boot_before = boot(&host("/proc/uptime"));
    let wall_before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (a, b) = (run(&py(code)), run(&py(code)));
    let host_boot_after = boot(&host("/proc/uptime"));
    let (a, b) = (ok(&a), ok(&b));
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let host_boot_id = host("/proc/sys/kernel/random/boot_id");
    assert_eq!(la[0].len(), 36);
    assert_ne!(la[0], host_boot_id);
    assert_ne!(la[0], lb[0], "a boot id per run");
    assert_eq!(la[1], "0.00 0.00 0.00 0.00 0.00 1/2 2");
    let clocks: Vec<f64> = la[2].split(' ').map(|x| x.parse().unwrap()).collect();
    // The run's clocks started with it: less than the host saw elapse around both runs.
    let elapsed = host_boot_after - host_boot_before + 0.01;
    for c in &clocks[..3] {
        assert!(
            *c <= elapsed,
            "{c} s > {elapsed} s elapsed on the host: {a}"
        );
    }
    let btime = clocks[3] as u64;
    assert!(btime >= wall_before, "btime {btime} before the run started");
    assert_eq!(host("/proc/sys/kernel/random/boot_id"), host_boot_id);
}

#[test]
fn the_jails_init_shows_nothing_of_the_supervisor() {
    let o = run(&py(r#"
print(repr(open("/proc/1/cmdline").read()), open("/proc/1/comm").read().strip())
for f in ["environ", "maps"]:
    try:
        open("/proc/1/" + f).read()
        print(f, "READ")
    except OSError as e:
        print(f, type(e).__name__)
"#));
    assert_eq!(
        ok(&o),
        "'livexec-init\\x00' livexec-init\nenviron PermissionError\nmaps PermissionError"
    );
}

#[test]
fn mount_sources_are_neutral_when_reported() {
    let device = host_usr_source();
    let code = "print(open('/proc/self/mountinfo').read())";
    let s = ok(&run(&py(code)));
    let usr = s.lines().find(|l| l.contains(" /usr /usr ")).unwrap();
    if sandbox().proc_isolation().neutral_mount_sources {
        assert!(
            usr.contains(" - ext4 livexec ") || usr.contains(" livexec "),
            "{usr}"
        );
        assert!(
            !s.contains(&device),
            "{device} in the jail's mountinfo:\n{s}"
        );
    } else {
        eprintln!("NOTE: neutral mount sources unavailable here; /usr shows {device}");
        assert!(usr.contains(&device), "{usr}");
    }
    // Executables, shared libraries and mmap work from those mounts: python ran, node too.
    assert_eq!(
        ok(&run(&js("console.log(require('os').platform())"))),
        "linux"
    );
}

/// Host secrets the sweep looks for: `(name, match as a token?, value)`.
fn host_secrets() -> Vec<(&'static str, bool, String)> {
    let mut v = Vec::new();
    let cmdline = host("/proc/cmdline");
    for tok in cmdline.split_whitespace().filter(|t| t.len() >= 16) {
        v.push(("host kernel command line", false, tok.to_owned()));
    }
    v.push(("host kernel command line", false, cmdline));
    v.push((
        "host boot_id",
        false,
        host("/proc/sys/kernel/random/boot_id"),
    ));
    let name = host("/proc/sys/kernel/hostname");
    v.push(("host name", name.len() < 8, name));
    let mem = host("/proc/meminfo");
    let kb = mem
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    v.push(("host MemTotal", true, kb.to_owned()));
    let device = host_usr_source();
    if sandbox().proc_isolation().neutral_mount_sources {
        v.push(("host device", false, device));
    }
    let me = std::fs::read("/proc/self/cmdline").unwrap();
    let argv0 = String::from_utf8_lossy(me.split(|b| *b == 0).next().unwrap()).into_owned();
    v.push(("test binary argv", false, argv0));
    v.push(("test thread name", false, host("/proc/thread-self/comm")));
    let version = host("/proc/version");
    if let Some(builder) = version.split(['(', ')']).find(|p| p.contains('@')) {
        v.push(("kernel build host", false, builder.to_owned()));
    }
    v
}

const SWEEP: &str = r#"
import os, re
hits, read, seen = [], 0, set()
def check(path):
    global read
    try:
        with open(path, "rb", buffering=0) as f:
            data = f.read(1 << 20)
    except OSError:
        return
    read += 1
    seen.add(path)
    toks = set(re.split(rb"[^A-Za-z0-9_.@/-]+", data))
    for name, tok, s in SECRETS:
        if (s in toks) if tok else (s in data):
            hits.append(f"{path}: {name}")
def walk(d):
    try:
        entries = list(os.scandir(d))
    except OSError:
        return
    for e in entries:
        if e.is_symlink():
            continue
        if e.is_dir(follow_symlinks=False):
            if e.name not in ("fd", "map_files"):
                walk(e.path)
        else:
            check(e.path)
own = {"1", str(os.getpid())}
for name in sorted(os.listdir("/proc")):
    p = "/proc/" + name
    if os.path.islink(p) or (name.isdigit() and name not in own):
        continue
    walk(p) if os.path.isdir(p) else check(p)
for want in ["/proc/meminfo", "/proc/cpuinfo", "/proc/sys/kernel/random/boot_id", "/proc/1/cmdline", f"/proc/{os.getpid()}/mountinfo", f"/proc/{os.getpid()}/net/unix"]:
    print("has", want, want in seen)
print("read", read)
print(*hits, sep="\n")
print("verdict", "LEAK" if hits else "clean")
"#;

#[test]
fn a_sweep_of_every_readable_proc_file_finds_no_host_secret() {
    let secrets: Vec<String> = host_secrets()
        .into_iter()
        .map(|(name, tok, s)| {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            let tok = if tok { "True" } else { "False" };
            format!("({name:?}, {tok}, bytes.fromhex({hex:?}))")
        })
        .collect();
    let code = format!("SECRETS = [{}]\n{SWEEP}", secrets.join(", "));
    let host_mounts = || {
        host("/proc/self/mountinfo")
            .lines()
            .filter(|l| l.contains("livexec"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let before = host_mounts();
    let o = run(&with_limits(py(&code), |l| l.wall_ms = 20_000));
    let s = ok(&o);
    assert!(
        s.ends_with("verdict clean"),
        "host secrets inside the jail:\n{s}"
    );
    for line in s.lines().filter(|l| l.starts_with("has ")) {
        assert!(line.ends_with(" True"), "the sweep missed a file: {line}");
    }
    let read: u32 = s
        .lines()
        .find_map(|l| l.strip_prefix("read "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(read > 150, "only {read} files read");
    assert_eq!(host_mounts(), before, "the run left mounts on the host");
}
