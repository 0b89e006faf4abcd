//! The execution status machine and the error types of a finished execution.
//!
//! `QUEUED → RUNNING → {COMPLETED | FAILED | TIMEOUT}`, and `RUNNING → QUEUED` only when an
//! attempt is abandoned (the platform failed, not the program). Terminal states never change.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an execution is in its life. Serialised exactly as API.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Waiting for a worker.
    Queued,
    /// In a sandbox now.
    Running,
    /// Exited with code 0.
    Completed,
    /// Ended any other way than success or timeout.
    Failed,
    /// Hit the wall-clock or CPU-time limit.
    Timeout,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::Queued,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Timeout,
    ];

    /// The wire name (`"QUEUED"`, …), also the value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "QUEUED",
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Timeout => "TIMEOUT",
        }
    }

    /// A terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Timeout)
    }

    /// Whether the status machine allows `self → next`.
    pub fn can_transition_to(self, next: Status) -> bool {
        match (self, next) {
            (Status::Queued, Status::Running) => true,
            (Status::Running, Status::Queued) => true,
            (Status::Running, n) => n.is_terminal(),
            // A worker that gives up on an execution before it ever ran may fail it directly.
            (Status::Queued, Status::Failed) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status string that is not one of ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Why an execution did not complete. Serialised exactly as API.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ErrorType {
    /// Non-zero exit or death by a signal.
    RuntimeError,
    /// The wall-clock or CPU-time limit.
    TimeoutError,
    /// The memory limit killed it.
    MemoryLimitExceeded,
    /// stdout or stderr went past its cap.
    OutputLimitExceeded,
    /// The platform failed to run it, after its retries.
    InternalError,
    /// The compile stage failed: the compiler refused the code or hit a compile limit.
    CompilationError,
    /// Test cases ran cleanly but at least one printed other than its expected output.
    WrongAnswer,
}

impl ErrorType {
    /// Every error type.
    pub const ALL: [ErrorType; 7] = [
        ErrorType::RuntimeError,
        ErrorType::TimeoutError,
        ErrorType::MemoryLimitExceeded,
        ErrorType::OutputLimitExceeded,
        ErrorType::InternalError,
        ErrorType::CompilationError,
        ErrorType::WrongAnswer,
    ];

    /// The wire name, also the stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::RuntimeError => "RuntimeError",
            ErrorType::TimeoutError => "TimeoutError",
            ErrorType::MemoryLimitExceeded => "MemoryLimitExceeded",
            ErrorType::OutputLimitExceeded => "OutputLimitExceeded",
            ErrorType::InternalError => "InternalError",
            ErrorType::CompilationError => "CompilationError",
            ErrorType::WrongAnswer => "WrongAnswer",
        }
    }
}

impl FromStr for ErrorType {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorType::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_status_and_error_type() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for e in ErrorType::ALL {
            assert_eq!(e.as_str().parse::<ErrorType>(), Ok(e));
        }
        assert!("queued".parse::<Status>().is_err());
    }

    #[test]
    fn transitions_are_exactly_the_machine() {
        use Status::*;
        let allowed = [
            (Queued, Running),
            (Queued, Failed),
            (Running, Queued),
            (Running, Completed),
            (Running, Failed),
            (Running, Timeout),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        for s in Status::ALL {
            assert_eq!(s.is_terminal(), matches!(s, Completed | Failed | Timeout));
        }
    }
}
