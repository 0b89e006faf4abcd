//! Start-up overhead of the sandbox, side by side with the bare interpreter, same clean env.
//!
//! Run as root: `cargo bench -p livexec-sandbox --bench startup` (env `N` = runs per case,
//! default 40). Prints min/p50/p99 of wall time for: bare `python3 main.py`; the same in a
//! jail built on the spot (*cold*) and in a jail prepared ahead of need (*warm*,
//! [`Sandbox::keep_warm`]), with default limits (0.5 core) and with a 2-core quota (so the
//! CPU quota does not throttle start-up); the same for node and `/usr/bin/true`; the
//! sandbox's own cost on the request path (total minus the program's own wall time), cold
//! and warm; and the supervisor's added memory per concurrent run.

use std::path::PathBuf;
use std::process::{Command as Std, Stdio};
use std::time::{Duration, Instant};

use livexec_sandbox::{Command, Limits, Sandbox, SandboxConfig, DEFAULT_ENV};

struct Lang {
    name: &'static str,
    exe: PathBuf,
    mount: Option<PathBuf>,
    file: &'static str,
    code: &'static str,
    expect: &'static [u8],
}

fn langs() -> Vec<Lang> {
    let py = Std::new("python3")
        .args([
            "-c",
            "import sys;print(sys.executable);print(sys.base_prefix)",
        ])
        .output()
        .expect("python3 on PATH");
    let py = String::from_utf8_lossy(&py.stdout).into_owned();
    let mut l = py.lines();
    let py_exe = PathBuf::from(l.next().expect("sys.executable"));
    let py_prefix = PathBuf::from(l.next().expect("sys.base_prefix"));
    let node = Std::new("sh")
        .args(["-c", "command -v node"])
        .output()
        .expect("sh");
    let node = PathBuf::from(String::from_utf8_lossy(&node.stdout).trim());
    let node = node.canonicalize().unwrap_or(node);
    vec![
        Lang {
            name: "python",
            exe: py_exe,
            mount: Some(py_prefix),
            file: "main.py",
            code: "print(1)\n",
            expect: b"1\n",
        },
        Lang {
            name: "node",
            exe: node,
            mount: None,
            file: "main.js",
            code: "console.log(1)\n",
            expect: b"1\n",
        },
        Lang {
            name: "true",
            exe: PathBuf::from("/usr/bin/true"),
            mount: None,
            file: "unused",
            code: "",
            expect: b"",
        },
    ]
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = ms(v[v.len() / 2]);
    let p99 = ms(v[((v.len() * 99) / 100).min(v.len() - 1)]);
    (ms(v[0]), p50, p99)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Timings of one case: total wall time and the sandbox's part (total minus program wall).
#[derive(Default)]
struct Case {
    total: Vec<Duration>,
    cost: Vec<Duration>,
    warm: usize,
}

impl Case {
    fn run(&mut self, sb: &Sandbox, cmd: &Command, expect: &[u8], keep: bool) {
        let t = Instant::now();
        let o = sb.run(cmd, &mut |_, _| {}).expect("sandbox run");
        let d = t.elapsed();
        assert_eq!(o.stdout, expect, "{o:?}");
        if keep {
            self.total.push(d);
            self.cost
                .push(d.saturating_sub(Duration::from_micros(o.wall_us)));
            self.warm += usize::from(o.warm_start);
        }
    }
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let sb = Sandbox::new(SandboxConfig::default()).expect("Sandbox::new (run as root)");
    let warm = Sandbox::new(SandboxConfig::default()).expect("Sandbox::new (run as root)");
    println!("cgroup mode: {}; N = {n} runs per case", sb.cgroup_mode());
    let dir = tempfile::tempdir().expect("tempdir");
    for lang in langs() {
        std::fs::write(dir.path().join(lang.file), lang.code).expect("write");
        let mut cmd = Command::new(&lang.exe);
        cmd.arg(lang.file).file(lang.file, lang.code);
        if let Some(m) = &lang.mount {
            cmd.mount_ro(m);
        }
        let mut wide = cmd.clone();
        wide.limits(Limits {
            cpu_millicores: 2000,
            ..Limits::default()
        });
        warm.keep_warm(&cmd, 1).expect("keep_warm");
        warm.keep_warm(&wide, 1).expect("keep_warm");
        let mut bare = vec![];
        let (mut cold, mut cold_wide, mut hot, mut hot_wide) = Default::default();
        for i in 0..n + 3 {
            let keep = i >= 3;
            let t = Instant::now();
            let st = Std::new(&lang.exe)
                .arg(lang.file)
                .current_dir(dir.path())
                .env_clear()
                .envs(DEFAULT_ENV.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .expect("bare run");
            if keep {
                bare.push(t.elapsed());
            }
            assert!(st.status.success());
            Case::run(&mut cold, &sb, &cmd, lang.expect, keep);
            Case::run(&mut cold_wide, &sb, &wide, lang.expect, keep);
            // Give the pool's thread time to refill (a request finds a prepared jail).
            std::thread::sleep(Duration::from_millis(30));
            Case::run(&mut hot, &warm, &cmd, lang.expect, keep);
            Case::run(&mut hot_wide, &warm, &wide, lang.expect, keep);
        }
        warm.keep_warm(&cmd, 0).expect("keep_warm");
        warm.keep_warm(&wide, 0).expect("keep_warm");
        let (bn, bm, bp) = stats(bare);
        let name = lang.name;
        println!("{name:<7} bare                             min {bn:6.2}  p50 {bm:6.2}  p99 {bp:6.2} ms");
        for (label, c) in [
            ("cold, default limits", &cold),
            ("warm, default limits", &hot),
            ("cold, 2-core quota", &cold_wide),
            ("warm, 2-core quota", &hot_wide),
        ] {
            let (sn, sm, sp) = stats(c.total.clone());
            let (_, um, up) = stats(c.cost.clone());
            println!(
                "{name:<7} {label:<24} min {sn:6.2}  p50 {sm:6.2}  p99 {sp:6.2} ms  p50 {:+6.2} ms over bare; sandbox cost p50 {um:5.2} p99 {up:5.2} ms; {}/{} warm",
                sm - bm,
                c.warm,
                c.total.len()
            );
        }
    }

    // Supervisor memory per concurrent run: K runs sleeping in parallel.
    let k = 8;
    let langs = langs();
    let py = &langs[0];
    let mut cmd = Command::new(&py.exe);
    // A wall limit that holds in a slow guest too (TCG: python alone takes seconds there).
    cmd.arg("main.py")
        .file("main.py", "import time; time.sleep(1.5)\n")
        .limits(Limits {
            wall_ms: 120_000,
            ..Limits::default()
        });
    if let Some(m) = &py.mount {
        cmd.mount_ro(m);
    }
    let before = rss_kib();
    let sb = std::sync::Arc::new(sb);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let threads: Vec<_> = (0..k)
        .map(|_| {
            let (sb, cmd) = (sb.clone(), cmd.clone());
            std::thread::spawn(move || sb.run(&cmd, &mut |_, _| {}).map(|o| o.exit_code))
        })
        .collect();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1200) {
        peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
    }
    for th in threads {
        assert_eq!(th.join().expect("join").expect("run"), Some(0));
    }
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "supervisor RSS: {before} KiB idle, {peak} KiB with {k} concurrent runs => ~{} KiB per run (incl. its thread)",
        (peak.saturating_sub(before)) / k
    );
}
