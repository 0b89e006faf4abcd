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
//!
//! Without a warm pool ([`Executor::keep_warm`], `livexec run`), a compiled request's plain
//! run gets its jail prepared while the compile stage runs (so the run does not wait for one
//! to be built after the compile); test cases run on jails
//! prepared ahead of need (from the compile stage on, see
//! [`crate::parallel`]), several at once when worker slots are idle ([`Engine::set_slots`]).
//! The result is the one running them one after another in order would give: results in
//! the order of the cases, and with `stop_on_failure` the *first failure* is the failing
//! case of lowest index — every case before it is reported, every case after it is SKIPPED
//! (a later case that had already started beside it runs to its end and its result is
//! dropped), so which cases are skipped never depends on timing.

use crate::cases::{case_result, overall, skipped, OutputShare};
use crate::command::reported;
use crate::command::{
    add_files, add_run_options, apply_request, command_for, compile_command, effective_limits,
};
use crate::files::{collect_patterns, returned};
use crate::parallel::{CloseOnDrop, Feed, Slots, AHEAD_EXTRA, COMPILE_AHEAD_MAX};
use crate::stages::{compile, report, staged_result, Compiled, Staged};
use crate::{compiler_stream, program_stream, ExecError, Executor, OutputStream, Request};
use livexec_core::{RunOptions, RunResult, TestResult, Verdict};
use livexec_runtimes::{machine_cores as cpus, Resolved, StageRecipe};
use livexec_sandbox::{Limits, Outcome, Prepared, Sandbox, SandboxError, Stream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The real executor: a sandbox, the runtimes that work with it (by id, with their aliases)
/// and the service's default limits, which each runtime's stage overrides and each request's
/// `limits` apply over.
pub struct Engine {
    sandbox: Arc<Sandbox>,
    runtimes: HashMap<String, Arc<Resolved>>,
    aliases: HashMap<String, String>,
    limits: Limits,
    slots: Slots,
    /// Whether [`Executor::keep_warm`] keeps jails prepared (then a compiled request's run
    /// takes its jail from that pool after the compile instead of preparing one beside it).
    pooled: AtomicBool,
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
            slots: Slots::new(cpus()),
            pooled: AtomicBool::new(false),
        }
    }

    /// How many sandboxes this engine may run at once: the worker slots it serves (`livexec
    /// serve` sets `LIVEXEC_WORKERS`; default the number of CPUs, that setting's default).
    /// Every execution holds one; the test cases of an execution may borrow idle ones to
    /// run side by side (never more than the CPUs), so the host never runs more sandboxes
    /// at once than it was sized for (see [`crate::parallel`]). At least 1.
    pub fn set_slots(&self, n: usize) {
        self.slots.set_cap(n);
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

    /// Runs one program of the run stage, in `prepared` when given (else a jail of its own),
    /// with the compile stage's `artifacts` (moved into the command: a test case passes a
    /// copy, the plain run the compile stage's own, which saves copying a large executable).
    #[allow(clippy::too_many_arguments)]
    fn run_case(
        &self,
        plan: &Plan,
        artifacts: Vec<(String, Vec<u8>)>,
        prepared: Option<Prepared>,
        stdin: &[u8],
        args: &[String],
        stage: &str,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<Outcome, ExecError> {
        let (rt, o) = (&plan.rt, plan.options);
        let source = if rt.compile.is_none() {
            plan.source
        } else {
            ""
        };
        let mut cmd = command_for(rt, source, &[], stdin, plan.run.clone());
        let taken: Vec<String> = artifacts.iter().map(|(n, _)| n.clone()).collect();
        for (name, data) in artifacts {
            cmd.artifact(&name, data);
        }
        let taken: Vec<&str> = taken.iter().map(String::as_str).collect();
        add_files(&mut cmd, &o.files, &rt.file_name, &taken);
        add_run_options(&mut cmd, &rt.run, args, &o.env);
        if o.stderr_to_stdout {
            cmd.stderr_to_stdout();
        }
        for pattern in collect_patterns(&o.return_files) {
            cmd.collect(&pattern);
        }
        let on_output = &mut |s, chunk: &[u8]| on_output(program_stream(s), chunk);
        match prepared {
            Some(p) => self.sandbox.run_prepared(p, &cmd, on_output),
            None => self.sandbox.run(&cmd, on_output),
        }
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
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<RunResult, ExecError> {
        let no_runtime = || ExecError::NoRuntime {
            language: request.language.clone(),
        };
        let rt = Arc::clone(self.runtime(&request.language).ok_or_else(no_runtime)?);
        let _slot = self.slots.hold_one();
        let o = &request.options;
        let mut run = effective_limits(&self.limits, &rt.run.limits);
        let mut climits = rt
            .compile
            .as_ref()
            .map(|stage| effective_limits(&self.limits, &stage.limits));
        apply_request(&mut run, climits.as_mut(), &o.limits);
        let limits = reported(&run, climits.as_ref());
        let plan = Plan {
            rt: Arc::clone(&rt),
            source: &request.source,
            options: o,
            run,
            artifacts: None,
        };
        if o.tests.is_empty() {
            return self.stages(plan, climits.as_ref(), request, on_output, None, limits);
        }
        // Test cases: the jails of the first cases are prepared while the compile stage runs.
        let parallel = self
            .slots
            .borrow(o.tests.len().min(cpus()).saturating_sub(1));
        let runners = 1 + parallel.n;
        let template = command_for(&rt, "", &[], &[], plan.run.clone());
        // With a compile stage, every case's jail (up to a bound) is prepared while the
        // compiler runs on its core, so the cases then only run. Without one the first cases
        // start at once and build (or take from the warm pool) their own jails; preparing
        // ahead pays only for the cases after them.
        let ahead = if rt.compile.is_some() {
            o.tests.len().min(COMPILE_AHEAD_MAX)
        } else if o.tests.len() <= runners {
            0
        } else {
            (runners + AHEAD_EXTRA).min(o.tests.len())
        };
        let feed = Feed::new(&self.sandbox, template, ahead, o.tests.len());
        let feed = &feed;
        std::thread::scope(|s| {
            s.spawn(move || feed.fill());
            let _close = CloseOnDrop(feed);
            self.stages(
                plan,
                climits.as_ref(),
                request,
                on_output,
                Some((feed, runners)),
                limits,
            )
        })
    }

    /// Keeps `per_runtime` jails prepared for each runtime's run stage and, for a compiled
    /// runtime, as many for its compile stage (a compiled request's first jail on its path).
    fn keep_warm(&self, per_runtime: usize) -> Result<(), ExecError> {
        self.pooled.store(per_runtime > 0, Ordering::Relaxed);
        for rt in self.runtimes.values() {
            let limits = effective_limits(&self.limits, &rt.run.limits);
            let mut templates = vec![command_for(rt, "", &[], &[], limits)];
            if let Some(stage) = &rt.compile {
                let limits = effective_limits(&self.limits, &stage.limits);
                templates.push(compile_command(rt, stage, "", limits));
            }
            for template in templates {
                self.sandbox
                    .keep_warm(&template, per_runtime)
                    .map_err(|source| ExecError::Sandbox {
                        stage: "warm-up".into(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    fn wait_idle(&self) {
        self.sandbox.wait_torn_down();
    }
}

impl Engine {
    /// The compile stage (compiled runtimes), then the plain run or the test cases (on
    /// `cases`: the feed of prepared jails and how many cases may run at once).
    fn stages(
        &self,
        mut plan: Plan,
        climits: Option<&Limits>,
        request: &Request,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
        cases: Option<(&Feed, usize)>,
        limits: livexec_core::EffectiveLimits,
    ) -> Result<RunResult, ExecError> {
        let rt = Arc::clone(&plan.rt);
        let o = plan.options;
        let mut compiled = None;
        // The plain run's jail, prepared while the compile stage runs (test cases have the feed).
        let mut run_jail = None;
        if let (Some(stage), Some(cl)) = (&rt.compile, climits) {
            // Beside the compile only when the run's jail would otherwise be built on the spot
            // (`livexec run`): a warm pool has one ready, and taking it early would only start
            // the pool's refill while the compiler runs.
            let beside = cases.is_none() && !self.pooled.load(Ordering::Relaxed);
            let (c, ahead) = self.compile_beside(&plan, (stage, cl), request, beside, on_output);
            run_jail = ahead;
            let c = match c {
                Ok(c) => c,
                Err(source) => {
                    if let Some(p) = run_jail {
                        self.sandbox.discard(p);
                    }
                    return Err(ExecError::Sandbox {
                        stage: "compile".into(),
                        source,
                    });
                }
            };
            let Some(artifacts) = c.artifacts else {
                if let Some(p) = run_jail {
                    self.sandbox.discard(p);
                }
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
        let mut result = match cases {
            None => {
                let stdin = match &request.stdin_bytes {
                    Some(bytes) => bytes.as_slice(),
                    None => o.stdin.as_deref().unwrap_or("").as_bytes(),
                };
                let artifacts = plan.artifacts.take().unwrap_or_default();
                let outcome =
                    self.run_case(&plan, artifacts, run_jail, stdin, &o.args, "run", on_output)?;
                self.finish(&plan, outcome)
            }
            Some((feed, runners)) => self.run_tests(&plan, feed, runners)?,
        };
        result.report.compile = compiled;
        result.report.limits = Some(limits);
        Ok(result)
    }

    /// Runs the compile stage of `plan`, the compiler's output to `on_output` as it comes, and,
    /// when `ahead`, prepares the run stage's jail meanwhile (a compiler leaves cores idle:
    /// gcc, rustc and javac mostly run on one), so that the run starts without building its
    /// jail after the compile.
    /// The jail is `None` when not asked for or when preparing it failed (the run then
    /// builds its own on the spot and reports the error if it recurs).
    fn compile_beside(
        &self,
        plan: &Plan,
        (stage, limits): (&StageRecipe, &Limits),
        request: &Request,
        ahead: bool,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> (Result<Compiled, SandboxError>, Option<Prepared>) {
        let rt = &plan.rt;
        let input = (request.source.as_str(), plan.options.files.as_slice());
        if !ahead {
            let on_output = &mut |s, chunk: &[u8]| on_output(compiler_stream(s), chunk);
            return (
                compile(&self.sandbox, rt, stage, limits, input, on_output),
                None,
            );
        }
        let template = command_for(rt, "", &[], &[], plan.run.clone());
        // The compile runs on the helper thread and the run's jail is prepared on this one: a
        // jail's init dies with the thread that created it (`PR_SET_PDEATHSIG` follows the
        // parent thread), and the run stage's jail must outlive this call. The compiler's
        // output comes over a channel (at most its output limit) and goes on from here once
        // the jail is prepared; the channel closes when the compile ends.
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<(Stream, Vec<u8>)>();
            let compiling = s.spawn(move || {
                compile(&self.sandbox, rt, stage, limits, input, &mut |s, chunk| {
                    let _ = tx.send((s, chunk.to_vec()));
                })
            });
            let prepared = match self.sandbox.prepare(&template) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "preparing the run stage's jail beside the compile failed");
                    None
                }
            };
            for (stream, chunk) in rx {
                on_output(compiler_stream(stream), &chunk);
            }
            let compiled = match compiling.join() {
                Ok(c) => c,
                Err(panic) => {
                    if let Some(p) = prepared {
                        self.sandbox.discard(p);
                    }
                    std::panic::resume_unwind(panic)
                }
            };
            (compiled, prepared)
        })
    }

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

    /// Each case in a fresh sandbox (from `feed`) with the same limits and artifacts, up to
    /// `runners` at once; the result is the sequential one (see the module doc). The output
    /// files are those of the last case that ran.
    fn run_tests(&self, plan: &Plan, feed: &Feed, runners: usize) -> Result<RunResult, ExecError> {
        let o = plan.options;
        let n = o.tests.len();
        type Done = Result<(TestResult, RunResult), ExecError>;
        let done: Mutex<Vec<Option<Done>>> = Mutex::new((0..n).map(|_| None).collect());
        let next = AtomicUsize::new(0);
        // Lowest index of a failing case (n: none yet), and whether a platform error stopped
        // the cases.
        let first_failure = AtomicUsize::new(n);
        let broken = AtomicBool::new(false);
        let share = OutputShare::of(n);
        let runner = || loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= n
                || broken.load(Ordering::SeqCst)
                || (o.stop_on_failure && first_failure.load(Ordering::SeqCst) < i)
            {
                return;
            }
            let case = &o.tests[i];
            let args = case.args.as_deref().unwrap_or(&o.args);
            let stage = format!("test case {}", i + 1);
            let outcome = feed.next().map_err(|source| ExecError::Sandbox {
                stage: stage.clone(),
                source,
            });
            let outcome = outcome.and_then(|p| {
                self.run_case(
                    plan,
                    plan.artifacts.clone().unwrap_or_default(),
                    Some(p),
                    case.stdin.as_bytes(),
                    args,
                    &stage,
                    &mut |_, _| {},
                )
            });
            let result = outcome.map(|outcome| {
                let run = self.finish(plan, outcome);
                let (mut test, mut run) =
                    case_result(run, case.expected_stdout.as_deref(), o.compare);
                // Cut at once: what the cases hold until all have ended stays bounded.
                share.cut(&mut test, &mut run);
                (test, run)
            });
            match &result {
                Err(_) => broken.store(true, Ordering::SeqCst),
                Ok((t, _)) if t.verdict != Verdict::Accepted => {
                    first_failure.fetch_min(i, Ordering::SeqCst);
                }
                Ok(_) => {}
            }
            done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
        };
        std::thread::scope(|s| {
            for _ in 1..runners {
                s.spawn(runner);
            }
            runner();
        });
        let done = done.into_inner().unwrap_or_else(|p| p.into_inner());
        let (mut tests, mut runs) = (Vec::with_capacity(n), Vec::new());
        let mut files = Vec::new();
        let mut failed = false;
        for slot in done {
            let Some(case) = slot.filter(|_| !(o.stop_on_failure && failed)) else {
                tests.push(skipped());
                continue;
            };
            let (test, mut run) = case?;
            failed |= test.verdict != Verdict::Accepted;
            files = std::mem::take(&mut run.report.output_files);
            tests.push(test);
            runs.push(run);
        }
        let mut result = overall(tests, runs);
        result.report.output_files = files;
        Ok(result)
    }
}
