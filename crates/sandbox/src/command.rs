//! The description of one run ([`Command`]), a builder shaped like `std::process::Command`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::Limits;

/// What to run in the sandbox: program, arguments, environment, files for the working
/// directory, stdin bytes, limits and extra read-only mounts.
///
/// The environment starts **empty** except for [`DEFAULT_ENV`]; [`Command::env`] adds or
/// overrides variables.
#[derive(Clone, Debug)]
pub struct Command {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) artifacts: Vec<(String, Vec<u8>)>,
    pub(crate) collect: Vec<String>,
    pub(crate) stdin: Vec<u8>,
    pub(crate) limits: Limits,
    pub(crate) mounts: Vec<PathBuf>,
}

/// The environment every run starts with (before [`Command::env`]).
pub const DEFAULT_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/tmp"),
    ("LANG", "C.UTF-8"),
];

impl Command {
    /// A run of `program`: its absolute path as seen inside the jail, which is the same as
    /// on the host (binds keep their original paths).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: DEFAULT_ENV
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect(),
            files: Vec::new(),
            artifacts: Vec::new(),
            collect: Vec::new(),
            stdin: Vec::new(),
            limits: Limits::default(),
            mounts: Vec::new(),
        }
    }

    /// Appends one argument (`argv[1..]`; `argv[0]` is the program path).
    pub fn arg(&mut self, a: impl Into<OsString>) -> &mut Self {
        self.args.push(a.into());
        self
    }

    /// Joins the program's stderr into its stdout: it runs as `/bin/sh -c 'exec "$0" "$@"
    /// 2>&1' PROGRAM ARGS…`, the shell replacing itself with the program at once (no extra
    /// process stays), as Judge0 runs isolate with `--stderr-to-stdout`. Call it after the
    /// arguments are complete.
    pub fn stderr_to_stdout(&mut self) -> &mut Self {
        let program = std::mem::replace(&mut self.program, PathBuf::from("/bin/sh"));
        let mut args: Vec<OsString> = vec![
            "-c".into(),
            "exec \"$0\" \"$@\" 2>&1".into(),
            program.into_os_string(),
        ];
        args.append(&mut self.args);
        self.args = args;
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (replacing an earlier value of the same name).
    pub fn env(&mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> &mut Self {
        let k = k.into();
        let v = v.into();
        if let Some(slot) = self.env.iter_mut().find(|(name, _)| *name == k) {
            slot.1 = v;
        } else {
            self.env.push((k, v));
        }
        self
    }

    /// Places a file in the working directory (`/work` inside the jail, the program's cwd).
    /// `name` must be relative without `..`; a bad name is reported by [`crate::Sandbox::run`]
    /// as [`crate::SandboxError::BadFileName`].
    pub fn file(&mut self, name: &str, contents: impl Into<Vec<u8>>) -> &mut Self {
        self.files.push((name.to_owned(), contents.into()));
        self
    }

    /// Places a file the program may read and execute but not change in the working
    /// directory: owned by root, mode 0555 (e.g. a compile stage's output handed to the run
    /// stage). `name` is a plain file name (no `/`).
    pub fn artifact(&mut self, name: &str, contents: impl Into<Vec<u8>>) -> &mut Self {
        self.artifacts.push((name.to_owned(), contents.into()));
        self
    }

    /// After the program has ended, read the regular files of the working directory whose
    /// name matches `pattern` into [`crate::Outcome::files`]. `pattern` is a plain file name
    /// (no `/`) with at most one `*`, which matches any run of characters (`"*.class"`).
    /// Symbolic links, directories and other special files never match; what is read is
    /// bounded by the working directory's size ([`crate::Limits::tmpfs_bytes`]) and
    /// [`crate::workdir::MAX_FILES`] files. A bad pattern is reported by
    /// [`crate::Sandbox::run`] as [`crate::SandboxError::BadFileName`].
    pub fn collect(&mut self, pattern: &str) -> &mut Self {
        self.collect.push(pattern.to_owned());
        self
    }

    /// Bytes fed to the program's stdin (then EOF). Default: empty, EOF at once.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = bytes.into();
        self
    }

    /// Replaces the limits of this run.
    pub fn limits(&mut self, l: Limits) -> &mut Self {
        self.limits = l;
        self
    }

    /// Bind-mounts a host path read-only at the same path inside the jail.
    pub fn mount_ro(&mut self, host_path: impl Into<PathBuf>) -> &mut Self {
        self.mounts.push(host_path.into());
        self
    }

    /// The program path given to [`Command::new`].
    pub fn get_program(&self) -> &std::path::Path {
        &self.program
    }

    /// The limits this run will get.
    pub fn get_limits(&self) -> &Limits {
        &self.limits
    }
}
