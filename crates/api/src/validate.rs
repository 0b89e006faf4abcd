//! Validation of request bodies, headers and query strings.
//!
//! Every function looks at the whole input and reports every problem at once (API.md: one
//! message per problem, in an array), in the wording clients of the original platform know
//! (`"language must be one of the following values: python, javascript"`,
//! `"property foo should not exist"`).

use crate::error::ApiError;
use crate::extract::parse_uuid;
use crate::maxima::RunMaxima;
use crate::run_files;
use axum::http::HeaderMap;
use livexec_core::SourceFile;
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// How many unknown properties an error names; the rest are counted.
pub const UNKNOWN_NAMED: usize = 10;

/// The longest an unknown property's name is shown in an error, in characters.
pub const UNKNOWN_NAME_CHARS: usize = 64;

/// Longest accepted `idempotency-key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Default page size of the history.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;
/// Largest page size of the history.
pub const MAX_HISTORY_LIMIT: u32 = 1000;
/// Name of the idempotency header.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// A valid `POST /code-sessions` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSession {
    /// A known runtime id.
    pub language: String,
    /// The starting code; `None` means the runtime's default template.
    pub template_code: Option<String>,
    /// Extra files beside the main one.
    pub files: Vec<SourceFile>,
}

/// A valid `PATCH /code-sessions/:id` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSession {
    /// The new code (non-empty); required unless `files` is given.
    pub source_code: Option<String>,
    /// The new language, when given.
    pub language: Option<String>,
    /// The new set of extra files (replacing the old one whole), when given.
    pub files: Option<Vec<SourceFile>>,
}

/// A valid history query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Page size, 1..=1000.
    pub limit: u32,
    /// Only executions older than this one.
    pub before: Option<Uuid>,
}

/// Runtime ids in the order the error message lists them: python and javascript first (the
/// original platform's wording), then every other id in sorted order.
pub fn language_order<'a>(ids: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&'a str> = ["python", "javascript"]
        .into_iter()
        .filter_map(|first| ids.iter().copied().find(|id| *id == first))
        .collect();
    let mut rest: Vec<&'a str> = ids.iter().copied().filter(|id| !out.contains(id)).collect();
    rest.sort_unstable();
    out.extend(rest);
    out
}

/// Collects problems, then succeeds only if there were none. Problems of size alone (files
/// over the request maximum) make a 413; any other problem makes the whole list a 400.
#[derive(Default)]
pub(crate) struct Problems {
    list: Vec<String>,
    only_size: bool,
}

impl Problems {
    /// The first problem found, if any.
    pub(crate) fn first(&self) -> Option<String> {
        self.list.first().cloned()
    }

    pub(crate) fn push(&mut self, msg: impl Into<String>) {
        self.only_size = false;
        self.list.push(msg.into());
    }

    /// A size problem: alone (with other size problems only) it is a 413.
    pub(crate) fn too_large(&mut self, msg: impl Into<String>) {
        let only_size = self.list.is_empty() || self.only_size;
        self.list.push(msg.into());
        self.only_size = only_size;
    }

    /// Unknown keys of `body` (those not in `allowed`): each a problem, the first
    /// [`UNKNOWN_NAMED`] named (cut to [`UNKNOWN_NAME_CHARS`] characters), the rest counted.
    pub(crate) fn unknown_properties(&mut self, body: &Map<String, Value>, allowed: &[&str]) {
        self.unknown_properties_in("", body, allowed);
    }

    /// Unknown keys of a nested object, named with `prefix` (`"files[0]."`).
    pub(crate) fn unknown_properties_in(
        &mut self,
        prefix: &str,
        body: &Map<String, Value>,
        allowed: &[&str],
    ) {
        // Named, but not echoed whole: a body of a million long unknown keys must not come
        // back as an error larger than itself.
        let unknown: Vec<&String> = body
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        for key in unknown.iter().take(UNKNOWN_NAMED) {
            let shown = match key.char_indices().nth(UNKNOWN_NAME_CHARS) {
                Some((end, _)) => format!("{}…", &key[..end]),
                None => (*key).clone(),
            };
            self.push(format!("{prefix}property {shown} should not exist"));
        }
        if unknown.len() > UNKNOWN_NAMED {
            let more = unknown.len() - UNKNOWN_NAMED;
            let of = match prefix.strip_suffix('.') {
                Some(object) => format!(" of {object}"),
                None => String::new(),
            };
            self.push(format!("{more} more properties{of} should not exist"));
        }
    }

