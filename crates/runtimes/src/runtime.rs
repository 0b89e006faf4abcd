//! One runtime file: its shape, its parsing and the checks that a file says nothing impossible.

use crate::RuntimeError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Overrides of the service's default limits for one stage; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Memory in MiB.
    pub memory_mb: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u32>,
    /// Wall-clock time in ms.
    pub timeout_ms: Option<u64>,
    /// CPU quota in thousandths of a core (a compile stage's default: every core,
    /// [`machine_millicores`]).
    pub cpu_millicores: Option<u32>,
    /// Open files.
    pub open_files: Option<u64>,
    /// Size of the private /tmp and working dir, in MiB.
    pub tmpfs_mb: Option<u64>,
}

impl LimitOverrides {
    /// The limits a compile stage starts from before its own overrides: 512 MiB, 10 s,
    /// 64 processes and threads (compilers need more than the programs they build); its
    /// CPU quota is every core ([`Runtime::compile_limits`]).
    pub const COMPILE_DEFAULTS: LimitOverrides = LimitOverrides {
        memory_mb: Some(512),
        pids: Some(64),
        timeout_ms: Some(10_000),
        cpu_millicores: None,
        open_files: None,
        tmpfs_mb: None,
    };

    /// `self` with every field that `over` sets replaced by `over`'s.
    pub fn overlay(&self, over: &LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            memory_mb: over.memory_mb.or(self.memory_mb),
            pids: over.pids.or(self.pids),
            timeout_ms: over.timeout_ms.or(self.timeout_ms),
            cpu_millicores: over.cpu_millicores.or(self.cpu_millicores),
            open_files: over.open_files.or(self.open_files),
            tmpfs_mb: over.tmpfs_mb.or(self.tmpfs_mb),
        }
    }
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

/// One stage (compile or run): a command line with its own environment and limits.
///
/// In `command`, `{executable}` is the toolchain's real executable, `{prefix}` its install
/// prefix (both from the probe) and `{file}` the source's file name in the working dir.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The command line; its first element must be `{executable}`, start with `{prefix}/`,
    /// or be an absolute path (an artifact is `/work/NAME`).
    pub command: Vec<String>,
    /// Environment of this stage, on top of the runtime's `env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Limit overrides of this stage.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Compile stage only: the files it leaves in the working dir that the run stage needs,
    /// plain names, one `*` allowed (`"*.class"`). Handed to the run stage read-only.
    #[serde(default)]
    pub artifacts: Vec<String>,
}

/// A runtime's rule for the error line of a failed run ([`Runtime::error_rule`]). The
/// regular expression is compiled on first use: a run that succeeds never pays for it.
#[derive(Debug, Clone)]
pub struct ErrorPattern {
    pattern: String,
    regex: std::sync::OnceLock<Option<regex::Regex>>,
    last: bool,
}

impl PartialEq for ErrorPattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.last == other.last
    }
}

impl Eq for ErrorPattern {}

impl ErrorPattern {
    /// The error line in `stderr`: the `message` group (else the whole match) of the first or
    /// last match, trimmed; `None` when nothing matches (or the pattern does not compile,
    /// which [`Runtime::parse`] has already refused).
    pub fn find(&self, stderr: &str) -> Option<String> {
        let regex = self
            .regex
            .get_or_init(|| regex::Regex::new(&self.pattern).ok())
            .as_ref()?;
        let mut matches = regex.captures_iter(stderr);
        let caps = if self.last {
            matches.last()
        } else {
            matches.next()
        }?;
        let m = caps.name("message").or_else(|| caps.get(0))?;
        Some(m.as_str().trim().to_owned()).filter(|s| !s.is_empty())
    }
}

/// A language as its runtime file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// The id clients send as `language`.
    pub id: String,
    /// The language (several versions of one language are several files with one language).
    pub language: String,
    /// Human name.
    pub name: String,
    /// Other names clients may send as `language` (stored as the id).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The file the code is written to in the working dir.
    pub file_name: String,
    /// The code of a new session without a template.
    pub default_template: String,
    /// The toolchain's command, looked up on PATH.
    pub binary: String,
    /// Environment variable that names the toolchain's command explicitly.
    pub override_env: String,
    /// Arguments that make `binary` print its real executable, install prefix and version,
    /// one per line.
    #[serde(default)]
    pub probe: Vec<String>,
    /// Instead of `probe`: a POSIX sh script run on the host with the found command as `$1`,
    /// printing the same three lines.
    #[serde(default)]
    pub probe_sh: Option<String>,
    /// Environment of every stage (on top of the sandbox's minimal one).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Extra host paths to mount read-only at the same path (the probed prefix is mounted
    /// when it lies outside `/usr`).
    #[serde(default)]
    pub mounts: Vec<String>,
    /// How to find the error line in a failed program's stderr: a regular expression
    /// (`(?m)` for line anchors) whose named group `message` (else the whole match) is the
    /// `error_message`; without a match, or without a pattern, the last non-empty line is.
    #[serde(default)]
    pub error_pattern: Option<String>,
    /// Which match of `error_pattern` is the message: `"first"` (default) or `"last"`.
    #[serde(default)]
    pub error_pick: Option<String>,
    /// The compile stage, for compiled languages.
    #[serde(default)]
    pub compile: Option<Stage>,
    /// The run stage.
    pub run: Stage,
    /// The smoke test.
    pub smoke: Smoke,
}

