//! A fake executor for the worker's tests: no sandbox, no root. The "program" is one line of
//! a tiny language, so each test says what the run gives:
//!
//! - `print TEXT` → COMPLETED, stdout `TEXT\n` (streamed live);
//! - `stderr TEXT` → COMPLETED, stderr `TEXT\n` (streamed live);
//! - `crash MSG` → FAILED / `RuntimeError` with message `MSG`, exit code 1;
//! - `sleep` → TIMEOUT / `TimeoutError`;
//! - `broken` → a platform failure (`ExecError::NoRuntime`);
//! - `refused NAME` → the sandbox refuses the file name `NAME` (a permanent failure);
//! - `gate` → says it started and waits until the test opens the gate ([`FakeExecutor::gate`]);
//! - `stdin` → prints the request's `options.stdin` and the number of its test cases;
//!
//! lines may be joined with `;`. Every call is counted per source, so a test can prove that a
//! program ran exactly once.

use livexec_core::{ErrorType, RunReport, RunResult, Status};
use livexec_engine::OutputStream;
use livexec_worker::{ExecError, Executor, Request};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Mutex;

/// The fake; see the module doc.
#[derive(Default)]
pub struct FakeExecutor {
    runs: Mutex<HashMap<String, usize>>,
    gate: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

/// The test's side of a `gate` program: `started` receives once it runs; sending on `open`
/// lets it finish.
#[allow(dead_code)] // not every test binary uses gates
pub struct Gate {
    pub started: mpsc::Receiver<()>,
    pub open: mpsc::Sender<()>,
}

impl FakeExecutor {
    /// Arm the gate the next `gate` program waits at.
    #[allow(dead_code)] // not every test binary uses gates
    pub fn gate(&self) -> Gate {
        let (started_tx, started) = mpsc::channel();
        let (open, open_rx) = mpsc::channel();
        *self.gate.lock().unwrap() = Some((started_tx, open_rx));
        Gate { started, open }
    }

    /// How many times `source` was executed.
    #[allow(dead_code)] // not every test binary counts runs
    pub fn runs(&self, source: &str) -> usize {
        self.runs.lock().unwrap().get(source).copied().unwrap_or(0)
    }
}

fn completed() -> RunResult {
    RunResult {
        status: Status::Completed,
        report: RunReport {
            exit_code: Some(0),
            execution_time_ms: 1,
            memory_kb: Some(1024),
            ..RunReport::default()
        },
    }
}

impl Executor for FakeExecutor {
    fn execute(
        &self,
        request: &Request,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<RunResult, ExecError> {
        *self
            .runs
            .lock()
            .unwrap()
            .entry(request.source.clone())
            .or_default() += 1;
        let mut r = completed();
        for line in request.source.split(';').map(str::trim) {
            let (op, arg) = line.split_once(' ').unwrap_or((line, ""));
            match op {
                "print" => {
                    let out = format!("{arg}\n");
                    on_output(OutputStream::Stdout, out.as_bytes());
                    r.report.stdout.extend_from_slice(out.as_bytes());
                }
                "stderr" => {
                    let out = format!("{arg}\n");
                    on_output(OutputStream::Stderr, out.as_bytes());
                    r.report.stderr.extend_from_slice(out.as_bytes());
                }
                "stdin" => {
                    let o = &request.options;
                    let out = format!("{} {}\n", o.stdin.as_deref().unwrap_or(""), o.tests.len());
                    r.report.stdout.extend_from_slice(out.as_bytes());
                }
                "gate" => {
                    let (started, open) = self.gate.lock().unwrap().take().expect("no gate armed");
                    started.send(()).unwrap();
                    open.recv().unwrap();
                }
                "crash" => {
                    r.status = Status::Failed;
                    r.report.error_type = Some(ErrorType::RuntimeError);
                    r.report.error_message = Some(arg.to_owned());
                    r.report.exit_code = Some(1);
                    return Ok(r);
                }
                "sleep" => {
                    r.status = Status::Timeout;
                    r.report.error_type = Some(ErrorType::TimeoutError);
                    r.report.error_message =
                        Some("Execution exceeded the time limit of 0.5 s".into());
                    r.report.exit_code = None;
                    r.report.signal = Some(9);
                    return Ok(r);
                }
                "broken" => {
                    return Err(ExecError::NoRuntime {
                        language: format!("/nonexistent/livexec/{}", request.language),
                    })
                }
                "refused" => {
                    return Err(ExecError::Sandbox {
                        stage: "run".into(),
                        source: livexec_sandbox::SandboxError::BadFileName {
                            name: arg.to_owned(),
                        },
                    })
                }
                other => panic!("the fake executor does not know {other:?}"),
            }
        }
        Ok(r)
    }
}
