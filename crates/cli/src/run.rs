//! `livexec run`: one file in the sandbox, no server. A compiled language is compiled first
//! (its own sandbox and limits; the compiler's output goes to stderr as it comes); the
//! program's stdout and stderr pass through live, the exit code is the program's, and one
//! verdict line goes to stderr.

use crate::settings::{LimitArgs, SandboxArgs};
use anyhow::Context;
use clap::Args;
use livexec_core::{ErrorType, Status};
use livexec_engine::{Engine, Executor, OutputStream, Request};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Settings of `livexec run`.
///
/// Exit status: the program's own exit code; 128+N when a signal N killed it (a memory or
/// output limit kills with SIGKILL: 137); 124 when it hit the time limit; 125 when the sandbox
/// itself failed (the program did not run); 1 when the compile stage failed.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: the program's exit code; 128+N when signal N killed it (memory and output limits kill with SIGKILL: 137); 124 on timeout; 125 when the sandbox itself failed; 1 when compilation failed."
)]
pub struct RunArgs {
    /// The runtime (language) id or alias, e.g. `python`, `cpp`, `c++`, `java`.
    #[arg(short, long)]
    pub language: String,
    /// The program's source file.
    pub file: PathBuf,
    /// A file whose bytes are the program's stdin; `-` is this command's own stdin. Default:
    /// this command's stdin when it is a pipe or a file, else empty (EOF at once).
    #[arg(long)]
    pub stdin: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Exit status when the sandbox itself failed.
const SANDBOX_FAILED: u8 = 125;
/// Exit status on timeout, like timeout(1).
const TIMED_OUT: u8 = 124;

/// Run the file and pass its exit status on.
pub fn main(args: RunArgs) -> anyhow::Result<ExitCode> {
    args.sandbox.export_interpreters();
    // The sandbox (host detection, the init, a network namespace for the jail) is built on a
    // thread of its own while this one loads the runtimes, resolves the one this run needs
    // and reads the program and its input: neither needs the other until the run starts.
    let sandbox_args = args.sandbox.clone();
    let building = std::thread::Builder::new()
        .name("livexec-sandbox".into())
        // The jail's network namespace is made beside the rest of the sandbox, so that
        // building the jail does not wait for it; no spares (a compiled runtime's run jail
        // makes its own while the compiler runs).
        .spawn(move || sandbox_args.sandbox_with(1, 0))
        .context("starting the sandbox thread")?;
    let prepared = prepare(&args);
    // Joined before any error is returned: the sandbox is dropped (torn down) here, not
    // while the process exits.
    let sandbox = match building.join() {
        Ok(s) => s,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let RunInputs {
        id,
        resolved,
        source,
        stdin,
        defaults,
    } = prepared?;
    let sandbox = std::sync::Arc::new(sandbox?);
    let engine = Engine::new(sandbox, HashMap::from([(id.clone(), resolved)]), defaults);
    // stdin as it is (a file or a pipe may hold any bytes).
    let request = Request {
        stdin_bytes: Some(stdin),
        ..Request::new(id, source)
    };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    // The last byte the program wrote to either stream, so the verdict starts a line.
    let mut last_byte = None;
    let ran = engine.execute(&request, &mut |stream, chunk| {
        last_byte = chunk.last().copied().or(last_byte);
        // A closed stdout (e.g. `| head`) must not stop the run; the verdict still comes.
        // The compiler's output (warnings, errors) goes to stderr as it comes.
        let _ = match stream {
            OutputStream::Stdout => out.write_all(chunk).and_then(|()| out.flush()),
            OutputStream::Stderr | OutputStream::CompileStdout | OutputStream::CompileStderr => {
                err.write_all(chunk).and_then(|()| err.flush())
            }
        };
    });
    let result = match ran {
        Ok(r) => r,
        Err(e) => {
            eprintln!("livexec: sandbox error: {e}");
            return Ok(ExitCode::from(SANDBOX_FAILED));
        }
    };
    // `FAILED RuntimeError: ZeroDivisionError: division by zero (line 4);`
    let at_line = result
        .report
        .error_line
        .map_or_else(String::new, |n| format!(" (line {n})"));
    // The message comes from the program's stderr: its control characters are shown escaped,
    // so it cannot rewrite the verdict line on a terminal (`\r`, `\x1b[2K`, a fake
    // `COMPLETED`).
    let reason = match (&result.report.error_type, &result.report.error_message) {
        (Some(t), Some(m)) => format!(" {}: {}{at_line};", t.as_str(), escape_controls(m)),
        _ => String::new(),
    };
    let compiled = match &result.report.compile {
        Some(c) => format!(" compile {} ms", c.time_ms),
        None => String::new(),
    };
    // The verdict starts a line of its own, and attributes the program's output left set
    // (e.g. concealed text) end before it.
    if last_byte.is_some_and(|b| b != b'\n') {
        let _ = err.write_all(b"\n");
    }
    if std::io::IsTerminal::is_terminal(&err) {
        let _ = err.write_all(b"\x1b[0m");
    }
    if result.report.error_type == Some(ErrorType::CompilationError) {
        eprintln!("livexec: {}{reason}{compiled}", result.status);
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "livexec: {}{reason}{compiled}{} wall {} ms, cpu {} ms, memory {:.1} MiB",
        result.status,
        if compiled.is_empty() { "" } else { "," },
        result.report.execution_time_ms,
        result.report.cpu_time_ms.unwrap_or(0),
        result.report.memory_kb.unwrap_or(0) as f64 / 1024.0
    );
    let code = if result.status == Status::Timeout {
        TIMED_OUT
    } else if let Some(sig) = result.report.signal {
        128u8.saturating_add(u8::try_from(sig).unwrap_or(127))
    } else {
        // Exit codes are 0..=255 on Linux; anything else is reported as a failure.
        result
            .report
            .exit_code
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1)
    };
    Ok(ExitCode::from(code))
}

/// `text` with its control characters (C0 but tab, DEL, C1) written as `\u{..}` escapes.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// What the run needs besides the sandbox.
struct RunInputs {
    /// The runtime's id.
    id: String,
    /// Its toolchain, resolved.
    resolved: livexec_runtimes::Resolved,
    /// The program's source.
    source: String,
    /// The program's stdin (bytes as given).
    stdin: Vec<u8>,
    /// The default limits.
    defaults: livexec_sandbox::Limits,
}

/// Loads the runtimes and resolves the one `args` names (its probe answered from the cache
/// when the toolchain has not changed since it was last probed), reads the source and stdin.
fn prepare(args: &RunArgs) -> anyhow::Result<RunInputs> {
    let mut registry = args.sandbox.registry_for(&args.language)?;
    args.limits.cap_compile_cpu(&mut registry)?;
    let Some(runtime) = registry.lookup(&args.language) else {
        anyhow::bail!(
            "unknown language {:?}; known: {}",
            args.language,
            registry.ids().join(", ")
        );
    };
    // Only the runtime this run needs is resolved.
    let resolved = runtime.resolve_cached(registry.probe_cache())?;
    let source = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let stdin = read_stdin(args.stdin.as_deref())?;
    let defaults = args.limits.limits()?;
    Ok(RunInputs {
        id: runtime.id.clone(),
        resolved,
        source,
        stdin,
        defaults,
    })
}

/// The program's stdin: `--stdin FILE`, `--stdin -` (ours), or ours when it is a pipe or a
/// file (`echo Bob | livexec run …`, `< in.txt`), else nothing.
fn read_stdin(arg: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let ours = |what: &str| -> anyhow::Result<Vec<u8>> {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {what}"))?;
        Ok(buf)
    };
    match arg {
        Some(p) if p.as_os_str() == "-" => ours("stdin (--stdin -)"),
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display())),
        None if piped_stdin() => ours("stdin"),
        None => Ok(Vec::new()),
    }
}

/// Whether our stdin is a pipe or a file (not a terminal, not closed, not /dev/null's device).
fn piped_stdin() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.file_type().is_fifo() || m.is_file())
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn a_message_cannot_rewrite_the_verdict_line() {
        assert_eq!(
            escape_controls("\r\x1b[2Klivexec: COMPLETED\x1b[8m\u{9b}\u{7f}\0"),
            "\\u{d}\\u{1b}[2Klivexec: COMPLETED\\u{1b}[8m\\u{9b}\\u{7f}\\u{0}"
        );
        assert_eq!(
            escape_controls("ZeroDivisionError: x\ty é"),
            "ZeroDivisionError: x\ty é"
        );
    }
}
