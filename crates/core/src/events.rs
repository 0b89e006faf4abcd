//! Live events of an execution: status changes and output chunks (the compile stage's, then
//! the program's), numbered in order.

use crate::model::ExecutionId;
use crate::status::Status;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The execution moved to this status.
    Status(Status),
    /// A chunk the program wrote to stdout.
    Stdout(Vec<u8>),
    /// A chunk the program wrote to stderr.
    Stderr(Vec<u8>),
    /// A chunk the compiler (a compiled runtime's compile stage) wrote to stdout.
    CompileStdout(Vec<u8>),
    /// A chunk the compiler wrote to stderr.
    CompileStderr(Vec<u8>),
    /// The execution reached its terminal state; the stream of events ends here.
    Finished(Status),
}

/// One event of one execution. `seq` starts at 1 and grows by one per event of that execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Whose event.
    pub execution_id: ExecutionId,
    /// Position in the execution's event sequence (1-based).
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
}

/// The output streams an execution's events carry, in the order of [`OutputStream::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// The program's stdout.
    Stdout,
    /// The program's stderr.
    Stderr,
    /// The compile stage's stdout.
    CompileStdout,
    /// The compile stage's stderr.
    CompileStderr,
}

impl OutputStream {
    /// Every stream; a stream's position here is its [`OutputStream::index`].
    pub const ALL: [OutputStream; 4] = [
        OutputStream::Stdout,
        OutputStream::Stderr,
        OutputStream::CompileStdout,
        OutputStream::CompileStderr,
    ];

    /// Its position in [`OutputStream::ALL`] (0–3).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name as an SSE event name: `stdout`, `stderr`, `compile_stdout`, `compile_stderr`.
    pub fn name(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
            OutputStream::CompileStdout => "compile_stdout",
            OutputStream::CompileStderr => "compile_stderr",
        }
    }

    /// The event carrying `bytes` of this stream.
    pub fn event(self, bytes: Vec<u8>) -> EventKind {
        match self {
            OutputStream::Stdout => EventKind::Stdout(bytes),
            OutputStream::Stderr => EventKind::Stderr(bytes),
            OutputStream::CompileStdout => EventKind::CompileStdout(bytes),
            OutputStream::CompileStderr => EventKind::CompileStderr(bytes),
        }
    }
}

impl EventKind {
    /// The output chunk this event carries and its stream; `None` for status events.
    pub fn output(&self) -> Option<(OutputStream, &[u8])> {
        match self {
            EventKind::Stdout(b) => Some((OutputStream::Stdout, b)),
            EventKind::Stderr(b) => Some((OutputStream::Stderr, b)),
            EventKind::CompileStdout(b) => Some((OutputStream::CompileStdout, b)),
            EventKind::CompileStderr(b) => Some((OutputStream::CompileStderr, b)),
            EventKind::Status(_) | EventKind::Finished(_) => None,
        }
    }

    /// [`EventKind::output`], taking the bytes; the event itself when it carries none.
    pub fn into_output(self) -> Result<(OutputStream, Vec<u8>), EventKind> {
        match self {
            EventKind::Stdout(b) => Ok((OutputStream::Stdout, b)),
            EventKind::Stderr(b) => Ok((OutputStream::Stderr, b)),
            EventKind::CompileStdout(b) => Ok((OutputStream::CompileStdout, b)),
            EventKind::CompileStderr(b) => Ok((OutputStream::CompileStderr, b)),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_round_trips_through_its_event() {
        for (i, stream) in OutputStream::ALL.into_iter().enumerate() {
            assert_eq!(stream.index(), i);
            let event = stream.event(b"x".to_vec());
            assert_eq!(event.output(), Some((stream, &b"x"[..])));
            assert_eq!(event.into_output(), Ok((stream, b"x".to_vec())));
        }
        assert_eq!(EventKind::Status(Status::Running).output(), None);
    }
}
