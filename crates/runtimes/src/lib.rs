//! The language registry: which languages livexec runs and how.
//!
//! Runtimes are data, not code: one TOML file per language (`runtimes/*.toml` at the top of the
//! repository, embedded in the binary; `LIVEXEC_RUNTIMES_DIR` adds or replaces files at start).
//! Each file says the file name the code goes into, how to find the interpreter, what host
//! paths it needs mounted, per-language limit overrides and a smoke test with its expected
//! output. [`Runtime::resolve`] finds the interpreter on this host and turns the file into a
//! [`Resolved`] run recipe. This crate knows nothing of the sandbox: the worker turns a
//! [`Resolved`] into a sandbox command.
//!
//! ```
//! let registry = livexec_runtimes::Registry::builtin().unwrap();
//! assert_eq!(registry.ids(), vec!["javascript", "python"]);
//! assert_eq!(registry.get("python").unwrap().file_name, "main.py");
//! ```

mod resolve;
mod runtime;

pub use resolve::Resolved;
pub use runtime::{LimitOverrides, Runtime, Smoke};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The runtime files compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("python.toml", include_str!("../../../runtimes/python.toml")),
    (
        "javascript.toml",
        include_str!("../../../runtimes/javascript.toml"),
    ),
];

/// Why a runtime could not be loaded or resolved.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A runtime file is not valid TOML of the expected shape.
    #[error("runtime file {file}: {source}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// A runtime file parsed but says something impossible.
    #[error("runtime file {file}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// A runtimes directory could not be read.
    #[error("cannot read runtimes directory {path}: {source}")]
    ReadDir {
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter is not installed here.
    #[error("runtime {runtime}: interpreter {binary:?} not found on PATH (set {override_env})")]
    NotFound {
        /// Runtime id.
        runtime: String,
        /// What was looked for.
        binary: String,
        /// The variable that names it explicitly.
        override_env: String,
    },
    /// The interpreter could not be started to probe it.
    #[error("runtime {runtime}: cannot start {program} to probe it: {source}")]
    ProbeSpawn {
        /// Runtime id.
        runtime: String,
        /// The interpreter.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The probe ran but did not answer as expected.
    #[error("runtime {runtime}: probe of {program} failed: {detail}")]
    ProbeFailed {
        /// Runtime id.
        runtime: String,
        /// The interpreter.
        program: PathBuf,
        /// Exit status and stderr of the probe.
        detail: String,
    },
}

/// Every runtime this service knows, by id.
#[derive(Debug, Clone)]
pub struct Registry {
    runtimes: BTreeMap<String, Runtime>,
}

impl Registry {
    /// The runtimes compiled into the binary (python and javascript).
    pub fn builtin() -> Result<Registry, RuntimeError> {
        let mut runtimes = BTreeMap::new();
        for (file, text) in BUILTIN {
            let rt = Runtime::parse(file, text)?;
            runtimes.insert(rt.id.clone(), rt);
        }
        Ok(Registry { runtimes })
    }

    /// The built-in runtimes plus every `*.toml` in `dir`; a file whose id matches a built-in
    /// one replaces it.
    pub fn with_dir(dir: &Path) -> Result<Registry, RuntimeError> {
        let mut registry = Registry::builtin()?;
        let read_err = |source| RuntimeError::ReadDir {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| RuntimeError::ReadDir {
                path: path.clone(),
                source,
            })?;
            let rt = Runtime::parse(&path.display().to_string(), &text)?;
            registry.runtimes.insert(rt.id.clone(), rt);
        }
        Ok(registry)
    }

    /// Runtime ids, sorted.
    pub fn ids(&self) -> Vec<&str> {
        self.runtimes.keys().map(String::as_str).collect()
    }

    /// The runtime with this id.
    pub fn get(&self, id: &str) -> Option<&Runtime> {
        self.runtimes.get(id)
    }

    /// Every runtime, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &Runtime> {
        self.runtimes.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_python_and_javascript_with_templates() {
        let r = Registry::builtin().unwrap();
        assert_eq!(r.ids(), vec!["javascript", "python"]);
        assert_eq!(
            r.get("python").unwrap().default_template,
            r#"print("Hello World")"#
        );
        assert_eq!(
            r.get("javascript").unwrap().default_template,
            r#"console.log("Hello World")"#
        );
        assert_eq!(r.get("javascript").unwrap().file_name, "main.js");
        assert!(r.get("ruby").is_none());
    }

    #[test]
    fn a_directory_adds_and_replaces_runtimes() {
        let dir = tempfile::tempdir().unwrap();
        let py = BUILTIN[0].1.replace("main.py", "prog.py");
        std::fs::write(dir.path().join("python.toml"), py).unwrap();
        let lua = BUILTIN[0]
            .1
            .replace("id = \"python\"", "id = \"lua\"")
            .replace("main.py", "main.lua");
        std::fs::write(dir.path().join("lua.toml"), lua).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let r = Registry::with_dir(dir.path()).unwrap();
        assert_eq!(r.ids(), vec!["javascript", "lua", "python"]);
        assert_eq!(r.get("python").unwrap().file_name, "prog.py");
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let err = Registry::with_dir(Path::new("/nonexistent/livexec-rt")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/livexec-rt"), "{err}");
    }
}
