//! Settings shared by several subcommands: execution limits, sandbox options, logging, and
//! the tokio runtime.

use anyhow::{bail, Context};
use clap::Args;
use livexec_api::RunMaxima;
use livexec_runtimes::{ProbeCache, Registry};
use livexec_sandbox::{Limits, Sandbox, SandboxConfig};
use std::path::PathBuf;

/// Limits of one execution (API.md "Default limits of one execution").
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Wall-clock time limit of one execution, in milliseconds.
    #[arg(long, env = "LIVEXEC_TIMEOUT_MS", default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Memory limit of one execution (all its processes, no swap), in MiB.
    #[arg(long, env = "LIVEXEC_MEMORY_MB", default_value_t = 128)]
    pub memory_mb: u64,
    /// CPU quota of one execution, in cores (0.5 = half a core).
    #[arg(long, env = "LIVEXEC_CPUS", default_value_t = 0.5)]
    pub cpus: f64,
    /// Let a run spend one more period's CPU quota at once (50 ms at 0.5 core) so an
    /// interpreter's start-up is not stretched by throttling; the sustained rate stays
    /// LIVEXEC_CPUS. `false` turns it off.
    #[arg(long, env = "LIVEXEC_CPU_BURST", default_value_t = true, action = clap::ArgAction::Set)]
    pub cpu_burst: bool,
    /// CPU quota of a compile stage, in cores, and the most a runtime file may give one.
    /// Default: every core of this machine (javac, tsc and go build start on several threads;
    /// at LIVEXEC_CPUS they ran 2x+ slower than bare). The run stage keeps LIVEXEC_CPUS.
    #[arg(long, env = "LIVEXEC_COMPILE_CPUS")]
    pub compile_cpus: Option<f64>,
    /// Processes plus threads of one execution.
    #[arg(long, env = "LIVEXEC_PIDS", default_value_t = 50)]
    pub pids: u32,
    /// Cap of stdout and of stderr (each) of one execution, in bytes; over it the program is
    /// stopped and the first bytes up to the cap are kept.
    #[arg(long, env = "LIVEXEC_OUTPUT_LIMIT_BYTES", default_value_t = 1_048_576)]
    pub output_limit_bytes: usize,
}

impl LimitArgs {
    /// `registry` with every compile stage's CPU quota capped at `LIVEXEC_COMPILE_CPUS`
    /// (unset: every core of this machine, as the runtimes crate defaults it).
    pub fn cap_compile_cpu(&self, registry: &mut Registry) -> anyhow::Result<()> {
        let Some(cpus) = self.compile_cpus else {
            return Ok(());
        };
        if !(cpus.is_finite() && cpus > 0.0 && cpus <= 1024.0) {
            bail!("LIVEXEC_COMPILE_CPUS must be a number of cores > 0, got {cpus}");
        }
        registry.cap_compile_cpu((cpus * 1000.0).round() as u32);
        Ok(())
    }

    /// The sandbox limits these settings describe (other limits keep the engine defaults).
    pub fn limits(&self) -> anyhow::Result<Limits> {
        if !(self.cpus.is_finite() && self.cpus > 0.0 && self.cpus <= 1024.0) {
            bail!(
                "LIVEXEC_CPUS must be a number of cores > 0, got {}",
                self.cpus
            );
        }
        if self.timeout_ms == 0 || self.memory_mb == 0 || self.pids == 0 {
            bail!("LIVEXEC_TIMEOUT_MS, LIVEXEC_MEMORY_MB and LIVEXEC_PIDS must be > 0");
        }
        Ok(Limits {
            memory_bytes: self.memory_mb.saturating_mul(1024 * 1024),
            cpu_millicores: (self.cpus * 1000.0).round() as u32,
            cpu_burst: self.cpu_burst,
            pids: self.pids,
            wall_ms: self.timeout_ms,
            output_bytes: self.output_limit_bytes,
            ..Limits::default()
        })
    }
}

