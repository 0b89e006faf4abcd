//! livexec-sandbox: runs untrusted programs in a jail built from Linux primitives.

mod cgroup;
mod child;
mod command;
mod error;
mod jail;
mod layout;
mod limits;
mod outcome;
mod plan;
mod run;
mod sandbox;
mod seccomp;
mod supervise;
mod sys;

pub use command::{Command, DEFAULT_ENV};
pub use error::SandboxError;
pub use limits::Limits;
pub use outcome::{Outcome, Stream};
pub use sandbox::{CgroupMode, Sandbox, SandboxConfig};