    /// The problems found, and whether they are all of size (a 413 rather than a 400);
    /// `None` when there were none.
    pub(crate) fn into_list(self) -> Option<(Vec<String>, bool)> {
        (!self.list.is_empty()).then_some((self.list, self.only_size))
    }

    pub(crate) fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ApiError> {
        if self.list.is_empty() {
            Ok(value())
        } else if self.only_size {
            Err(ApiError::TooLarge(self.list))
        } else {
            Err(ApiError::Validation(self.list))
        }
    }
}

fn language_message(languages: &[&str]) -> String {
    format!(
        "language must be one of the following values: {}",
        language_order(languages).join(", ")
    )
}

/// What `language` may name: the ids and aliases of the runtimes clients may use.
pub trait Languages {
    /// The runtime id that `name` (an id or an alias) stands for, when it may be used.
    fn resolve(&self, name: &str) -> Option<String>;
    /// The ids that may be used, for the error message.
    fn usable_ids(&self) -> Vec<&str>;
}

/// A plain list of ids (no aliases).
impl Languages for [&str] {
    fn resolve(&self, name: &str) -> Option<String> {
        self.contains(&name).then(|| name.to_owned())
    }
    fn usable_ids(&self) -> Vec<&str> {
        self.to_vec()
    }
}

/// The registry: ids and aliases of the runtimes available here.
impl Languages for livexec_runtimes::Registry {
    fn resolve(&self, name: &str) -> Option<String> {
        self.lookup_usable(name).map(|r| r.id.clone())
    }
    fn usable_ids(&self) -> Vec<&str> {
        livexec_runtimes::Registry::usable_ids(self)
    }
}

/// Checks `language` (when `required`, absence is a problem too); the runtime id it names.
pub(crate) fn check_language<L: Languages + ?Sized>(
    value: Option<&Value>,
    required: bool,
    languages: &L,
    problems: &mut Problems,
) -> Option<String> {
    match value {
        None | Some(Value::Null) if !required => None,
        Some(Value::String(s)) if languages.resolve(s).is_some() => languages.resolve(s),
        _ => {
            problems.push(language_message(&languages.usable_ids()));
            None
        }
    }
}

pub(crate) fn check_no_nul(field: &str, s: &str, problems: &mut Problems) {
    if s.contains('\0') {
        problems.push(format!("{field} must not contain NUL characters"));
    }
}

/// Validate a `POST /code-sessions` body against the usable runtimes (`language` becomes the
/// id its alias names), files against the default maxima.
pub fn create_session<L: Languages + ?Sized>(
    body: &Map<String, Value>,
    languages: &L,
) -> Result<CreateSession, ApiError> {
    create_session_with(body, languages, &RunMaxima::default())
}

/// [`create_session`] with the server's maxima for `files`.
pub fn create_session_with<L: Languages + ?Sized>(
    body: &Map<String, Value>,
    languages: &L,
    maxima: &RunMaxima,
) -> Result<CreateSession, ApiError> {
    let mut problems = Problems::default();
    let language = check_language(body.get("language"), true, languages, &mut problems);
    let template_code = match body.get("templateCode") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            check_no_nul("templateCode", s, &mut problems);
            Some(s.clone())
        }
        Some(_) => {
            problems.push("templateCode must be a string");
            None
        }
    };
    let files = run_files::files(body.get("files"), maxima, &mut problems);
    problems.unknown_properties(body, &["language", "templateCode", "files"]);
    problems.finish(|| CreateSession {
        language: language.unwrap_or_default(),
        template_code,
        files,
    })
}

