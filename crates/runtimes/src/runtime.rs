//! One runtime file: its shape, its parsing and the checks that a file says nothing impossible.

use crate::RuntimeError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Per-language overrides of the service's default limits; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Memory in MiB.
    pub memory_mb: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u32>,
    /// Wall-clock time in ms.
    pub timeout_ms: Option<u64>,
    /// CPU quota in thousandths of a core.
    pub cpu_millicores: Option<u32>,
    /// Open files.
    pub open_files: Option<u64>,
    /// Size of the private /tmp and working dir, in MiB.
    pub tmpfs_mb: Option<u64>,
}

/// A run that proves the runtime works on this host, with its expected output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    /// Code of the smoke test.
    pub source: String,
    /// Its stdin.
    #[serde(default)]
    pub stdin: String,
    /// What it must print.
    pub expected_stdout: String,
}

/// A language as its runtime file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// The id clients send as `language`.
    pub id: String,
    /// Human name.
    pub name: String,
    /// The file the code is written to in the working dir.
    pub file_name: String,
    /// The code of a new session without a template.
    pub default_template: String,
    /// Interpreter looked up on PATH.
    pub binary: String,
    /// Environment variable that names the interpreter explicitly.
    pub override_env: String,
    /// Arguments that make the interpreter print its real executable, install prefix and
    /// version, one per line.
    pub probe: Vec<String>,
    /// The command line; `{executable}` and `{file}` are replaced.
    pub command: Vec<String>,
    /// Environment of the program (on top of the sandbox's minimal one).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Extra host paths to mount read-only at the same path.
    #[serde(default)]
    pub mounts: Vec<String>,
    /// Limit overrides.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// The smoke test.
    pub smoke: Smoke,
}

impl Runtime {
    /// Parse and check one runtime file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Runtime, RuntimeError> {
        let rt: Runtime = toml::from_str(text).map_err(|source| RuntimeError::Parse {
            file: file.to_owned(),
            source,
        })?;
        let mut problems = Vec::new();
        if rt.id.is_empty()
            || !rt
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            problems.push(format!(
                "id {:?} must be non-empty lowercase letters, digits, - or _",
                rt.id
            ));
        }
        if rt.file_name.is_empty() || rt.file_name.contains('/') || rt.file_name.starts_with('.') {
            problems.push(format!(
                "file_name {:?} must be a plain file name",
                rt.file_name
            ));
        }
        if rt.command.first().map(String::as_str) != Some("{executable}") {
            problems.push("command must start with \"{executable}\"".to_owned());
        }
        if !rt.command.iter().any(|a| a.contains("{file}")) {
            problems.push("command must contain \"{file}\"".to_owned());
        }
        if let Some(m) = rt.mounts.iter().find(|m| !m.starts_with('/')) {
            problems.push(format!("mount {m:?} must be an absolute path"));
        }
        if problems.is_empty() {
            Ok(rt)
        } else {
            Err(RuntimeError::Invalid {
                file: file.to_owned(),
                problem: problems.join("; "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
id = "x"
name = "X"
file_name = "main.x"
default_template = ""
binary = "x"
override_env = "LIVEXEC_X"
probe = []
command = ["{executable}", "{file}"]
[smoke]
source = ""
expected_stdout = ""
"#;

    #[test]
    fn a_minimal_file_parses_with_defaults() {
        let rt = Runtime::parse("x.toml", OK).unwrap();
        assert_eq!(rt.limits, LimitOverrides::default());
        assert!(rt.mounts.is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad = OK
            .replace("id = \"x\"", "id = \"X!\"")
            .replace("main.x", "../main.x")
            .replace("[\"{executable}\", \"{file}\"]", "[\"sh\"]");
        let err = Runtime::parse("bad.toml", &bad).unwrap_err().to_string();
        for needle in ["bad.toml", "id", "file_name", "{executable}", "{file}"] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Runtime::parse("u.toml", &format!("colour = 1\n{OK}")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
