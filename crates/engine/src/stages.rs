//! Staged execution: a compiled runtime's compile stage runs in a sandbox of its own (the
//! source and the request's extra files in a writable `/work`, the compile limits), its
//! artifacts are collected and handed to each run stage's sandbox read-only; an interpreted
//! runtime has only the run stage. [`compile`] runs the compile stage and [`staged_result`]
//! turns what the stages did into the result to record, with the `compile` report and
//! `CompilationError` of API.md §4.

use crate::command::{add_files, compile_command};
use crate::result::cut;
use crate::result::{format_bytes, format_decimal, format_seconds, to_result};
use livexec_core::{CompileReport, ErrorType, RunReport, RunResult, SourceFile, Status};
use livexec_runtimes::{ErrorPattern, Resolved, StageRecipe};
use livexec_sandbox::{Limits, Outcome, Sandbox, SandboxError, Stream};

/// What the stages of one run did.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The compile stage's outcome and limits (compiled runtimes).
    pub compile: Option<(Outcome, Limits)>,
    /// The run stage's outcome and limits; `None` when the compile stage failed.
    pub run: Option<(Outcome, Limits)>,
    /// The runtime's rule for the error line of a failed run.
    pub error: Option<ErrorPattern>,
}

/// What a compile stage left: its outcome (files taken out) and the artifacts, `None` when
/// it failed (no run stage follows).
pub(crate) struct Compiled {
    /// The compile stage's outcome, without its files.
    pub outcome: Outcome,
    /// The artifacts for the run stage, when the compile succeeded.
    pub artifacts: Option<Vec<(String, Vec<u8>)>>,
}

/// Runs `stage` (the compile stage of `rt`) on `source` and the extra `files`, the compiler's
/// output to `on_output` as it is written. Blocking.
pub(crate) fn compile(
    sandbox: &Sandbox,
    rt: &Resolved,
    stage: &StageRecipe,
    limits: &Limits,
    (source, files): (&str, &[SourceFile]),
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Compiled, SandboxError> {
    let mut cmd = compile_command(rt, stage, source, limits.clone());
    add_files(&mut cmd, files, &rt.file_name, &[]);
    let mut outcome = sandbox.run(&cmd, on_output)?;
    let artifacts = std::mem::take(&mut outcome.files);
    let ok = compile_verdict(&outcome, limits, !artifacts.is_empty()).is_none();
    Ok(Compiled {
        outcome,
        artifacts: ok.then_some(artifacts),
    })
}

/// Why a compile stage failed (`None`: it succeeded and left its artifacts), as the
/// `error_message` of a `CompilationError`.
fn compile_verdict(o: &Outcome, limits: &Limits, has_artifacts: bool) -> Option<String> {
    if o.timed_out {
        return Some(format!(
            "Compilation exceeded the time limit of {} s",
            format_seconds(limits.wall_ms)
        ));
    }
    if o.oom_killed {
        return Some(format!(
            "Compilation exceeded the memory limit of {} MB",
            format_decimal(limits.memory_bytes, 1024 * 1024)
        ));
    }
    if o.output_limited.is_some() {
        return Some(format!(
            "Compiler output exceeded the limit of {}",
            format_bytes(limits.output_bytes as u64)
        ));
    }
    match (o.exit_code, o.signal) {
        (Some(0), None) if o.files_past_max > 0 => Some(format!(
            "Compilation produced {} files for the program, more than the {} the run stage takes",
            livexec_sandbox::workdir::MAX_FILES + o.files_past_max,
            livexec_sandbox::workdir::MAX_FILES
        )),
        (Some(0), None) if has_artifacts => None,
        (Some(0), None) => Some("Compilation produced no program".to_owned()),
        (code, signal) => Some(first_error_line(o).unwrap_or_else(|| match (code, signal) {
            (_, Some(sig)) => format!(
                "Compiler killed by signal {}",
                crate::result::signal_name(sig)
            ),
            (Some(code), _) => format!("Compilation failed with exit code {code}"),
            _ => "Compilation failed".to_owned(),
        })),
    }
}

/// The compiler's first error line: the first diagnostic line of stderr, then stdout (tsc
/// writes its errors there), whose kind is `error` (`main.c:3:5: error: …`, `fatal error:`,
/// `error[E0425]: …`, `main.ts(1,7): error TS2322: …`); not a warning or note that quotes the
/// word (`warning: #warning error: …`, a `#pragma message`), nor a source line the compiler
/// quotes (`   1 | puts("error");`). Else the first such line that mentions `error` at
/// all, else the first non-empty line that is not a `#` comment (`go build` prints
/// `# command-line-arguments` first, then `./main.go:4:2: undefined: x`).
fn first_error_line(o: &Outcome) -> Option<String> {
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    let lines = || {
        err.lines()
            .chain(out.lines())
            .map(str::trim)
            .filter(|l| !quoted_source(l))
    };
    lines()
        .find(|l| diagnostic_kind(l) == Some("error"))
        .or_else(|| {
            lines()
                .find(|l| diagnostic_kind(l).is_none() && l.to_ascii_lowercase().contains("error"))
        })
        .or_else(|| lines().find(|l| !l.is_empty() && !l.starts_with('#')))
        .map(cut)
}

/// Whether `line` (trimmed) is a source line a compiler quotes under a diagnostic: gcc's and
/// rustc's `12 | code` and their `| ^~~` marker lines.
fn quoted_source(line: &str) -> bool {
    line.trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start()
        .starts_with('|')
}

/// The kind of the first diagnostic word of `line`: `error`, `warning` or `note` followed by
/// `:`, `[` (rustc's code) or a space and an upper-case code (tsc's `TS2322`, mcs's
/// `CS1525`); `None` when it has none.
fn diagnostic_kind(line: &str) -> Option<&'static str> {
    let bytes = line.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |n| start + n);
        let (word, rest) = (&bytes[start..end], &bytes[end..]);
        let coded = rest.len() > 1 && rest[0] == b' ' && rest[1].is_ascii_uppercase();
        if matches!(rest.first(), Some(b':' | b'[')) || coded {
            for kind in ["error", "warning", "note"] {
                if word.eq_ignore_ascii_case(kind.as_bytes()) {
                    return Some(kind);
                }
            }
        }
        start = end + 1;
    }
    None
}

