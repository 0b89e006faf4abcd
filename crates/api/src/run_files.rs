//! The `files` of a run, a one-shot or a session (API.md §10.1): each `{"name", "content",
//! "encoding"?}`, names that stay inside the working dir and do not collide, contents decoded,
//! their total within the maximum (alone over it: a 413). The checks that need what else the
//! program has (the session's files, the main file's name) are in [`check_files_with`].

use crate::maxima::{RunMaxima, MAX_FILES};
use crate::validate::{check_no_nul, Problems};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use livexec_core::{RunOptions, SourceFile};
use livexec_runtimes::Stage;
use serde_json::Value;

/// Longest file name (path) in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Check one file name: a normalized relative path inside the working dir.
pub fn check_name(field: &str, name: &str, p: &mut Problems) {
    if name.is_empty() {
        p.push(format!("{field} must not be empty"));
    } else if name.contains('\0') {
        p.push(format!("{field} must not contain NUL characters"));
    } else if name.starts_with('/') {
        p.push(format!("{field} must be a relative path, not {name:?}"));
    } else if name.split('/').any(|c| c == "..") {
        p.push(format!("{field} must not contain .. ({name:?})"));
    } else if name.split('/').any(|c| c.is_empty() || c == ".") {
        p.push(format!(
            "{field} must be a plain relative path without empty or . parts ({name:?})"
        ));
    } else if name.len() > MAX_NAME_BYTES {
        p.push(format!(
            "{field} must be at most {MAX_NAME_BYTES} bytes long"
        ));
    }
}

/// The `files` of a body (a run's, or a session's): at most [`MAX_FILES`], each `{"name",
/// "content", "encoding"?}`, names valid and distinct, contents decoded, their total at most
/// the maximum.
pub fn files(value: Option<&Value>, maxima: &RunMaxima, p: &mut Problems) -> Vec<SourceFile> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            p.push("files must be an array of objects");
            return Vec::new();
        }
    };
    if items.len() > MAX_FILES {
        // Not checked one by one: the name checks compare every pair.
        p.push(format!(
            "files must contain no more than {MAX_FILES} elements"
        ));
        return Vec::new();
    }
    let mut out: Vec<SourceFile> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(file) = item else {
            p.push(format!("files[{i}] must be an object"));
            continue;
        };
        p.unknown_properties_in(
            &format!("files[{i}]."),
            file,
            &["name", "content", "encoding"],
        );
        let name = match file.get("name") {
            Some(Value::String(n)) => {
                check_name(&format!("files[{i}].name"), n, p);
                Some(n.clone())
            }
            _ => {
                p.push(format!("files[{i}].name must be a string"));
                None
            }
        };
        let base64 = match file.get("encoding") {
            None | Some(Value::Null) => false,
            Some(Value::String(e)) if e == "utf8" => false,
            Some(Value::String(e)) if e == "base64" => true,
            Some(_) => {
                p.push(format!(
                    "files[{i}].encoding must be one of the following values: utf8, base64"
                ));
                false
            }
        };
        let content = match file.get("content") {
            Some(Value::String(c)) if base64 => match STANDARD.decode(c.trim_end()) {
                Ok(bytes) => Some(bytes),
                Err(_) => {
                    p.push(format!("files[{i}].content is not valid base64"));
                    None
                }
            },
            Some(Value::String(c)) => Some(c.as_bytes().to_vec()),
            _ => {
                p.push(format!("files[{i}].content must be a string"));
                None
            }
        };
        if let (Some(name), Some(content)) = (name, content) {
            out.push(SourceFile { name, content });
        }
    }
    check_set(&out, 0, p);
    check_total(&out, &[], maxima, p);
    out
}

/// Whether `a` is a directory `b` needs, or the other way round (`a` and `a/b`).
pub(crate) fn nested(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| x.strip_prefix(y).is_some_and(|r| r.starts_with('/'));
    under(a, b) || under(b, a)
}

/// The most directories the files of one list may need (`a/b/c` needs `a` and `a/b`): each is
/// made by the sandbox before the run, outside the run's limits.
pub const MAX_DIRECTORIES: usize = 1024;

/// Names that collide within `files`: the same name twice, or a file where another one needs
/// a directory (`a` and `a/b`); and more directories needed than [`MAX_DIRECTORIES`].
fn check_set(files: &[SourceFile], offset: usize, p: &mut Problems) {
    let mut dirs = std::collections::HashSet::new();
    for f in files {
        dirs.extend(f.name.match_indices('/').map(|(at, _)| &f.name[..at]));
    }
    if dirs.len() > MAX_DIRECTORIES {
        p.push(format!(
            "files need {} directories; at most {MAX_DIRECTORIES}",
            dirs.len()
        ));
    }
    for (i, f) in files.iter().enumerate() {
        if let Some(j) = files[..i].iter().position(|g| g.name == f.name) {
            p.push(format!(
                "files[{}].name duplicates files[{}].name ({:?})",
                i + offset,
                j + offset,
                f.name
            ));
        } else if let Some(g) = files[..i].iter().find(|g| nested(&f.name, &g.name)) {
            p.push(format!(
                "files[{}].name {:?} and {:?} cannot both be files (one is the other's directory)",
                i + offset,
                f.name,
                g.name
            ));
        }
    }
}

