//! How an [`Event`] is laid out in a Redis Stream entry.
//!
//! Entry id `<seq>-0`; fields `p` (seq of the entry before it, `0` for the first; a reader
//! that sees `p` above the last seq it holds knows entries were trimmed in between), `k` (kind:
//! `s` status, `o` stdout, `e` stderr, `co` compiler stdout, `ce` compiler stderr, `f`
//! finished) and `d` (the chunk's raw bytes, or the status name). A reader that does not know
//! a kind skips the entry with a warning (a node of an earlier version meeting `co`/`ce`).

use livexec_core::{Event, EventKind, ExecutionId, Status};
use redis::streams::StreamId;
use redis::Value;

/// The `k` and `d` fields of an event.
pub(crate) fn encode(kind: &EventKind) -> (&'static str, &[u8]) {
    match kind {
        EventKind::Status(s) => ("s", s.as_str().as_bytes()),
        EventKind::Stdout(b) => ("o", b),
        EventKind::Stderr(b) => ("e", b),
        EventKind::CompileStdout(b) => ("co", b),
        EventKind::CompileStderr(b) => ("ce", b),
        EventKind::Finished(s) => ("f", s.as_str().as_bytes()),
    }
}

/// Why an entry could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("malformed event entry {id:?} in the stream of execution {execution_id}: {what}")]
pub(crate) struct BadEntry {
    pub execution_id: ExecutionId,
    pub id: String,
    pub what: &'static str,
}

/// A decoded entry: its seq, the seq before it, and the event.
pub(crate) struct Decoded {
    pub prev: u64,
    pub event: Event,
}

fn bytes<'a>(entry: &'a StreamId, field: &str) -> Option<&'a [u8]> {
    match entry.map.get(field)? {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn number(entry: &StreamId, field: &str) -> Option<u64> {
    match entry.map.get(field)? {
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => std::str::from_utf8(bytes(entry, field)?).ok()?.parse().ok(),
    }
}

/// The seq of an entry id `<seq>-0`.
pub(crate) fn entry_seq(id: &str) -> Option<u64> {
    id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

/// Reads an entry back into an event.
pub(crate) fn decode(execution_id: ExecutionId, entry: &StreamId) -> Result<Decoded, BadEntry> {
    let bad = |what| BadEntry {
        execution_id,
        id: entry.id.clone(),
        what,
    };
    let seq = entry_seq(&entry.id).ok_or_else(|| bad("id is not <seq>-0"))?;
    let prev = number(entry, "p").ok_or_else(|| bad("missing p"))?;
    let kind = bytes(entry, "k").ok_or_else(|| bad("missing k"))?;
    let data = bytes(entry, "d").ok_or_else(|| bad("missing d"))?;
    let status = || {
        std::str::from_utf8(data)
            .ok()
            .and_then(|s| s.parse::<Status>().ok())
            .ok_or_else(|| bad("unknown status"))
    };
    let kind = match kind {
        b"s" => EventKind::Status(status()?),
        b"f" => EventKind::Finished(status()?),
        b"o" => EventKind::Stdout(data.to_vec()),
        b"e" => EventKind::Stderr(data.to_vec()),
        b"co" => EventKind::CompileStdout(data.to_vec()),
        b"ce" => EventKind::CompileStderr(data.to_vec()),
        _ => return Err(bad("unknown kind")),
    };
    Ok(Decoded {
        prev,
        event: Event {
            execution_id,
            seq,
            kind,
        },
    })
}