/// The most one run may ask in its options (API.md §10), shown by `GET /limits`.
#[derive(Debug, Clone, Args)]
pub struct MaxArgs {
    /// Largest `limits.time_ms` a run may ask (wall-clock ms of each run or test case).
    #[arg(long, env = "LIVEXEC_MAX_TIME_MS", default_value_t = RunMaxima::default().time_ms)]
    pub max_time_ms: u64,
    /// Largest `limits.cpu_time_ms` (CPU ms of each run).
    #[arg(long, env = "LIVEXEC_MAX_CPU_TIME_MS", default_value_t = RunMaxima::default().cpu_time_ms)]
    pub max_cpu_time_ms: u64,
    /// Largest `limits.memory_mb` (MiB of each run).
    #[arg(long, env = "LIVEXEC_MAX_MEMORY_MB", default_value_t = RunMaxima::default().memory_mb)]
    pub max_memory_mb: u64,
    /// Largest `limits.pids` (processes plus threads of each run).
    #[arg(long, env = "LIVEXEC_MAX_PIDS", default_value_t = RunMaxima::default().pids)]
    pub max_pids: u32,
    /// Largest `limits.output_bytes` (bytes of each output stream).
    #[arg(long, env = "LIVEXEC_MAX_OUTPUT_BYTES", default_value_t = RunMaxima::default().output_bytes)]
    pub max_output_bytes: u64,
    /// Largest `limits.compile_time_ms` (wall-clock ms of the compile stage).
    #[arg(long, env = "LIVEXEC_MAX_COMPILE_TIME_MS", default_value_t = RunMaxima::default().compile_time_ms)]
    pub max_compile_time_ms: u64,
    /// Largest `limits.compile_memory_mb` (MiB of the compile stage).
    #[arg(long, env = "LIVEXEC_MAX_COMPILE_MEMORY_MB", default_value_t = RunMaxima::default().compile_memory_mb)]
    pub max_compile_memory_mb: u64,
    /// Most test cases of one run.
    #[arg(long, env = "LIVEXEC_MAX_TESTS", default_value_t = RunMaxima::default().tests)]
    pub max_tests: usize,
    /// Most bytes of all files of one run together (the session's and the request's,
    /// decoded); over it a request is refused with 413.
    #[arg(long, env = "LIVEXEC_MAX_FILE_BYTES", default_value_t = RunMaxima::default().file_bytes)]
    pub max_file_bytes: usize,
    /// Largest body of a run request (`POST …/run`, `POST /executions`, a batch), in bytes;
    /// other bodies keep LIVEXEC_MAX_BODY_BYTES.
    #[arg(long, env = "LIVEXEC_MAX_REQUEST_BYTES", default_value_t = RunMaxima::default().request_bytes)]
    pub max_request_bytes: usize,
}

impl MaxArgs {
    /// The maxima these settings describe; each must be > 0.
    pub fn maxima(&self) -> anyhow::Result<RunMaxima> {
        let zero = [
            self.max_time_ms,
            self.max_cpu_time_ms,
            self.max_memory_mb,
            u64::from(self.max_pids),
            self.max_output_bytes,
            self.max_compile_time_ms,
            self.max_compile_memory_mb,
        ]
        .contains(&0)
            || self.max_tests == 0
            || self.max_file_bytes == 0
            || self.max_request_bytes == 0;
        if zero {
            bail!("every LIVEXEC_MAX_* setting must be > 0");
        }
        Ok(RunMaxima {
            time_ms: self.max_time_ms,
            cpu_time_ms: self.max_cpu_time_ms,
            memory_mb: self.max_memory_mb,
            pids: self.max_pids,
            output_bytes: self.max_output_bytes,
            compile_time_ms: self.max_compile_time_ms,
            compile_memory_mb: self.max_compile_memory_mb,
            tests: self.max_tests,
            file_bytes: self.max_file_bytes,
            request_bytes: self.max_request_bytes,
        })
    }
}