pub(crate) fn report(o: &Outcome, limits: &Limits) -> CompileReport {
    let status = match compile_verdict(o, limits, true) {
        None => Status::Completed,
        Some(_) if o.timed_out => Status::Timeout,
        Some(_) => Status::Failed,
    };
    CompileReport {
        status,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        exit_code: o.exit_code,
        time_ms: i64::try_from(o.wall_ms).unwrap_or(i64::MAX),
        memory_kb: Some(i64::try_from(o.memory_peak_bytes / 1024).unwrap_or(i64::MAX)),
    }
}

/// The result to record: the run stage's ([`to_result`]) with the compile report, or, when
/// the compile stage failed, FAILED / `CompilationError` with the compiler's first error line
/// (or the compile limit it hit) as the message. `error_line` comes from the runtime's rules:
/// the compiler's first error in the main file, or the failed run's frame in it.
pub(crate) fn staged_result(staged: &Staged) -> RunResult {
    let compile = staged.compile.as_ref().map(|(o, l)| report(o, l));
    match (&staged.run, &staged.compile) {
        (Some((outcome, limits)), _) => {
            let mut result = to_result(outcome, limits);
            // A failed run's message: the runtime's error line, when its rule finds one.
            if result.report.error_type == Some(ErrorType::RuntimeError) {
                if let Some(rule) = &staged.error {
                    let stderr = String::from_utf8_lossy(&outcome.stderr);
                    if let Some(line) = rule.find(&stderr) {
                        result.report.error_message = Some(cut(&line));
                    }
                    result.report.error_line = rule.line(&stderr);
                }
            }
            result.report.compile = compile;
            result
        }
        (None, Some((o, l))) => RunResult {
            status: Status::Failed,
            report: RunReport {
                error_message: Some(
                    compile_verdict(o, l, false).unwrap_or_else(|| "Compilation failed".to_owned()),
                ),
                error_type: Some(ErrorType::CompilationError),
                error_line: staged.error.as_ref().and_then(|rule| {
                    let err = String::from_utf8_lossy(&o.stderr);
                    let out = String::from_utf8_lossy(&o.stdout);
                    rule.compile_line(&format!("{err}\n{out}"))
                }),
                compile: compile.map(|c| CompileReport {
                    status: match c.status {
                        Status::Completed => Status::Failed,
                        s => s,
                    },
                    ..c
                }),
                ..RunReport::default()
            },
        },
        (None, None) => RunResult::internal_error("nothing ran"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32, stdout: &str, stderr: &str) -> Outcome {
        Outcome {
            exit_code: Some(code),
            wall_ms: 800,
            memory_peak_bytes: 64 << 20,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            ..Outcome::default()
        }
    }

    fn failed_compile(o: Outcome) -> RunResult {
        staged_result(&Staged {
            compile: Some((o, Limits::default())),
            run: None,
            error: None,
        })
    }

    #[test]
    fn the_first_error_line_of_each_compiler_is_the_message() {
        for (stdout, stderr, want) in [
            (
                "",
                "main.c: In function 'main':\nmain.c:3:5: error: 'x' undeclared\n",
                "main.c:3:5: error: 'x' undeclared",
            ),
            (
                "main.ts(1,7): error TS2322: Type 'string' is not assignable to type 'number'.\n",
                "",
                "main.ts(1,7): error TS2322: Type 'string' is not assignable to type 'number'.",
            ),
            (
                "",
                "# command-line-arguments\n./main.go:4:2: undefined: x\n",
                "./main.go:4:2: undefined: x",
            ),
            (
                "",
                "error[E0425]: cannot find value `x` in this scope\n --> main.rs:2:5\n",
                "error[E0425]: cannot find value `x` in this scope",
            ),
        ] {
            let r = failed_compile(exited(1, stdout, stderr));
            assert_eq!(r.status, Status::Failed);
            assert_eq!(r.report.error_type, Some(ErrorType::CompilationError));
            assert_eq!(r.report.error_message.as_deref(), Some(want));
            let c = r.report.compile.unwrap();
            assert_eq!(
                (c.status, c.exit_code, c.time_ms),
                (Status::Failed, Some(1), 800)
            );
            assert_eq!(c.stderr, stderr);
            assert_eq!(c.memory_kb, Some(64 << 10));
        }
    }

    /// Warnings and notes that quote the word, and quoted source lines, are not the error.
    #[test]
    fn the_error_line_is_a_diagnostic_of_kind_error() {
        for (stderr, want) in [
            (
                "main.c:1:13: warning: implicit declaration of function 'puts'\n    1 | int main(){ puts(\"error\"); return x; }\n      |             ^~~~\nmain.c:1:35: error: 'x' undeclared (first use in this function)\n",
                "main.c:1:35: error: 'x' undeclared (first use in this function)",
            ),
            (
                "main.c:1:2: warning: #warning error: FAKE [-Wcpp]\nmain.c:2:20: error: 'x' undeclared\n",
                "main.c:2:20: error: 'x' undeclared",
            ),
            (
                "main.c:1:9: note: '#pragma message: main.c:1:1: error: SPOOF'\nmain.c:2:12: fatal error: nope.h: No such file or directory\n",
                "main.c:2:12: fatal error: nope.h: No such file or directory",
            ),
            (
                "In file included from main.c:1:\nx.h:2:2: error: #error E\n    2 | #error E\n",
                "x.h:2:2: error: #error E",
            ),
            (
                "error.h:1:1: warning: empty file\nmain.c:1:1: error: expected ';'\n",
                "main.c:1:1: error: expected ';'",
            ),
            (
                "warning: unused variable: `y`\n --> main.rs:2:9\n  |\n2 |     let y = \"error\";\n  |         ^\nerror[E0425]: cannot find value `x` in this scope\n",
                "error[E0425]: cannot find value `x` in this scope",
            ),
            ("main.cs(1,1): error CS1525: Unexpected symbol\n", "main.cs(1,1): error CS1525: Unexpected symbol"),
            ("Exception: SomethingError happened\n", "Exception: SomethingError happened"),
            (
                "main.c:1:1: warning: ‘é’ ünused\nmain.c:2:3: error: ‘x’ undeclared\n",
                "main.c:2:3: error: ‘x’ undeclared",
            ),
        ] {
            let r = failed_compile(exited(1, "", stderr));
            assert_eq!(r.report.error_message.as_deref(), Some(want), "{stderr}");
        }
    }

    #[test]
    fn compile_limits_are_named() {
        let mut o = exited(0, "", "");
        o.exit_code = None;
        o.signal = Some(9);
        o.timed_out = true;
        let r = failed_compile(o.clone());
        assert_eq!(r.report.error_type, Some(ErrorType::CompilationError));
        assert_eq!(
            r.report.error_message.as_deref(),
            Some("Compilation exceeded the time limit of 30 s")
        );
        assert_eq!(r.report.compile.unwrap().status, Status::Timeout);
        o.timed_out = false;
        o.oom_killed = true;
        let msg = failed_compile(o).report.error_message.unwrap();
        assert_eq!(msg, "Compilation exceeded the memory limit of 128 MB");
        let ok_but_empty = failed_compile(exited(0, "", ""));
        assert_eq!(
            ok_but_empty.report.error_message.as_deref(),
            Some("Compilation produced no program")
        );
    }

    #[test]
    fn a_successful_compile_is_reported_beside_the_run() {
        let r = staged_result(&Staged {
            compile: Some((exited(0, "", "warning: unused\n"), Limits::default())),
            run: Some((exited(0, "hi\n", ""), Limits::default())),
            error: None,
        });
        assert_eq!(r.status, Status::Completed);
        assert_eq!(r.report.stdout, b"hi\n");
        let c = r.report.compile.unwrap();
        assert_eq!(c.status, Status::Completed);
        assert_eq!(c.stderr, "warning: unused\n");
    }
}
