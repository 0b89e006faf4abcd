//! Domain types and ports of livexec.
//!
//! This crate owns the vocabulary every other crate speaks: sessions, executions, the status
//! machine, error types, limits, and the three ports through which the service touches the
//! outside world ([`Store`], [`JobQueue`], [`EventBus`]). It does no I/O of its own.

pub mod events;
pub mod insight;
pub mod model;
pub mod ports;
pub mod request;
pub mod status;
pub mod tenant;
pub mod usage;

pub use events::{Event, EventKind, OutputStream};
pub use insight::{QueueSample, Statistics};
pub use model::{
    CompileReport, Execution, ExecutionId, ExecutionView, FileView, NewExecution, NewOneShot,
    RunReport, RunResult, Session, SessionId, SessionPatch,
};
pub use ports::{
    BoxStream, CreatedExecution, EventBus, Job, JobQueue, KeyStore, Lease, PortError, Store,
    StoreError, Unfinished,
};
pub use request::{
    Compare, EffectiveLimits, LimitOverrides, RunOptions, SourceFile, TestCase, TestResult, Verdict,
};
pub use status::{ErrorType, Status};
pub use tenant::{ApiKey, Caller, KeyId, Owner, Quota, QuotaExceeded, QuotaKind};
pub use usage::{Deletion, Purged, UsageRow, UsageScope};
