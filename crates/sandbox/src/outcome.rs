//! What a run produced ([`Outcome`]) and which output stream a chunk came from ([`Stream`]).

/// One of the program's two output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

/// The result of a run. A program that fails, crashes, times out or exceeds a limit still
/// yields an `Outcome`; only a failure of the platform is a [`crate::SandboxError`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code when the program exited normally.
    pub exit_code: Option<i32>,
    /// Signal number when the program was killed by a signal.
    pub signal: Option<i32>,
    /// The program's own wall time in milliseconds, from `execve` to exit (setup excluded).
    pub wall_ms: u64,
    /// The same in microseconds.
    pub wall_us: u64,
    /// CPU time of all processes of the run, from the cgroup (0 in rlimits-only mode).
    pub cpu_ms: u64,
    /// Peak memory of the run, from the cgroup (0 in rlimits-only mode).
    pub memory_peak_bytes: u64,
    /// The wall-clock limit or `RLIMIT_CPU` was hit.
    pub timed_out: bool,
    /// The kernel's OOM killer killed a process of the run (memory limit).
    pub oom_killed: bool,
    /// The stream that went over [`crate::Limits::output_bytes`] first (the run was killed).
    pub output_limited: Option<Stream>,
    /// Everything written to stdout, at most `output_bytes`.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, at most `output_bytes`.
    pub stderr: Vec<u8>,
    /// The run used a jail prepared ahead of need ([`crate::Sandbox::keep_warm`]) rather than
    /// one built on the spot.
    pub warm_start: bool,
    /// The working directory's files that [`crate::Command::collect`] asked for, as
    /// `(name, contents)` sorted by name, read after the program ended.
    pub files: Vec<(String, Vec<u8>)>,
    /// How many more files matched than the [`crate::workdir::MAX_FILES`] that are read (the
    /// names past it in sorted order): 0 when `files` has every match.
    pub files_past_max: usize,
}
