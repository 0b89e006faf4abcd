//! [`Engine`]: the real [`Executor`] — resolved runtimes, a sandbox and the service's default
//! limits; a request is compiled once (compiled runtimes), then run once, or once per test
//! case, each in a fresh sandbox with the same limits.
//!
//! A request's extra files go into the compile stage's working dir (headers, modules) and
//! into every run stage's (data files; a compiled runtime's run stage gets them beside the
//! artifacts, except one named like an artifact). Its args and env go to the run stage
//! only; env never overrides the sandbox's own variables, `LD_*` or the runtime's. Per-run
//! limits apply over the runtime's stage limits and are reported as `RunReport::limits`,
//! also when the compile fails. `return_files` are read from the plain run, or from the last
//! test case that ran.

use crate::cases::{case_result, overall, skipped, OutputBudget};
use crate::command::reported;
use crate::command::{add_files, add_run_options, apply_request, command_for, effective_limits};
use crate::files::{collect_patterns, returned};
use crate::stages::{compile, report, staged_result, Staged};
use crate::{ExecError, Executor, Request, Stream};
use livexec_core::{RunOptions, RunResult};
use livexec_runtimes::Resolved;
use livexec_sandbox::{Limits, Outcome, Sandbox};
use std::collections::HashMap;
use std::sync::Arc;

/// The real executor: a sandbox, the runtimes that work with it (by id, with their aliases)
/// and the service's default limits, which each runtime's stage overrides and each request's
/// `limits` apply over.
pub struct Engine {
    sandbox: Arc<Sandbox>,
    runtimes: HashMap<String, Arc<Resolved>>,
    aliases: HashMap<String, String>,
    limits: Limits,
}

impl Engine {
    /// An engine over `sandbox` with these resolved runtimes (by id) and default limits.
    pub fn new(sandbox: Arc<Sandbox>, runtimes: HashMap<String, Resolved>, limits: Limits) -> Self {
        Engine {
            sandbox,
            runtimes: runtimes
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            aliases: HashMap::new(),
            limits,
        }
    }

    /// Also accept these names (alias → runtime id) in [`Request::language`].
    pub fn with_aliases(mut self, aliases: HashMap<String, String>) -> Self {
        self.aliases = aliases;
        self
    }

    /// The sandbox programs run in.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The ids of the runtimes this engine runs, sorted.
    pub fn runtime_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.runtimes.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// The service's default limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn runtime(&self, language: &str) -> Option<&Arc<Resolved>> {
        self.runtimes.get(language).or_else(|| {
            self.aliases
                .get(language)
                .and_then(|id| self.runtimes.get(id))
        })
    }

    fn run_case(
        &self,
        plan: &Plan,
        stdin: &[u8],
        args: &[String],
        stage: &str,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Outcome, ExecError> {
        let (rt, o) = (&plan.rt, plan.options);
        let artifacts = plan.artifacts.as_deref().unwrap_or(&[]);
        let source = if rt.compile.is_none() {
            plan.source
        } else {
            ""
        };
        let mut cmd = command_for(rt, source, artifacts, stdin, plan.run.clone());
        let taken: Vec<&str> = artifacts.iter().map(|(n, _)| n.as_str()).collect();
        add_files(&mut cmd, &o.files, &rt.file_name, &taken);
        add_run_options(&mut cmd, &rt.run, args, &o.env);
        if o.stderr_to_stdout {
            cmd.stderr_to_stdout();
        }
        for pattern in collect_patterns(&o.return_files) {
            cmd.collect(&pattern);
        }
        self.sandbox
            .run(&cmd, on_output)
            .map_err(|source| ExecError::Sandbox {
                stage: stage.to_owned(),
                source,
            })
    }
}

/// One request made concrete: its runtime, limits and (after the compile stage) artifacts.
struct Plan<'a> {
    rt: Arc<Resolved>,
    source: &'a str,
    options: &'a RunOptions,
    run: Limits,
    artifacts: Option<Vec<(String, Vec<u8>)>>,
}

