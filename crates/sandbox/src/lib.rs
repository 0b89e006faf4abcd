//! livexec-sandbox: runs untrusted programs in a jail built from Linux primitives.
//! (Work in progress: the API is final, the engine is being filled in.)

mod command;
mod error;
mod limits;
mod outcome;
mod sandbox;

pub use command::{Command, DEFAULT_ENV};
pub use error::SandboxError;
pub use limits::Limits;
pub use outcome::{Outcome, Stream};
pub use sandbox::{CgroupMode, Sandbox, SandboxConfig};
