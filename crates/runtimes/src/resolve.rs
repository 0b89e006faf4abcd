//! Finding a runtime's interpreter on this host and turning the runtime into a run recipe.

use crate::runtime::{LimitOverrides, Runtime};
use crate::RuntimeError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Host paths every sandbox has mounted already; a prefix under one of them needs no mount.
const ALWAYS_MOUNTED: &[&str] = &["/usr", "/bin", "/lib", "/lib64", "/sbin"];

/// A runtime resolved on this host: exactly what to run, ready for the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Runtime id.
    pub id: String,
    /// The real interpreter (never a shim script), same path inside the sandbox.
    pub program: PathBuf,
    /// Arguments after the program; the code's file name is already in place.
    pub args: Vec<String>,
    /// The program's environment.
    pub env: Vec<(String, String)>,
    /// Host paths to mount read-only at the same path.
    pub mounts: Vec<PathBuf>,
    /// File the code goes into, in the working dir.
    pub file_name: String,
    /// Limit overrides of this runtime.
    pub limits: LimitOverrides,
    /// Interpreter version, as it reports it.
    pub version: String,
}

impl Runtime {
    /// Find the interpreter (the `override_env` variable, else `binary` on PATH), ask it for its
    /// real executable, install prefix and version, and build the run recipe.
    pub fn resolve(&self) -> Result<Resolved, RuntimeError> {
        let candidate = match std::env::var_os(&self.override_env) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => find_on_path(&self.binary).ok_or_else(|| RuntimeError::NotFound {
                runtime: self.id.clone(),
                binary: self.binary.clone(),
                override_env: self.override_env.clone(),
            })?,
        };
        let out = Command::new(&candidate)
            .args(&self.probe)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| RuntimeError::ProbeSpawn {
                runtime: self.id.clone(),
                program: candidate.clone(),
                source,
            })?;
        let failed = |detail: String| RuntimeError::ProbeFailed {
            runtime: self.id.clone(),
            program: candidate.clone(),
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
        if !exe.is_absolute() || !prefix.is_absolute() {
            return Err(failed(format!(
                "executable {exe:?} and prefix {prefix:?} must be absolute"
            )));
        }
        Ok(self.recipe(exe, &prefix, version.to_owned()))
    }

    fn recipe(&self, program: PathBuf, prefix: &Path, version: String) -> Resolved {
        let mut mounts: Vec<PathBuf> = Vec::new();
        let mut want = |p: PathBuf| {
            let covered = ALWAYS_MOUNTED.iter().any(|m| p.starts_with(m))
                || mounts.iter().any(|m| p.starts_with(m));
            if !covered {
                mounts.push(p);
            }
        };
        want(prefix.to_path_buf());
        if let Some(dir) = program.parent() {
            want(dir.to_path_buf());
        }
        for m in &self.mounts {
            want(PathBuf::from(m));
        }
        let program_str = program.to_string_lossy().into_owned();
        let args = self.command[1..]
            .iter()
            .map(|a| {
                a.replace("{file}", &self.file_name)
                    .replace("{executable}", &program_str)
            })
            .collect();
        Resolved {
            id: self.id.clone(),
            program,
            args,
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            mounts,
            file_name: self.file_name.clone(),
            limits: self.limits.clone(),
            version,
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
        assert!(py.program.is_absolute());
        // The program is the real binary, not a shim script.
        let head = std::fs::read(&py.program).unwrap();
        assert_eq!(
            &head[..4],
            b"\x7fELF",
            "{:?} is not an ELF binary",
            py.program
        );
        assert_eq!(py.args, vec!["-u", "main.py"]);
        assert!(py.version.starts_with('3'), "{}", py.version);
        for m in &py.mounts {
            assert!(m.is_absolute() && m.exists(), "{m:?}");
        }
        if !py.program.starts_with("/usr") {
            assert!(py.mounts.iter().any(|m| py.program.starts_with(m)));
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
        assert_eq!(js.args, vec!["main.js"]);
        assert!(js.version.chars().next().unwrap().is_ascii_digit());
        assert!(Path::new(&js.program).exists());
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
