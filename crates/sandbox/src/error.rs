//! The platform's failures ([`SandboxError`]). A program's own failure is an
//! [`crate::Outcome`], never an error.

use std::io;
use std::path::PathBuf;

/// The sandbox could not be built or supervised. Every variant names the syscall or path.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No usable cgroup hierarchy and rlimits-only mode was not allowed.
    #[error("no usable cgroup (v2: {v2}; v1: {v1}); refusing to run without kernel limits (allow_rlimits_only enables an UNSAFE development mode)")]
    NoCgroup {
        /// Why cgroup v2 cannot be used.
        v2: String,
        /// Why cgroup v1 cannot be used.
        v1: String,
    },
    /// A cgroup file or directory operation failed.
    #[error("cgroup {op} {path}: {source}")]
    Cgroup {
        /// What was attempted (mkdir, write, read, rmdir, kill).
        op: &'static str,
        /// The cgroupfs path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file-system operation of the supervisor failed (run dir, /proc reads).
    #[error("{op} {path}: {source}")]
    Fs {
        /// What was attempted.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A syscall made by the supervisor failed.
    #[error("{call}({args}) failed: {source}")]
    Syscall {
        /// The syscall.
        call: &'static str,
        /// Its arguments, rendered for humans.
        args: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A step of building the jail, done in the child before `execve`, failed.
    #[error("jail setup step `{step}` failed: {source}")]
    ChildSetup {
        /// The step (syscall and path) that failed.
        step: String,
        /// The OS error reported by the child.
        #[source]
        source: io::Error,
    },
    /// `execve` of the program failed inside the jail (e.g. not found, not mounted).
    #[error("execve {program} inside the jail: {source}")]
    Exec {
        /// The program path.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The child died or went silent before reaching `execve`.
    #[error("jail setup did not complete: {reason}")]
    SetupFailed {
        /// What was observed.
        reason: String,
    },
    /// The configured uid range of the runs cannot be used.
    #[error("run uid range {base}..+{count}: {reason}")]
    UidRange {
        /// First uid of the range ([`crate::SandboxConfig::uid_base`]).
        base: u32,
        /// Size of the range ([`crate::SandboxConfig::uid_count`]).
        count: u32,
        /// Why it cannot be used.
        reason: String,
    },
    /// A file name given to [`crate::Command::file`] is absolute, empty, contains an empty,
    /// `.` or `..` part or NUL, or is too long.
    #[error("bad file name {name:?}: must be a plain relative path (no empty, `.` or `..` parts, no NUL, parts of at most 255 bytes)")]
    BadFileName {
        /// The rejected name.
        name: String,
    },
    /// Two files of a run cannot both be written: the same name twice, or one where the
    /// other needs a directory.
    #[error("files {first:?} and {second:?} cannot both be written (the same name, or one is the other's directory)")]
    FilesCollide {
        /// The first name (the directory, when one is another's).
        first: String,
        /// The second name.
        second: String,
    },
    /// A run's files need more directories than the sandbox makes for one run.
    #[error("the files need {needed} directories; at most {max}")]
    TooManyDirectories {
        /// Directories the names need.
        needed: usize,
        /// The most allowed.
        max: usize,
    },
    /// A path given to [`crate::Command::new`] or [`crate::Command::mount_ro`] is unusable.
    #[error("bad path {path}: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An argument or environment entry contains a NUL byte.
    #[error("{what} contains a NUL byte")]
    NulByte {
        /// Which argument or variable.
        what: String,
    },
    /// The seccomp filter could not be compiled.
    #[error("building the seccomp filter: {reason}")]
    Seccomp {
        /// The compiler's message.
        reason: String,
    },
}

impl SandboxError {
    /// Shorthand for a [`SandboxError::Syscall`] from `errno`.
    #[allow(dead_code)]
    pub(crate) fn sys(call: &'static str, args: String) -> SandboxError {
        SandboxError::Syscall {
            call,
            args,
            source: io::Error::last_os_error(),
        }
    }
}
