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

/// One regular expression and which of its matches counts (the first, or the last). The
/// expression is compiled on first use: a run that succeeds never pays for it, and a start
/// does not compile every runtime file's patterns.
#[derive(Debug, Clone)]
struct Pick {
    pattern: String,
    regex: std::sync::OnceLock<Option<regex::Regex>>,
    last: bool,
}

impl Pick {
    fn new(pattern: Option<&str>, pick: Option<&str>) -> Option<Pick> {
        Some(Pick {
            pattern: pattern?.to_owned(),
            regex: std::sync::OnceLock::new(),
            last: pick == Some("last"),
        })
    }

    /// The first or last match in `text`; `None` also when the pattern does not compile
    /// (which [`Runtime::parse`] has already refused).
    fn captures<'t>(&self, text: &'t str) -> Option<regex::Captures<'t>> {
        let regex = self
            .regex
            .get_or_init(|| regex::Regex::new(&self.pattern).ok())
            .as_ref()?;
        let mut matches = regex.captures_iter(text);
        if self.last {
            matches.last()
        } else {
            matches.next()
        }
    }
}

impl PartialEq for Pick {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.last == other.last
    }
}

impl Eq for Pick {}

/// The number in a `line` group: a 1-based line, else `None`.
fn line_number(caps: &regex::Captures<'_>) -> Option<i32> {
    caps.name("line")?
        .as_str()
        .parse::<i32>()
        .ok()
        .filter(|&n| n > 0)
}

/// A runtime's rules for reading what a failed run printed: the error line
/// ([`Runtime::error_pattern`]) and the line of the user's main file it points at
/// ([`Runtime::error_line_pattern`], else a `line` group of `error_pattern`), and for a failed
/// compile the line of the compiler's first error ([`Runtime::compile_error_line_pattern`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorPattern {
    message: Option<Pick>,
    line: Option<Pick>,
    compile_line: Option<Pick>,
}

impl ErrorPattern {
    /// The error line in `stderr`: the `message` group (else the whole match) of the first or
    /// last match of `error_pattern`, trimmed; `None` when nothing matches.
    pub fn find(&self, stderr: &str) -> Option<String> {
        let caps = self.message.as_ref()?.captures(stderr)?;
        let m = caps.name("message").or_else(|| caps.get(0))?;
        Some(m.as_str().trim().to_owned()).filter(|s| !s.is_empty())
    }

    /// The line of the user's main file that a failed run's `stderr` points at (1-based):
    /// the `line` group of `error_line_pattern`'s first or last match, else the `line` group
    /// of `error_pattern`'s chosen match; `None` when neither names one.
    pub fn line(&self, stderr: &str) -> Option<i32> {
        match &self.line {
            Some(rule) => line_number(&rule.captures(stderr)?),
            None => line_number(&self.message.as_ref()?.captures(stderr)?),
        }
    }