/// Where runtimes come from and how the sandbox may run.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// DEVELOPMENT ONLY: run programs with rlimits alone when no cgroup is usable (no memory,
    /// CPU or process-count limits). Never use in production.
    #[arg(long, env = "LIVEXEC_ALLOW_RLIMITS_ONLY", default_value_t = false)]
    pub allow_rlimits_only: bool,
    /// A directory of extra runtime files (`*.toml`); one with a built-in id replaces it.
    #[arg(long, env = "LIVEXEC_RUNTIMES_DIR")]
    pub runtimes_dir: Option<PathBuf>,
    /// Directory of the probe cache: what probing each toolchain learnt, so `livexec run`
    /// does not probe again (default: `$XDG_CACHE_HOME/livexec`, else `/var/cache/livexec`;
    /// empty: no cache).
    #[arg(long, env = livexec_runtimes::CACHE_DIR_ENV)]
    pub cache_dir: Option<PathBuf>,
    /// The Python interpreter to use (default: `python3` on PATH).
    #[arg(long, env = "LIVEXEC_PYTHON")]
    pub python: Option<PathBuf>,
    /// The Node.js interpreter to use (default: `node` on PATH).
    #[arg(long, env = "LIVEXEC_NODE")]
    pub node: Option<PathBuf>,
    /// First uid (and gid) of the range runs take their own id from; the range must belong to
    /// no host account (the service refuses to start otherwise).
    #[arg(long, env = "LIVEXEC_UID_BASE", default_value_t = SandboxConfig::default().uid_base)]
    pub uid_base: u32,
    /// Number of ids in that range: the most concurrent runs of every livexec on this host.
    #[arg(long, env = "LIVEXEC_UID_COUNT", default_value_t = SandboxConfig::default().uid_count)]
    pub uid_count: u32,
}

impl SandboxArgs {
    /// Make `--python`/`--node` visible to the runtimes crate, which reads the environment.
    /// Called before any thread starts.
    pub fn export_interpreters(&self) {
        if let Some(p) = &self.python {
            std::env::set_var("LIVEXEC_PYTHON", p);
        }
        if let Some(n) = &self.node {
            std::env::set_var("LIVEXEC_NODE", n);
        }
    }

    /// The registry: built-in runtimes plus `--runtimes-dir`, keeping probe results in the
    /// probe cache (`--cache-dir`).
    pub fn registry(&self) -> anyhow::Result<Registry> {
        let registry = match &self.runtimes_dir {
            Some(dir) => Registry::with_dir(dir)
                .with_context(|| format!("loading runtimes from {}", dir.display()))?,
            None => Registry::builtin().context("loading the built-in runtimes")?,
        };
        Ok(registry.with_probe_cache(self.probe_cache()))
    }

    /// The registry for a run of `language`: only that built-in runtime when `language` is a
    /// built-in id and no `--runtimes-dir` is given (one file parsed, not every one), else
    /// [`SandboxArgs::registry`].
    pub fn registry_for(&self, language: &str) -> anyhow::Result<Registry> {
        if self.runtimes_dir.is_none() {
            if let Some(one) =
                Registry::builtin_one(language).context("loading the built-in runtimes")?
            {
                return Ok(one.with_probe_cache(self.probe_cache()));
            }
        }
        self.registry()
    }

    /// The probe cache of `--cache-dir`.
    fn probe_cache(&self) -> ProbeCache {
        match &self.cache_dir {
            Some(d) if d.as_os_str().is_empty() => ProbeCache::off(),
            Some(d) => ProbeCache::at(d),
            None => ProbeCache::default_dir(),
        }
    }

    /// The sandbox engine of a service (spare network namespaces kept ready); refuses to start
    /// without cgroups unless allowed.
    pub fn sandbox(&self) -> anyhow::Result<Sandbox> {
        self.sandbox_with(0, SandboxConfig::default().netns_spare)
    }

    /// [`SandboxArgs::sandbox`] with `netns_ahead` network namespaces made while it starts and
    /// `netns_spare` kept ready after that ([`SandboxConfig`]).
    pub fn sandbox_with(&self, netns_ahead: usize, netns_spare: usize) -> anyhow::Result<Sandbox> {
        if self.allow_rlimits_only {
            tracing::warn!("LIVEXEC_ALLOW_RLIMITS_ONLY is set: if no cgroup is usable, programs run WITHOUT memory, CPU or process limits. Development only!");
        }
        let sandbox = Sandbox::new(SandboxConfig {
            allow_rlimits_only: self.allow_rlimits_only,
            uid_base: self.uid_base,
            uid_count: self.uid_count,
            netns_ahead,
            netns_spare,
            ..SandboxConfig::default()
        })
        .context("starting the sandbox")?;
        let mode = sandbox.cgroup_mode();
        if mode == livexec_sandbox::CgroupMode::RlimitsOnly {
            tracing::warn!("SANDBOX RUNS WITHOUT CGROUPS ({mode}): memory, CPU and process limits are NOT enforced");
        }
        Ok(sandbox)
    }
}

