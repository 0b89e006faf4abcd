//! What the service benchmarks share: percentiles, and the bare interpreter run the same way
//! the sandbox runs it (same file name, clean environment), as the baseline of every figure.
#![allow(dead_code)] // each bench uses a different subset

use livexec_runtimes::Resolved;
use std::path::Path;
use std::process::Command;

/// The `p` quantile (0..=1) of sorted samples.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// p50, p95 and p99 of the samples.
pub fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (pct(&v, 0.5), pct(&v, 0.95), pct(&v, 0.99))
}

/// The bare interpreter of `rt` on `code`, in its own directory `dir/name`, with the clean
/// environment the sandbox gives a program; the caller sets stdio and runs it.
pub fn bare_command(rt: &Resolved, dir: &Path, name: &str, code: &str) -> Command {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join(&rt.file_name), code).unwrap();
    let mut cmd = Command::new(&rt.run.program);
    cmd.args(&rt.run.args)
        .current_dir(&sub)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .envs(rt.run.env.iter().map(|(k, v)| (k, v)));
    cmd
}
