//! Finding a runtime's toolchain on this host and turning the runtime into the recipes of
//! its stages.

use crate::cache::{ProbeCache, ProbeKey, Probed};
use crate::runtime::{LimitOverrides, Runtime};
use crate::RuntimeError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Host paths every sandbox has mounted already; a prefix under one of them needs no mount.
const ALWAYS_MOUNTED: &[&str] = &["/usr", "/bin", "/lib", "/lib64", "/sbin"];

/// One stage resolved on this host: exactly what to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecipe {
    /// The real program (never a shim script or an `/etc/alternatives` link), same path
    /// inside the sandbox.
    pub program: PathBuf,
    /// Arguments after the program; the code's file name is already in place.
    pub args: Vec<String>,
    /// The stage's environment (the runtime's, then the stage's own).
    pub env: Vec<(String, String)>,
    /// Limit overrides of this stage (a compile stage's include the compile defaults).
    pub limits: LimitOverrides,
    /// Compile stage: the files to hand to the run stage (plain names, one `*` allowed).
    pub artifacts: Vec<String>,
}

/// A runtime resolved on this host: exactly what to run, ready for the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Runtime id.
    pub id: String,
    /// The toolchain's real executable.
    pub executable: PathBuf,
    /// Host paths to mount read-only at the same path, in every stage.
    pub mounts: Vec<PathBuf>,
    /// File the code goes into, in the working dir.
    pub file_name: String,
    /// The compile stage, for compiled languages.
    pub compile: Option<StageRecipe>,
    /// The run stage.
    pub run: StageRecipe,
    /// The toolchain's version, as it reports it.
    pub version: String,
    /// How to read a failed run's (or compile's) output: the error line and the line number
    /// in the user's main file, as far as the runtime file says.
    pub error: crate::ErrorPattern,
}

impl Runtime {
    /// Find the toolchain (the `override_env` variable, else `binary` on PATH), ask it for its
    /// real executable, install prefix and version, and build the recipe of every stage.
    /// Always probes; [`Runtime::resolve_cached`] uses (and fills) a [`ProbeCache`].
    pub fn resolve(&self) -> Result<Resolved, RuntimeError> {
        let candidate = self.candidate()?;
        let probed = self.probe_toolchain(&candidate)?;
        self.resolved(probed)
    }

    /// [`Runtime::resolve`], answered from `cache` when the toolchain and the probe are
    /// unchanged since it was last probed, else probed and kept in `cache`.
    pub fn resolve_cached(&self, cache: &ProbeCache) -> Result<Resolved, RuntimeError> {
        let candidate = self.candidate()?;
        let key = ProbeKey::new(&candidate, self.probe_text());
        if let Some(hit) = key.as_ref().and_then(|k| cache.get(&self.id, k)) {
            return self.resolved(hit);
        }
        let probed = self.probe_toolchain(&candidate)?;
        if let Some(k) = &key {
            cache.put(&self.id, k, &probed);
        }
        self.resolved(probed)
    }

    /// [`Runtime::resolve`], its answer written to `cache` (for the next `livexec run`):
    /// what the service's start and `livexec runtimes` do, so that either one refreshes
    /// what the cache's key cannot see.
    pub fn resolve_fresh(&self, cache: &ProbeCache) -> Result<Resolved, RuntimeError> {
        let candidate = self.candidate()?;
        let probed = self.probe_toolchain(&candidate)?;
        if let Some(k) = ProbeKey::new(&candidate, self.probe_text()) {
            cache.put(&self.id, &k, &probed);
        }
        self.resolved(probed)
    }

    /// The toolchain's command: `override_env`'s value, else `binary` on PATH.
    fn candidate(&self) -> Result<PathBuf, RuntimeError> {
        match std::env::var_os(&self.override_env) {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ => find_on_path(&self.binary).ok_or_else(|| RuntimeError::NotFound {
                runtime: self.id.clone(),
                binary: self.binary.clone(),
                override_env: self.override_env.clone(),
            }),
        }
    }