    /// The line of the user's main file of a failed compile's first error (1-based), from the
    /// compiler's `output` (stderr, then stdout); `None` when it names none.
    pub fn compile_line(&self, output: &str) -> Option<i32> {
        line_number(&self.compile_line.as_ref()?.captures(output)?)
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
    /// How to find the line of the user's main file that a failed run's stderr points at
    /// (`error_line`): a regular expression whose named group `line` is the 1-based line
    /// number. Without it, a `line` group of `error_pattern` is used, if it has one. Write it
    /// to match only frames of the main file (`/work/main.py`), not the toolchain's own.
    #[serde(default)]
    pub error_line_pattern: Option<String>,
    /// Which match of `error_line_pattern` counts: `"first"` (default) or `"last"` (Python
    /// prints the innermost frame last).
    #[serde(default)]
    pub error_line_pick: Option<String>,
    /// Compiled runtimes: how to find the line of the compiler's first error in the main file,
    /// in its stderr then stdout: a regular expression with a named group `line`, first match.
    /// Default: the `FILE:LINE:COL: error` convention of gcc and javac
    /// ([`Runtime::DEFAULT_COMPILE_LINE`], `FILE` the runtime's `file_name`).
    #[serde(default)]
    pub compile_error_line_pattern: Option<String>,
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

impl Stage {
    /// The artifact pattern that `name` (a file in the working dir) matches, if any: a file
    /// of the request named like that would be overwritten by what the compile stage makes.
    /// Patterns are plain names with at most one `*` (checked at load), matched in the working
    /// dir itself: a name with a directory (`lib/A.class`) matches none.
    pub fn artifact_named(&self, name: &str) -> Option<&str> {
        if name.contains('/') {
            return None;
        }
        self.artifacts
            .iter()
            .find(|pattern| match pattern.split_once('*') {
                Some((head, tail)) => {
                    name.len() >= head.len() + tail.len()
                        && name.starts_with(head)
                        && name.ends_with(tail)
                }
                None => name == pattern.as_str(),
            })
            .map(String::as_str)
    }
}

impl Runtime {
    /// Parse and check one runtime file; `file` names it in errors, every problem at once.
    pub fn parse(file: &str, text: &str) -> Result<Runtime, RuntimeError> {
        Runtime::parse_with(file, text, true)
    }

    /// [`Runtime::parse`] of a file compiled into the binary: its regular expressions are
    /// not parsed again at every start (that cost each `livexec run` about 0.3 ms for the
    /// fourteen files); a unit test parses every built-in file with the full check.
    pub(crate) fn parse_builtin(file: &str, text: &str) -> Result<Runtime, RuntimeError> {
        Runtime::parse_with(file, text, false)
    }

    fn parse_with(file: &str, text: &str, check_patterns: bool) -> Result<Runtime, RuntimeError> {
        let rt: Runtime = toml::from_str(text).map_err(|source| RuntimeError::Parse {
            file: file.to_owned(),
            source,
        })?;
        let problems = rt.problems(check_patterns);
        if problems.is_empty() {
            Ok(rt)
        } else {
            Err(RuntimeError::Invalid {
                file: file.to_owned(),
                problem: problems.join("; "),
            })
        }
    }

    /// Every problem of the file; its regular expressions are parsed when `check_patterns`.
    fn problems(&self, check_patterns: bool) -> Vec<String> {
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
        if let Some(p) = self.error_pattern.as_ref().filter(|_| check_patterns) {
            // Parsed, not compiled: compiling every file's pattern at every start cost a
            // `livexec run` milliseconds; the one pattern used is compiled when a run fails.
            if let Err(e) = regex_syntax::ParserBuilder::new().build().parse(p) {
                problems.push(format!(
                    "error_pattern is not a valid regular expression: {e}"
                ));
            }
        }
        for (key, pattern) in [
            ("error_line_pattern", &self.error_line_pattern),
            (
                "compile_error_line_pattern",
                &self.compile_error_line_pattern,
            ),
        ] {
            // Parsed, not compiled, like `error_pattern`.
            let Some(p) = pattern.as_deref() else {
                continue;
            };
            if !check_patterns {
                continue;
            }
            if let Err(e) = regex_syntax::ParserBuilder::new().build().parse(p) {
                problems.push(format!("{key} is not a valid regular expression: {e}"))
            } else if !p.contains("(?P<line>") && !p.contains("(?<line>") {
                problems.push(format!("{key} needs a named group `line`"))
            }
        }
        for (key, pick) in [
            ("error_pick", &self.error_pick),
            ("error_line_pick", &self.error_line_pick),
        ] {
            if let Some(pick) = pick.as_deref().filter(|p| !["first", "last"].contains(p)) {
                problems.push(format!("{key} {pick:?} must be \"first\" or \"last\""));
            }
        }
        if let Some(m) = self.mounts.iter().find(|m| !m.starts_with('/')) {
            problems.push(format!("mount {m:?} must be an absolute path"));
        }
        problems
    }

    /// The compile error line of the `FILE:LINE:COL: error` convention (gcc, g++, javac:
    /// `main.c:3:5: error: …`, `Main.java:3: error: …`), optionally after a directory;
    /// `{file}` stands for the runtime's `file_name`.
    pub const DEFAULT_COMPILE_LINE: &'static str =
        r"(?m)^(?:\S*/)?{file}:(?P<line>\d+):(?:\d+:)? (?:fatal )?error\b";

    /// The rules that read a failed run's (and a failed compile's) output.
    pub fn error_rule(&self) -> ErrorPattern {
        let compile_line = self.compile.as_ref().and_then(|_| {
            let pattern = match &self.compile_error_line_pattern {
                Some(p) => p.clone(),
                None => {
                    Self::DEFAULT_COMPILE_LINE.replace("{file}", &regex::escape(&self.file_name))
                }
            };
            Pick::new(Some(&pattern), None)
        });
        ErrorPattern {
            message: Pick::new(self.error_pattern.as_deref(), self.error_pick.as_deref()),
            line: Pick::new(
                self.error_line_pattern.as_deref(),
                self.error_line_pick.as_deref(),
            ),
            compile_line,
        }
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

/// The cores this process may use (1 when unknown): what sizes the workers, the compile
/// stages' quota, the smoke tests and the test cases run side by side.
pub fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Every core of this machine (as this process may use them), in thousandths of a core: the
/// compile stage's CPU quota unless a runtime file or the server's cap says less. Compilers
/// and JVMs start on several threads; half a core made javac and tsc 2x+ slower than bare.
pub fn machine_millicores() -> u32 {
    u32::try_from(machine_cores())
        .unwrap_or(u32::MAX / 1000)
        .saturating_mul(1000)
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