/// Whether `name` is a valid id or alias: lowercase letters, digits, `-`, `_`, `+`, `.`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_+.".contains(c))
}

/// Whether `cmd`'s program is one the resolver can place: `{executable}`, under `{prefix}/`,
/// or an absolute path.
fn valid_program(cmd: &[String]) -> bool {
    cmd.first()
        .is_some_and(|p| p == "{executable}" || p.starts_with("{prefix}/") || p.starts_with('/'))
}

impl Runtime {
    /// Parse and check one runtime file; `file` names it in errors, every problem at once.
    pub fn parse(file: &str, text: &str) -> Result<Runtime, RuntimeError> {
        let rt: Runtime = toml::from_str(text).map_err(|source| RuntimeError::Parse {
            file: file.to_owned(),
            source,
        })?;
        let problems = rt.problems();
        if problems.is_empty() {
            Ok(rt)
        } else {
            Err(RuntimeError::Invalid {
                file: file.to_owned(),
                problem: problems.join("; "),
            })
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !valid_name(&self.id) || self.id.contains(['+', '.']) {
            problems.push(format!(
                "id {:?} must be non-empty lowercase letters, digits, - or _",
                self.id
            ));
        }
        if let Some(a) = self.aliases.iter().find(|a| !valid_name(a)) {
            problems.push(format!(
                "alias {a:?} must be lowercase letters, digits, -, _, + or ."
            ));
        }
        if self.file_name.is_empty()
            || self.file_name.contains('/')
            || self.file_name.starts_with('.')
        {
            problems.push(format!(
                "file_name {:?} must be a plain file name",
                self.file_name
            ));
        }
        if self.probe.is_empty() == self.probe_sh.is_none() {
            problems.push("exactly one of probe and probe_sh is required".to_owned());
        }
        let stages = self
            .compile
            .iter()
            .map(|s| ("compile", s))
            .chain([("run", &self.run)]);
        for (name, stage) in stages {
            if stage.command.is_empty() {
                problems.push(format!("{name}.command is missing or empty"));
            } else if !valid_program(&stage.command) {
                problems.push(format!(
                    "{name}.command must start with \"{{executable}}\", \"{{prefix}}/…\" or an absolute path"
                ));
            }
        }
        let source_stage = self
            .compile
            .as_ref()
            .map_or(("run", &self.run), |c| ("compile", c));
        if !source_stage.1.command.iter().any(|a| a.contains("{file}")) {
            problems.push(format!(
                "{}.command must contain \"{{file}}\"",
                source_stage.0
            ));
        }
        if let Some(c) = &self.compile {
            if c.artifacts.is_empty() {
                problems.push("a compile stage needs at least one artifact".to_owned());
            }
            if let Some(a) = c.artifacts.iter().find(|a| {
                a.is_empty() || a.contains('/') || a.starts_with('.') || a.matches('*').count() > 1
            }) {
                problems.push(format!(
                    "artifact {a:?} must be a plain file name with at most one *"
                ));
            }
        }
        if !self.run.artifacts.is_empty() {
            problems.push("run.artifacts: only a compile stage has artifacts".to_owned());
        }
        if let Some(p) = &self.error_pattern {
            // Parsed, not compiled: compiling every file's pattern at every start cost a
            // `livexec run` milliseconds; the one pattern used is compiled when a run fails.
            if let Err(e) = regex_syntax::ParserBuilder::new().build().parse(p) {
                problems.push(format!(
                    "error_pattern is not a valid regular expression: {e}"
                ));
            }
        }
        if let Some(pick) = self
            .error_pick
            .as_deref()
            .filter(|p| !["first", "last"].contains(p))
        {
            problems.push(format!("error_pick {pick:?} must be \"first\" or \"last\""));
        }
        if let Some(m) = self.mounts.iter().find(|m| !m.starts_with('/')) {
            problems.push(format!("mount {m:?} must be an absolute path"));
        }
        problems
    }

    /// The rule that finds the error line of a failed run (`None` without `error_pattern`).
    pub fn error_rule(&self) -> Option<ErrorPattern> {
        Some(ErrorPattern {
            pattern: self.error_pattern.clone()?,
            regex: std::sync::OnceLock::new(),
            last: self.error_pick.as_deref() == Some("last"),
        })
    }

    /// Whether this runtime compiles before it runs.
    pub fn compiled(&self) -> bool {
        self.compile.is_some()
    }

    /// The limit overrides of the compile stage: [`LimitOverrides::COMPILE_DEFAULTS`] under
    /// the file's own, and a CPU quota of every core of this machine
    /// ([`machine_millicores`]) unless the file sets one.
    pub fn compile_limits(&self) -> Option<LimitOverrides> {
        self.compile.as_ref().map(|c| {
            let mut l = LimitOverrides::COMPILE_DEFAULTS.overlay(&c.limits);
            l.cpu_millicores = l.cpu_millicores.or(Some(machine_millicores()));
            l
        })
    }
}

/// Every core of this machine (as this process may use them), in thousandths of a core: the
/// compile stage's CPU quota unless a runtime file or the server's cap says less. Compilers
/// and JVMs start on several threads; half a core made javac and tsc 2x+ slower than bare.
pub fn machine_millicores() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores)
        .unwrap_or(u32::MAX / 1000)
        .saturating_mul(1000)
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