/// The variable that picks the log format: `text` (the default) or `json` (one JSON object
/// per line, for log shippers).
pub const LOG_FORMAT: &str = "LIVEXEC_LOG_FORMAT";

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (default `default_level`), as
/// text or as JSON lines (`LIVEXEC_LOG_FORMAT`). Colours only when stderr is a terminal and
/// `NO_COLOR` is unset, so a log redirected to a file carries no escape codes.
pub fn init_logging(default_level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let format = std::env::var(LOG_FORMAT).unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.trim() {
        "json" => builder.json().with_current_span(false).init(),
        other => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(ansi).init();
            if !other.is_empty() && other != "text" {
                tracing::warn!(
                    value = other,
                    "{LOG_FORMAT} is `text` or `json`; using text"
                );
            }
        }
    }
}

/// A multi-threaded tokio runtime.
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://{user}@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("sqlite://livexec.db"), "sqlite://livexec.db");
        assert_eq!(redact_url("redis://:pw@h/0"), "redis://:***@h/0");
    }

    #[test]
    fn limits_from_settings() {
        let a = LimitArgs {
            timeout_ms: 2000,
            memory_mb: 64,
            cpus: 1.5,
            pids: 10,
            output_limit_bytes: 1000,
            cpu_burst: false,
            compile_cpus: None,
        };
        let l = a.limits().unwrap();
        assert!(!l.cpu_burst);
        assert_eq!(l.memory_bytes, 64 << 20);
        assert_eq!((l.cpu_millicores, l.pids, l.wall_ms), (1500, 10, 2000));
        assert_eq!(l.output_bytes, 1000);
        assert!(LimitArgs {
            cpus: 0.0,
            ..a.clone()
        }
        .limits()
        .is_err());
        assert!(LimitArgs {
            cpus: f64::NAN,
            ..a.clone()
        }
        .limits()
        .is_err());
        let mut r = Registry::builtin().unwrap();
        let java = |r: &Registry| r.get("java").unwrap().compile_limits().unwrap();
        a.cap_compile_cpu(&mut r).unwrap();
        assert_eq!(
            java(&r).cpu_millicores,
            Some(livexec_runtimes::machine_millicores())
        );
        let capped = LimitArgs {
            compile_cpus: Some(0.75),
            ..a.clone()
        };
        capped.cap_compile_cpu(&mut r).unwrap();
        assert_eq!(java(&r).cpu_millicores, Some(750));
        let zero = LimitArgs {
            compile_cpus: Some(0.0),
            ..a
        };
        assert!(zero.cap_compile_cpu(&mut r).is_err());
    }
}

/// Which drop-in APIs of other code runners `serve` offers besides the native one.
#[derive(Debug, Clone, clap::Args)]
pub struct CompatArgs {
    /// Serve Judge0 CE 1.13.1's API (`/submissions`, `/languages`, …).
    #[arg(long, env = "LIVEXEC_JUDGE0_API", default_value_t = true, action = clap::ArgAction::Set)]
    pub judge0_api: bool,
    /// Serve Piston v2's API (`/api/v2/runtimes`, `/api/v2/execute`).
    #[arg(long, env = "LIVEXEC_PISTON_API", default_value_t = true, action = clap::ArgAction::Set)]
    pub piston_api: bool,
    /// Serve the MCP server for agents at `/mcp` (Streamable HTTP).
    #[arg(long, env = "LIVEXEC_MCP", default_value_t = true, action = clap::ArgAction::Set)]
    pub mcp: bool,
}

impl CompatArgs {
    /// The API layer's switches.
    pub fn config(&self) -> livexec_api::compat::CompatConfig {
        livexec_api::compat::CompatConfig {
            judge0: self.judge0_api,
            piston: self.piston_api,
            mcp: self.mcp,
        }
    }
}
