//! The language registry: which languages livexec runs and how.
//!
//! Runtimes are data, not code: one TOML file per language (`runtimes/*.toml` at the top of the
//! repository, embedded in the binary; `LIVEXEC_RUNTIMES_DIR` adds or replaces files at start).
//! Each file names its language, aliases, the file the code goes into, how to find the
//! toolchain and read its real version, an optional compile stage (with its artifacts) and the
//! run stage, each with its own limits, the host paths to mount, and a smoke test with its
//! expected output. [`Runtime::resolve`] finds the toolchain on this host and turns the file into
//! a [`Resolved`] recipe; [`Registry::set_availability`] records what resolving (and the smoke
//! test) found, so that clients are offered only what works. What probing a toolchain learnt
//! is kept in a [`ProbeCache`] (keyed by the toolchain's path, size and mtime and the probe),
//! so a one-shot `livexec run` does not start the toolchain twice. This crate knows nothing of the
//! sandbox: the worker turns a [`Resolved`] into sandbox commands.
//!
//! ```
//! let registry = livexec_runtimes::Registry::builtin().unwrap();
//! assert!(registry.ids().contains(&"cpp"));
//! assert_eq!(registry.lookup("c++").unwrap().id, "cpp");
//! assert_eq!(registry.get("python").unwrap().file_name, "main.py");
//! ```

mod cache;
mod resolve;
mod runtime;

pub use cache::{ProbeCache, CACHE_DIR_ENV};
pub use resolve::{Resolved, StageRecipe};
pub use runtime::{
    machine_cores, machine_millicores, ErrorPattern, LimitOverrides, Runtime, Smoke, Stage,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One built-in runtime file: its name and text.
macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../runtimes/", $name)))),*]
    };
}

/// The runtime files compiled into the binary.
const BUILTIN: &[(&str, &str)] = builtin!(
    "python.toml",
    "javascript.toml",
    "typescript.toml",
    "c.toml",
    "cpp.toml",
    "java.toml",
    "go.toml",
    "rust.toml",
    "ruby.toml",
    "php.toml",
    "bash.toml",
    "perl.toml",
    "lua.toml",
    "sql.toml",
);

/// Whether a runtime works on this host, as the service found out at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Not checked (e.g. an API-only process, which runs no sandbox): offered to clients.
    Unchecked,
    /// The toolchain resolved (and its smoke test passed, where one was run).
    Available {
        /// The toolchain's version.
        version: String,
    },
    /// Not usable here, and why.
    Unavailable {
        /// The reason (toolchain missing, probe or smoke test failed).
        reason: String,
    },
}

impl Availability {
    /// Whether clients may use the runtime.
    pub fn usable(&self) -> bool {
        !matches!(self, Availability::Unavailable { .. })
    }
}

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

/// Every runtime this service knows, by id, with what is known of its availability.
#[derive(Debug, Clone)]
pub struct Registry {
    runtimes: BTreeMap<String, Runtime>,
    availability: BTreeMap<String, Availability>,
    probe_cache: ProbeCache,
}

impl Registry {
    /// No runtime, no probe cache.
    fn empty() -> Registry {
        Registry {
            runtimes: BTreeMap::new(),
            availability: BTreeMap::new(),
            probe_cache: ProbeCache::off(),
        }
    }

    /// The runtimes compiled into the binary.
    pub fn builtin() -> Result<Registry, RuntimeError> {
        let mut registry = Registry::empty();
        for (file, text) in BUILTIN {
            registry.insert(file, Runtime::parse_builtin(file, text)?)?;
        }
        Ok(registry)
    }

    /// The built-in runtime `id` alone, when `id` is a built-in runtime's id (its file is
    /// `<id>.toml`); `None` for an alias or an unknown name, which need every file. A
    /// `livexec run` that names its language by id parses one file instead of fourteen.
    pub fn builtin_one(id: &str) -> Result<Option<Registry>, RuntimeError> {
        let file = format!("{id}.toml");
        let Some((file, text)) = BUILTIN.iter().find(|(f, _)| *f == file) else {
            return Ok(None);
        };
        let rt = Runtime::parse_builtin(file, text)?;
        if rt.id != id {
            return Ok(None);
        }
        let mut registry = Registry::empty();
        registry.insert(file, rt)?;
        Ok(Some(registry))
    }

