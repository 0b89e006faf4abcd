//! The engine of livexec: one request in, one staged result out.
//!
//! Every caller that runs a program — the worker, `livexec run`, `livexec runtimes` (smoke
//! tests) — goes through the [`Executor`] trait, and [`Engine`] is its real implementation:
//! it owns the resolved runtimes (which are available here and why not: [`Engine::start`]
//! probes and smoke-tests them and records the answer in the registry the API reads), the
//! staged sequence "effective limits → command → sandbox" (compile once, then one run, or one
//! fresh sandbox per test case), and the [`RunResult`] it yields (API.md §4).
//!
//! The worker holds an `Arc<dyn Executor>`, so its retry, lease and shutdown logic is tested
//! with a fake executor and no root; the real engine is tested once, against the real sandbox
//! and toolchains, in this crate's `tests/`.
//!
//! A program that fails, times out or blows a limit is a result (`Ok`); only a platform
//! failure (the sandbox could not run it, the runtime is not here) is an [`ExecError`].
//!
//! ```no_run
//! use livexec_engine::{Engine, Executor, Request};
//! use livexec_sandbox::{Limits, Sandbox};
//! use std::sync::Arc;
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = livexec_runtimes::Registry::builtin()?;
//! let sandbox = Arc::new(Sandbox::new(Default::default())?);
//! let (engine, report) = Engine::start(sandbox, &mut registry, Limits::default(), true);
//! println!("{} runtimes available", report.ready.len());
//! let result = engine.execute(&Request::new("python", "print(6 * 7)"), &mut |_, _| {})?;
//! assert_eq!(result.report.stdout, b"42\n");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod cases;
mod check;
mod command;
mod engine;
mod files;
mod parallel;
mod result;
mod stages;

pub use cases::{compare, Comparison, MAX_TESTS_OUTPUT_BYTES};
pub use check::{check_all, smoke, Check, StartReport};
pub use command::{command_for, compile_command, effective_limits};
pub use engine::Engine;
pub use files::{glob_match, MAX_OUTPUT_FILES, MAX_OUTPUT_FILE_BYTES};
pub use livexec_core::OutputStream;
pub use result::{format_bytes, format_seconds, signal_name, to_result};

use livexec_core::{RunOptions, RunResult};
use livexec_sandbox::{SandboxError, Stream};

/// `stream` of the program (the run stage) as an [`OutputStream`].
pub(crate) fn program_stream(stream: Stream) -> OutputStream {
    match stream {
        Stream::Stdout => OutputStream::Stdout,
        Stream::Stderr => OutputStream::Stderr,
    }
}

/// `stream` of the compiler (the compile stage) as an [`OutputStream`].
pub(crate) fn compiler_stream(stream: Stream) -> OutputStream {
    match stream {
        Stream::Stdout => OutputStream::CompileStdout,
        Stream::Stderr => OutputStream::CompileStderr,
    }
}

/// What to run: a runtime (id or alias), the main file's source and the run's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Runtime id or alias (`python`, `cpp`, `c++` …).
    pub language: String,
    /// The main file's source (goes in as the runtime's `file_name`, never as argv).
    pub source: String,
    /// stdin, args, env, extra files, per-run limits, test cases, files to hand back.
    pub options: RunOptions,
    /// Raw stdin bytes of a plain run instead of `options.stdin` (which is text): what
    /// `livexec run` feeds from a file or a pipe, as it is. `None`: `options.stdin`.
    pub stdin_bytes: Option<Vec<u8>>,
}

impl Request {
    /// A bodiless run of `source` in `language` (default options).
    pub fn new(language: impl Into<String>, source: impl Into<String>) -> Self {
        Request {
            language: language.into(),
            source: source.into(),
            options: RunOptions::default(),
            stdin_bytes: None,
        }
    }

    /// The same request with these options.
    pub fn with_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }
}

/// Why the engine could not run a request (a platform failure, not a program's result).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The runtime is unknown here or its toolchain is unavailable.
    #[error("runtime {language:?} is not available on this worker")]
    NoRuntime {
        /// The language asked for.
        language: String,
    },
    /// The sandbox could not run a stage.
    #[error("the sandbox could not run the {stage} stage: {source}")]
    Sandbox {
        /// `compile`, `run` or `test case N`.
        stage: String,
        /// The sandbox's error.
        #[source]
        source: SandboxError,
    },
}

impl ExecError {
    /// Whether the request itself is what the sandbox refused (a file name it cannot write, a
    /// NUL byte in an argument or variable), so that running it again cannot succeed: the
    /// worker fails such an execution at once instead of retrying it. The API refuses these
    /// requests before they are queued; this is the backstop.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ExecError::Sandbox {
                source: SandboxError::BadFileName { .. }
                    | SandboxError::FilesCollide { .. }
                    | SandboxError::TooManyDirectories { .. }
                    | SandboxError::NulByte { .. },
                ..
            }
        )
    }
}

/// Something that carries a [`Request`] to its [`RunResult`]: the real [`Engine`], or a fake
/// in tests of its callers.
///
/// Calls block (a run lasts up to its time limits); async callers run them on a blocking
/// thread. `on_output` receives output as it is written, for live streaming: a compiled
/// runtime's compiler output first ([`OutputStream::CompileStdout`] / `CompileStderr`), then
/// the program's (a plain run's only; the output of test cases is in `RunReport::tests`).
pub trait Executor: Send + Sync {
    /// Run the request to its end.
    fn execute(
        &self,
        request: &Request,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<RunResult, ExecError>;

    /// Keep `per_runtime` sandboxes prepared ahead of need for each runtime's run stage.
    /// Default: nothing to prepare.
    fn keep_warm(&self, per_runtime: usize) -> Result<(), ExecError> {
        let _ = per_runtime;
        Ok(())
    }

    /// Block until every sandbox of finished runs is torn down (a graceful stop leaves
    /// nothing behind). Default: nothing to wait for.
    fn wait_idle(&self) {}
}
