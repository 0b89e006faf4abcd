//! Every runtime's hello world, three ways in one run (prints figures; asserts only that the
//! output is right), issue 10's speed goals:
//!
//! - **bare**: the toolchain by hand, with the clean environment the sandbox gives a program,
//!   compile and run for compiled runtimes (the baseline);
//! - **`livexec run`**: the binary, start to exit (probing, sandbox, compile, run);
//! - **`POST /code-sessions/:id/run?wait=true`**: the embedded service, request to answer.
//!
//! Each round takes the three back to back, so the figures are paired; the table shows the
//! medians and the differences to bare. One unmeasured `livexec run` per runtime first fills
//! the probe cache (in the bench's own temp dir), as any earlier run on a host does; the
//! `probe` column is that first run's time, which probes the toolchain. The sandbox gives a
//! program half a core by default (a compile stage every core), so the `+run` column is
//! what the whole platform adds at the service's defaults, not the platform's own cost alone
//! (`cargo bench -p livexec-sandbox --bench startup` has that).
//!
//! Run (as root): `cargo bench -p livexec --bench runtimes`. `LIVEXEC_BENCH_ROUNDS` (default
//! 5) sets the rounds; `LIVEXEC_BENCH_RUNTIMES=c,python` picks runtimes (default: every
//! available one); `LIVEXEC_BENCH_BIN=/path/to/livexec` times another `livexec` binary in the
//! `run` column (an earlier build, for a before/after comparison in the same conditions).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::{Server, BIN};
use livexec_runtimes::{Registry, Resolved, StageRecipe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `p` with a `/work/` prefix (the sandbox's working dir) moved to `dir`.
fn in_dir(p: &str, dir: &Path) -> String {
    match p.strip_prefix("/work/") {
        Some(rest) => dir.join(rest).to_string_lossy().into_owned(),
        None => p.to_owned(),
    }
}

/// One stage of `rt` run by hand in `dir`, with the sandbox's clean environment.
fn stage(recipe: &StageRecipe, dir: &Path) -> std::process::Output {
    let program = in_dir(&recipe.program.to_string_lossy(), dir);
    let out = Command::new(program)
        .args(recipe.args.iter().map(|a| in_dir(a, dir)))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", dir)
        .envs(recipe.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {out:?}",
        recipe.program.display()
    );
    out
}

/// Bare: compile (if any) and run `code` in a fresh dir, in ms; the program's stdout.
fn bare(rt: &Resolved, root: &Path, round: usize, code: &str) -> (f64, Vec<u8>) {
    let dir = root.join(format!("bare-{}-{round}", rt.id));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&rt.file_name), code).unwrap();
    let start = Instant::now();
    if let Some(c) = &rt.compile {
        stage(c, &dir);
    }
    let out = stage(&rt.run, &dir);
    (start.elapsed().as_secs_f64() * 1e3, out.stdout)
}

/// `livexec run --language ID FILE`, start to exit, in ms.
fn cli(rt: &Resolved, root: &Path, round: &str, code: &str) -> (f64, Vec<u8>) {
    let dir = root.join(format!("cli-{}-{round}", rt.id));
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join(&rt.file_name);
    std::fs::write(&file, code).unwrap();
    let bin = std::env::var_os("LIVEXEC_BENCH_BIN").unwrap_or_else(|| BIN.into());
    let start = Instant::now();
    let out = Command::new(bin)
        .args(["run", "--language", &rt.id])
        .arg(&file)
        .env("LIVEXEC_CACHE_DIR", root.join("probe-cache"))
        .output()
        .unwrap();
    let took = start.elapsed().as_secs_f64() * 1e3;
    assert!(out.status.success(), "livexec run {}: {out:?}", rt.id);
    (took, out.stdout)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("LIVEXEC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let pick: Option<Vec<String>> = std::env::var("LIVEXEC_BENCH_RUNTIMES")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let registry = Registry::builtin().unwrap();
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path(), &[]).await;
    println!("hello world per runtime, median of {rounds} paired rounds (ms)");
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "runtime", "bare", "probe", "run", "+run", "HTTP", "+HTTP"
    );
    for runtime in registry.iter() {
        if pick.as_ref().is_some_and(|p| !p.contains(&runtime.id)) {
            continue;
        }
        let rt = match runtime.resolve() {
            Ok(rt) => rt,
            Err(e) => {
                println!("{:<12} unavailable: {e}", runtime.id);
                continue;
            }
        };
        let code = runtime.default_template.clone();
        let session = server.session(&rt.id, &code).await;
        let (mut b, mut c, mut h) = (Vec::new(), Vec::new(), Vec::new());
        // The first run of this runtime probes its toolchain and fills the cache.
        let (first, _) = cli(&rt, root.path(), "first", &code);
        for round in 0..rounds {
            let (t, expected) = bare(&rt, root.path(), round, &code);
            b.push(t);
            let (t, got) = cli(&rt, root.path(), &round.to_string(), &code);
            assert_eq!(got, expected, "{}: livexec run printed otherwise", rt.id);
            c.push(t);
            let url = server.url(&format!("/code-sessions/{session}/run?wait=true"));
            let start = Instant::now();
            let res = server.http.post(&url).send().await.unwrap();
            let v: serde_json::Value = res.json().await.unwrap();
            h.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!(
                v["stdout"].as_str().map(str::as_bytes),
                Some(&expected[..]),
                "{}: {v}",
                rt.id
            );
        }
        let (b, c, h) = (median(b), median(c), median(h));
        println!(
            "{:<12} {b:>9.1} {first:>9.1} {c:>9.1} {:>+9.1} {h:>9.1} {:>+9.1}",
            rt.id,
            c - b,
            h - b
        );
    }
}