    /// Adds (or replaces, by id) a runtime; an alias that names another runtime is refused.
    fn insert(&mut self, file: &str, rt: Runtime) -> Result<(), RuntimeError> {
        self.runtimes.remove(&rt.id);
        let clash = rt.aliases.iter().chain([&rt.id]).find_map(|name| {
            self.runtimes
                .values()
                .find(|o| o.id == *name || o.aliases.contains(name))
                .map(|o| (name.clone(), o.id.clone()))
        });
        if let Some((name, other)) = clash {
            return Err(RuntimeError::Invalid {
                file: file.to_owned(),
                problem: format!("{name:?} already names runtime {other:?}"),
            });
        }
        self.runtimes.insert(rt.id.clone(), rt);
        Ok(())
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
            let file = path.display().to_string();
            let rt = Runtime::parse(&file, &text)?;
            registry.insert(&file, rt)?;
        }
        Ok(registry)
    }

    /// The same registry keeping probe results in `cache` (default: no cache).
    pub fn with_probe_cache(mut self, cache: ProbeCache) -> Registry {
        self.probe_cache = cache;
        self
    }

    /// Where probe results are kept: [`Runtime::resolve_cached`] reads it,
    /// [`Runtime::resolve_fresh`] refreshes it.
    pub fn probe_cache(&self) -> &ProbeCache {
        &self.probe_cache
    }

    /// Caps every compile stage's CPU quota at `millicores` (the server's
    /// `LIVEXEC_COMPILE_CPUS`): a stage without its own quota gets `millicores`, one that
    /// asks more gets `millicores`, one that asks less keeps its own.
    pub fn cap_compile_cpu(&mut self, millicores: u32) {
        for rt in self.runtimes.values_mut() {
            if let Some(c) = &mut rt.compile {
                let own = c.limits.cpu_millicores.unwrap_or(millicores);
                c.limits.cpu_millicores = Some(own.min(millicores));
            }
        }
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

    /// The runtime that `name` (an id or an alias) names, usable or not.
    pub fn lookup(&self, name: &str) -> Option<&Runtime> {
        self.runtimes.get(name).or_else(|| {
            self.runtimes
                .values()
                .find(|r| r.aliases.iter().any(|a| a == name))
        })
    }

    /// The usable runtime that `name` (an id or an alias) names.
    pub fn lookup_usable(&self, name: &str) -> Option<&Runtime> {
        self.lookup(name)
            .filter(|r| self.availability(&r.id).usable())
    }

    /// Records whether runtime `id` works here.
    pub fn set_availability(&mut self, id: &str, availability: Availability) {
        if self.runtimes.contains_key(id) {
            self.availability.insert(id.to_owned(), availability);
        }
    }

    /// What is known of runtime `id`'s availability ([`Availability::Unchecked`] until set).
    pub fn availability(&self, id: &str) -> &Availability {
        self.availability
            .get(id)
            .unwrap_or(&Availability::Unchecked)
    }

    /// Ids of the usable runtimes, sorted.
    pub fn usable_ids(&self) -> Vec<&str> {
        self.ids()
            .into_iter()
            .filter(|id| self.availability(id).usable())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built-in files skip the regular-expression check at start (`Runtime::parse_builtin`):
    /// every one of them passes the full check here.
    #[test]
    fn every_builtin_file_passes_the_full_check() {
        for (file, text) in BUILTIN {
            let full = Runtime::parse(file, text).unwrap();
            assert_eq!(full, Runtime::parse_builtin(file, text).unwrap(), "{file}");
        }
        let (_, bash) = BUILTIN.iter().find(|(f, _)| *f == "bash.toml").unwrap();
        let broken = bash.replace("error_line_pattern = '(?m)", "error_line_pattern = '(?m)(");
        assert_ne!(&broken, bash);
        let err = Runtime::parse("bash.toml", &broken).unwrap_err();
        assert!(
            err.to_string().contains("not a valid regular expression"),
            "{err}"
        );
    }

    #[test]
    fn builtin_one_is_the_same_runtime_alone_and_only_for_an_id() {
        let all = Registry::builtin().unwrap();
        for id in all.ids() {
            let one = Registry::builtin_one(id).unwrap().unwrap();
            assert_eq!(one.ids(), [id]);
            assert_eq!(one.get(id), all.get(id));
        }
        for name in ["py", "c++", "sh", "cobol", "", "../python"] {
            assert!(Registry::builtin_one(name).unwrap().is_none(), "{name}");
        }
    }

    #[test]
    fn builtin_has_python_and_javascript_with_templates() {
        let r = Registry::builtin().unwrap();
        assert_eq!(r.ids().len(), BUILTIN.len());
        assert_eq!(
            r.get("python").unwrap().default_template,
            r#"print("Hello World")"#
        );
        assert_eq!(
            r.get("javascript").unwrap().default_template,
            r#"console.log("Hello World")"#
        );
        assert_eq!(r.get("javascript").unwrap().file_name, "main.js");
        assert!(r.get("cobol").is_none());
    }

    #[test]
    fn aliases_resolve_to_their_runtime_and_availability_filters() {
        let mut r = Registry::builtin().unwrap();
        for (alias, id) in [
            ("py", "python"),
            ("python3", "python"),
            ("js", "javascript"),
            ("node", "javascript"),
            ("ts", "typescript"),
            ("c++", "cpp"),
            ("golang", "go"),
            ("rs", "rust"),
            ("sh", "bash"),
            ("sqlite", "sql"),
            ("cpp", "cpp"),
        ] {
            assert_eq!(r.lookup(alias).map(|x| x.id.as_str()), Some(id), "{alias}");
        }
        assert!(r.lookup("cobol").is_none());
        assert!(r.lookup_usable("golang").is_some());
        r.set_availability(
            "go",
            Availability::Unavailable {
                reason: "not installed".into(),
            },
        );
        assert!(r.lookup_usable("golang").is_none());
        assert!(!r.usable_ids().contains(&"go"));
        assert!(r.usable_ids().contains(&"python"));
    }

    #[test]
    fn every_builtin_file_names_a_language_and_a_stdin_smoke_test() {
        let r = Registry::builtin().unwrap();
        for rt in r.iter() {
            assert!(!rt.language.is_empty(), "{}", rt.id);
            assert!(
                !rt.smoke.stdin.is_empty(),
                "{}: smoke test reads no stdin",
                rt.id
            );
            assert!(!rt.default_template.is_empty(), "{}", rt.id);
        }
    }

    #[test]
    fn an_alias_that_names_another_runtime_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lua = BUILTIN[0]
            .1
            .replace("id = \"python\"", "id = \"lua2\"")
            .replace("aliases = [", "aliases = [\"golang\", ");
        std::fs::write(dir.path().join("lua2.toml"), lua).unwrap();
        let err = Registry::with_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("lua2.toml") && err.contains("golang"), "{err}");
    }

    #[test]
    fn a_directory_adds_and_replaces_runtimes() {
        let dir = tempfile::tempdir().unwrap();
        let py = BUILTIN[0].1.replace("main.py", "prog.py");
        std::fs::write(dir.path().join("python.toml"), py).unwrap();
        let py2 = BUILTIN[0]
            .1
            .replace("id = \"python\"", "id = \"python2\"")
            .replace("aliases = [\"py\", \"python3\"]", "aliases = []");
        std::fs::write(dir.path().join("python2.toml"), py2).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let r = Registry::with_dir(dir.path()).unwrap();
        assert_eq!(r.ids().len(), BUILTIN.len() + 1);
        assert_eq!(r.get("python2").unwrap().language, "python");
        assert_eq!(r.get("python").unwrap().file_name, "prog.py");
    }

    #[test]
    fn compile_stages_get_every_core_unless_capped_or_asking_less() {
        let mut r = Registry::builtin().unwrap();
        let cpu =
            |r: &Registry, id: &str| r.get(id).unwrap().compile_limits().unwrap().cpu_millicores;
        assert_eq!(cpu(&r, "java"), Some(machine_millicores()));
        assert_eq!(r.get("python").unwrap().compile_limits(), None);
        r.cap_compile_cpu(700);
        assert_eq!(cpu(&r, "java"), Some(700));
        r.cap_compile_cpu(300);
        assert_eq!(cpu(&r, "cpp"), Some(300));
        r.cap_compile_cpu(5000);
        assert_eq!(
            cpu(&r, "cpp"),
            Some(300),
            "a stage that asks less keeps its own"
        );
        assert_eq!(r.get("python").unwrap().compile, None);
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let err = Registry::with_dir(Path::new("/nonexistent/livexec-rt")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/livexec-rt"), "{err}");
    }
}