/// Validate a `PATCH /code-sessions/:id` body against the usable runtimes (`language` becomes
/// the id its alias names), files against the default maxima.
pub fn update_session<L: Languages + ?Sized>(
    body: &Map<String, Value>,
    languages: &L,
) -> Result<UpdateSession, ApiError> {
    update_session_with(body, languages, &RunMaxima::default())
}

/// [`update_session`] with the server's maxima for `files`. `source_code` may be left out
/// when `files` is given.
pub fn update_session_with<L: Languages + ?Sized>(
    body: &Map<String, Value>,
    languages: &L,
    maxima: &RunMaxima,
) -> Result<UpdateSession, ApiError> {
    let mut problems = Problems::default();
    let has_files = body.get("files").is_some_and(|f| !f.is_null());
    let source_code = match body.get("source_code") {
        Some(Value::String(s)) if s.is_empty() => {
            problems.push("source_code should not be empty");
            None
        }
        Some(Value::String(s)) => {
            check_no_nul("source_code", s, &mut problems);
            Some(s.clone())
        }
        None | Some(Value::Null) if has_files => None,
        None | Some(Value::Null) => {
            problems.push("source_code should not be empty");
            problems.push("source_code must be a string");
            None
        }
        Some(_) => {
            problems.push("source_code must be a string");
            None
        }
    };
    let language = check_language(body.get("language"), false, languages, &mut problems);
    let files = has_files.then(|| run_files::files(body.get("files"), maxima, &mut problems));
    problems.unknown_properties(body, &["source_code", "language", "files"]);
    problems.finish(|| UpdateSession {
        source_code,
        language,
        files,
    })
}

/// The `idempotency-key` header: absent → `None`; present → 1–255 printable ASCII characters
/// (0x20–0x7E), sent once; anything else → 400.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "idempotency-key must be sent at most once".to_owned(),
        ));
    }
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    if bytes.is_empty() || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN || !printable {
        return Err(ApiError::BadRequest(format!(
            "idempotency-key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"
        )));
    }
    // All bytes are printable ASCII, so this is valid UTF-8.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Validate `?limit=N&before=<execution_id>` of the history; other keys are ignored.
pub fn history_query(query: &HashMap<String, String>) -> Result<HistoryQuery, ApiError> {
    let mut problems = Problems::default();
    let limit = match query.get("limit") {
        None => DEFAULT_HISTORY_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_HISTORY_LIMIT).contains(&n) => n,
            _ => {
                problems.push(format!(
                    "limit must be an integer between 1 and {MAX_HISTORY_LIMIT}"
                ));
                DEFAULT_HISTORY_LIMIT
            }
        },
    };
    let before = match query.get("before") {
        None => None,
        Some(raw) => {
            let parsed = parse_uuid(raw);
            if parsed.is_none() {
                problems.push("before must be a UUID");
            }
            parsed
        }
    };
    problems.finish(|| HistoryQuery { limit, before })
}

/// The query of `POST /code-sessions/:id/run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunQuery {
    /// `wait=true`: answer when the execution is over (or the wait runs out).
    pub wait: bool,
    /// `timeout_ms`: how long to wait at most (capped by the server).
    pub timeout_ms: Option<u64>,
}

/// Validate `?wait=true|false&timeout_ms=N` of a run. `wait` alone (or empty) means true;
/// `timeout_ms` only makes sense with `wait=true`. Other keys are ignored.
pub fn run_query(query: &HashMap<String, String>) -> Result<RunQuery, ApiError> {
    let mut problems = Problems::default();
    let wait = match query.get("wait").map(|v| v.trim()) {
        None => false,
        Some("" | "true" | "1") => true,
        Some("false" | "0") => false,
        Some(_) => {
            problems.push("wait must be true or false");
            false
        }
    };
    let timeout_ms = match query.get("timeout_ms") {
        None => None,
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(ms) if wait => Some(ms),
            Ok(_) => {
                problems.push("timeout_ms is only allowed with wait=true");
                None
            }
            Err(_) => {
                problems.push("timeout_ms must be a non-negative integer (milliseconds)");
                None
            }
        },
    };
    problems.finish(|| RunQuery { wait, timeout_ms })
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