    /// The probe as text, part of the cache key: an edited probe probes again.
    fn probe_text(&self) -> String {
        match &self.probe_sh {
            Some(script) => format!("sh:{script}"),
            None => format!("args:{:?}", self.probe),
        }
    }

    /// Run the probe on `candidate`: the real executable, prefix and version it prints.
    fn probe_toolchain(&self, candidate: &Path) -> Result<Probed, RuntimeError> {
        let mut probe = match &self.probe_sh {
            Some(script) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(script).arg("livexec-probe").arg(candidate);
                c
            }
            None => {
                let mut c = Command::new(candidate);
                c.args(&self.probe);
                c
            }
        };
        let out = probe
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| RuntimeError::ProbeSpawn {
                runtime: self.id.clone(),
                program: candidate.to_path_buf(),
                source,
            })?;
        let failed = |detail: String| RuntimeError::ProbeFailed {
            runtime: self.id.clone(),
            program: candidate.to_path_buf(),
            detail,
        };
        if !out.status.success() {
            return Err(failed(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines().map(str::trim);
        let (Some(exe), Some(prefix), Some(version)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(failed(format!(
                "expected executable, prefix and version lines, got {text:?}"
            )));
        };
        let (exe, prefix) = (PathBuf::from(exe), PathBuf::from(prefix));
        if !exe.is_absolute() || !prefix.is_absolute() || version.is_empty() {
            return Err(failed(format!(
                "executable {exe:?} and prefix {prefix:?} must be absolute, version {version:?} non-empty"
            )));
        }
        Ok(Probed {
            executable: exe,
            prefix,
            version: version.to_owned(),
        })
    }

    /// The recipe of a probed toolchain, once the paths it must mount are known to exist.
    fn resolved(&self, probed: Probed) -> Result<Resolved, RuntimeError> {
        if let Some(m) = self.mounts.iter().find(|m| !Path::new(m).exists()) {
            return Err(RuntimeError::ProbeFailed {
                runtime: self.id.clone(),
                program: probed.executable,
                detail: format!("the path {m} it needs mounted does not exist"),
            });
        }
        Ok(self.recipe(probed.executable, &probed.prefix, probed.version))
    }

    fn recipe(&self, executable: PathBuf, prefix: &Path, version: String) -> Resolved {
        let mut mounts: Vec<PathBuf> = Vec::new();
        let mut want = |p: PathBuf| {
            let covered = ALWAYS_MOUNTED.iter().any(|m| p.starts_with(m))
                || mounts.iter().any(|m| p.starts_with(m));
            if !covered {
                mounts.push(p);
            }
        };
        want(prefix.to_path_buf());
        if let Some(dir) = executable.parent() {
            want(dir.to_path_buf());
        }
        for m in &self.mounts {
            want(PathBuf::from(m));
        }
        let exe = executable.to_string_lossy().into_owned();
        let pre = prefix.to_string_lossy().into_owned();
        let fill = |a: &str| {
            a.replace("{file}", &self.file_name)
                .replace("{executable}", &exe)
                .replace("{prefix}", &pre)
        };
        let stage = |s: &crate::runtime::Stage, limits: LimitOverrides| {
            let first = fill(&s.command[0]);
            // `/usr/bin/java` → `/etc/alternatives/java` → the JDK's: the jail has no
            // `/etc/alternatives`, so programs are named by their real path.
            let program = if first.starts_with("/work/") {
                PathBuf::from(first)
            } else {
                std::fs::canonicalize(&first).unwrap_or_else(|_| PathBuf::from(first))
            };
            StageRecipe {
                program,
                args: s.command[1..].iter().map(|a| fill(a)).collect(),
                env: self
                    .env
                    .iter()
                    .chain(&s.env)
                    .map(|(k, v)| (k.clone(), fill(v)))
                    .collect(),
                limits,
                artifacts: s.artifacts.clone(),
            }
        };
        Resolved {
            id: self.id.clone(),
            executable: executable.clone(),
            mounts,
            file_name: self.file_name.clone(),
            compile: self
                .compile
                .as_ref()
                .zip(self.compile_limits())
                .map(|(c, l)| stage(c, l)),
            run: stage(&self.run, self.run.limits.clone()),
            version,
            error: self.error_rule(),
        }
    }
}

/// The first executable file called `name` in the directories of PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use crate::Registry;
    use std::path::Path;

    #[test]
    fn python_resolves_to_its_real_interpreter_and_prefix() {
        let r = Registry::builtin().unwrap();
        let py = r
            .get("python")
            .unwrap()
            .resolve()
            .expect("python3 must be installed on the test host");
        assert!(py.run.program.is_absolute());
        // The program is the real binary, not a shim script.
        let head = std::fs::read(&py.run.program).unwrap();
        assert_eq!(
            &head[..4],
            b"\x7fELF",
            "{:?} is not an ELF binary",
            py.run.program
        );
        assert_eq!(py.run.args, vec!["-u", "main.py"]);
        assert!(py.version.starts_with('3'), "{}", py.version);
        for m in &py.mounts {
            assert!(m.is_absolute() && m.exists(), "{m:?}");
        }
        if !py.run.program.starts_with("/usr") {
            assert!(py.mounts.iter().any(|m| py.run.program.starts_with(m)));
        }
    }

    #[test]
    fn node_resolves() {
        let r = Registry::builtin().unwrap();
        let js = r
            .get("javascript")
            .unwrap()
            .resolve()
            .expect("node must be installed on the test host");
        assert_eq!(js.run.args, vec!["main.js"]);
        assert!(js.version.chars().next().unwrap().is_ascii_digit());
        assert!(Path::new(&js.run.program).exists());
    }

    #[test]
    fn a_missing_interpreter_names_the_variable_to_set() {
        let mut rt = Registry::builtin().unwrap().get("python").unwrap().clone();
        rt.binary = "livexec-no-such-interpreter".into();
        rt.override_env = "LIVEXEC_TEST_UNSET_VARIABLE".into();
        let err = rt.resolve().unwrap_err().to_string();
        assert!(err.contains("LIVEXEC_TEST_UNSET_VARIABLE"), "{err}");
    }

    #[test]
    fn a_prefix_under_usr_needs_no_mount() {
        let rt = Registry::builtin()
            .unwrap()
            .get("javascript")
            .unwrap()
            .clone();
        let res = rt.recipe("/usr/bin/node".into(), Path::new("/usr"), "20".into());
        assert!(res.mounts.is_empty());
        let res = rt.recipe(
            "/opt/node/bin/node".into(),
            Path::new("/opt/node"),
            "20".into(),
        );
        assert_eq!(res.mounts, vec![std::path::PathBuf::from("/opt/node")]);
    }
}

#[cfg(test)]
mod every_runtime {
    use crate::Registry;

    /// CI installs every toolchain (scripts/install-toolchains.sh): each must resolve to real
    /// programs with a version read from the toolchain.
    #[test]
    fn every_builtin_runtime_resolves_on_this_host() {
        let r = Registry::builtin().unwrap();
        let mut failures = Vec::new();
        for rt in r.iter() {
            match rt.resolve() {
                Ok(res) => {
                    println!(
                        "{:<11} {:<10} {}",
                        rt.id,
                        res.version,
                        res.executable.display()
                    );
                    assert!(
                        res.version.starts_with(|c: char| c.is_ascii_digit()),
                        "{}: {}",
                        rt.id,
                        res.version
                    );
                    for stage in res.compile.iter().chain([&res.run]) {
                        if !stage.program.starts_with("/work") {
                            assert!(stage.program.is_file(), "{}: {:?}", rt.id, stage.program);
                        }
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        assert!(
            failures.is_empty(),
            "run scripts/install-toolchains.sh: {failures:#?}"
        );
    }
}