impl Executor for Engine {
    fn execute(
        &self,
        request: &Request,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunResult, ExecError> {
        let no_runtime = || ExecError::NoRuntime {
            language: request.language.clone(),
        };
        let rt = Arc::clone(self.runtime(&request.language).ok_or_else(no_runtime)?);
        let o = &request.options;
        let mut run = effective_limits(&self.limits, &rt.run.limits);
        let mut climits = rt
            .compile
            .as_ref()
            .map(|stage| effective_limits(&self.limits, &stage.limits));
        apply_request(&mut run, climits.as_mut(), &o.limits);
        let limits = reported(&run, climits.as_ref());
        let mut plan = Plan {
            rt: Arc::clone(&rt),
            source: &request.source,
            options: o,
            run,
            artifacts: None,
        };
        let mut compiled = None;
        if let (Some(stage), Some(cl)) = (&rt.compile, &climits) {
            let c = compile(&self.sandbox, &rt, stage, cl, &request.source, &o.files).map_err(
                |source| ExecError::Sandbox {
                    stage: "compile".into(),
                    source,
                },
            )?;
            let Some(artifacts) = c.artifacts else {
                let mut failed = staged_result(&Staged {
                    compile: Some((c.outcome, cl.clone())),
                    run: None,
                    error: Some(rt.error.clone()),
                });
                failed.report.limits = Some(limits);
                return Ok(failed);
            };
            plan.artifacts = Some(artifacts);
            compiled = Some(report(&c.outcome, cl));
        }
        let mut result = if o.tests.is_empty() {
            let stdin = match &request.stdin_bytes {
                Some(bytes) => bytes.as_slice(),
                None => o.stdin.as_deref().unwrap_or("").as_bytes(),
            };
            let outcome = self.run_case(&plan, stdin, &o.args, "run", on_output)?;
            self.finish(&plan, outcome)
        } else {
            self.run_tests(&plan)?
        };
        result.report.compile = compiled;
        result.report.limits = Some(limits);
        Ok(result)
    }

    fn keep_warm(&self, per_runtime: usize) -> Result<(), ExecError> {
        for rt in self.runtimes.values() {
            let limits = effective_limits(&self.limits, &rt.run.limits);
            self.sandbox
                .keep_warm(&command_for(rt, "", &[], &[], limits), per_runtime)
                .map_err(|source| ExecError::Sandbox {
                    stage: "warm-up".into(),
                    source,
                })?;
        }
        Ok(())
    }

    fn wait_idle(&self) {
        self.sandbox.wait_torn_down();
    }
}

impl Engine {
    /// The result of one run-stage run, with the runtime's error line and the files to hand
    /// back.
    fn finish(&self, plan: &Plan, mut outcome: Outcome) -> RunResult {
        let files = std::mem::take(&mut outcome.files);
        let mut result = staged_result(&Staged {
            compile: None,
            run: Some((outcome, plan.run.clone())),
            error: Some(plan.rt.error.clone()),
        });
        if !plan.options.return_files.is_empty() {
            let (files, omitted) = returned(&plan.options.return_files, files);
            if omitted {
                tracing::warn!(
                    runtime = %plan.rt.id,
                    returned = files.len(),
                    "output files over the cap of {} files / {} bytes were left out",
                    crate::MAX_OUTPUT_FILES,
                    crate::MAX_OUTPUT_FILE_BYTES
                );
            }
            result.report.output_files = files;
        }
        result
    }

    /// Each case in a fresh sandbox with the same limits and artifacts; the output files are
    /// those of the last case that ran.
    fn run_tests(&self, plan: &Plan) -> Result<RunResult, ExecError> {
        let o = plan.options;
        let (mut tests, mut runs) = (Vec::new(), Vec::new());
        let mut files = Vec::new();
        let mut budget = OutputBudget::new();
        for (i, case) in o.tests.iter().enumerate() {
            if o.stop_on_failure
                && tests.iter().any(|t: &livexec_core::TestResult| {
                    t.verdict != livexec_core::Verdict::Accepted
                })
            {
                tests.push(skipped());
                continue;
            }
            let args = case.args.as_deref().unwrap_or(&o.args);
            let stage = format!("test case {}", i + 1);
            let outcome =
                self.run_case(plan, case.stdin.as_bytes(), args, &stage, &mut |_, _| {})?;
            let mut run = self.finish(plan, outcome);
            files = std::mem::take(&mut run.report.output_files);
            let (mut test, mut run) = case_result(run, case.expected_stdout.as_deref(), o.compare);
            budget.take(&mut test, &mut run);
            tests.push(test);
            runs.push(run);
        }
        let mut result = overall(tests, runs);
        result.report.output_files = files;
        Ok(result)
    }
}
