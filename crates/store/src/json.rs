//! The JSON columns: run options, session files, effective limits, test results and output
//! files, each stored as JSON text.
//!
//! TEXT, not JSONB: serde_json escapes every control character (NUL becomes `\u0000`), so the
//! stored text never holds a byte PostgreSQL refuses, and whatever a program printed or a file
//! held round-trips exactly (file bytes are base64 inside the JSON). An empty list, a default
//! value or an absent one is stored as NULL, so a bodiless run's row looks as it always did.

use crate::rows::DataError;
use livexec_core::{RunOptions, SourceFile};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `value` as JSON text for `column`.
pub(crate) fn encode<T: Serialize + ?Sized>(
    column: &'static str,
    value: &T,
) -> Result<String, DataError> {
    serde_json::to_string(value).map_err(|source| DataError::BadJson { column, source })
}

/// A list as stored: NULL when empty.
pub(crate) fn encode_list<T: Serialize>(
    column: &'static str,
    items: &[T],
) -> Result<Option<String>, DataError> {
    if items.is_empty() {
        return Ok(None);
    }
    encode(column, items).map(Some)
}

/// Run options as stored: NULL for the defaults.
pub(crate) fn encode_options(options: &RunOptions) -> Result<Option<String>, DataError> {
    if options.is_default() {
        return Ok(None);
    }
    encode("options", options).map(Some)
}

/// The value stored in `column`, `None` when it is NULL.
pub(crate) fn decode<T: DeserializeOwned>(
    column: &'static str,
    text: Option<&str>,
) -> Result<Option<T>, DataError> {
    text.map(|t| serde_json::from_str(t).map_err(|source| DataError::BadJson { column, source }))
        .transpose()
}

/// A stored list, empty when NULL.
pub(crate) fn decode_list<T: DeserializeOwned>(
    column: &'static str,
    text: Option<&str>,
) -> Result<Vec<T>, DataError> {
    Ok(decode(column, text)?.unwrap_or_default())
}

/// The options an execution runs with: the request's own, with the session's files (as the
/// run snapshotted them) in front of the request's. The API refuses a request whose files
/// share a name with the session's; should a `PATCH` slip in between its check and the
/// snapshot, the request's file wins and the session's of that name is left out.
pub(crate) fn run_options(
    options: Option<&str>,
    session_files: Option<&str>,
) -> Result<RunOptions, DataError> {
    let mut options: RunOptions = decode("options", options)?.unwrap_or_default();
    let session: Vec<SourceFile> = decode_list("session_files", session_files)?;
    if !session.is_empty() {
        let own = std::mem::take(&mut options.files);
        let mut files: Vec<SourceFile> = session
            .into_iter()
            .filter(|f| !own.iter().any(|o| o.name == f.name))
            .collect();
        files.extend(own);
        options.files = files;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &[u8]) -> SourceFile {
        SourceFile {
            name: name.into(),
            content: content.to_vec(),
        }
    }

    #[test]
    fn session_files_come_first_and_a_racing_duplicate_yields_to_the_request() {
        let session = encode_list("f", &[file("a", b"s"), file("b", b"s")]).unwrap();
        let options = RunOptions {
            files: vec![file("b", b"r"), file("c", b"r")],
            ..Default::default()
        };
        let stored = encode_options(&options).unwrap();
        let merged = run_options(stored.as_deref(), session.as_deref()).unwrap();
        let names: Vec<_> = merged.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(merged.files[1].content, b"r");
    }

    #[test]
    fn defaults_and_empty_lists_are_null_and_nul_never_reaches_the_text() {
        assert_eq!(encode_options(&RunOptions::default()).unwrap(), None);
        assert_eq!(encode_list::<SourceFile>("f", &[]).unwrap(), None);
        let options = RunOptions {
            stdin: Some("a\0b".into()),
            ..Default::default()
        };
        let text = encode_options(&options).unwrap().unwrap();
        assert!(!text.contains('\0'), "{text}");
        assert_eq!(run_options(Some(&text), None).unwrap(), options);
        assert!(decode::<RunOptions>("options", Some("{\"stdin\": 3}")).is_err());
    }
}