/// Names of `files` that collide with the session's files (`session`).
fn check_against_session(files: &[SourceFile], session: &[SourceFile], p: &mut Problems) {
    for (i, f) in files.iter().enumerate() {
        if session.iter().any(|g| g.name == f.name) {
            p.push(format!(
                "files[{i}].name {:?} is already a file of the session",
                f.name
            ));
        } else if let Some(g) = session.iter().find(|g| nested(&f.name, &g.name)) {
            p.push(format!(
                "files[{i}].name {:?} and the session's file {:?} cannot both be files (one is the other's directory)",
                f.name, g.name
            ));
        }
    }
}

/// The total size of `files` and `session` against the maximum (a 413 when alone).
fn check_total(files: &[SourceFile], session: &[SourceFile], maxima: &RunMaxima, p: &mut Problems) {
    let total: usize = files.iter().chain(session).map(|f| f.content.len()).sum();
    if total > maxima.file_bytes {
        let whose = if session.is_empty() {
            ""
        } else {
            " (with the session's files)"
        };
        p.too_large(format!(
            "files must not exceed {} bytes in total{whose}, got {total}",
            maxima.file_bytes
        ));
    }
}

/// The checks of a run's (or a one-shot's) `files` that need what else the program has: the
/// session's files (`session`), the main file's name (`main`), which no file may be named
/// like or need as its directory (`main.py/x`: the jail could not write both), and what the
/// compile stage makes (`compile`: a file named `main` beside C code would be overwritten by
/// the executable).
///
/// `offset` is what to add to an index of `files` to name the file as the caller's API
/// numbers it (Piston's `files[0]` is the main file, so its other files start at 1).
pub fn check_files_with(
    files: &[SourceFile],
    session: &[SourceFile],
    main: &str,
    compile: Option<&Stage>,
    maxima: &RunMaxima,
    offset: usize,
    p: &mut Problems,
) {
    for (i, f) in files.iter().enumerate() {
        let i = i + offset;
        // A file whose top directory an artifact would be named like (`main/x` beside C's
        // `main`) leaves the compiler a directory where it writes its output.
        let top = f.name.split('/').next().unwrap_or_default();
        let taken = compile.and_then(|c| c.artifact_named(&f.name).or(c.artifact_named(top)));
        if let Some(pattern) = taken {
            p.push(format!(
                "files[{i}].name {:?} is taken by what the compile stage makes ({pattern}); rename the file",
                f.name
            ));
        } else if f.name == main {
            p.push(format!(
                "files[{i}].name must not be {main}, the name of the main file"
            ));
        } else if !main.is_empty() && nested(&f.name, main) {
            p.push(format!(
                "files[{i}].name {:?} and the main file {main} cannot both be files (one is the other's directory)",
                f.name
            ));
        }
    }
    if !session.is_empty() {
        check_against_session(files, session, p);
        if files.iter().map(|f| f.content.len()).sum::<usize>() <= maxima.file_bytes {
            check_total(files, session, maxima, p);
        }
    }
}

/// The checks of a decoded run that every surface shares, whatever its wire format (native,
/// Judge0, Piston, MCP): the source without NUL; at most [`MAX_FILES`] files, each name a
/// plain relative path, none twice or inside another, none taken by the main file or the
/// compile stage, their total within the maximum; `args` without NUL and within what
/// `execve` takes. A request that passes cannot be refused by the sandbox for its files or
/// arguments. `offset` as in [`check_files_with`].
pub(crate) fn check_decoded(
    source_code: &str,
    options: &RunOptions,
    main: &str,
    compile: Option<&Stage>,
    maxima: &RunMaxima,
    offset: usize,
    p: &mut Problems,
) {
    check_no_nul("source_code", source_code, p);
    for (i, arg) in options.args.iter().enumerate() {
        check_no_nul(&format!("args[{i}]"), arg, p);
    }
    crate::run_body::check_argv_env("args", &options.args, &options.env, p);
    let files = &options.files;
    if files.len() > MAX_FILES {
        p.push(format!(
            "files must contain no more than {MAX_FILES} elements, got {}",
            files.len() + offset
        ));
        return;
    }
    for (i, f) in files.iter().enumerate() {
        check_name(&format!("files[{}].name", i + offset), &f.name, p);
    }
    check_set(files, offset, p);
    check_total(files, &[], maxima, p);
    check_files_with(files, &[], main, compile, maxima, offset, p);
}
